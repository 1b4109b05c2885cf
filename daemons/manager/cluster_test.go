package manager_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

func svcSpec(name string) api.ServiceSpec {
	return api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: 1}
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, d time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func TestThreeManagersForwardAndReplicate(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	ctx := ctx(t)
	f := c.Followers()[0]
	// A write on a follower is forwarded to the leader, and the follower
	// sees it as soon as the call returns (read your writes).
	s, err := f.Client.CreateService(ctx, svcSpec("web"))
	if err != nil {
		t.Fatalf("CreateService on follower %s = %v", f.ID, err)
	}
	got, err := f.Client.Service(ctx, "web", client.ReadOptions{})
	if err != nil || got.ID != s.ID {
		t.Errorf("read on the follower right after its forwarded write = %v, %v", got, err)
	}
	// Every manager gets it.
	for _, m := range c.Managers {
		eventually(t, "service replicated to "+m.ID, 5*time.Second, func() error {
			_, err := m.Client.Service(ctx, "web", client.ReadOptions{})
			return err
		})
	}
	// Every manager registered its own node.
	eventually(t, "3 manager nodes", 5*time.Second, func() error {
		nodes, err := f.Client.Nodes(ctx, client.ReadOptions{})
		if err != nil {
			return err
		}
		if len(nodes) != 3 {
			return fmt.Errorf("%d nodes", len(nodes))
		}
		leaders := 0
		for _, n := range nodes {
			if n.Spec.Role != api.RoleManager {
				return fmt.Errorf("node %s is %s", n.ID, n.Spec.Role)
			}
			if n.Manager != nil && n.Manager.Leader {
				leaders++
			}
		}
		if leaders != 1 {
			return fmt.Errorf("%d nodes say they lead", leaders)
		}
		return nil
	})
	// A consistent read on a follower goes through the leader.
	if _, err := f.Client.Services(ctx, client.ReadOptions{Consistent: true}); err != nil {
		t.Errorf("consistent read on a follower = %v", err)
	}
}

// A write through a follower returns once the leader has answered; the
// follower learns that it is committed only with the leader's next message,
// which an idle leader sends every 1–2 × CommitTimeout (1 s here). Reads on
// the follower wait for its forwarded writes, and still answer when it is
// cut off before learning of them.
func TestFollowerReadsWaitForForwardedWrites(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{CommitTimeout: time.Second})
	ctx := ctx(t)
	f := c.Followers()[0]
	for i := range 3 {
		name := fmt.Sprintf("ryw-%d", i)
		s, err := f.Client.CreateService(ctx, svcSpec(name))
		if err != nil {
			t.Fatalf("CreateService(%s) on follower %s = %v", name, f.ID, err)
		}
		got, err := f.Client.Service(ctx, name, client.ReadOptions{})
		if err != nil || got.ID != s.ID {
			t.Fatalf("read on the follower right after its forwarded write of %s = %v, %v", name, got, err)
		}
	}

	if _, err := f.Client.CreateService(ctx, svcSpec("cut")); err != nil {
		t.Fatalf("CreateService(cut) on follower %s = %v", f.ID, err)
	}
	c.Cut(f)
	defer c.Heal()
	// Whether or not it learnt of "cut" in time, the follower answers
	// (ctx bounds the wait: a read that hung would fail the test).
	if _, err := f.Client.Services(ctx, client.ReadOptions{}); err != nil {
		t.Fatalf("read on a follower cut off after a forwarded write = %v", err)
	}
}

// writer keeps creating services and records each one acknowledged.
type writer struct {
	mu    sync.Mutex
	acked []string
	stop  chan struct{}
	done  chan struct{}
}

func startWriter(t *testing.T, c *managertest.Cluster) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			name := fmt.Sprintf("w-%d", i)
			for _, m := range c.Managers {
				if m.Manager == nil {
					continue
				}
				ctx := ctx(t)
				if _, err := m.Client.CreateService(ctx, svcSpec(name)); err == nil {
					w.mu.Lock()
					w.acked = append(w.acked, name)
					w.mu.Unlock()
					break
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return w
}

func (w *writer) finish() []string {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked
}

func checkAcked(t *testing.T, m *managertest.Member, acked []string) {
	t.Helper()
	ctx := ctx(t)
	svcs, err := m.Client.Services(ctx, client.ReadOptions{Consistent: true})
	if err != nil {
		t.Fatalf("list services on %s: %v", m.ID, err)
	}
	have := map[string]bool{}
	for _, s := range svcs {
		have[s.Spec.Name] = true
	}
	for _, name := range acked {
		if !have[name] {
			t.Errorf("acknowledged write %s is missing on %s", name, m.ID)
		}
	}
}

func TestLeaderLossKeepsEveryAcknowledgedWrite(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	w := startWriter(t, c)
	time.Sleep(300 * time.Millisecond)
	old := c.Leader()
	start := time.Now()
	old.Stop()
	nl := c.WaitLeader()
	t.Logf("new leader %s after %s", nl.ID, time.Since(start).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	acked := w.finish()
	if len(acked) < 10 {
		t.Fatalf("only %d writes acknowledged around the leader loss", len(acked))
	}
	checkAcked(t, nl, acked)
	// The old leader comes back as a follower and catches up.
	old.Restart(managertest.Options{})
	eventually(t, "the old leader catches up", 10*time.Second, func() error {
		svcs, err := old.Client.Services(ctx(t), client.ReadOptions{})
		if err != nil {
			return err
		}
		if len(svcs) < len(acked) {
			return fmt.Errorf("%d of %d services", len(svcs), len(acked))
		}
		return nil
	})
}

func TestMinorityPartitionRefusesWrites(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	ctx := ctx(t)
	lone := c.Followers()[0]
	c.Partition(lone)
	// The majority keeps serving.
	eventually(t, "a write on the majority side", 5*time.Second, func() error {
		_, err := c.Leader().Client.CreateService(ctx, svcSpec("majority"))
		return err
	})
	// The cut-off manager refuses writes with a clear error, and still reads.
	_, err := lone.Client.CreateService(ctx, svcSpec("minority"))
	if !api.IsCode(err, api.CodeNotLeader) && !api.IsCode(err, api.CodeUnavailable) {
		t.Errorf("write on a cut-off manager = %v, want not_leader or unavailable", err)
	}
	if _, err := lone.Client.Services(ctx, client.ReadOptions{}); err != nil {
		t.Errorf("local read on a cut-off manager = %v, want its last-known state", err)
	}
	c.Heal()
	eventually(t, "the healed manager catches up", 10*time.Second, func() error {
		_, err := lone.Client.Service(ctx, "majority", client.ReadOptions{})
		return err
	})
	if _, err := c.Leader().Client.Service(ctx, "minority", client.ReadOptions{}); !api.NotFound(err) {
		t.Errorf("the write refused in the minority exists after healing: %v", err)
	}
}

func TestLeaderCutFromMajorityStepsDown(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	ctx := ctx(t)
	old := c.Leader()
	c.Partition(old)
	var nl *managertest.Member
	eventually(t, "a new leader on the majority side", 10*time.Second, func() error {
		for _, m := range c.Managers {
			if m != old && m.IsLeader() {
				nl = m
				return nil
			}
		}
		return fmt.Errorf("none yet")
	})
	if _, err := nl.Client.CreateService(ctx, svcSpec("after")); err != nil {
		t.Errorf("write on the new leader = %v", err)
	}
	eventually(t, "the old leader steps down", 5*time.Second, func() error {
		if old.IsLeader() {
			return fmt.Errorf("%s still leads", old.ID)
		}
		return nil
	})
	c.Heal()
	eventually(t, "the old leader learns the new write", 10*time.Second, func() error {
		_, err := old.Client.Service(ctx, "after", client.ReadOptions{})
		return err
	})
}

func TestWorkerReplicaIsNodeScopedAndSurvivesOutages(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	ctx := ctx(t)
	w := c.AddWorker("wrk1")
	leader := c.Leader()
	spec := svcSpec("web")
	spec.Env = []string{"PASSWORD=hunter2"}
	spec.Replicas = 1
	s, err := leader.Client.CreateService(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the worker's replica has the service", 10*time.Second, func() error {
		_, err := w.Client.Service(ctx, "web", client.ReadOptions{})
		return err
	})
	got, _ := w.Client.Service(ctx, "web", client.ReadOptions{})
	if len(got.Spec.Env) != 0 {
		t.Errorf("a worker that runs none of its tasks holds the service's environment %v", got.Spec.Env)
	}
	// Writes a worker may not make are refused locally.
	if _, err := w.Client.CreateService(ctx, svcSpec("nope")); !api.IsCode(err, api.CodeForbidden) {
		t.Errorf("CreateService on a worker = %v, want forbidden", err)
	}
	// Heartbeats from the worker's agent reach the leader through it.
	if _, err := w.Client.Heartbeat(ctx, "wrk1", api.Heartbeat{Description: api.NodeDescription{Hostname: "wrk1", NanoCPUs: 2e9, MemoryBytes: 1 << 30}}); err != nil {
		t.Fatalf("heartbeat through the worker = %v", err)
	}
	eventually(t, "the worker node ready and running web", 10*time.Second, func() error {
		ts, err := w.Client.Tasks(ctx, client.TaskQuery{Node: "wrk1"})
		if err != nil {
			return err
		}
		if len(ts) != 1 || ts[0].ServiceID != s.ID {
			return fmt.Errorf("%d tasks on the worker", len(ts))
		}
		if len(ts[0].Spec.Env) != 1 {
			return fmt.Errorf("its own task lacks its environment: %v", ts[0].Spec.Env)
		}
		return nil
	})
	// Cut the worker off: it keeps serving what it knows.
	c.Cut(w)
	time.Sleep(200 * time.Millisecond)
	if ts, err := w.Client.Tasks(ctx, client.TaskQuery{Node: "wrk1"}); err != nil || len(ts) != 1 {
		t.Errorf("cut-off worker's tasks = %d, %v; want its last-known task", len(ts), err)
	}
	// It restarts while cut off: the replica persisted.
	w.Stop()
	w.RestartWorker()
	if ts, err := w.Client.Tasks(ctx, client.TaskQuery{Node: "wrk1"}); err != nil || len(ts) != 1 {
		t.Errorf("after a restart while cut off: %d tasks, %v; want its last-known task", len(ts), err)
	}
	// Healed, it catches up with what changed meanwhile.
	if _, err := leader.Client.CreateService(ctx, svcSpec("later")); err != nil {
		t.Fatal(err)
	}
	c.Heal()
	eventually(t, "the healed worker catches up", 15*time.Second, func() error {
		_, err := w.Client.Service(ctx, "later", client.ReadOptions{})
		return err
	})
}
