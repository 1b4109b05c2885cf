package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// rollout follows one service's update on a real cluster: the update
// states it went through, and the fewest healthy tasks seen.
type rollout struct {
	mu          sync.Mutex
	states      []string
	minHealthy  int
	lastService *api.Service
}

// follow samples svc every 100 ms until ctx ends.
func follow(ctx context.Context, m *Host, svc string, healthy func(ts []api.Task) int) *rollout {
	r := &rollout{minHealthy: 1 << 30}
	go func() {
		for ctx.Err() == nil {
			s, err := m.Client.Service(ctx, svc, client.ReadOptions{})
			ts, err2 := m.Client.Tasks(ctx, client.TaskQuery{Service: svc})
			if err == nil && err2 == nil {
				r.mu.Lock()
				if st := s.UpdateStatus; st != nil && (len(r.states) == 0 || r.states[len(r.states)-1] != st.State) {
					r.states = append(r.states, st.State)
				}
				if healthy != nil {
					r.minHealthy = min(r.minHealthy, healthy(ts))
				}
				r.lastService = s
				r.mu.Unlock()
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	return r
}

func (r *rollout) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.states...)
}

// waitUpdate waits until the service's update reaches state.
func waitUpdate(t *testing.T, ctx context.Context, m *Host, svc, state string, d time.Duration) *api.Service {
	t.Helper()
	var s *api.Service
	eventually(t, d, svc+" update "+state, func() error {
		var err error
		if s, err = m.Client.Service(ctx, svc, client.ReadOptions{}); err != nil {
			return err
		}
		if s.UpdateStatus == nil || s.UpdateStatus.State != state {
			ts, _ := m.Client.Tasks(ctx, client.TaskQuery{Service: svc})
			var b strings.Builder
			for _, tk := range ts {
				fmt.Fprintf(&b, "\n  %s v%d created %s desired=%s state=%s standby=%v %s %s", tk.Name(), tk.SpecVersion, tk.CreatedAt.Format("15:04:05.000"), tk.DesiredState, tk.Status.State, tk.Standby, tk.Status.Message, tk.Status.Err)
			}
			return fmt.Errorf("update status %+v (service at v%d, same as %v); tasks:%s", s.UpdateStatus, s.SpecVersion, s.SameAsVersions, b.String())
		}
		return nil
	})
	return s
}

// runningOnSpec checks that n tasks run, all made from the service's
// current spec (IsCurrent) with image args, and no other task is live.
func runningOnSpec(ctx context.Context, m *Host, svc string, n int, args []string) error {
	s, err := m.Client.Service(ctx, svc, client.ReadOptions{})
	if err != nil {
		return err
	}
	ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: svc})
	if err != nil {
		return err
	}
	var run int
	for i := range ts {
		tk := &ts[i]
		if !tk.Live() {
			continue
		}
		if tk.Status.State != api.TaskRunning || !s.IsCurrent(tk) || strings.Join(tk.Spec.Args, " ") != strings.Join(args, " ") {
			return fmt.Errorf("live task %s: %s, spec version %d (service %d, same as %v), args %q", tk.Name(), tk.Status.State, tk.SpecVersion, s.SpecVersion, s.SameAsVersions, tk.Spec.Args)
		}
		run++
	}
	if run != n {
		return fmt.Errorf("%d tasks run, want %d", run, n)
	}
	return nil
}

// TestRolloutAutomaticRollback: an update to a release whose process exits
// rolls back on its own (failureAction rollback), to the tasks of the old
// spec, and says why; the tasks the update never reached are not
// restarted.
func TestRolloutAutomaticRollback(t *testing.T) {
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 3*time.Minute)
	m := c.Host("m1")
	spec := onWorkers("roll", 4)
	spec.UpdateConfig = api.UpdateConfig{FailureAction: api.FailureRollback, Monitor: api.Duration(time.Second)}
	spec.RestartPolicy = api.RestartPolicy{Condition: api.RestartNone}
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "4 tasks running", func() error { return runningOnSpec(ctx, m, "roll", 4, sleeper) })
	before, _ := m.Client.Tasks(ctx, client.TaskQuery{Service: "roll"})
	kept := map[string]bool{}
	for _, tk := range before {
		if tk.Live() {
			kept[tk.ID] = true
		}
	}
	f := follow(ctx, m, "roll", nil)
	// The operator's command follows the update and fails with the reason.
	code, out, errOut := warrenctl(ctx, m, "service", "update", "--args", "sh -c 'sleep 0.3; exit 3'", "roll")
	if code == 0 || !strings.Contains(errOut, "rolled back") {
		t.Errorf("warrenctl service update of a release that exits: exit %d, stderr %q (stdout %q): want non-zero, saying it rolled back", code, errOut, out)
	}
	s := waitUpdate(t, ctx, m, "roll", api.UpdateRolledBack, 2*time.Minute)
	eventually(t, time.Minute, "4 tasks of the old spec running", func() error { return runningOnSpec(ctx, m, "roll", 4, sleeper) })
	if s.PreviousSpec != nil || s.Spec.Args[2] != sleeper[2] {
		t.Errorf("after the rollback the spec is %q, previous %v", s.Spec.Args, s.PreviousSpec)
	}
	if seen := f.seen(); !strings.Contains(strings.Join(seen, " "), "updating rolling-back") {
		t.Errorf("update states %v, want updating → rolling-back (→ rolled-back)", seen)
	}
	after, _ := m.Client.Tasks(ctx, client.TaskQuery{Service: "roll"})
	var untouched int
	var failed *api.Task
	for i := range after {
		tk := &after[i]
		if tk.Live() && kept[tk.ID] {
			untouched++
		}
		if tk.Status.State == api.TaskFailed && failed == nil {
			failed = tk
		}
	}
	if untouched != 3 {
		t.Errorf("%d of the 3 tasks the update never reached still run, want all 3:%s", untouched, describeTasks(after))
	}
	if failed == nil || failed.Status.ExitCode == nil || *failed.Status.ExitCode != 3 {
		t.Errorf("no failed task of the new spec with exit code 3:%s", describeTasks(after))
	}
	f.mu.Lock()
	last := f.lastService
	f.mu.Unlock()
	if st := last.UpdateStatus; st == nil || !strings.Contains(st.Message, "rolling back: 1 of 4 tasks of the new spec failed") && st.State != api.UpdateRolledBack {
		t.Errorf("the rollback's status %+v does not say why", st)
	}
	// The events say what happened, in order.
	es, err := m.Client.Events(ctx, client.EventQuery{Service: "roll"})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	var got []string
	var exit *int
	for {
		ev, _, err := es.Next()
		if err != nil {
			break
		}
		got = append(got, ev.Type)
		if ev.Type == api.EventTaskFailed && exit == nil {
			exit = ev.ExitCode
		}
		if ev.Type == api.EventRollbackStart && !strings.Contains(ev.Message, "automatically") {
			t.Errorf("rollback event %q: want it to say it was automatic", ev.Message)
		}
	}
	want := []string{api.EventUpdateStarted, api.EventTaskFailed, api.EventRollbackStart, api.EventRolledBack}
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("events %v: want %v in that order", got, want)
	}
	if exit == nil || *exit != 3 {
		t.Errorf("task.failed event exit code %v, want 3", exit)
	}
}

// TestRolloutHealthWindow: the new release's check starts failing 3 s
// after the task starts; the monitor is 1 s. Swarm would call the update
// complete after the monitor; here the monitor is never shorter than the
// check's window and detection time, so the failure is caught and the
// update rolls back.
func TestRolloutHealthWindow(t *testing.T) {
	c := startCluster(t, 1, 1)
	ctx := ctxFor(t, 3*time.Minute)
	m := c.Host("m1")
	spec := onWorkers("win", 1)
	spec.HealthCheck = &api.HealthCheck{Type: api.HealthExec, Command: []string{"sh", "-c", "! test -f /tmp/bad"},
		Interval: api.Duration(time.Second), Timeout: api.Duration(time.Second), Retries: 2}
	spec.UpdateConfig = api.UpdateConfig{FailureAction: api.FailureRollback, Monitor: api.Duration(time.Second)}
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the task running", func() error { return runningOnSpec(ctx, m, "win", 1, sleeper) })
	f := follow(ctx, m, "win", nil)
	bad := spec
	bad.Args = []string{"sh", "-c", "trap 'exit 0' TERM; (sleep 3; touch /tmp/bad) & sleep 100000 & wait"}
	if _, err := m.Client.UpdateService(ctx, "win", bad, 0); err != nil {
		t.Fatal(err)
	}
	waitUpdate(t, ctx, m, "win", api.UpdateRolledBack, 2*time.Minute)
	if seen := f.seen(); strings.Contains(strings.Join(seen, " "), api.UpdateCompleted) {
		t.Errorf("update states %v: the update was declared complete before the check failed", seen)
	}
	eventually(t, time.Minute, "the old spec running", func() error { return runningOnSpec(ctx, m, "win", 1, sleeper) })
}

// TestRolloutStartFirstRollbackKeepsHealthy (moby #43081): a start-first
// update to a release that never turns healthy, then its automatic
// start-first rollback: the healthy tasks sampled throughout never drop
// below the desired count minus the parallelism.
func TestRolloutStartFirstRollbackKeepsHealthy(t *testing.T) {
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 3*time.Minute)
	m := c.Host("m1")
	spec := onWorkers("sf", 4)
	spec.HealthCheck = &api.HealthCheck{Type: api.HealthExec, Command: []string{"sh", "-c", "! test -f /tmp/never"},
		Interval: api.Duration(500 * time.Millisecond), Timeout: api.Duration(time.Second), Retries: 2}
	one := uint64(1)
	cfg := api.UpdateConfig{Parallelism: &one, Order: api.OrderStartFirst, Monitor: api.Duration(time.Second), FailureAction: api.FailureRollback}
	spec.UpdateConfig = cfg
	rb := cfg
	rb.FailureAction = api.FailurePause
	spec.RollbackConfig = &rb
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	healthy := func(ts []api.Task) int {
		n := 0
		for _, tk := range ts {
			if tk.Live() && tk.Status.State == api.TaskRunning && tk.Status.Health == api.HealthHealthy {
				n++
			}
		}
		return n
	}
	eventually(t, time.Minute, "4 healthy tasks", func() error {
		ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: "sf"})
		if err != nil {
			return err
		}
		if n := healthy(ts); n != 4 {
			return fmt.Errorf("%d healthy", n)
		}
		return nil
	})
	f := follow(ctx, m, "sf", healthy)
	bad := spec
	bad.HealthCheck = &api.HealthCheck{Type: api.HealthExec, Command: []string{"sh", "-c", "test -f /tmp/never"},
		Interval: api.Duration(500 * time.Millisecond), Timeout: api.Duration(time.Second), Retries: 2}
	if _, err := m.Client.UpdateService(ctx, "sf", bad, 0); err != nil {
		t.Fatal(err)
	}
	waitUpdate(t, ctx, m, "sf", api.UpdateRolledBack, 2*time.Minute)
	time.Sleep(time.Second) // a last sample after the end
	f.mu.Lock()
	low := f.minHealthy
	f.mu.Unlock()
	if low < 4-1 {
		t.Errorf("the healthy tasks dropped to %d during the update and its rollback, want at least 3 (4 desired - parallelism 1)", low)
	}
	t.Logf("fewest healthy tasks seen: %d of 4; states %v", low, f.seen())
}

// TestRolloutProgressDeadline (Nomad #10465): an update whose tasks can
// never be placed makes no progress; at its deadline it fails and pauses
// with the reason, instead of stalling silently.
func TestRolloutProgressDeadline(t *testing.T) {
	c := startCluster(t, 1, 1)
	ctx := ctxFor(t, 2*time.Minute)
	m := c.Host("m1")
	spec := onWorkers("stall", 1)
	spec.UpdateConfig = api.UpdateConfig{Monitor: api.Duration(time.Second), ProgressDeadline: api.Duration(4 * time.Second)}
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "the task running", func() error { return runningOnSpec(ctx, m, "stall", 1, sleeper) })
	nowhere := spec
	nowhere.Placement.Constraints = []string{"node.labels.site==nowhere"}
	start := time.Now()
	if _, err := m.Client.UpdateService(ctx, "stall", nowhere, 0); err != nil {
		t.Fatal(err)
	}
	s := waitUpdate(t, ctx, m, "stall", api.UpdatePaused, time.Minute)
	took := time.Since(start)
	if !strings.Contains(s.UpdateStatus.Message, "no task was updated for 4s") {
		t.Errorf("paused with %q, want the progress deadline named", s.UpdateStatus.Message)
	}
	if took < 4*time.Second {
		t.Errorf("paused after %s, before its 4s deadline", took)
	}
}

// liveIDs lists the live tasks of svc.
func liveIDs(ctx context.Context, m *Host, svc string) map[string]bool {
	ts, _ := m.Client.Tasks(ctx, client.TaskQuery{Service: svc})
	out := map[string]bool{}
	for _, tk := range ts {
		if tk.Live() {
			out[tk.ID] = true
		}
	}
	return out
}

// TestRolloutCanary: a canary runs beside the old set until promoted by
// hand; a rollback of a canary stops only the canary; auto-promote goes
// on by itself; a canary that fails rolls back on its own, and the
// rollback does not start a canary again.
func TestRolloutCanary(t *testing.T) {
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 4*time.Minute)
	m := c.Host("m1")
	spec := onWorkers("can", 3)
	spec.UpdateConfig = api.UpdateConfig{Canary: "1", Monitor: api.Duration(time.Second)}
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "3 tasks running", func() error { return runningOnSpec(ctx, m, "can", 3, sleeper) })
	update := func(env string, mod func(*api.ServiceSpec)) {
		t.Helper()
		cur, err := m.Client.Service(ctx, "can", client.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s := cur.Spec
		s.Env = []string{"RELEASE=" + env}
		if mod != nil {
			mod(&s)
		}
		if _, err := m.Client.UpdateService(ctx, "can", s, 0); err != nil {
			t.Fatal(err)
		}
	}
	waitCanaryPassed := func() {
		t.Helper()
		eventually(t, time.Minute, "the canary passed, waiting for a promotion", func() error {
			s, err := m.Client.Service(ctx, "can", client.ReadOptions{})
			if err != nil {
				return err
			}
			if st := s.UpdateStatus; st == nil || st.Canaries != 1 || st.Updated < 1 || !strings.Contains(st.Message, "warrenctl service promote can") {
				return fmt.Errorf("status %+v", s.UpdateStatus)
			}
			return nil
		})
	}

	// By hand: 3 old + 1 canary run; promote; the update completes.
	before := liveIDs(ctx, m, "can")
	update("2", nil)
	waitCanaryPassed()
	live := liveIDs(ctx, m, "can")
	for id := range before {
		if !live[id] {
			t.Errorf("old task %s stopped while the canary waits for its promotion", id)
		}
	}
	if len(live) != 4 {
		t.Errorf("%d live tasks while the canary waits, want 3 old + 1 canary", len(live))
	}
	if _, err := m.Client.PromoteService(ctx, "can"); err != nil {
		t.Fatal(err)
	}
	waitUpdate(t, ctx, m, "can", api.UpdateCompleted, time.Minute)
	eventually(t, time.Minute, "3 tasks of release 2", func() error { return runningOnSpec(ctx, m, "can", 3, sleeper) })
	if _, err := m.Client.PromoteService(ctx, "can"); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("promote with no canary waiting: %v, want a conflict", err)
	}
	if evs := serviceEvents(t, ctx, m, "can", api.EventCanaryPromoted); len(evs) != 1 {
		t.Errorf("canary.promoted events %v, want one", evs)
	}

	// Abort: roll back while the canary waits: only the canary stops.
	before = liveIDs(ctx, m, "can")
	update("3", nil)
	waitCanaryPassed()
	if _, err := m.Client.RollbackService(ctx, "can"); err != nil {
		t.Fatal(err)
	}
	waitUpdate(t, ctx, m, "can", api.UpdateRolledBack, time.Minute)
	eventually(t, time.Minute, "the 3 tasks of release 2, untouched", func() error {
		live := liveIDs(ctx, m, "can")
		if len(live) != 3 {
			return fmt.Errorf("%d live", len(live))
		}
		for id := range before {
			if !live[id] {
				return fmt.Errorf("task %s of release 2 was replaced", id)
			}
		}
		return nil
	})

	// A failing canary rolls back on its own; the old set never stopped.
	before = liveIDs(ctx, m, "can")
	update("4", func(s *api.ServiceSpec) { s.Args = []string{"sh", "-c", "sleep 0.3; exit 3"} })
	s := waitUpdate(t, ctx, m, "can", api.UpdateRolledBack, time.Minute)
	if s.UpdateStatus.Canaries != 0 {
		t.Errorf("the rollback has canaries: %+v (a revert never re-enters canary)", s.UpdateStatus)
	}
	eventually(t, time.Minute, "the old set untouched", func() error {
		live := liveIDs(ctx, m, "can")
		for id := range before {
			if !live[id] {
				return fmt.Errorf("old task %s stopped", id)
			}
		}
		if len(live) != 3 {
			return fmt.Errorf("%d live", len(live))
		}
		return nil
	})

	// Auto-promote: no operator needed.
	update("5", func(s *api.ServiceSpec) { s.Args = sleeper; s.UpdateConfig.AutoPromote = true })
	waitUpdate(t, ctx, m, "can", api.UpdateCompleted, time.Minute)
	eventually(t, time.Minute, "3 tasks of release 5", func() error { return runningOnSpec(ctx, m, "can", 3, sleeper) })
}

// TestRolloutWaves: a global service over 3 workers, updated in waves
// 1, 2, 3 by the node label ring: each node is updated in its ring's
// order, one wave after the other; a release that fails in the first
// wave rolls back with the other nodes never touched.
func TestRolloutWaves(t *testing.T) {
	c := startCluster(t, 1, 3)
	ctx := ctxFor(t, 4*time.Minute)
	m := c.Host("m1")
	rings := map[string]string{"w1": "2", "w2": "0", "w3": "1"}
	for host, ring := range rings {
		n, err := m.Client.Node(ctx, c.Host(host).NodeID())
		if err != nil {
			t.Fatal(err)
		}
		sp := n.Spec
		sp.Labels = map[string]string{"ring": ring}
		if _, err := m.Client.UpdateNodeSpec(ctx, n.ID, sp, 0); err != nil {
			t.Fatal(err)
		}
	}
	spec := onWorkers("fleet", 0)
	spec.Mode = api.ModeGlobal
	all := uint64(0)
	spec.UpdateConfig = api.UpdateConfig{Waves: []string{"1", "2"}, WaveLabel: "ring", Parallelism: &all, Monitor: api.Duration(time.Second)}
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "3 tasks running", func() error { return runningOnSpec(ctx, m, "fleet", 3, sleeper) })
	hostOf := map[string]string{}
	for host := range rings {
		hostOf[c.Host(host).NodeID()] = host
	}
	// Record when each node got its new task.
	firstSeen := map[string]time.Time{}
	var mu sync.Mutex
	var target uint64 // the update's spec version, once sent
	sample, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for sample.Err() == nil {
			ts, err := m.Client.Tasks(sample, client.TaskQuery{Service: "fleet"})
			if err == nil {
				mu.Lock()
				for _, tk := range ts {
					if target != 0 && tk.SpecVersion >= target && tk.Live() && firstSeen[hostOf[tk.NodeID]].IsZero() {
						firstSeen[hostOf[tk.NodeID]] = time.Now()
					}
				}
				mu.Unlock()
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	cur, _ := m.Client.Service(ctx, "fleet", client.ReadOptions{})
	next := cur.Spec
	next.Env = []string{"RELEASE=2"}
	sent, err := m.Client.UpdateService(ctx, "fleet", next, 0)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	target = sent.SpecVersion
	mu.Unlock()
	s := waitUpdate(t, ctx, m, "fleet", api.UpdateCompleted, 2*time.Minute)
	stop()
	mu.Lock()
	w2, w3, w1 := firstSeen["w2"], firstSeen["w3"], firstSeen["w1"]
	mu.Unlock()
	if w2.IsZero() || w3.IsZero() || w1.IsZero() || !w2.Before(w3) || !w3.Before(w1) {
		t.Errorf("nodes updated at w2 %v, w3 %v, w1 %v; want in ring order w2 (0), w3 (1), w1 (2)", w2, w3, w1)
	}
	if w3.Sub(w2) < time.Second || w1.Sub(w3) < time.Second {
		t.Errorf("a wave started %s and %s after the one before, within its 1s monitor", w3.Sub(w2), w1.Sub(w3))
	}
	if s.UpdateStatus.Wave != 3 {
		t.Errorf("completed in wave %d, want 3", s.UpdateStatus.Wave)
	}

	// A release that fails in wave 1 rolls back; w1 and w3 never change.
	before := liveIDs(ctx, m, "fleet")
	bad := s.Spec
	bad.Args = []string{"sh", "-c", "sleep 0.3; exit 3"}
	if _, err := m.Client.UpdateService(ctx, "fleet", bad, 0); err != nil {
		t.Fatal(err)
	}
	if s := waitUpdate(t, ctx, m, "fleet", api.UpdateRolledBack, 2*time.Minute); s.UpdateStatus.Failed != 0 {
		t.Errorf("the rollback counted failures: %+v", s.UpdateStatus)
	}
	eventually(t, time.Minute, "release 2 on every node", func() error { return runningOnSpec(ctx, m, "fleet", 3, sleeper) })
	live := liveIDs(ctx, m, "fleet")
	kept := 0
	for id := range before {
		if live[id] {
			kept++
		}
	}
	if kept != 2 {
		t.Errorf("%d of 3 tasks survived a failure in the first wave, want 2 (only the first wave's node touched)", kept)
	}
}

// TestRollingUpdateUnderLoad (DESIGN.md §8: 0 failed requests during a
// rolling update under steady load): a 4-replica web service behind an
// ingress port, updated start-first with parallelism 1 while a host on
// the LAN sends 50 requests a second to the port on w1, each on a new
// connection (w1's own tasks and w2's, over the mesh). Every request is
// answered, and both releases answered some.
func TestRollingUpdateUnderLoad(t *testing.T) {
	// Every task healthy, and the port answering steadily: w1 publishes
	// w2's tasks once its watch has them healthy.
	wc := startWeb(t, 4*time.Minute, func(*Cluster) api.ServiceSpec { return WebService("web", 4, 8080, api.OrderStartFirst) }, 4)
	ctx, m, spec := wc.ctx, wc.m, wc.spec
	load := wc.underLoad(t, "the update", 2*time.Second, 2*time.Second, func() {
		spec.Env = []string{"RELEASE=2"}
		if _, err := m.Client.UpdateService(ctx, "web", spec, 0); err != nil {
			t.Fatal(err)
		}
		waitUpdate(t, ctx, m, "web", api.UpdateCompleted, 3*time.Minute)
	})
	var old, updated int
	for body, n := range load.Bodies() {
		switch {
		case strings.HasPrefix(body, "1 "):
			old += n
		case strings.HasPrefix(body, "2 "):
			updated += n
		}
	}
	if old == 0 || updated == 0 {
		t.Errorf("answers %v: want some from release 1 (before the update) and some from release 2 (after)", load.Bodies())
	}
}

// serviceEvents lists the service's events of type typ so far.
func serviceEvents(t *testing.T, ctx context.Context, m *Host, svc, typ string) []api.ClusterEvent {
	t.Helper()
	es, err := m.Client.Events(ctx, client.EventQuery{Service: svc, Types: []string{typ}})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	var out []api.ClusterEvent
	for {
		ev, _, err := es.Next()
		if err != nil {
			return out
		}
		out = append(out, ev)
	}
}
