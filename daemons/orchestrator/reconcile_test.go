package orchestrator_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/orchestrator"
)

type planCase struct {
	name string
	in   func() orchestrator.Input
	opts func(o *orchestrator.Options) // nil: the defaults and a counter for IDs
	want []string                      // render(plan), sorted
	wake time.Time                     // zero: no wake-up
}

func runPlanCases(t *testing.T, fn string, call func(orchestrator.Input, orchestrator.Options) (api.TaskPlan, time.Time), cases []planCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in()
			o := opts()
			if c.opts != nil {
				c.opts(&o)
			}
			before, _ := json.Marshal(in)
			plan, wake := call(in, o)
			if after, _ := json.Marshal(in); string(after) != string(before) {
				t.Errorf("%s(%s) changed its input:\nbefore %s\nafter  %s", fn, c.name, before, after)
			}
			got := render(plan)
			want := slices.Clone(c.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s(%s) planned\n\t%s\nwant\n\t%s\ninput: %s", fn, c.name,
					strings.Join(got, "\n\t"), strings.Join(want, "\n\t"), describe(in))
			}
			if !wake.Equal(c.wake) {
				t.Errorf("%s(%s) asks to wake at %s, want %s", fn, c.name, rel(wake), rel(c.wake))
			}
			if orchestrator.IsEmpty(&plan) != (len(c.want) == 0) {
				t.Errorf("%s(%s): IsEmpty = %v for a plan of %d changes", fn, c.name, orchestrator.IsEmpty(&plan), len(got))
			}
			if !plan.At.Equal(in.Now) {
				t.Errorf("%s(%s): plan.At = %s, want the input's now %s", fn, c.name, rel(plan.At), rel(in.Now))
			}
		})
	}
}

func TestReconcileReplicated(t *testing.T) {
	n1, n2 := node("n1"), node("n2")
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "new service of 3", in: func() orchestrator.Input {
			return in(t0, svcs(service("web", 3)), nil, n1, n2)
		}, want: []string{"create new01 web.1 state=new", "create new02 web.2 state=new", "create new03 web.3 state=new"}},
		{name: "new service of 0", in: func() orchestrator.Input {
			return in(t0, svcs(service("web", 0)), nil, n1, n2)
		}},
		{name: "new service, no nodes", in: func() orchestrator.Input {
			return in(t0, svcs(service("web", 1)), nil)
		}, want: []string{"create new01 web.1 state=new"}},
		{name: "steady", in: func() orchestrator.Input {
			web := service("web", 3)
			return in(t0, svcs(web), tasks(
				task("t1", web, 1, "n1", api.TaskRunning),
				task("t2", web, 2, "n2", api.TaskRunning),
				task("t3", web, 3, "n1", api.TaskStarting)), n1, n2)
		}},
		{name: "scale up 2 to 4", in: func() orchestrator.Input {
			web := service("web", 4)
			return in(t0, svcs(web), tasks(
				task("t1", web, 1, "n1", api.TaskRunning),
				task("t2", web, 2, "n2", api.TaskRunning)), n1, n2)
		}, want: []string{"create new01 web.3 state=new", "create new02 web.4 state=new"}},
		{name: "scale down 5 to 3", in: func() orchestrator.Input {
			web := service("web", 3)
			return in(t0, svcs(web), tasks(
				task("t5", web, 5, "n1", api.TaskRunning),
				task("t1", web, 1, "n1", api.TaskRunning),
				task("t4", web, 4, "n2", api.TaskRunning),
				task("t2", web, 2, "n2", api.TaskRunning),
				task("t3", web, 3, "n1", api.TaskRunning)), n1, n2)
		}, want: []string{"update t4 desired=shutdown", "update t5 desired=shutdown"}},
		{name: "scale down to 0", in: func() orchestrator.Input {
			web := service("web", 0)
			return in(t0, svcs(web), tasks(
				task("t1", web, 1, "n1", api.TaskRunning),
				task("t2", web, 2, "n2", api.TaskAssigned)), n1, n2)
		}, want: []string{"update t1 desired=shutdown", "update t2 desired=shutdown"}},
		{name: "scale down: a never-placed task is shut down at once", in: func() orchestrator.Input {
			web := service("web", 2)
			return in(t0, svcs(web), tasks(
				task("t1", web, 1, "n1", api.TaskRunning),
				task("t2", web, 2, "n2", api.TaskRunning),
				task("t3", web, 3, "", api.TaskPending)), n1, n2)
		}, want: []string{"update t3 desired=shutdown state=shutdown"}},
		{name: "scale down: ended tasks above the count are left alone", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(
				task("t1", web, 1, "n1", api.TaskRunning),
				task("t2", web, 2, "n2", api.TaskShutdown, desired(api.TaskShutdown))), n1, n2)
		}},
	})
}

func TestReconcileRestart(t *testing.T) {
	n1 := node("n1")
	// one builds web×1 whose slot 1 holds t1, changed by mods.
	one := func(p api.RestartPolicy, mods ...func(*api.Task)) func() orchestrator.Input {
		return func() orchestrator.Input {
			web := service("web", 1, restart(p))
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning, mods...)), n1)
		}
	}
	var any api.RestartPolicy
	replaced := "update t1 desired=shutdown"
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "failed, delay not over", in: one(any, ended(api.TaskFailed, ago(2*sec), sec)),
			wake: t0.Add(3 * sec)},
		{name: "failed, delay over", in: one(any, ended(api.TaskFailed, ago(5*sec), sec)),
			want: []string{replaced, "create new01 web.1 state=new attempt=1 window=1@t0"}},
		{name: "second quick failure waits twice the delay", in: one(any, attempt(1), ended(api.TaskFailed, ago(5*sec), sec)),
			wake: t0.Add(5 * sec)},
		{name: "second quick failure after twice the delay", in: one(any, attempt(1), window(ago(minute), 1), ended(api.TaskFailed, ago(10*sec), sec)),
			want: []string{replaced, "create new01 web.1 state=new attempt=2 window=2@t0-1m0s"}},
		{name: "fourth quick failure waits 8 times the delay", in: one(any, attempt(3), ended(api.TaskFailed, ago(39*sec), sec)),
			wake: t0.Add(sec)},
		{name: "backoff is capped at 10 times the delay", in: one(any, attempt(9), ended(api.TaskFailed, ago(49*sec), 0)),
			wake: t0.Add(sec)},
		{name: "capped backoff over", in: one(any, attempt(9), ended(api.TaskFailed, ago(50*sec), 0)),
			want: []string{replaced, "create new01 web.1 state=new attempt=10 window=1@t0"}},
		{name: "a long run resets the backoff", in: one(any, attempt(5), ended(api.TaskFailed, ago(5*sec), time.Hour)),
			want: []string{replaced, "create new01 web.1 state=new attempt=1 window=1@t0"}},
		{name: "custom delay", in: one(api.RestartPolicy{Delay: dur(sec)}, ended(api.TaskFailed, ago(sec), sec)),
			want: []string{replaced, "create new01 web.1 state=new attempt=1 window=1@t0"}},
		{name: "custom delay not over", in: one(api.RestartPolicy{Delay: dur(30 * sec)}, ended(api.TaskFailed, ago(10*sec), sec)),
			wake: t0.Add(20 * sec)},
		{name: "rejected is restarted", in: one(any, ended(api.TaskRejected, ago(minute), 0)),
			want: []string{replaced, "create new01 web.1 state=new attempt=1 window=1@t0"}},
		{name: "any: complete is restarted", in: one(any, ended(api.TaskComplete, ago(minute), time.Hour)),
			want: []string{replaced, "create new01 web.1 state=new attempt=1 window=1@t0"}},
		{name: "none: failed stays", in: one(api.RestartPolicy{Condition: api.RestartNone}, ended(api.TaskFailed, ago(minute), sec))},
		{name: "none: complete stays", in: one(api.RestartPolicy{Condition: api.RestartNone}, ended(api.TaskComplete, ago(minute), sec))},
		{name: "on-failure: complete stays", in: one(api.RestartPolicy{Condition: api.RestartOnFailure}, ended(api.TaskComplete, ago(minute), time.Hour))},
		{name: "on-failure: failed is restarted", in: one(api.RestartPolicy{Condition: api.RestartOnFailure}, ended(api.TaskFailed, ago(minute), time.Hour)),
			want: []string{replaced, "create new01 web.1 state=new attempt=1 window=1@t0"}},

		{name: "max attempts used up in the window", in: one(api.RestartPolicy{MaxAttempts: 3, Window: dur(minute)},
			attempt(3), window(ago(30*sec), 3), ended(api.TaskFailed, ago(10*sec), 0)),
			wake: t0.Add(30 * sec)},
		{name: "window over: restarts resume in a new window", in: one(api.RestartPolicy{MaxAttempts: 3, Window: dur(minute)},
			attempt(3), window(ago(minute), 3), ended(api.TaskFailed, ago(40*sec), 0)),
			want: []string{replaced, "create new01 web.1 state=new attempt=4 window=1@t0"}},
		{name: "attempts left in the window", in: one(api.RestartPolicy{MaxAttempts: 3, Window: dur(minute)},
			attempt(2), window(ago(30*sec), 2), ended(api.TaskFailed, ago(20*sec), 0)),
			want: []string{replaced, "create new01 web.1 state=new attempt=3 window=3@t0-30s"}},
		{name: "max attempts without a window: never again", in: one(api.RestartPolicy{MaxAttempts: 2},
			attempt(2), window(ago(time.Hour), 2), ended(api.TaskFailed, ago(time.Hour), 0))},
	})
}

func TestReconcileNodes(t *testing.T) {
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "drained node: task stopped and replaced", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1", drained), node("n2"))
		}, want: []string{"update t1 desired=shutdown", "create new01 web.1 state=new"}},
		{name: "drained node: pending replacement even with no other node", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1", drained))
		}, want: []string{"update t1 desired=shutdown", "create new01 web.1 state=new"}},
		{name: "paused node keeps its task", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1", paused), node("n2"))
		}},
		{name: "node down within the grace", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1", downSince(ago(30*sec))), node("n2"))
		}, wake: t0.Add(30 * sec)},
		{name: "node down past the grace", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1", downSince(ago(minute))), node("n2"))
		}, want: []string{"update t1 state=orphaned", "create new01 web.1 state=new"}},
		{name: "node down past a custom grace", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1", downSince(ago(10*sec))), node("n2"))
		}, opts: func(o *orchestrator.Options) { o.RescheduleGrace = 10 * sec },
			want: []string{"update t1 state=orphaned", "create new01 web.1 state=new"}},
		{name: "reconnect, keep: the node's copy stays, the replacement stops", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning, created(ago(time.Hour)), readoptedTask),
				task("t2", web, 1, "n2", api.TaskRunning, created(ago(minute)))), node("n1"), node("n2"))
		}, want: []string{"update t2 desired=shutdown"}},
		{name: "reconnect, replace: the node's copy stops", in: func() orchestrator.Input {
			web := service("web", 1, onReconnect(api.OnReconnectReplace))
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning, created(ago(time.Hour)), readoptedTask),
				task("t2", web, 1, "n2", api.TaskRunning, created(ago(minute)))), node("n1"), node("n2"))
		}, want: []string{"update t1 desired=shutdown"}},
		{name: "reconnect, replace: nothing stops before the replacement is healthy", in: func() orchestrator.Input {
			web := service("web", 1, onReconnect(api.OnReconnectReplace))
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning, created(ago(time.Hour)), readoptedTask, health(api.HealthHealthy)),
				task("t2", web, 1, "n2", api.TaskRunning, created(ago(minute)), health(api.HealthStarting))), node("n1"), node("n2"))
		}},
		{name: "reconnect, keep: the replacement stops once the node's copy is healthy", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning, created(ago(time.Hour)), readoptedTask, health(api.HealthHealthy)),
				task("t2", web, 1, "n2", api.TaskRunning, created(ago(minute)), health(api.HealthHealthy))), node("n1"), node("n2"))
		}, want: []string{"update t2 desired=shutdown"}},
		{name: "reconnect, keep: the replacement still starting is stopped at once", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning, created(ago(time.Hour)), readoptedTask),
				task("t2", web, 1, "n2", api.TaskStarting, created(ago(minute)))), node("n1"), node("n2"))
		}, want: []string{"update t2 desired=shutdown"}},
		{name: "written-off task with its node still down: left wanted, not replaced twice", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskOrphaned, created(ago(time.Hour)), version(3)),
				task("t2", web, 1, "n2", api.TaskRunning, created(ago(minute)), version(4))), node("n1", downSince(ago(time.Hour))), node("n2"))
		}},
		{name: "node removed", in: func() orchestrator.Input {
			web := service("web", 2)
			return in(t0, svcs(web), tasks(
				task("t1", web, 1, "gone", api.TaskRunning),
				task("t2", web, 2, "n2", api.TaskRunning)), node("n2"))
		}, want: []string{"update t1 desired=shutdown state=orphaned", "create new01 web.1 state=new"}},
		{name: "node down: an ended task follows the restart policy", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning, ended(api.TaskFailed, ago(2*sec), sec))),
				node("n1", downSince(ago(30*sec))), node("n2"))
		}, wake: t0.Add(3 * sec)},
	})
}

func TestReconcileGlobal(t *testing.T) {
	agent := func(mods ...func(*api.Service)) *api.Service {
		return service("agent", 0, append([]func(*api.Service){global}, mods...)...)
	}
	east := constraints("node.labels.zone==east")
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "one task per node", in: func() orchestrator.Input {
			return in(t0, svcs(agent()), nil, node("n3"), node("n1"), node("n2"))
		}, want: []string{"create new01 agent@n1 state=new", "create new02 agent@n2 state=new", "create new03 agent@n3 state=new"}},
		{name: "steady", in: func() orchestrator.Input {
			a := agent()
			return in(t0, svcs(a), tasks(task("t1", a, 0, "n1", api.TaskRunning), task("t2", a, 0, "n2", api.TaskRunning)), node("n1"), node("n2"))
		}},
		{name: "constraint", in: func() orchestrator.Input {
			return in(t0, svcs(agent(east)), nil, node("n1", zone("east")), node("n2", zone("west")), node("n3", zone("east")), node("n4"))
		}, want: []string{"create new01 agent@n1 state=new", "create new02 agent@n3 state=new"}},
		{name: "constraint changed", in: func() orchestrator.Input {
			old := agent()
			a := agent(east)
			return in(t0, svcs(a), tasks(task("t1", old, 0, "n1", api.TaskRunning), task("t2", old, 0, "n2", api.TaskRunning)),
				node("n1", zone("east")), node("n2", zone("west")), node("n3", zone("east")))
		}, want: []string{"update t2 desired=shutdown", "create new01 agent@n3 state=new"}},
		{name: "new node", in: func() orchestrator.Input {
			a := agent()
			return in(t0, svcs(a), tasks(task("t1", a, 0, "n1", api.TaskRunning)), node("n1"), node("n2"))
		}, want: []string{"create new01 agent@n2 state=new"}},
		{name: "drained node: task stopped, not replaced", in: func() orchestrator.Input {
			a := agent()
			return in(t0, svcs(a), tasks(task("t1", a, 0, "n1", api.TaskRunning), task("t2", a, 0, "n2", api.TaskRunning)),
				node("n1"), node("n2", drained), node("n3", drained))
		}, want: []string{"update t2 desired=shutdown"}},
		{name: "paused node: keeps its task, gets no new one", in: func() orchestrator.Input {
			a := agent()
			return in(t0, svcs(a), tasks(task("t2", a, 0, "n2", api.TaskRunning)), node("n2", paused), node("n3", paused))
		}},
		{name: "down node within the grace: task kept, none made", in: func() orchestrator.Input {
			a := agent()
			return in(t0, svcs(a), tasks(task("t1", a, 0, "n1", api.TaskRunning), task("t2", a, 0, "n2", api.TaskRunning)),
				node("n1"), node("n2", downSince(ago(30*sec))), node("n3", downSince(ago(30*sec))))
		}, wake: t0.Add(30 * sec)},
		{name: "down node past the grace: its task waits for it", in: func() orchestrator.Input {
			a := agent()
			return in(t0, svcs(a), tasks(task("t1", a, 0, "n1", api.TaskRunning), task("t2", a, 0, "n2", api.TaskRunning)),
				node("n1"), node("n2", downSince(ago(minute))))
		}},
		{name: "node removed", in: func() orchestrator.Input {
			a := agent()
			return in(t0, svcs(a), tasks(task("t1", a, 0, "n1", api.TaskRunning), task("t2", a, 0, "n2", api.TaskRunning)), node("n1"))
		}, want: []string{"update t2 desired=shutdown state=orphaned"}},
		{name: "node without an agent yet", in: func() orchestrator.Input {
			return in(t0, svcs(agent()), nil, node("n1", unknown))
		}, want: []string{"create new01 agent@n1 state=new"}},
		{name: "failed task restarts on its node", in: func() orchestrator.Input {
			a := agent()
			return in(t0, svcs(a), tasks(task("t1", a, 0, "n1", api.TaskRunning, ended(api.TaskFailed, ago(5*sec), sec))), node("n1"))
		}, want: []string{"update t1 desired=shutdown", "create new01 agent@n1 state=new attempt=1 window=1@t0"}},
		// Found by TestPropertyOrchestrator: a task made while its node was
		// not ready stays pending; stopped by an update, it was left
		// waiting for an agent's report that never came, and its node
		// never got the new task.
		{name: "pending task stopped by an update: shut down at once", in: func() orchestrator.Input {
			a := agent(updating(api.UpdateConfig{}, ago(sec)))
			return in(t0, svcs(a), tasks(task("t1", a, 0, "n1", api.TaskPending, specVersion(5))), node("n1"))
		}, want: []string{"update t1 desired=shutdown state=shutdown"}, wake: t0.Add(10*minute - sec)},
	})
}

func TestReconcileServiceRemoved(t *testing.T) {
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "tasks of a deleted service", in: func() orchestrator.Input {
			gone := service("gone", 3)
			web := service("web", 1)
			return in(t0, svcs(web), tasks(
				task("w1", web, 1, "n1", api.TaskRunning),
				task("t1", gone, 1, "n1", api.TaskRunning),
				task("t2", gone, 2, "n1", api.TaskFailed),
				task("t3", gone, 3, "", api.TaskPending),
				task("t4", gone, 4, "n1", api.TaskRunning, desired(api.TaskRemove)),
				task("t5", gone, 5, "n1", api.TaskShutdown, desired(api.TaskRemove)),
				task("t6", gone, 6, "lost", api.TaskRunning)), node("n1"))
		}, want: []string{
			"update t1 desired=remove",
			"update t2 desired=remove", "delete t2",
			"update t3 desired=remove state=shutdown", "delete t3",
			"delete t5",
			"update t6 desired=remove", "delete t6",
		}},
		{name: "no services at all", in: func() orchestrator.Input {
			gone := service("gone", 1)
			return in(t0, nil, tasks(task("t1", gone, 1, "n1", api.TaskComplete, desired(api.TaskRemove))), node("n1"))
		}, want: []string{"delete t1"}},
	})
}

func TestReconcileHistory(t *testing.T) {
	// slot builds ended tasks t<slot><1..n> (oldest first) and one running.
	slot := func(web *api.Service, slot uint64, n int) []*api.Task {
		var ts []*api.Task
		states := []api.TaskState{api.TaskShutdown, api.TaskFailed, api.TaskComplete, api.TaskRejected, api.TaskOrphaned}
		for i := range n {
			id := "t" + string(rune('0'+slot)) + string(rune('1'+i))
			ts = append(ts, task(id, web, slot, "n1", states[i%len(states)], desired(api.TaskShutdown), version(uint64(10+i))))
		}
		return append(ts, task("run"+string(rune('0'+slot)), web, slot, "n1", api.TaskRunning, version(100)))
	}
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "5 ended, limit 3", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), slot(web, 1, 5), node("n1"))
		}, want: []string{"delete t11", "delete t12"}},
		{name: "5 ended, limit 1", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), slot(web, 1, 5), node("n1"))
		}, opts: func(o *orchestrator.Options) { o.HistoryLimit = 1 },
			want: []string{"delete t11", "delete t12", "delete t13", "delete t14"}},
		{name: "3 ended per slot", in: func() orchestrator.Input {
			web := service("web", 2)
			return in(t0, svcs(web), append(slot(web, 1, 3), slot(web, 2, 3)...), node("n1"))
		}},
		{name: "the task replaced in this pass counts", in: func() orchestrator.Input {
			web := service("web", 1)
			ts := slot(web, 1, 3)
			ts[3] = task("run1", web, 1, "n1", api.TaskRunning, version(100), ended(api.TaskFailed, ago(minute), time.Hour))
			return in(t0, svcs(web), ts, node("n1"))
		}, want: []string{"update run1 desired=shutdown", "create new01 web.1 state=new attempt=1 window=1@t0", "delete t11"}},
	})
}

func TestReconcileDedupe(t *testing.T) {
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "two running: the newer stays", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(
				task("t2", web, 1, "n2", api.TaskRunning, created(ago(time.Hour))),
				task("t1", web, 1, "n1", api.TaskRunning, created(ago(2*time.Hour)))), node("n1"), node("n2"))
		}, want: []string{"update t1 desired=shutdown"}},
		{name: "two running, made at once: the higher ID stays", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(
				task("t2", web, 1, "n2", api.TaskRunning),
				task("t1", web, 1, "n1", api.TaskRunning)), node("n1"), node("n2"))
		}, want: []string{"update t1 desired=shutdown"}},
		{name: "an up-to-date task beats a newer outdated one", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(
				task("t1", web, 1, "n1", api.TaskRunning, specVersion(5), created(ago(minute))),
				task("t2", web, 1, "n2", api.TaskRunning, created(ago(time.Hour)))), node("n1"), node("n2"))
		}, want: []string{"update t1 desired=shutdown"}},
		{name: "two live, neither running: both wait", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(
				task("t1", web, 1, "n1", api.TaskAssigned),
				task("t2", web, 1, "n2", api.TaskStarting)), node("n1"), node("n2"))
		}},
		{name: "one running, one starting: the running one stays", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(
				task("t1", web, 1, "n1", api.TaskRunning),
				task("t2", web, 1, "n2", api.TaskStarting, created(ago(minute)))), node("n1"), node("n2"))
		}, want: []string{"update t2 desired=shutdown"}},
	})
}

func TestReconcileRollingUpdate(t *testing.T) {
	started := ago(minute)
	n1, n2 := node("n1"), node("n2")
	// web builds web×3 rolling out spec version 10 with cfg. Its slots hold
	// the tasks of slots, by slot: "old" (a running version 5 task),
	// "stopped" (version 5, shut down), "dead" (version 5, failed on its
	// own, still wanted running), "new" (version 10, running since
	// newSince), "starting" (version 10) or "failed" (version 10, failed
	// a second ago, made after the update started).
	type slots [3]string
	var newSince time.Time
	web := func(cfg api.UpdateConfig, state string, s slots) func() orchestrator.Input {
		return func() orchestrator.Input {
			svc := service("web", 3, updating(cfg, started))
			svc.UpdateStatus.State = state
			prev := svc.Spec
			svc.PreviousSpec = &prev
			var ts []*api.Task
			for i, what := range s {
				slot := uint64(i + 1)
				id := string(rune('a'+i)) + "-"
				node := []string{"n1", "n2", "n1"}[i]
				switch what {
				case "old":
					ts = append(ts, task(id+"old", svc, slot, node, api.TaskRunning, specVersion(5)))
				case "stopped":
					ts = append(ts, task(id+"old", svc, slot, node, api.TaskShutdown, specVersion(5), desired(api.TaskShutdown), version(6)))
				case "dead":
					ts = append(ts, task(id+"old", svc, slot, node, api.TaskRunning, specVersion(5), ended(api.TaskFailed, ago(sec), 0)))
				case "new", "starting", "failed":
					ts = append(ts, task(id+"old", svc, slot, node, api.TaskShutdown, specVersion(5), desired(api.TaskShutdown), version(6)))
					nt := task(id+"new", svc, slot, node, api.TaskRunning, created(ago(30*sec)), version(8))
					switch what {
					case "new":
						nt.Status.Timestamp = newSince
					case "starting":
						nt.Status = api.TaskStatus{State: api.TaskStarting, Timestamp: ago(sec)}
					case "failed":
						ended(api.TaskFailed, ago(sec), 0)(nt)
					}
					ts = append(ts, nt)
				}
			}
			return in(t0, svcs(svc), ts, n1, n2)
		}
	}
	stopFirst := api.UpdateConfig{}
	startFirst := api.UpdateConfig{Order: api.OrderStartFirst}
	upd := api.UpdateUpdating
	newSince = ago(5 * sec)
	deadline := t0.Add(9 * minute) // started a minute ago, the default 10m
	// A slot counts as updated once its new task has run for the monitor
	// (5s by default); the status then counts it.
	counted := "status web updating updated=1"
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "stop-first: first batch", in: web(stopFirst, upd, slots{"old", "old", "old"}),
			want: []string{"update a-old desired=shutdown"}, wake: deadline},
		{name: "stop-first: old task stopped, new one made", in: web(stopFirst, upd, slots{"stopped", "old", "old"}),
			want: []string{"create new01 web.1 state=new"}, wake: deadline},
		{name: "stop-first: new task starting, next batch waits", in: web(stopFirst, upd, slots{"starting", "old", "old"}), wake: deadline},
		// An old task that ended on its own (still wanted running) is
		// replaced by one of the new spec, and is no longer wanted: it
		// stayed wanted for ever, listed as wanted and failed, never
		// pruned from the history.
		{name: "stop-first: old task ended on its own, new one made", in: web(stopFirst, upd, slots{"dead", "old", "old"}),
			want: []string{"update a-old desired=shutdown", "create new01 web.1 state=new"}, wake: deadline},
		{name: "stop-first: new task runs, next batch", in: web(stopFirst, upd, slots{"new", "old", "old"}),
			want: []string{counted, "update b-old desired=shutdown"}, wake: deadline},
		{name: "stop-first: new task runs, within its monitor: next batch waits", in: func() orchestrator.Input {
			newSince = ago(2 * sec)
			defer func() { newSince = ago(5 * sec) }()
			return web(stopFirst, upd, slots{"new", "old", "old"})()
		}, wake: t0.Add(3 * sec)},
		{name: "stop-first: a longer monitor", in: web(api.UpdateConfig{Monitor: dur(20 * sec)}, upd, slots{"new", "old", "old"}),
			wake: t0.Add(15 * sec)},
		{name: "parallelism 2", in: web(api.UpdateConfig{Parallelism: par(2)}, upd, slots{"old", "old", "old"}),
			want: []string{"update a-old desired=shutdown", "update b-old desired=shutdown"}, wake: deadline},
		{name: "parallelism 2, one in flight", in: web(api.UpdateConfig{Parallelism: par(2)}, upd, slots{"starting", "old", "old"}),
			want: []string{"update b-old desired=shutdown"}, wake: deadline},
		{name: "parallelism 0: all at once", in: web(api.UpdateConfig{Parallelism: par(0)}, upd, slots{"old", "old", "old"}),
			want: []string{"update a-old desired=shutdown", "update b-old desired=shutdown", "update c-old desired=shutdown"}, wake: deadline},

		{name: "start-first: first batch keeps the old task", in: web(startFirst, upd, slots{"old", "old", "old"}),
			want: []string{"create new01 web.1 state=new"}, wake: deadline},
		{name: "start-first: old task kept while the new one starts", in: func() orchestrator.Input {
			i := web(startFirst, upd, slots{"old", "old", "old"})()
			i.Tasks = append(i.Tasks, task("a-new", i.Services[0], 1, "n2", api.TaskStarting, created(ago(sec))))
			return i
		}, wake: deadline},
		{name: "start-first: new task runs, old one stops, next batch after the monitor", in: func() orchestrator.Input {
			i := web(startFirst, upd, slots{"old", "old", "old"})()
			nt := task("a-new", i.Services[0], 1, "n2", api.TaskRunning, created(ago(sec)))
			nt.Status.Timestamp = ago(sec)
			i.Tasks = append(i.Tasks, nt)
			return i
		}, want: []string{"update a-old desired=shutdown"}, wake: t0.Add(4 * sec)},
		{name: "start-first: monitor passed, next batch", in: func() orchestrator.Input {
			i := web(startFirst, upd, slots{"old", "old", "old"})()
			nt := task("a-new", i.Services[0], 1, "n2", api.TaskRunning, created(ago(30*sec)))
			nt.Status.Timestamp = ago(5 * sec)
			i.Tasks = append(i.Tasks, nt)
			return i
		}, want: []string{"create new01 web.2 state=new", counted, "update a-old desired=shutdown"}, wake: deadline},

		{name: "delay between batches", in: func() orchestrator.Input {
			newSince = ago(10 * sec)
			defer func() { newSince = ago(5 * sec) }()
			return web(api.UpdateConfig{Delay: dur(10 * sec)}, upd, slots{"new", "old", "old"})()
		}, want: []string{counted}, wake: t0.Add(5 * sec)}, // monitor passed 5s ago, delay from then
		{name: "delay between batches over", in: func() orchestrator.Input {
			newSince = ago(15 * sec)
			defer func() { newSince = ago(5 * sec) }()
			return web(api.UpdateConfig{Delay: dur(10 * sec)}, upd, slots{"new", "old", "old"})()
		}, want: []string{counted, "update b-old desired=shutdown"}, wake: deadline},

		{name: "a failed new task pauses the update", in: web(stopFirst, upd, slots{"failed", "old", "old"}),
			want: []string{"status web paused updated=0 failed=1"}, wake: t0.Add(4 * sec)},
		{name: "failure action continue: no pause", in: web(api.UpdateConfig{FailureAction: api.FailureContinue}, upd, slots{"failed", "old", "old"}),
			want: []string{"status web updating updated=0 failed=1"}, wake: t0.Add(4 * sec)},
		{name: "failure within the max failure ratio: no pause", in: web(api.UpdateConfig{MaxFailureRatio: 0.5}, upd, slots{"failed", "old", "old"}),
			want: []string{"status web updating updated=0 failed=1"}, wake: t0.Add(4 * sec)},
		{name: "failure action rollback", in: web(api.UpdateConfig{FailureAction: api.FailureRollback}, upd, slots{"failed", "old", "old"}),
			want: []string{"rollback web@10: 1 of 3 tasks of the new spec failed (max failure ratio 0)"}, wake: t0.Add(4 * sec)},
		{name: "failure action rollback, nothing to roll back to: pause", in: func() orchestrator.Input {
			i := web(api.UpdateConfig{FailureAction: api.FailureRollback}, upd, slots{"failed", "old", "old"})()
			i.Services[0].PreviousSpec = nil
			return i
		}, want: []string{"status web paused updated=0 failed=1"}, wake: t0.Add(4 * sec)},
		{name: "a failed rollback pauses, never rolls back again", in: web(api.UpdateConfig{FailureAction: api.FailureRollback}, api.UpdateRollingBack, slots{"failed", "old", "old"}),
			want: []string{"status web paused updated=0 failed=1"}, wake: t0.Add(4 * sec)},
		{name: "no progress for the deadline: the failure action", in: web(api.UpdateConfig{FailureAction: api.FailureRollback, ProgressDeadline: dur(30 * sec)}, upd, slots{"starting", "old", "old"}),
			want: []string{"rollback web@10: no task was updated for 30s (progress deadline)"}},
		{name: "a deadline shorter than the monitor is the monitor", in: web(api.UpdateConfig{Monitor: dur(2 * minute), ProgressDeadline: dur(30 * sec)}, upd, slots{"starting", "old", "old"}),
			wake: t0.Add(minute)},
		{name: "a paused update stays paused", in: web(stopFirst, api.UpdatePaused, slots{"new", "old", "old"})},
		{name: "update completes", in: web(stopFirst, upd, slots{"new", "new", "new"}),
			want: []string{"status web completed updated=3"}},
		{name: "not complete while a new task starts", in: web(stopFirst, upd, slots{"new", "new", "starting"}),
			want: []string{"status web updating updated=2"}, wake: deadline},
		{name: "rollback completes", in: web(stopFirst, api.UpdateRollingBack, slots{"new", "new", "new"}),
			want: []string{"status web rolled-back updated=3"}},
		{name: "completed stays completed", in: web(stopFirst, api.UpdateCompleted, slots{"new", "new", "new"})},
	})
}

// TestReconcileUpdateStatus checks what the plan writes on the service.
func TestReconcileUpdateStatus(t *testing.T) {
	web := service("web", 1, updating(api.UpdateConfig{}, ago(minute)))
	old := task("t1", web, 1, "n1", api.TaskShutdown, specVersion(5), desired(api.TaskShutdown), version(6))
	nt := task("t2", web, 1, "n1", api.TaskRunning, created(ago(30*sec)), version(8))
	plan, _ := orchestrator.Reconcile(in(t0, svcs(web), tasks(old, nt), node("n1")), opts())
	st, ok := plan.ServiceStatus["web"]
	if !ok || st.State != api.UpdateCompleted || st.CompletedAt != t0.Format(time.RFC3339) || st.StartedAt != web.UpdateStatus.StartedAt {
		t.Errorf("Reconcile(update done) set status %+v, want completed at %s, started at %s", st, t0.Format(time.RFC3339), web.UpdateStatus.StartedAt)
	}

	web3 := service("web", 3, updating(api.UpdateConfig{}, ago(minute)))
	old3 := task("t1", web3, 1, "n1", api.TaskShutdown, specVersion(5), desired(api.TaskShutdown), version(6))
	nt = task("t2", web3, 1, "n1", api.TaskRunning, created(ago(30*sec)), version(8), ended(api.TaskFailed, ago(sec), 0))
	others := tasks(old3, nt, task("t3", web3, 2, "n1", api.TaskRunning, specVersion(5)), task("t4", web3, 3, "n1", api.TaskRunning, specVersion(5)))
	plan, _ = orchestrator.Reconcile(in(t0, svcs(web3), others, node("n1")), opts())
	st = plan.ServiceStatus["web"]
	if st.State != api.UpdatePaused || !strings.Contains(st.Message, "paused") || st.StartedAt != web3.UpdateStatus.StartedAt {
		t.Errorf("Reconcile(update, new task failed) set status %+v, want paused with a message, started at %s", st, web3.UpdateStatus.StartedAt)
	}
}

// TestReconcileNewTasks checks the fields of the tasks Reconcile makes.
func TestReconcileNewTasks(t *testing.T) {
	web := service("web", 1, constraints("node.role==worker"))
	failed := task("t1", web, 1, "n1", api.TaskRunning, ended(api.TaskFailed, ago(minute), sec))
	a := service("agent", 0, global)
	input := in(t0, svcs(web, a), tasks(failed), node("n1"))
	plan, _ := orchestrator.Reconcile(input, opts())
	if len(plan.Creates) != 2 {
		t.Fatalf("Reconcile(%s) made %d tasks, want 2", describe(input), len(plan.Creates))
	}
	for _, c := range plan.Creates {
		s := web
		if c.ServiceID == "agent" {
			s = a
		}
		if c.ServiceID != s.ID || c.ServiceName != s.Spec.Name || c.SpecVersion != s.SpecVersion ||
			!api.SpecEqual(&c.Spec, &s.Spec) || c.DesiredState != api.TaskRunning ||
			c.Status.State != api.TaskNew || !c.Status.Timestamp.Equal(t0) {
			t.Errorf("Reconcile made %+v; want a task of %s at spec version %d with its spec, meant to run, new at t0", c, s.ID, s.SpecVersion)
		}
	}
	if c := plan.Creates[0]; c.ServiceID == "agent" && (c.NodeID != "n1" || c.Slot != 0 || c.Name() != "agent.n1") {
		t.Errorf("Reconcile made global task %+v named %s, want it on n1 without a slot, named agent.n1", c, c.Name())
	}
	for _, c := range plan.Creates {
		if c.ServiceID == "web" && (c.NodeID != "" || c.Slot != 1 || c.Name() != "web.1" || c.Status.Message != "restarted after failed") {
			t.Errorf("Reconcile made replicated task %+v, want it in slot 1 without a node, message %q", c, "restarted after failed")
		}
	}

	// Without a NewID, tasks get api.NewID's random IDs.
	plan, _ = orchestrator.Reconcile(in(t0, svcs(service("web", 3)), nil), orchestrator.Options{})
	seen := map[string]bool{}
	for _, c := range plan.Creates {
		if len(c.ID) != 25 || seen[c.ID] {
			t.Errorf("Reconcile(default options) made task ID %q; want 25 characters, unique", c.ID)
		}
		seen[c.ID] = true
	}
}

func TestGlobalNodes(t *testing.T) {
	s := service("agent", 0, global, constraints("node.labels.zone==east"))
	nodes := []*api.Node{
		node("n1", zone("east")), node("n2", zone("west")), node("n3", zone("east"), drained),
		node("n4", zone("east"), paused), node("n5", zone("east"), downSince(ago(sec))), node("n6", zone("east"), unknown),
	}
	// n1 and n4 (paused keeps its task); n6 has not reported yet but counts.
	if got := orchestrator.GlobalNodes(&s.Spec, nodes); got != 3 {
		t.Errorf("GlobalNodes(zone==east, 6 nodes) = %d, want 3 (n1, n4 paused, n6 unknown)", got)
	}
}

// TestReconcileUpdateHealthWindow: with a health check the monitor counts
// from the first healthy report and is never shorter than the check's
// window plus its detection time (here max(1s, 3×1s) + 3×1s + 1s = 7s),
// so a check that starts failing after the monitor still fails the update.
func TestReconcileUpdateHealthWindow(t *testing.T) {
	hc := &api.HealthCheck{Type: api.HealthTCP, Port: 80, Interval: dur(sec), Retries: 3, Timeout: dur(sec)}
	web := func(mod func(*api.Task)) func() orchestrator.Input {
		return func() orchestrator.Input {
			svc := service("web", 2, updating(api.UpdateConfig{Monitor: dur(sec), FailureAction: api.FailureRollback}, ago(minute)))
			svc.Spec.HealthCheck = hc
			prev := svc.Spec
			svc.PreviousSpec = &prev
			nt := task("a-new", svc, 1, "n1", api.TaskRunning, created(ago(30*sec)))
			nt.Status.Timestamp = ago(20 * sec)
			mod(nt)
			return in(t0, svcs(svc), tasks(nt, task("b-old", svc, 2, "n1", api.TaskRunning, specVersion(5))), node("n1"))
		}
	}
	runPlanCases(t, "Reconcile", orchestrator.Reconcile, []planCase{
		{name: "healthy for less than the window: the next batch waits", in: web(func(t *api.Task) {
			t.Status.Health, t.Status.HealthyAt = api.HealthHealthy, ago(3*sec)
		}), wake: t0.Add(4 * sec)},
		{name: "healthy for the window: updated, next batch", in: web(func(t *api.Task) {
			t.Status.Health, t.Status.HealthyAt = api.HealthHealthy, ago(7*sec)
		}), want: []string{"status web updating updated=1", "update b-old desired=shutdown"}, wake: t0.Add(9 * minute)},
		{name: "never healthy within the window: failed, rolled back", in: web(func(t *api.Task) {
			t.Status.Health = api.HealthStarting
		}), want: []string{"rollback web@10: 1 of 2 tasks of the new spec failed (max failure ratio 0)"}},
		{name: "still starting inside the window: wait for it", in: web(func(t *api.Task) {
			t.Status.Health, t.Status.Timestamp = api.HealthStarting, ago(2*sec)
		}), wake: t0.Add(5 * sec)},
	})
}
