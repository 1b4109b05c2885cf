package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/agent"
	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/agent/runtime/fake"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

// node is a real manager with an agent over the fake runtime.
type node struct {
	t       *testing.T
	m       *managertest.Manager
	rt      *fake.Runtime
	stop    context.CancelFunc
	done    chan error
	ctx     context.Context
	dataDir string
}

func startNode(t *testing.T, o managertest.Options) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	n := &node{t: t, m: managertest.Start(t, o), rt: fake.New(), ctx: ctx, dataDir: t.TempDir()}
	n.rt.AddImage("docker.io/library/busybox:latest")
	n.rt.AddImage("localhost/busybox:latest")
	n.startAgent(n.rt)
	return n
}

func (n *node) startAgent(r runtime.Runtime) {
	n.t.Helper()
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	a, err := agent.New(agent.Config{API: n.m.Client, Runtime: r, DataDir: n.dataDir, Hostname: "node-1",
		HeartbeatEvery: 100 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(n.ctx)
	n.stop = cancel
	n.done = make(chan error, 1)
	go func() { n.done <- a.Run(ctx) }()
	n.t.Cleanup(n.stopAgent)
}

func (n *node) stopAgent() {
	if n.stop != nil {
		n.stop()
		<-n.done
		n.stop = nil
	}
}

// waitTasks polls the service's tasks until cond holds.
func (n *node) waitTasks(service, what string, cond func(ts []api.Task) bool) []api.Task {
	n.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var ts []api.Task
	for time.Now().Before(deadline) {
		var err error
		ts, err = n.m.Client.Tasks(n.ctx, client.TaskQuery{Service: service})
		if err == nil && cond(ts) {
			return ts
		}
		time.Sleep(20 * time.Millisecond)
	}
	n.t.Fatalf("tasks of %s never got %s; last seen:\n%s", service, what, describe(ts))
	return nil
}

func describe(ts []api.Task) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "  %s %s desired=%s state=%s err=%q\n", t.Name(), t.ID, t.DesiredState, t.Status.State, t.Status.Err)
	}
	return b.String()
}

func running(ts []api.Task) []api.Task {
	var out []api.Task
	for _, t := range ts {
		if t.DesiredState == api.TaskRunning && t.Status.State == api.TaskRunning {
			out = append(out, t)
		}
	}
	return out
}

func countRunning(n int) func([]api.Task) bool {
	return func(ts []api.Task) bool { return len(running(ts)) == n }
}

func (n *node) runningContainers() []string {
	cs, _ := n.rt.List(n.ctx)
	var ids []string
	for _, c := range cs {
		if c.State == runtime.StateRunning {
			ids = append(ids, c.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

func svc(name string, replicas uint64) api.ServiceSpec {
	return api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: replicas, Args: []string{"sleep", "1000"},
		RestartPolicy: api.RestartPolicy{Delay: api.Duration(20 * time.Millisecond)},
		Resources:     api.Resources{Limits: api.ResourceAmounts{MemoryBytes: 64 << 20}}}
}

func TestServiceRunsAndScales(t *testing.T) {
	n := startNode(t, managertest.Options{})
	if _, err := n.m.Client.CreateService(n.ctx, svc("web", 3)); err != nil {
		t.Fatal(err)
	}
	ts := n.waitTasks("web", "3 running", countRunning(3))
	var slots []uint64
	for _, tk := range running(ts) {
		slots = append(slots, tk.Slot)
		spec, ok := n.rt.Spec(tk.ID)
		if !ok || spec.MemoryLimit != 64<<20 || spec.Labels[agent.LabelTask] != tk.ID {
			t.Errorf("container of %s: spec %+v; want memory limit 64MiB and the task label", tk.Name(), spec)
		}
	}
	slices.Sort(slots)
	if !slices.Equal(slots, []uint64{1, 2, 3}) {
		t.Errorf("running slots %v, want [1 2 3]", slots)
	}
	if got := n.runningContainers(); len(got) != 3 {
		t.Errorf("runtime runs %d containers, want 3", len(got))
	}

	// Scale down: the highest slots go, and their containers are removed.
	if _, err := n.m.Client.ScaleService(n.ctx, "web", 1); err != nil {
		t.Fatal(err)
	}
	ts = n.waitTasks("web", "1 running", countRunning(1))
	if r := running(ts); r[0].Slot != 1 {
		t.Errorf("after scale to 1 the running slot is %d, want 1", r[0].Slot)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(n.runningContainers()) != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := n.runningContainers(); len(got) != 1 {
		t.Errorf("after scale down the runtime runs %v, want 1 container", got)
	}
	cs, _ := n.rt.List(n.ctx)
	if len(cs) != 1 {
		t.Errorf("after scale down %d containers exist (stopped ones must be removed), want 1", len(cs))
	}
}

func TestFailedTaskIsReplacedUnderRestartPolicy(t *testing.T) {
	n := startNode(t, managertest.Options{})
	if _, err := n.m.Client.CreateService(n.ctx, svc("web", 1)); err != nil {
		t.Fatal(err)
	}
	first := running(n.waitTasks("web", "1 running", countRunning(1)))[0]
	if err := n.rt.Exit(first.ID, 3); err != nil {
		t.Fatal(err)
	}
	ts := n.waitTasks("web", "a replacement running", func(ts []api.Task) bool {
		r := running(ts)
		return len(r) == 1 && r[0].ID != first.ID
	})
	var old api.Task
	for _, tk := range ts {
		if tk.ID == first.ID {
			old = tk
		}
	}
	if old.Status.State != api.TaskFailed || old.Status.ExitCode == nil || *old.Status.ExitCode != 3 || !strings.Contains(old.Status.Err, "code 3") {
		t.Errorf("the exited task: state %s exit %v err %q; want failed with exit code 3", old.Status.State, old.Status.ExitCode, old.Status.Err)
	}
	repl := running(ts)[0]
	if repl.Slot != first.Slot || repl.Attempt != 1 {
		t.Errorf("replacement slot %d attempt %d; want slot %d attempt 1", repl.Slot, repl.Attempt, first.Slot)
	}

	// OOM is reported as such.
	if err := n.rt.OOM(repl.ID); err != nil {
		t.Fatal(err)
	}
	n.waitTasks("web", "the OOM reported", func(ts []api.Task) bool {
		for _, tk := range ts {
			if tk.ID == repl.ID && tk.Status.OOMKilled && strings.Contains(tk.Status.Err, "out of memory") {
				return true
			}
		}
		return false
	})
}

func TestRestartPolicyNoneAndMaxAttempts(t *testing.T) {
	n := startNode(t, managertest.Options{})
	s := svc("once", 1)
	s.RestartPolicy.Condition = api.RestartOnFailure
	s.RestartPolicy.MaxAttempts = 2
	if _, err := n.m.Client.CreateService(n.ctx, s); err != nil {
		t.Fatal(err)
	}
	// Fail it three times: two restarts are allowed, then the slot stays failed.
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		ts := n.waitTasks("once", "a new running task", func(ts []api.Task) bool {
			r := running(ts)
			return len(r) == 1 && !seen[r[0].ID]
		})
		id := running(ts)[0].ID
		seen[id] = true
		n.rt.Exit(id, 1)
	}
	time.Sleep(300 * time.Millisecond)
	ts, _ := n.m.Client.Tasks(n.ctx, client.TaskQuery{Service: "once"})
	if len(running(ts)) != 0 || len(ts) != 3 {
		t.Errorf("after 3 failures with maxAttempts 2: %d running of %d tasks; want 0 of 3:\n%s", len(running(ts)), len(ts), describe(ts))
	}

	// Exit 0 under on-failure: not restarted.
	s2 := svc("job", 1)
	s2.RestartPolicy.Condition = api.RestartOnFailure
	n.m.Client.CreateService(n.ctx, s2)
	id := running(n.waitTasks("job", "running", countRunning(1)))[0].ID
	n.rt.Exit(id, 0)
	n.waitTasks("job", "complete", func(ts []api.Task) bool {
		return len(ts) == 1 && ts[0].Status.State == api.TaskComplete
	})
	time.Sleep(200 * time.Millisecond)
	if ts, _ := n.m.Client.Tasks(n.ctx, client.TaskQuery{Service: "job"}); len(ts) != 1 {
		t.Errorf("a task that completed under on-failure was replaced:\n%s", describe(ts))
	}
}

func TestAgentRestartAdoptsContainers(t *testing.T) {
	n := startNode(t, managertest.Options{})
	if _, err := n.m.Client.CreateService(n.ctx, svc("web", 3)); err != nil {
		t.Fatal(err)
	}
	n.waitTasks("web", "3 running", countRunning(3))
	before := n.runningContainers()
	n.stopAgent()
	n.rt.ResetCalls()
	n.startAgent(n.rt.Reopen())
	time.Sleep(500 * time.Millisecond)
	ts := n.waitTasks("web", "3 running", countRunning(3))
	if got := n.runningContainers(); !slices.Equal(got, before) {
		t.Errorf("after agent restart containers %v, want the same %v", got, before)
	}
	for _, m := range []string{"Create", "Start", "Stop", "Delete"} {
		if calls := n.rt.CallsTo(m); len(calls) != 0 {
			t.Errorf("agent restart called %s%v; adopting must not touch running containers", m, calls)
		}
	}
	if len(ts) != 3 {
		t.Errorf("after agent restart %d tasks, want 3 (no duplicates):\n%s", len(ts), describe(ts))
	}
	// An adopted container's exit is still seen.
	n.rt.Exit(before[0], 1)
	n.waitTasks("web", "the adopted container's exit reported", func(ts []api.Task) bool {
		for _, tk := range ts {
			if tk.ID == before[0] && tk.Status.State == api.TaskFailed {
				return true
			}
		}
		return false
	})
}

func TestServiceRemoveLeavesNothing(t *testing.T) {
	n := startNode(t, managertest.Options{})
	n.m.Client.CreateService(n.ctx, svc("web", 2))
	n.waitTasks("web", "2 running", countRunning(2))
	if err := n.m.Client.RemoveService(n.ctx, "web", 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		cs, _ := n.rt.List(n.ctx)
		ts, _ := n.m.Client.Tasks(n.ctx, client.TaskQuery{})
		if len(cs) == 0 && len(ts) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	cs, _ := n.rt.List(n.ctx)
	ts, _ := n.m.Client.Tasks(n.ctx, client.TaskQuery{})
	t.Errorf("after service rm: %d containers and %d tasks remain, want none:\n%s", len(cs), len(ts), describe(ts))
}

func TestBadImageAndCommandGetAClearStatus(t *testing.T) {
	n := startNode(t, managertest.Options{})
	s := svc("ghost", 1)
	s.Image = "localhost/nothere:1"
	s.RestartPolicy.Condition = api.RestartNone
	n.m.Client.CreateService(n.ctx, s)
	n.waitTasks("ghost", "rejected for the missing image", func(ts []api.Task) bool {
		return len(ts) == 1 && ts[0].Status.State == api.TaskRejected && strings.Contains(ts[0].Status.Err, "warrenctl image load")
	})
	n.rt.SetCommandMissing("nosuchcmd", true)
	s2 := svc("badcmd", 1)
	s2.Args = []string{"nosuchcmd"}
	s2.RestartPolicy.Condition = api.RestartNone
	n.m.Client.CreateService(n.ctx, s2)
	n.waitTasks("badcmd", "rejected for the missing command", func(ts []api.Task) bool {
		return len(ts) == 1 && ts[0].Status.State == api.TaskRejected && strings.Contains(ts[0].Status.Err, "executable")
	})
	// Neither crashed the agent: a good service still runs.
	n.m.Client.CreateService(n.ctx, svc("good", 1))
	n.waitTasks("good", "running", countRunning(1))
}

func TestDrainMovesTasksOff(t *testing.T) {
	n := startNode(t, managertest.Options{})
	n.m.Client.CreateService(n.ctx, svc("web", 2))
	n.waitTasks("web", "2 running", countRunning(2))
	node, err := n.m.Client.Node(n.ctx, n.m.NodeID())
	if err != nil {
		t.Fatal(err)
	}
	sp := node.Spec
	sp.Availability = api.AvailabilityDrain
	if _, err := n.m.Client.UpdateNodeSpec(n.ctx, node.ID, sp, node.Version); err != nil {
		t.Fatal(err)
	}
	ts := n.waitTasks("web", "none running, 2 pending", func(ts []api.Task) bool {
		pending := 0
		for _, tk := range ts {
			if tk.DesiredState == api.TaskRunning && tk.Status.State == api.TaskPending {
				pending++
			}
		}
		return len(running(ts)) == 0 && pending == 2
	})
	for _, tk := range ts {
		if tk.Status.State == api.TaskPending && !strings.Contains(tk.Status.Err, "drain") {
			t.Errorf("pending task reason %q, want it to mention the drained node", tk.Status.Err)
		}
	}
	if got := n.runningContainers(); len(got) != 0 {
		t.Errorf("drained node still runs %v", got)
	}
	sp.Availability = api.AvailabilityActive
	node, _ = n.m.Client.Node(n.ctx, node.ID)
	n.m.Client.UpdateNodeSpec(n.ctx, node.ID, sp, node.Version)
	n.waitTasks("web", "2 running again", countRunning(2))
}

func TestNodeDownThenReadoptedOnReconnect(t *testing.T) {
	n := startNode(t, managertest.Options{NodeTimeout: time.Second, RescheduleGrace: 300 * time.Millisecond})
	n.m.Client.CreateService(n.ctx, svc("web", 1))
	first := running(n.waitTasks("web", "1 running", countRunning(1)))[0]
	n.stopAgent() // the node goes silent; its container keeps running
	n.waitTasks("web", "the task orphaned and replaced", func(ts []api.Task) bool {
		for _, tk := range ts {
			if tk.ID == first.ID && tk.Status.State == api.TaskOrphaned {
				return len(ts) == 2
			}
		}
		return false
	})
	nd, _ := n.m.Client.Node(n.ctx, n.m.NodeID())
	if nd.Status.State != api.NodeDown {
		t.Errorf("silent node state %s, want down", nd.Status.State)
	}
	// The node comes back: it claims its task back (offline.onReconnect
	// keep, the default), which never stopped; the replacement goes.
	n.startAgent(n.rt.Reopen())
	ts := n.waitTasks("web", "the original running again, alone", func(ts []api.Task) bool {
		r := running(ts)
		return len(r) == 1 && r[0].ID == first.ID
	})
	if r := running(ts)[0]; r.Status.Offline == nil || !r.Status.Offline.Readopted || r.Status.StartedAt != first.Status.StartedAt {
		t.Errorf("the original after reconnect: %+v; want it readopted, never restarted", r.Status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(n.runningContainers()) != 1 {
		time.Sleep(20 * time.Millisecond)
	}
	if got := n.runningContainers(); len(got) != 1 || got[0] != first.ID {
		t.Errorf("after the node came back the runtime runs %v; want only the original %s", got, first.ID)
	}
}

func TestUnhealthyTaskIsReplaced(t *testing.T) {
	n := startNode(t, managertest.Options{})
	healthy := map[string]bool{}
	var mu sync.Mutex
	n.rt.SetExec(func(id string, args []string) (int, []byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if healthy[id] {
			return 0, []byte("ok"), nil
		}
		return 1, []byte("not ready"), nil
	})
	s := svc("web", 1)
	s.HealthCheck = &api.HealthCheck{Type: api.HealthExec, Command: []string{"check"}, Interval: api.Duration(100 * time.Millisecond), Retries: 2}
	if _, err := n.m.Client.CreateService(n.ctx, s); err != nil {
		t.Fatal(err)
	}
	first := running(n.waitTasks("web", "1 running", countRunning(1)))[0]
	if first.Status.Health != api.HealthStarting && first.Status.Health != api.HealthUnhealthy {
		t.Errorf("a new task with a check reports health %q, want starting", first.Status.Health)
	}
	// It never passes: after 2 failures it is stopped and replaced.
	ts := n.waitTasks("web", "the unhealthy task failed and replaced", func(ts []api.Task) bool {
		for _, tk := range ts {
			if tk.ID == first.ID && tk.Status.State == api.TaskFailed && strings.Contains(tk.Status.Err, "unhealthy") {
				return len(ts) >= 2
			}
		}
		return false
	})
	_ = ts
	// Make the next one pass: it turns healthy and stays.
	mu.Lock()
	for _, tk := range ts {
		healthy[tk.ID] = true
	}
	mu.Unlock()
	n.waitTasks("web", "a healthy task", func(ts []api.Task) bool {
		for _, tk := range running(ts) {
			mu.Lock()
			healthy[tk.ID] = true
			mu.Unlock()
			if tk.Status.Health == api.HealthHealthy && tk.Status.HealthOutput == "ok" {
				return true
			}
		}
		return false
	})
}

// TestTaskConfinement checks what the agent asks the runtime for: the
// spec's confinement with its defaults applied (the defaults live in the
// agent, not in the stored spec).
func TestTaskConfinement(t *testing.T) {
	n := startNode(t, managertest.Options{})
	open := svc("open", 1)
	open.CapAdd, open.CapDrop = []string{"net_bind_service"}, []string{"ALL"}
	open.Seccomp, open.AllowNewPrivileges, open.PidsLimit, open.User = api.SeccompUnconfined, true, api.PidsUnlimited, "65534:65534"
	limited := svc("limited", 1)
	limited.PidsLimit = 64
	for _, s := range []api.ServiceSpec{svc("plain", 1), open, limited} {
		if _, err := n.m.Client.CreateService(n.ctx, s); err != nil {
			t.Fatalf("create %s: %v", s.Name, err)
		}
	}
	for _, c := range []struct {
		service string
		want    runtime.ContainerSpec
	}{
		{"plain", runtime.ContainerSpec{PidsLimit: api.DefaultPidsLimit, Capabilities: api.DefaultCapabilities}},
		{"open", runtime.ContainerSpec{PidsLimit: 0, Capabilities: []string{"CAP_NET_BIND_SERVICE"},
			SeccompUnconfined: true, AllowNewPrivileges: true, User: "65534:65534"}},
		{"limited", runtime.ContainerSpec{PidsLimit: 64, Capabilities: api.DefaultCapabilities}},
	} {
		tk := running(n.waitTasks(c.service, "1 running", countRunning(1)))[0]
		got, ok := n.rt.Spec(tk.ID)
		if !ok || got.PidsLimit != c.want.PidsLimit || !slices.Equal(got.Capabilities, c.want.Capabilities) || got.Capabilities == nil ||
			got.SeccompUnconfined != c.want.SeccompUnconfined || got.AllowNewPrivileges != c.want.AllowNewPrivileges || got.User != c.want.User {
			t.Errorf("container of %s: pids %d caps %q seccomp unconfined %v new privileges %v user %q; want pids %d caps %q seccomp unconfined %v new privileges %v user %q",
				c.service, got.PidsLimit, got.Capabilities, got.SeccompUnconfined, got.AllowNewPrivileges, got.User,
				c.want.PidsLimit, c.want.Capabilities, c.want.SeccompUnconfined, c.want.AllowNewPrivileges, c.want.User)
		}
	}
}
