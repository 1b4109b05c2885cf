package cluster

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// The managers' timing in the worker tests. The agent heartbeats every
// 2 s, but a worker's forwarded heartbeat takes 5 s today (see
// TestWorkerRequestsAreNotHeldBack), so a node timeout under about 6 s
// marks healthy workers down; 8 s leaves room.
var workerTiming = []string{"--node-timeout", "8s", "--reschedule-grace", "8s"}

const grace = 8 * time.Second

// TestWorkerCutOff cuts a worker off the LAN: its containers keep
// running; the managers mark it down and replace its tasks on the other
// worker only once the reschedule grace has passed; when it is back, it
// claims its tasks back (offline.onReconnect keep), its containers never
// restarted, the replacements stop, and every slot runs exactly one
// container across the workers.
func TestWorkerCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a node timeout, the reschedule grace and a reconnection (about 45 s)")
	}
	c := startCluster(t, 3, 2, workerTiming...)
	ctx := ctxFor(t, 3*time.Minute)
	m := c.Host("m2")
	w1, w2 := c.Host("w1"), c.Host("w2")
	deploy(t, c, "web", 4)
	on1 := containersOn(t, w1, "web")
	on2 := containersOn(t, w2, "web")
	if len(on1) == 0 || len(on2) == 0 {
		t.Fatalf("the 4 tasks are not spread over both workers: w1 %v, w2 %v", on1, on2)
	}
	t.Logf("w1 runs %d containers, w2 %d", len(on1), len(on2))

	if err := w1.Cut(); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	// Until the grace has passed since the managers marked w1 down: no
	// replacement anywhere, and w1's containers keep running.
	var downAt time.Time
	for {
		check := func() error {
			for id, pid := range on1 {
				if !Alive(pid) {
					return fmt.Errorf("w1's container %s (pid %d) died while w1 was cut off", id[:8], pid)
				}
			}
			cs, err := w1.Containers(ctx)
			if err != nil {
				return err
			}
			if n := countRunning(cs, "web"); n != len(on1) {
				return fmt.Errorf("w1's containerd runs %d web containers, want %d", n, len(on1))
			}
			return nil
		}
		if err := check(); err != nil {
			t.Fatal(err)
		}
		n, err := m.Client.Node(ctx, w1.NodeID())
		if err != nil {
			t.Fatal(err)
		}
		if downAt.IsZero() && n.Status.State == api.NodeDown {
			downAt = n.Status.Timestamp
			t.Logf("the managers marked w1 down %.1f s after the cut (%s)", downAt.Sub(cutAt).Seconds(), n.Status.Message)
		}
		if !downAt.IsZero() && time.Now().After(downAt.Add(grace-500*time.Millisecond)) {
			break
		}
		if time.Since(cutAt) > 30*time.Second {
			t.Fatalf("w1 still not marked down %s after the cut (state %s)", time.Since(cutAt), n.Status.State)
		}
		ts, err := consistentTasks(ctx, m, "web")
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range ts {
			if tk.NodeID != w1.NodeID() && tk.DesiredState == api.TaskRunning && on2[tk.ID] == 0 {
				t.Fatalf("a replacement task %s (slot %d) was made on %.8s %.1f s after the cut, %.1f s after w1 was marked down, before the %s grace:%s",
					tk.ID, tk.Slot, tk.NodeID, time.Since(cutAt).Seconds(), time.Since(downAt).Seconds(), grace, describeTasks(ts))
			}
		}
		cs, err := w2.Containers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := countRunning(cs, "web"); n != len(on2) {
			t.Fatalf("w2 runs %d web containers before the grace passed, want %d", n, len(on2))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// After the grace: w1's slots are refilled on w2. (Not fatal: the
	// reconnection below is worth checking even when this fails.)
	if err := within(15*time.Second, func() error {
		cs, err := w2.Containers(ctx)
		if err != nil {
			return err
		}
		if n := countRunning(cs, "web"); n != 4 {
			ts, _ := consistentTasks(ctx, m, "web")
			return fmt.Errorf("w2 runs %d web containers; tasks:%s", n, describeTasks(ts))
		}
		return nil
	}); err != nil {
		t.Errorf("w1's tasks not all replaced on w2 15 s after the grace: %v", err)
	} else {
		t.Logf("w1's tasks run on w2 %.1f s after w1 was marked down", time.Since(downAt).Seconds())
	}
	for id, pid := range on1 {
		if !Alive(pid) {
			t.Errorf("w1's container %s (pid %d) died while w1 was cut off", id[:8], pid)
		}
	}

	if err := w1.Heal(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	// w1 claims its tasks back (offline.onReconnect keep, the default):
	// its containers, never restarted, stay; the replacements on w2 stop.
	// No slot runs twice across the workers once the handover is done.
	eventually(t, 45*time.Second, "w2 stops the replacements of the tasks w1 claimed back", func() error {
		if on := containersOn(t, w2, "web"); len(on) != len(on2) {
			mine, _ := w1.Client.Tasks(ctx, client.TaskQuery{Node: w1.NodeID()})
			return fmt.Errorf("w2 runs %d web containers, want its own %d; w1's own replica (what its agent watches) has:%s", len(on), len(on2), describeTasks(mine))
		}
		return nil
	})
	for id, pid := range on1 {
		if !Alive(pid) {
			t.Errorf("w1's container %s (pid %d) was stopped on reconnect: it should have been claimed back", id[:8], pid)
		}
	}
	t.Logf("the handover was done %.1f s after the heal", time.Since(healed).Seconds())
	if _, err := containersOf(ctx, c, "web", 4); err != nil {
		t.Errorf("after w1 is back, want one web container per slot: %v", err)
	}
	eventually(t, 60*time.Second, "w1 ready again", func() error {
		n, err := m.Client.Node(ctx, w1.NodeID())
		if err != nil {
			return err
		}
		if n.Status.State != api.NodeReady {
			return fmt.Errorf("w1 is %s: %s", n.Status.State, n.Status.Message)
		}
		return nil
	})
	t.Logf("w1 ready again %.1f s after the heal", time.Since(healed).Seconds())
	ts, err := consistentTasks(ctx, m, "web")
	if err != nil {
		t.Fatal(err)
	}
	if live := liveTasks(ts); len(live) != 4 {
		t.Errorf("%d live tasks after the heal, want 4:%s", len(live), describeTasks(ts))
	}
}

// TestWorkerAgentSeesEveryTaskOfOnePlan places several tasks on one
// worker in one plan: the manager commits them at one Raft index, the
// worker's replica receives them as several events of that index, and
// the node's agent, which watches the replica, must start every one.
func TestWorkerAgentSeesEveryTaskOfOnePlan(t *testing.T) {
	c := startCluster(t, 1, 1)
	ctx := ctxFor(t, 2*time.Minute)
	m, w := c.Host("m1"), c.Host("w1")
	for _, name := range []string{"plan-a", "plan-b", "plan-c"} {
		if _, err := m.Client.CreateService(ctx, onWorkers(name, 6)); err != nil {
			t.Fatal(err)
		}
		var last error
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			if last = runsAll(ctx, m, w, name, 6); last == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if last != nil {
			replica, _ := w.Client.Tasks(ctx, client.TaskQuery{Service: name})
			t.Fatalf("%s, 6 replicas placed on w1 in one plan: %v\nw1's own replica (what its agent watches) has:%s",
				name, last, describeTasks(replica))
		}
	}
}

// runsAll checks that all n tasks of a service run, as the managers and
// w's containerd see them.
func runsAll(ctx context.Context, m, w *Host, service string, n int) error {
	ts, err := consistentTasks(ctx, m, service)
	if err != nil {
		return err
	}
	if live := liveTasks(ts); len(live) != n {
		return fmt.Errorf("%d of %d tasks running after 15 s:%s", len(live), n, describeTasks(ts))
	}
	cs, err := w.Containers(ctx)
	if err != nil {
		return err
	}
	if k := countRunning(cs, service); k != n {
		return fmt.Errorf("%d of %d containers running", k, n)
	}
	return nil
}

// TestWorkerRequestsAreNotHeldBack: what a worker's agent sends (its
// heartbeats, its tasks' statuses) goes through the worker's manager to
// the leader; it must come back promptly, and an idle cluster must not
// write to Raft.
func TestWorkerRequestsAreNotHeldBack(t *testing.T) {
	c := startCluster(t, 3, 1)
	ctx := ctxFor(t, time.Minute)
	m1, w1 := c.Host("m1"), c.Host("w1")
	// Idle: nothing changes, the agent heartbeats every 2 s.
	time.Sleep(2 * time.Second)
	before, err := m1.Client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * time.Second)
	after, err := m1.Client.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := after.Index - before.Index; n > 0 {
		t.Errorf("an idle cluster (one worker, nothing changing) committed %d Raft entries in 8 s (index %d → %d): "+
			"each is a write on a majority of the managers' disks", n, before.Index, after.Index)
	}
	// A change the worker does not see (a token), then a heartbeat through
	// the worker's socket (an empty description: it changes nothing).
	if _, err := m1.Client.JoinToken(ctx, api.RoleManager, true, 0); err != nil {
		t.Fatal(err)
	}
	var took []time.Duration
	for range 2 {
		start := time.Now()
		if _, err := w1.Client.Heartbeat(ctx, w1.NodeID(), api.Heartbeat{}); err != nil {
			t.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	if fastest := slices.Min(took); fastest > time.Second {
		t.Errorf("a heartbeat through w1's socket takes %v (%v); the agent's heartbeats and status reports wait as long", fastest, took)
	}
}

// TestWorkerKeepsReportingWhenItsManagerIsCut cuts off the manager a
// worker streams its replica from. Two managers and a leader remain, so
// the worker's heartbeats should reach them and its node stay ready.
func TestWorkerKeepsReportingWhenItsManagerIsCut(t *testing.T) {
	if testing.Short() {
		t.Skip("watches a worker for 25 s")
	}
	c := startCluster(t, 3, 1, "--node-timeout", "8s", "--reschedule-grace", "1m")
	ctx := ctxFor(t, 2*time.Minute)
	w1 := c.Host("w1")
	up := followed(t, c, w1)
	if err := up.Cut(); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	t.Logf("cut off %s, the manager w1 follows", up.Name)
	var watcher *Host
	for _, m := range c.Managers() {
		if m != up {
			watcher = m
		}
	}
	var downFor time.Duration
	var down time.Time
	for time.Since(cutAt) < 25*time.Second {
		n, err := watcher.Client.Node(ctx, w1.NodeID())
		if err == nil {
			switch {
			case n.Status.State == api.NodeDown && down.IsZero():
				down = time.Now()
				t.Logf("w1 marked down %.1f s after the cut: %s", time.Since(cutAt).Seconds(), n.Status.Message)
			case n.Status.State == api.NodeReady && !down.IsZero():
				downFor += time.Since(down)
				t.Logf("w1 ready again %.1f s after the cut", time.Since(cutAt).Seconds())
				down = time.Time{}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if !down.IsZero() {
		downFor += time.Since(down)
	}
	if downFor > 0 {
		t.Errorf("with 2 of 3 managers and a leader reachable, w1 was marked down for %.1f s of the 25 s %s was cut off "+
			"(its heartbeats go through the manager it streams from); %s",
			downFor.Seconds(), up.Name, agentHeartbeatLines(w1))
	}
	if err := up.Heal(); err != nil {
		t.Fatal(err)
	}
}

// followed returns the manager w streams its replica from, as its log
// says.
func followed(t *testing.T, c *Cluster, w *Host) *Host {
	t.Helper()
	// The worker's replica follower logs each stream it opens, with the
	// manager's node port as https://NODEID.
	re := regexp.MustCompile(`msg="watch open(?: again)?" .*host=https://(\w+)`)
	var id string
	eventually(t, 10*time.Second, w.Name+" follows a manager", func() error {
		all := re.FindAllStringSubmatch(w.Manager.Log(), -1)
		if len(all) == 0 {
			return fmt.Errorf("no 'watch open' line in %s's log", w.Name)
		}
		id = all[len(all)-1][1]
		return nil
	})
	for _, m := range c.Managers() {
		if m.NodeID() == id {
			return m
		}
	}
	t.Fatalf("%s follows %s, which is no manager host", w.Name, id)
	return nil
}

// agentHeartbeatLines quotes the agent's heartbeat log lines.
func agentHeartbeatLines(h *Host) string {
	re := regexp.MustCompile(`(?m)^.*msg=("heartbeat accepted again"|heartbeat) .*$`)
	lines := re.FindAllString(h.Agent.Log(), -1)
	return fmt.Sprintf("the agent's heartbeat log: %q", lines)
}

// containersOn maps the running containers of a service on h to their
// init PIDs.
func containersOn(t *testing.T, h *Host, service string) map[string]uint32 {
	t.Helper()
	cs, err := h.Containers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint32{}
	for _, c := range cs {
		if c.Service == service && c.Running {
			out[c.Task] = c.PID
		}
	}
	return out
}

func countRunning(cs []Container, service string) int {
	n := 0
	for _, c := range cs {
		if c.Service == service && c.Running {
			n++
		}
	}
	return n
}
