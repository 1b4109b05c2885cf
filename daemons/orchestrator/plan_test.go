package orchestrator_test

import (
	"testing"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/orchestrator"
)

func TestPlan(t *testing.T) {
	const drainedReason = "no suitable node (1 node: 1 drained)"
	runPlanCases(t, "Plan", orchestrator.Plan, []planCase{
		{name: "new service placed and spread", in: func() orchestrator.Input {
			return in(t0, svcs(service("web", 3)), nil, node("n1"), node("n2"))
		}, want: []string{
			"create new01 web.1 node=n1 state=assigned",
			"create new02 web.2 node=n2 state=assigned",
			"create new03 web.3 node=n1 state=assigned",
		}},
		{name: "no nodes", in: func() orchestrator.Input {
			return in(t0, svcs(service("web", 1)), nil)
		}, want: []string{`create new01 web.1 state=pending err="no nodes in the cluster"`}},
		{name: "steady: nothing to do", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1"))
		}},
		{name: "drained node: the replacement goes elsewhere", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1", drained), node("n2"))
		}, want: []string{"update t1 desired=shutdown", "create new01 web.1 node=n2 state=assigned"}},
		{name: "drained node, no other: the replacement waits, saying why", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1", drained))
		}, want: []string{"update t1 desired=shutdown", `create new01 web.1 state=pending err="` + drainedReason + `"`}},
		{name: "node down past the grace: the replacement goes elsewhere", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1", downSince(ago(minute))), node("n2"))
		}, want: []string{"update t1 state=orphaned", "create new01 web.1 node=n2 state=assigned"}},
		{name: "node down within the grace: nothing yet", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1", downSince(ago(10*sec))), node("n2"))
		}, wake: t0.Add(50 * sec)},
		{name: "node down, no other", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning)), node("n1", downSince(ago(minute))))
		}, want: []string{"update t1 state=orphaned", `create new01 web.1 state=pending err="no suitable node (1 node: 1 down)"`}},
		{name: "a pending task is placed when a node can take it", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "", api.TaskPending, pendingWith(drainedReason))), node("n1"))
		}, want: []string{"update t1 state=assigned node=n1"}},
		{name: "a pending task whose reason holds is left alone", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "", api.TaskPending, pendingWith(drainedReason))), node("n1", drained))
		}},
		{name: "a pending task whose reason changed gets the new one", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(task("t1", web, 1, "", api.TaskPending, pendingWith("no nodes in the cluster"))), node("n1", drained))
		}, want: []string{`update t1 state=pending err="` + drainedReason + `"`}},
		{name: "a task stopped by the plan is not placed", in: func() orchestrator.Input {
			web := service("web", 1)
			return in(t0, svcs(web), tasks(
				task("t1", web, 1, "n1", api.TaskRunning),
				task("t2", web, 2, "", api.TaskPending, pendingWith(drainedReason))), node("n1"))
		}, want: []string{"update t2 desired=shutdown state=shutdown"}},
		{name: "global: pinned to each node; a node without an agent waits", in: func() orchestrator.Input {
			return in(t0, svcs(service("agent", 0, global)), nil, node("n1"), node("n2", unknown))
		}, want: []string{"create new01 agent@n1 state=assigned", `create new02 agent@n2 state=pending err="node n2 is not ready"`}},
		{name: "constraints pick the node", in: func() orchestrator.Input {
			return in(t0, svcs(service("web", 2, constraints("node.labels.zone==east"))), nil,
				node("n1", zone("west")), node("n2", zone("east")))
		}, want: []string{"create new01 web.1 node=n2 state=assigned", "create new02 web.2 node=n2 state=assigned"}},
		{name: "no node matches the constraints", in: func() orchestrator.Input {
			return in(t0, svcs(service("web", 1, constraints("node.labels.zone==east"))), nil, node("n1", zone("west")))
		}, want: []string{`create new01 web.1 state=pending err="no suitable node (1 node: 1 does not match node.labels.zone==east)"`}},
		{name: "reservations beyond capacity wait", in: func() orchestrator.Input {
			return in(t0, svcs(service("web", 3, reserveMem(3<<30))), nil, node("n1"))
		}, want: []string{
			"create new01 web.1 node=n1 state=assigned",
			`create new02 web.2 state=pending err="no suitable node (1 node: 1 lacks memory: needs 3GiB, 1GiB free)"`,
			`create new03 web.3 state=pending err="no suitable node (1 node: 1 lacks memory: needs 3GiB, 1GiB free)"`,
		}},
		{name: "tasks of other services hold their node's memory", in: func() orchestrator.Input {
			db := service("db", 1, reserveMem(3<<30))
			i := in(t0, svcs(service("web", 1, reserveMem(2<<30))), nil, node("n1"), node("n2"))
			i.Others = tasks(task("d1", db, 1, "n1", api.TaskRunning))
			return i
		}, want: []string{"create new01 web.1 node=n2 state=assigned"}},
		{name: "stop-first: a slot waits while its old task stops", in: func() orchestrator.Input {
			web := service("web", 1, reserveMem(3<<30), updating(api.UpdateConfig{}, ago(minute)))
			return in(t0, svcs(web), tasks(task("t1", web, 1, "n1", api.TaskRunning, specVersion(5), desired(api.TaskShutdown))), node("n1"))
		}, want: nil, wake: t0.Add(9 * minute)}, // the progress deadline
		{name: "a task that is stopping still holds its node", in: func() orchestrator.Input {
			web := service("web", 1, reserveMem(3<<30), updating(api.UpdateConfig{}, ago(minute)))
			api2 := service("api", 1, reserveMem(3<<30))
			i := in(t0, svcs(api2), nil, node("n1"))
			i.Others = tasks(task("t1", web, 1, "n1", api.TaskRunning, specVersion(5), desired(api.TaskShutdown)))
			return i
		}, want: []string{`create new01 api.1 state=pending err="no suitable node (1 node: 1 lacks memory: needs 3GiB, 1GiB free)"`}},
	})
}
