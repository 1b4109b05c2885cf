package orchestrator_test

import (
	"slices"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/orchestrator"
)

// TestReconcileCanary: canaries start beside the old set, which keeps
// running; once they passed their monitor they wait for a promotion (or
// are promoted on their own); promoted, the update goes on; a failed
// canary rolls back, which stops only the canaries.
func TestReconcileCanary(t *testing.T) {
	deadline := t0.Add(9 * minute)
	web := func(cfg api.UpdateConfig, promoted bool, canary string) func() orchestrator.Input {
		return func() orchestrator.Input {
			svc := service("web", 3, updating(cfg, ago(minute)))
			svc.UpdateStatus.Canaries, svc.UpdateStatus.Promoted = cfg.CanaryCount(3), promoted
			prev := svc.Spec
			svc.PreviousSpec = &prev
			ts := tasks(task("a-old", svc, 1, "n1", api.TaskRunning, specVersion(5)),
				task("b-old", svc, 2, "n1", api.TaskRunning, specVersion(5)),
				task("c-old", svc, 3, "n1", api.TaskRunning, specVersion(5)))
			nt := task("a-new", svc, 1, "n1", api.TaskRunning, created(ago(30*sec)))
			switch canary {
			case "starting":
				nt.Status = api.TaskStatus{State: api.TaskStarting, Timestamp: ago(sec)}
			case "running":
				nt.Status.Timestamp = ago(2 * sec)
			case "passed":
				nt.Status.Timestamp = ago(10 * sec)
			case "failed":
				ended(api.TaskFailed, ago(sec), 0)(nt)
			}
			if canary != "" {
				ts = append(ts, nt)
			}
			return in(t0, svcs(svc), ts, node("n1"))
		}
	}
	one := api.UpdateConfig{Canary: "1"}
	auto := api.UpdateConfig{Canary: "1", AutoPromote: true}
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "the canary starts beside the old set", in: web(one, false, ""),
			want: []string{"create new01 web.1 state=new"}, wake: deadline},
		{name: "a starting canary: both run, nothing else moves", in: web(one, false, "starting"), wake: deadline},
		{name: "a canary inside its monitor: wait", in: web(one, false, "running"), wake: t0.Add(3 * sec)},
		{name: "a canary that passed: wait for the operator, no deadline", in: web(one, false, "passed"),
			want: []string{"status web updating updated=1"}},
		{name: "a canary that passed is promoted on its own", in: web(auto, false, "passed"),
			want: []string{"status web updating updated=1"}, wake: deadline},
		{name: "promoted: the old task of the canary's slot stops, the update goes on", in: web(one, true, "passed"),
			want: []string{"status web updating updated=1", "update a-old desired=shutdown", "update b-old desired=shutdown"}, wake: deadline},
		{name: "a failed canary rolls back, whatever the failure action", in: web(one, false, "failed"),
			want: []string{"rollback web@10: 1 of 1 tasks of the new spec failed (max failure ratio 0)"}},
	})
	// The message tells the operator what to do.
	plan, _ := orchestrator.Reconcile(web(one, false, "passed")(), opts())
	if st := plan.ServiceStatus["web"]; st.Message == "" || st.Promoted {
		t.Errorf("canary passed: status %+v, want a message naming warrenctl service promote", st)
	}
	plan, _ = orchestrator.Reconcile(web(auto, false, "passed")(), opts())
	if st := plan.ServiceStatus["web"]; !st.Promoted {
		t.Errorf("canary passed with auto-promote: status %+v, want promoted", st)
	}
	// After a rollback (the service back on its old spec) the canary is
	// the one task that stops; no canary phase again.
	rb := web(one, false, "passed")()
	s := rb.Services[0]
	s.SameAsVersions, s.SpecVersion = []uint64{5}, 11
	s.UpdateStatus = &api.UpdateStatus{State: api.UpdateRollingBack, SpecVersion: 11, StartedAt: t0.Format(time.RFC3339)}
	plan, _ = orchestrator.Reconcile(rb, opts())
	got := render(plan)
	if len(plan.Creates) != 0 || len(plan.Updates) != 1 || plan.Updates[0].ID != "a-new" {
		t.Errorf("rollback of a canary planned %v, want only a-new stopped", got)
	}
}

// TestReconcileWaves: a global service over 10 nodes updated in waves
// 1, 30%, 100%: each wave starts only when the one before passed its
// monitor, in the order of the wave label; a failure rolls back.
func TestReconcileWaves(t *testing.T) {
	cfg := api.UpdateConfig{Waves: []string{"1", "30%"}, WaveLabel: "ring", Parallelism: par(0)}
	build := func(updated int, failed bool) orchestrator.Input {
		svc := service("agent", 0, global, updating(cfg, ago(minute)))
		prev := svc.Spec
		svc.PreviousSpec = &prev
		var nodes []*api.Node
		var ts []*api.Task
		for i := range 10 {
			id := string(rune('a' + i))
			// ring: node j is in ring 9-j, so the waves go j, i, h, ...
			nodes = append(nodes, node(id, func(n *api.Node) { n.Spec.Labels = map[string]string{"ring": string(rune('9' - i))} }))
			if 9-i < updated {
				nt := task(id+"-new", svc, 0, id, api.TaskRunning, created(ago(30*sec)))
				if failed && 9-i == updated-1 {
					ended(api.TaskFailed, ago(sec), 0)(nt)
				}
				ts = append(ts, task(id+"-old", svc, 0, id, api.TaskShutdown, specVersion(5), desired(api.TaskShutdown)), nt)
			} else {
				ts = append(ts, task(id+"-old", svc, 0, id, api.TaskRunning, specVersion(5)))
			}
		}
		return in(t0, svcs(svc), ts, nodes...)
	}
	deadline := t0.Add(9 * minute)
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "wave 1: one node, the lowest ring", in: func() orchestrator.Input { return build(0, false) },
			want: []string{"status agent updating", "update j-old desired=shutdown"}, wake: deadline},
		{name: "wave 2: up to 30%", in: func() orchestrator.Input { return build(1, false) },
			want: []string{"status agent updating updated=1", "update h-old desired=shutdown", "update i-old desired=shutdown"}, wake: deadline},
		{name: "wave 3: the rest", in: func() orchestrator.Input { return build(3, false) },
			want: []string{"status agent updating updated=3", "update a-old desired=shutdown", "update b-old desired=shutdown", "update c-old desired=shutdown",
				"update d-old desired=shutdown", "update e-old desired=shutdown", "update f-old desired=shutdown", "update g-old desired=shutdown"}, wake: deadline},
		{name: "a failure in a wave rolls back", in: func() orchestrator.Input { return build(3, true) },
			want: []string{"rollback agent@10: 1 of 10 tasks of the new spec failed (max failure ratio 0)"}, wake: t0.Add(4 * sec)},
	})
	plan, _ := orchestrator.Reconcile(build(1, false), opts())
	if st := plan.ServiceStatus["agent"]; st.Wave != 2 {
		t.Errorf("after the first wave: status %+v, want wave 2", st)
	}
}

// TestReconcileBlueGreen: a blue/green update starts a whole new set on
// standby beside the old one, which keeps serving; once every new task
// has passed its monitor, one plan moves traffic: the new set serves, the
// old one goes on standby until keepOld, then stops. A rollback inside
// keepOld switches back in one plan; a rollback before the switch stops
// the new set, which never served.
func TestReconcileBlueGreen(t *testing.T) {
	cfg := api.UpdateConfig{Order: api.OrderBlueGreen, KeepOld: api.Duration(5 * minute), FailureAction: api.FailureRollback}
	standby := func(until time.Time) func(*api.Task) {
		return func(t *api.Task) { t.Standby, t.KeepUntil = true, until }
	}
	// greens: how many new tasks, and how long they have run.
	build := func(greens int, ran time.Duration, switched bool, mods ...func(*api.Service)) orchestrator.Input {
		svc := service("web", 3, append([]func(*api.Service){updating(cfg, ago(minute))}, mods...)...)
		prev := svc.Spec
		svc.PreviousSpec = &prev
		var ts []*api.Task
		for i := range 3 {
			slot := uint64(i + 1)
			id := string(rune('a' + i))
			old := task(id+"-old", svc, slot, "n1", api.TaskRunning, specVersion(5))
			if switched {
				standby(t0.Add(5 * minute))(old)
			}
			ts = append(ts, old)
			if i < greens {
				nt := task(id+"-new", svc, slot, "n1", api.TaskRunning, created(ago(30*sec)), specVersion(10))
				nt.Status.Timestamp = ago(ran)
				nt.Standby = !switched
				ts = append(ts, nt)
			}
		}
		return in(t0, svcs(svc), ts, node("n1"))
	}
	deadline := t0.Add(9 * minute)
	rollingBack := func(s *api.Service) {
		s.SameAsVersions, s.SpecVersion = []uint64{5}, 11
		s.UpdateStatus = &api.UpdateStatus{State: api.UpdateRollingBack, SpecVersion: 11, StartedAt: t0.Format(time.RFC3339)}
	}
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "the whole new set starts on standby, whatever the parallelism", in: func() orchestrator.Input { return build(0, 0, false) },
			want: []string{"create new01 web.1 state=new standby", "create new02 web.2 state=new standby", "create new03 web.3 state=new standby"}, wake: deadline},
		{name: "two new tasks of three: wait, the old set serves", in: func() orchestrator.Input { return build(2, 10*sec, false) },
			want: []string{"create new01 web.3 state=new standby", "status web updating updated=2"}, wake: deadline},
		{name: "every new task inside its monitor: wait", in: func() orchestrator.Input { return build(3, 2*sec, false) },
			wake: t0.Add(3 * sec)},
		{name: "every new task passed: switch in one plan", in: func() orchestrator.Input { return build(3, 10*sec, false) },
			want: []string{"status web updating updated=3",
				"update a-new serving", "update a-old standby until t0+5m0s", "update b-new serving", "update b-old standby until t0+5m0s",
				"update c-new serving", "update c-old standby until t0+5m0s"}, wake: deadline},
		{name: "switched: complete; the old set waits on standby", in: func() orchestrator.Input { return build(3, 10*sec, true) },
			want: []string{"status web completed updated=3"}, wake: t0.Add(5 * minute)},
		{name: "keepOld over: the old set stops", in: func() orchestrator.Input {
			i := build(3, 10*sec, true)
			i.Now = t0.Add(5 * minute)
			return i
		},
			want: []string{"status web completed updated=3", "update a-old desired=shutdown", "update b-old desired=shutdown", "update c-old desired=shutdown"}},
		{name: "a rollback inside keepOld switches back in one plan", in: func() orchestrator.Input {
			i := build(3, 10*sec, true, rollingBack)
			return i
		},
			want: []string{"status web rolling-back updated=3",
				"update a-new standby until t0+5m0s", "update a-old serving", "update b-new standby until t0+5m0s", "update b-old serving",
				"update c-new standby until t0+5m0s", "update c-old serving"}, wake: t0.Add(10 * minute)},
		{name: "a rollback before the switch stops the new set, which never served", in: func() orchestrator.Input {
			return build(3, 2*sec, false, rollingBack)
		},
			want: []string{"status web rolled-back updated=3", "update a-new desired=shutdown", "update b-new desired=shutdown", "update c-new desired=shutdown"}},
		{name: "paused: the new set stays on standby", in: func() orchestrator.Input {
			return build(3, 10*sec, false, func(s *api.Service) { s.UpdateStatus.State = api.UpdatePaused })
		}},
	})
	// A rollback before the switch stops a new task that had already
	// failed (ended with its desired state still running) with the rest
	// of its set: none of the set stays wanted.
	rb := build(3, 2*sec, false, rollingBack)
	ended(api.TaskFailed, ago(sec), 1)(rb.Tasks[5])
	rbPlan, _ := orchestrator.Reconcile(rb, opts())
	if got := render(rbPlan); !slices.Contains(got, "update c-new desired=shutdown") || !slices.Contains(got, "update a-new desired=shutdown") {
		t.Errorf("a rollback before the switch with c-new failed: plan %v, want every new task's desired state shutdown", got)
	}

	// A failed new task fails the update before any switch.
	i := build(3, 10*sec, false)
	ended(api.TaskFailed, ago(sec), 1)(i.Tasks[5])
	plan, _ := orchestrator.Reconcile(i, opts())
	if len(plan.Rollbacks) != 1 || len(plan.Updates) != 0 {
		t.Errorf("a failed new task: plan %v, want a rollback and no switch", render(plan))
	}
}
