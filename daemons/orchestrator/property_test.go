package orchestrator_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"pgregory.net/rapid"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/orchestrator"
	"github.com/warren-edge/warren/daemons/store"
)

// world is a cluster in one process: the real FSM and state database, the
// orchestrator and scheduler as the leader runs them (Plan, then commit the
// plan), and agents simulated by the status reports they send. Time is
// world.now, moved on by the test.
type world struct {
	dir   string
	state *store.State
	fsm   *store.FSM
	index uint64
	now   time.Time
	ids   int
	svcs  int
	grace time.Duration
	log   []string // what happened, for the failure message
}

func newWorld(t *rapid.T) *world {
	dir, err := os.MkdirTemp("", "warren-orchestrator-")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenState(filepath.Join(dir, "state.db"))
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	w := &world{dir: dir, state: st, fsm: store.NewFSM(st, store.NewHub(64, 1<<20, 0)), now: t0, grace: time.Minute}
	w.must(t, store.CmdClusterInit, store.ClusterInit{ClusterID: "c1", ClusterCIDR: "10.240.0.0/12", SubnetBits: 24, CreatedAt: t0})
	return w
}

func (w *world) close() {
	w.state.Close()
	os.RemoveAll(w.dir)
}

func (w *world) logf(format string, args ...any) {
	w.log = append(w.log, fmt.Sprintf("%s: ", rel(w.now))+fmt.Sprintf(format, args...))
}

// apply commits a command as Raft would, at the next index.
func (w *world) apply(t *rapid.T, typ store.CommandType, payload any) any {
	b, err := store.Encode(typ, payload)
	if err != nil {
		t.Fatal(err)
	}
	w.index++
	return w.fsm.Apply(&raft.Log{Index: w.index, Term: 1, Type: raft.LogCommand, Data: b})
}

func (w *world) must(t *rapid.T, typ store.CommandType, payload any) any {
	res := w.apply(t, typ, payload)
	if err, ok := res.(error); ok {
		t.Fatalf("apply %s: %v", typ, err)
	}
	return res
}

func (w *world) input() orchestrator.Input {
	in := orchestrator.Input{Now: w.now}
	w.state.View(func(v *store.View) error {
		in.Services, in.Tasks, in.Nodes = v.Services(), v.Tasks(store.TaskFilter{}), v.Nodes()
		return nil
	})
	return in
}

func (w *world) options() orchestrator.Options {
	return orchestrator.Options{RescheduleGrace: w.grace, NewID: func() string { w.ids++; return fmt.Sprintf("task%04d", w.ids) }}
}

var (
	availabilities = []string{api.AvailabilityActive, api.AvailabilityActive, api.AvailabilityPause, api.AvailabilityDrain}
	nodeStates     = []string{api.NodeReady, api.NodeReady, api.NodeReady, api.NodeDown, api.NodeUnknown}
	propConstraint = []string{"", "", "node.labels.zone==east", "node.labels.zone!=east", "node.role==worker"}
)

func (w *world) addNode(t *rapid.T, id string) {
	labels := map[string]string{"zone": rapid.SampledFrom([]string{"east", "west"}).Draw(t, id+".zone")}
	role := rapid.SampledFrom([]string{api.RoleWorker, api.RoleWorker, api.RoleManager}).Draw(t, id+".role")
	w.must(t, store.CmdNodeRegister, store.NodeRegister{ID: id, Role: role, Labels: labels, At: w.now,
		Description: api.NodeDescription{Hostname: id, NanoCPUs: 4e9, MemoryBytes: 4 << 30}})
	if a := rapid.SampledFrom(availabilities).Draw(t, id+".availability"); a != api.AvailabilityActive {
		w.must(t, store.CmdNodeSpec, store.NodeSpec{ID: id, Spec: api.NodeSpec{Role: role, Labels: labels, Availability: a}, At: w.now})
	}
	if s := rapid.SampledFrom(nodeStates).Draw(t, id+".state"); s != api.NodeUnknown {
		w.must(t, store.CmdNodeStatus, store.NodeStatus{ID: id, Status: api.NodeStatus{State: s, Timestamp: w.now}})
	}
}

func (w *world) addService(t *rapid.T) {
	w.svcs++
	id := fmt.Sprintf("s%d", w.svcs)
	spec := api.ServiceSpec{Name: id, Image: "localhost/busybox", Mode: api.ModeReplicated}
	if rapid.IntRange(0, 3).Draw(t, id+".global") == 0 {
		spec.Mode = api.ModeGlobal
	} else {
		spec.Replicas = uint64(rapid.IntRange(0, 6).Draw(t, id+".replicas"))
		spec.Resources.Reservations.MemoryBytes = api.Bytes(rapid.SampledFrom([]int64{0, 0, 1 << 30, 3 << 30}).Draw(t, id+".memory"))
	}
	if c := rapid.SampledFrom(propConstraint).Draw(t, id+".constraint"); c != "" {
		spec.Placement.Constraints = []string{c}
	}
	spec.RestartPolicy.Condition = rapid.SampledFrom([]string{api.RestartAny, api.RestartAny, api.RestartOnFailure, api.RestartNone}).Draw(t, id+".condition")
	spec.UpdateConfig.Order = rapid.SampledFrom([]string{api.OrderStopFirst, api.OrderStartFirst}).Draw(t, id+".order")
	if p := rapid.IntRange(-1, 2).Draw(t, id+".parallelism"); p >= 0 {
		spec.UpdateConfig.Parallelism = par(uint64(p))
	}
	spec.UpdateConfig.Delay = dur(time.Duration(rapid.IntRange(0, 30).Draw(t, id+".updateDelay")) * time.Second)
	if err := api.ValidateServiceSpec(&spec); err != nil {
		t.Fatalf("generated an invalid spec: %v", err)
	}
	w.must(t, store.CmdServiceCreate, store.ServiceCreate{Service: api.Service{
		Meta: api.Meta{ID: id, CreatedAt: w.now, UpdatedAt: w.now}, Spec: spec}})
	w.logf("create %s %s×%d %v restart=%s order=%s", id, spec.Mode, spec.Replicas, spec.Placement.Constraints,
		spec.RestartPolicy.Condition, spec.UpdateConfig.Order)
}

// reconcile runs one pass of the leader loop: Plan, check the plan, commit
// it, check the state. It says whether the plan was empty.
func (w *world) reconcile(t *rapid.T) bool {
	in := w.input()
	before, _ := json.Marshal(in)

	rplan, _ := orchestrator.Reconcile(in, orchestrator.Options{RescheduleGrace: w.grace, NewID: counter()})
	if after, _ := json.Marshal(in); string(after) != string(before) {
		t.Fatalf("Reconcile(%s) changed its input:\nbefore %s\nafter  %s", describe(in), before, after)
	}
	ids := w.ids
	plan, _ := orchestrator.Plan(in, w.options())
	if after, _ := json.Marshal(in); string(after) != string(before) {
		t.Fatalf("Plan(%s) changed its input:\nbefore %s\nafter  %s", describe(in), before, after)
	}
	if len(plan.Creates) != len(rplan.Creates) {
		t.Fatalf("Plan(%s) made %d tasks, Reconcile %d", describe(in), len(plan.Creates), len(rplan.Creates))
	}
	// Plan is deterministic (up to the order of its lists).
	again := ids
	plan2, _ := orchestrator.Plan(in, orchestrator.Options{RescheduleGrace: w.grace,
		NewID: func() string { again++; return fmt.Sprintf("task%04d", again) }})
	if a, b := render(plan), render(plan2); !slices.Equal(a, b) {
		t.Fatalf("Plan(%s) is not deterministic:\n\t%s\nthen\n\t%s", describe(in), strings.Join(a, "\n\t"), strings.Join(b, "\n\t"))
	}

	w.checkPlan(t, in, plan)
	if orchestrator.IsEmpty(&plan) {
		return true
	}
	w.must(t, store.CmdTaskPlan, plan)
	w.logf("plan %s", strings.Join(render(plan), "; "))
	w.checkState(t)
	return false
}

// checkPlan checks every placement in the plan: only on an active, ready
// node, and only where the task's constraints hold.
func (w *world) checkPlan(t *rapid.T, in orchestrator.Input, plan api.TaskPlan) {
	nodes := map[string]*api.Node{}
	for _, n := range in.Nodes {
		nodes[n.ID] = n
	}
	byID := map[string]*api.Task{}
	for _, tk := range in.Tasks {
		byID[tk.ID] = tk
	}
	placed := func(what string, spec *api.ServiceSpec, nodeID string) {
		n := nodes[nodeID]
		switch {
		case n == nil:
			t.Fatalf("Plan(%s) placed %s on node %s, which is not in the cluster", describe(in), what, nodeID)
		case n.Spec.Availability != api.AvailabilityActive || n.Status.State != api.NodeReady:
			t.Fatalf("Plan(%s) placed %s on node %s, which is %s and %s", describe(in), what, nodeID, n.Spec.Availability, n.Status.State)
		}
		for _, expr := range spec.Placement.Constraints {
			c, err := api.ParseConstraint(expr)
			if err != nil || !c.Matches(n) {
				t.Fatalf("Plan(%s) placed %s on node %s (labels %v, role %s), which breaks its constraint %s",
					describe(in), what, nodeID, n.Spec.Labels, n.Spec.Role, expr)
			}
		}
	}
	for i := range plan.Creates {
		c := &plan.Creates[i]
		switch {
		case c.Status.State == api.TaskAssigned:
			placed("new task "+c.Name(), &c.Spec, c.NodeID)
		case c.Status.State != api.TaskPending:
			t.Fatalf("Plan(%s) made task %s in state %s, want assigned or pending", describe(in), c.Name(), c.Status.State)
		case c.Status.Err == "":
			t.Fatalf("Plan(%s) left new task %s pending without saying why", describe(in), c.Name())
		case c.Slot > 0 && c.NodeID != "":
			t.Fatalf("Plan(%s) gave pending task %s a node", describe(in), c.Name())
		}
	}
	for _, u := range plan.Updates {
		if u.NodeID == "" {
			continue
		}
		tk := byID[u.ID]
		if tk == nil || (tk.NodeID != "" && tk.NodeID != u.NodeID) || u.State != api.TaskAssigned {
			t.Fatalf("Plan(%s) moved task %s to node %s in state %q; only tasks without a node, or pinned to that node, are placed, as assigned", describe(in), u.ID, u.NodeID, u.State)
		}
		placed("task "+tk.Name(), &tk.Spec, u.NodeID)
	}
}

// checkState checks the tasks after a committed plan.
func (w *world) checkState(t *rapid.T) {
	in := w.input()
	nodes := map[string]*api.Node{}
	for _, n := range in.Nodes {
		nodes[n.ID] = n
	}
	svcs := map[string]*api.Service{}
	for _, s := range in.Services {
		svcs[s.ID] = s
	}
	type key struct {
		svc  string
		slot uint64
		node string
	}
	live := map[key][]*api.Task{}
	count := map[string]int{}
	for _, tk := range in.Tasks {
		s := svcs[tk.ServiceID]
		if s == nil {
			if tk.DesiredState != api.TaskRemove {
				t.Fatalf("after the plan, task %s of deleted service %s is %s, want remove", tk.ID, tk.ServiceID, tk.DesiredState)
			}
			continue
		}
		if !tk.Live() {
			continue
		}
		count[s.ID]++
		if tk.NodeID != "" {
			n := nodes[tk.NodeID]
			down := n != nil && n.Status.State == api.NodeDown
			switch {
			case n == nil:
				t.Fatalf("after the plan, task %s is meant to run on node %s, which was removed", tk.Name(), tk.NodeID)
			case down && !w.now.Before(n.Status.Timestamp.Add(w.grace)) && !s.Spec.IsGlobal():
				// A global task waits for its node (it has nowhere else to go).
				t.Fatalf("after the plan, task %s is meant to run on node %s, down since %s, past the grace", tk.Name(), tk.NodeID, rel(n.Status.Timestamp))
			case n.Spec.Availability == api.AvailabilityDrain && !(s.Spec.IsGlobal() && down):
				t.Fatalf("after the plan, task %s is meant to run on drained node %s", tk.Name(), tk.NodeID)
			case s.Spec.IsGlobal() && !down && !matches(n, &s.Spec):
				t.Fatalf("after the plan, global task %s is meant to run on node %s (labels %v, role %s), which breaks %v",
					tk.Name(), tk.NodeID, n.Spec.Labels, n.Spec.Role, s.Spec.Placement.Constraints)
			}
		}
		k := key{svc: s.ID, slot: tk.Slot}
		if tk.Slot == 0 {
			k.node = tk.NodeID
		}
		live[k] = append(live[k], tk)
	}
	for k, ts := range live {
		s := svcs[k.svc]
		switch {
		case !s.Spec.IsGlobal() && k.slot == 0, s.Spec.IsGlobal() && (k.slot != 0 || k.node == ""):
			t.Fatalf("after the plan, task %s of %s service %s has slot %d and node %q", ts[0].ID, s.Spec.Mode, s.ID, k.slot, k.node)
		case k.slot > s.Spec.Replicas:
			t.Fatalf("after the plan, slot %d of %s (%d replicas) holds %d live tasks", k.slot, s.ID, s.Spec.Replicas, len(ts))
		case len(ts) > 2:
			t.Fatalf("after the plan, %s holds %d live tasks: %s", ts[0].Name(), len(ts), names(ts))
		case len(ts) == 2 && (s.Spec.UpdateConfig.Order != api.OrderStartFirst || ts[0].SpecVersion == ts[1].SpecVersion):
			t.Fatalf("after the plan, %s holds two live tasks (%s) outside a start-first update", ts[0].Name(), names(ts))
		}
	}
	for _, s := range in.Services {
		if !s.Spec.IsGlobal() && s.Spec.UpdateConfig.Order != api.OrderStartFirst && count[s.ID] > int(s.Spec.Replicas) {
			t.Fatalf("after the plan, %s has %d live tasks, more than its %d replicas", s.ID, count[s.ID], s.Spec.Replicas)
		}
	}
}

func names(ts []*api.Task) string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s v%d %s/%s", t.ID, t.SpecVersion, t.DesiredState, t.Status.State))
	}
	return strings.Join(out, ", ")
}

func matches(n *api.Node, s *api.ServiceSpec) bool {
	for _, expr := range s.Placement.Constraints {
		c, err := api.ParseConstraint(expr)
		if err != nil || !c.Matches(n) {
			return false
		}
	}
	return true
}

// agents reports, for every ready node, what its agent would: assigned
// tasks start and run; tasks no longer meant to run stop.
func (w *world) agents(t *rapid.T) int {
	in := w.input()
	byNode := map[string][]api.TaskStatusUpdate{}
	for _, n := range in.Nodes {
		if n.Status.State == api.NodeReady {
			byNode[n.ID] = nil
		}
	}
	for _, tk := range in.Tasks {
		if _, ok := byNode[tk.NodeID]; !ok || tk.Status.State.Terminal() || tk.Status.State.Before(api.TaskAssigned) {
			continue
		}
		st := api.TaskStatus{State: api.TaskRunning, StartedAt: w.now, Message: "started"}
		switch {
		case tk.DesiredState != api.TaskRunning:
			st = api.TaskStatus{State: api.TaskShutdown, Message: "stopped", StartedAt: tk.Status.StartedAt}
		case tk.Status.State == api.TaskRunning:
			continue
		}
		byNode[tk.NodeID] = append(byNode[tk.NodeID], api.TaskStatusUpdate{TaskID: tk.ID, Status: st})
	}
	n := 0
	for id, ups := range byNode {
		if len(ups) == 0 {
			continue
		}
		res := w.must(t, store.CmdTaskStatus, store.TaskStatus{NodeID: id, Updates: ups, At: w.now}).(*api.TaskStatusResult)
		if len(res.Skipped) > 0 {
			t.Fatalf("agent of %s: status updates skipped: %v", id, res.Skipped)
		}
		n += res.Applied
	}
	if n > 0 {
		w.logf("agents: %d updates", n)
	}
	return n
}

// fail makes one running task on a ready node fail.
func (w *world) fail(t *rapid.T) {
	var running []*api.Task
	for _, tk := range w.input().Tasks {
		if tk.Status.State == api.TaskRunning {
			running = append(running, tk)
		}
	}
	if len(running) == 0 {
		t.Skip("no running task")
	}
	tk := rapid.SampledFrom(running).Draw(t, "task to fail")
	code := 1
	w.must(t, store.CmdTaskStatus, store.TaskStatus{NodeID: tk.NodeID, At: w.now, Updates: []api.TaskStatusUpdate{{TaskID: tk.ID,
		Status: api.TaskStatus{State: api.TaskFailed, ExitCode: &code, StartedAt: tk.Status.StartedAt, Err: "exit code 1"}}}})
	w.logf("fail %s", tk.Name())
}

func (w *world) changeNode(t *rapid.T) {
	in := w.input()
	if len(in.Nodes) == 0 {
		t.Skip("no nodes")
	}
	n := rapid.SampledFrom(in.Nodes).Draw(t, "node")
	switch what := rapid.SampledFrom([]string{"availability", "state", "state", "remove"}).Draw(t, "change"); what {
	case "availability":
		spec := n.Spec
		spec.Availability = rapid.SampledFrom(availabilities).Draw(t, "availability")
		w.must(t, store.CmdNodeSpec, store.NodeSpec{ID: n.ID, Spec: spec, At: w.now})
		w.logf("node %s %s", n.ID, spec.Availability)
	case "state":
		st := rapid.SampledFrom([]string{api.NodeReady, api.NodeDown}).Draw(t, "state")
		w.must(t, store.CmdNodeStatus, store.NodeStatus{ID: n.ID, Status: api.NodeStatus{State: st, Timestamp: w.now}})
		w.logf("node %s %s", n.ID, st)
	case "remove":
		w.must(t, store.CmdNodeRemove, store.NodeRemove{ID: n.ID, Force: true, At: w.now})
		w.logf("node %s removed", n.ID)
	}
}

func (w *world) pickService(t *rapid.T, ok func(*api.Service) bool) *api.Service {
	var ss []*api.Service
	for _, s := range w.input().Services {
		if ok(s) {
			ss = append(ss, s)
		}
	}
	if len(ss) == 0 {
		t.Skip("no such service")
	}
	return rapid.SampledFrom(ss).Draw(t, "service")
}

func (w *world) scale(t *rapid.T) {
	s := w.pickService(t, func(s *api.Service) bool { return !s.Spec.IsGlobal() })
	n := uint64(rapid.IntRange(0, 6).Draw(t, "replicas"))
	w.must(t, store.CmdServiceScale, store.ServiceScale{ID: s.ID, Replicas: n, At: w.now})
	w.logf("scale %s to %d", s.ID, n)
}

// update changes what the tasks run (a rolling update), and for a global
// service perhaps its constraint.
func (w *world) update(t *rapid.T) {
	s := w.pickService(t, func(*api.Service) bool { return true })
	spec := s.Spec
	spec.Env = []string{fmt.Sprintf("V=%d", w.index)}
	if spec.IsGlobal() && rapid.Bool().Draw(t, "new constraint") {
		spec.Placement.Constraints = nil
		if c := rapid.SampledFrom(propConstraint).Draw(t, "constraint"); c != "" {
			spec.Placement.Constraints = []string{c}
		}
	}
	w.must(t, store.CmdServiceUpdate, store.ServiceUpdate{ID: s.ID, Spec: spec, At: w.now})
	w.logf("update %s %v", s.ID, spec.Placement.Constraints)
}

func (w *world) remove(t *rapid.T) {
	s := w.pickService(t, func(*api.Service) bool { return true })
	w.must(t, store.CmdServiceDelete, store.ServiceDelete{ID: s.ID, At: w.now})
	w.logf("delete %s", s.ID)
}

func (w *world) advance(t *rapid.T) {
	d := rapid.SampledFrom([]time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 61 * time.Second, 5 * time.Minute}).Draw(t, "time")
	w.now = w.now.Add(d)
}

// converge runs passes, with agents reporting and time moving on, until a
// pass plans nothing and no agent has anything to say.
func (w *world) converge(t *rapid.T) {
	for range 60 {
		w.now = w.now.Add(2 * time.Minute)
		if empty := w.reconcile(t); w.agents(t) == 0 && empty {
			return
		}
	}
	t.Fatalf("no steady state after 60 passes:\n%s", strings.Join(w.log, "\n"))
}

// checkSteady checks the steady state: each replicated service has one live
// task per slot (unless its restart policy let a slot stay empty), running
// where a node can take it; each global service runs one task on each
// active, ready node that meets its constraints.
func (w *world) checkSteady(t *rapid.T) {
	in := w.input()
	for _, s := range in.Services {
		var mine []*api.Task
		for _, tk := range in.Tasks {
			if tk.ServiceID == s.ID && tk.Live() {
				mine = append(mine, tk)
			}
		}
		if s.Spec.IsGlobal() {
			for _, n := range in.Nodes {
				var on []*api.Task
				for _, tk := range mine {
					if tk.NodeID == n.ID {
						on = append(on, tk)
					}
				}
				eligible := n.Spec.Availability == api.AvailabilityActive && n.Status.State == api.NodeReady && matches(n, &s.Spec)
				switch {
				case eligible && len(on) == 0 && s.Spec.RestartPolicy.Condition == api.RestartNone:
					// Its task there ended and is not restarted.
				case eligible && (len(on) != 1 || on[0].Status.State != api.TaskRunning):
					t.Fatalf("steady state: global %s has %d tasks on eligible node %s (%s), want one running", s.ID, len(on), n.ID, names(on))
				case !eligible && n.Spec.Availability != api.AvailabilityPause && len(on) > 0 && n.Status.State == api.NodeReady:
					t.Fatalf("steady state: global %s has %d tasks on node %s, which is %s and %s", s.ID, len(on), n.ID, n.Spec.Availability, n.Status.State)
				}
			}
			continue
		}
		slots := map[uint64]int{}
		for _, tk := range mine {
			if s.Spec.UpdateConfig.Order == api.OrderStartFirst && waiting(mine, tk) {
				// A start-first update keeps the old task until its
				// replacement runs; one of them cannot be placed.
				continue
			}
			slots[tk.Slot]++
			if tk.Status.State != api.TaskRunning && (tk.Status.State != api.TaskPending || tk.Status.Err == "") {
				t.Fatalf("steady state: task %s is %s (%q), want running, or pending with a reason", tk.Name(), tk.Status.State, tk.Status.Err)
			}
			if tk.Status.State == api.TaskPending && s.Spec.Resources.Reservations.MemoryBytes == 0 {
				for _, n := range in.Nodes {
					if n.Spec.Availability == api.AvailabilityActive && n.Status.State == api.NodeReady && matches(n, &s.Spec) {
						t.Fatalf("steady state: task %s is pending (%s), but node %s could take it", tk.Name(), tk.Status.Err, n.ID)
					}
				}
			}
		}
		for slot := uint64(1); slot <= s.Spec.Replicas; slot++ {
			if slots[slot] != 1 && !(slots[slot] == 0 && s.Spec.RestartPolicy.Condition == api.RestartNone) {
				t.Fatalf("steady state: slot %d of %s holds %d live tasks, want 1", slot, s.ID, slots[slot])
			}
		}
	}
}

// waiting says whether tk is the older of two live tasks in its slot, one
// of which waits for a node.
func waiting(ts []*api.Task, tk *api.Task) bool {
	for _, o := range ts {
		if o != tk && o.Slot == tk.Slot && (o.Version > tk.Version || (o.Version == tk.Version && o.ID > tk.ID)) &&
			(o.Status.State == api.TaskPending || tk.Status.State == api.TaskPending) {
			return true
		}
	}
	return false
}

// TestPropertyOrchestrator drives random clusters through random events
// (failures, drains, nodes going down and away, scaling, rolling updates,
// deletes, time) with the leader's reconcile pass in between, and checks
// after every committed plan:
//
//   - Reconcile and Plan never change their input, and Plan is deterministic;
//   - tasks are placed only on active, ready nodes that meet their
//     constraints;
//   - a replicated service never has more live tasks than replicas (a
//     start-first update may hold two in a slot, old and new), and none above
//     its replica count;
//   - nothing is meant to run on a drained node, or on a node down past the
//     grace, or removed;
//   - a global service has at most one live task per node, only on nodes
//     that qualify;
//   - tasks of deleted services are being removed;
//
// and at the end, once nothing more changes, that every slot is filled and
// each global service runs exactly one task per eligible ready node.
func TestPropertyOrchestrator(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := newWorld(t)
		defer w.close()
		defer func() {
			if t.Failed() {
				t.Logf("what happened:\n%s", strings.Join(w.log, "\n"))
			}
		}()
		for i := range rapid.IntRange(1, 5).Draw(t, "nodes") {
			w.addNode(t, fmt.Sprintf("n%d", i+1))
		}
		for range rapid.IntRange(1, 4).Draw(t, "services") {
			w.addService(t)
		}
		t.Repeat(map[string]func(*rapid.T){
			"reconcile": func(t *rapid.T) { w.reconcile(t) },
			"agents":    func(t *rapid.T) { w.agents(t) },
			"fail":      w.fail,
			"node":      w.changeNode,
			"scale":     w.scale,
			"update":    w.update,
			"delete":    w.remove,
			"service":   w.addService,
			"time":      w.advance,
		})
		w.converge(t)
		w.checkSteady(t)
	})
}
