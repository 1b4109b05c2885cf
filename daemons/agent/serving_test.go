package agent

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/agent/runtime/fake"
	"github.com/warren-edge/warren/daemons/agent/step"
	"github.com/warren-edge/warren/daemons/api"
)

// backendsOf lists the backends of port 8080 in ports.
func backendsOf(ports []Published) []netip.AddrPort {
	for _, p := range ports {
		if p.Port == webPort.Published {
			return p.Backends
		}
	}
	return nil
}

// TestLocalTaskServes: the node's own task is a backend of its ports only
// while it serves, by the rule of every node's tasks (api.Task.Serving),
// applied to what the agent knows itself: its container, its last probe
// (ahead of the store's), Standby.
func TestLocalTaskServes(t *testing.T) {
	cases := []struct {
		name    string
		check   *api.HealthCheck
		probed  string // the agent's last probe result ("": no probe loop yet)
		stored  string // the health the store holds
		standby bool
		want    bool
	}{
		{name: "no health check, running", want: true},
		{name: "a health check, no probe loop yet", check: webCheck},
		{name: "starting", check: webCheck, probed: api.HealthStarting, stored: api.HealthStarting},
		{name: "starting, the store still says healthy (its container before a restart)", check: webCheck, probed: api.HealthStarting, stored: api.HealthHealthy},
		{name: "healthy, the store not told yet", check: webCheck, probed: api.HealthHealthy, stored: api.HealthStarting, want: true},
		{name: "healthy", check: webCheck, probed: api.HealthHealthy, stored: api.HealthHealthy, want: true},
		{name: "unhealthy, the store not told yet", check: webCheck, probed: api.HealthUnhealthy, stored: api.HealthHealthy},
		{name: "standby, no health check", standby: true},
		{name: "standby, healthy", check: webCheck, probed: api.HealthHealthy, stored: api.HealthHealthy, standby: true},
	}
	for _, c := range cases {
		a, _ := testAgent(t)
		runLocal(a, "web1", "web", "10.240.1.2", webPort)
		tk := a.tasks["web1"]
		tk.Spec.HealthCheck, tk.Standby = c.check, c.standby
		tk.Status = api.TaskStatus{State: api.TaskRunning, Addr: "10.240.1.2", Health: c.stored}
		if c.probed != "" {
			a.healthNow["web1"] = c.probed
		}
		a.applyFleet(api.WatchBatch{Reset: true})
		ports, _ := a.desiredPorts()
		got := slices.Contains(backendsOf(ports), ap("10.240.1.2:80"))
		if got != c.want {
			t.Errorf("%s: desiredPorts() has the task as a backend: %v, want %v; ports:%s", c.name, got, c.want, describePorts(ports))
		}
	}
}

// TestStandbyChangeRepublishes: the managers put a running task on
// standby (a blue/green switch), which changes neither its spec nor its
// desired state. The task watch hands it to the agent, which takes it out
// of its ports at the next reconcile, keeps it in its checkpoint, and
// leaves its container alone; back in service, it is a backend again.
func TestStandbyChangeRepublishes(t *testing.T) {
	a, _ := testAgent(t)
	runLocal(a, "web1", "web", "10.240.1.2", webPort)
	tk := a.tasks["web1"]
	tk.Status = api.TaskStatus{State: api.TaskRunning, Addr: "10.240.1.2"}
	a.synced = true
	a.applyFleet(api.WatchBatch{Reset: true})
	for _, standby := range []bool{true, false} {
		next := *a.tasks["web1"]
		next.Standby = standby
		<-drained(a.kick)
		a.cpDirty = false
		if err := a.applyTasks(api.WatchBatch{Events: events(t, &next)}); err != nil {
			t.Fatal(err)
		}
		if len(a.kick) == 0 {
			t.Errorf("standby=%v: the task watch did not kick the reconcile loop (which publishes the ports)", standby)
		}
		if !a.cpDirty {
			t.Errorf("standby=%v: the change is not written to the node's checkpoint", standby)
		}
		ports, _ := a.desiredPorts()
		if got := slices.Contains(backendsOf(ports), ap("10.240.1.2:80")); got == standby {
			t.Errorf("standby=%v: desiredPorts() has the task as a backend: %v, want %v", standby, got, !standby)
		}
		acts, _ := step.Step(a.tasks, step.Observed{Containers: a.containers, Busy: a.busy, Reported: a.reported, Synced: true, Now: time.Now(), Local: a.local})
		if len(acts) != 0 {
			t.Errorf("standby=%v: Step acts on the task: %v, want nothing (its container keeps running)", standby, acts)
		}
	}
}

// drained empties a buffered channel of signals and returns a closed one.
func drained(c chan struct{}) <-chan struct{} {
	for len(c) > 0 {
		<-c
	}
	done := make(chan struct{})
	close(done)
	return done
}

// publishLog is a Network that records, with each publish, what the test
// wants to know at that moment (see).
type publishLog struct {
	*FakeNetwork
	see func() string
	mu  sync.Mutex
	log []string
}

func (p *publishLog) Publish(ctx context.Context, ports []Published) error {
	p.mu.Lock()
	p.log = append(p.log, fmt.Sprintf("%v %s", backendsOf(ports), p.see()))
	p.mu.Unlock()
	return p.FakeNetwork.Publish(ctx, ports)
}

func (p *publishLog) entries() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}

// TestHealthChangesRepublish: a task with a health check is published on
// its first passing probe, before the store is told it is healthy (others
// act on that: a rolling update stops an old task), and unpublished when it
// turns unhealthy, before its container is stopped.
func TestHealthChangesRepublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		a, _ := testAgent(t)
		a.cfg.DataDir, a.cfg.SecretsDir, a.runCtx = t.TempDir(), t.TempDir(), ctx
		r := fake.New()
		defer r.Close()
		r.AddImage("localhost/busybox:latest")
		var passing atomic.Bool
		r.SetExec(func(string, []string) (int, []byte, error) {
			if passing.Load() {
				return 0, []byte("ok"), nil
			}
			return 1, []byte("not yet"), nil
		})
		a.rt, a.rep = r, newReporter(nil, "n1", a.log)
		if err := r.Create(ctx, rt.ContainerSpec{ID: "web1", Image: "localhost/busybox"}); err != nil {
			t.Fatal(err)
		}
		if err := r.Start(ctx, "web1"); err != nil {
			t.Fatal(err)
		}
		net := &publishLog{FakeNetwork: &FakeNetwork{}}
		// At each publish: the health the store is being told, and the
		// container's state.
		net.see = func() string {
			a.rep.mu.Lock()
			told := a.rep.pending["web1"].st.Health
			a.rep.mu.Unlock()
			c, _ := r.Inspect(ctx, "web1")
			return fmt.Sprintf("told=%s container=%s", told, c.State)
		}
		a.net = net
		runLocal(a, "web1", "web", "10.240.1.2", webPort)
		a.containers["web1"], _ = r.Inspect(ctx, "web1")
		a.tasks["web1"].Spec.HealthCheck = &api.HealthCheck{Type: api.HealthExec, Command: []string{"check"},
			Interval: api.Duration(time.Second), Retries: 2}
		a.synced = true
		a.applyFleet(api.WatchBatch{Reset: true})

		a.mu.Lock()
		a.syncHealth(ctx)
		a.mu.Unlock()
		synctest.Wait() // the probe loop has begun
		a.publishPorts(ctx)
		time.Sleep(1500 * time.Millisecond) // one probe, failing: still starting
		synctest.Wait()
		passing.Store(true)
		time.Sleep(time.Second) // the next probe passes
		synctest.Wait()
		passing.Store(false)
		time.Sleep(2 * time.Second) // two more fail: unhealthy, stopped
		synctest.Wait()

		want := []string{
			"[] told=starting container=running",
			"[10.240.1.2:80] told=starting container=running", // published, then reported healthy
			"[] told=healthy container=running",               // unpublished, then reported, then stopped
		}
		if got := net.entries(); !slices.Equal(got, want) {
			t.Errorf("publishes (backends of 8080, what the store was being told, the container):\n  %q\nwant\n  %q", got, want)
		}
		a.rep.mu.Lock()
		last := a.rep.pending["web1"].st
		a.rep.mu.Unlock()
		if last.State != api.TaskFailed || last.Health != api.HealthUnhealthy {
			t.Errorf("the last report is %s health %q, want failed and unhealthy", last.State, last.Health)
		}
	})
}
