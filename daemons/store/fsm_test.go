package store

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// harness applies commands to a fresh FSM as Raft would, one index each.
type harness struct {
	t     *testing.T
	state *State
	hub   *Hub
	fsm   *FSM
	index uint64
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st, err := OpenState(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hub := NewHub(1024, 1<<20, 0)
	h := &harness{t: t, state: st, hub: hub, fsm: NewFSM(st, hub)}
	h.apply(CmdClusterInit, ClusterInit{ClusterID: "c1", ClusterCIDR: "10.240.0.0/16", SubnetBits: 24, CreatedAt: t0})
	return h
}

func (h *harness) entry(typ CommandType, payload any) *raft.Log {
	h.t.Helper()
	b, err := Encode(typ, payload)
	if err != nil {
		h.t.Fatal(err)
	}
	h.index++
	return &raft.Log{Index: h.index, Term: 1, Type: raft.LogCommand, Data: b}
}

func (h *harness) apply(typ CommandType, payload any) any {
	h.t.Helper()
	return h.fsm.Apply(h.entry(typ, payload))
}

// mustApply applies a command that must succeed.
func (h *harness) mustApply(typ CommandType, payload any) any {
	h.t.Helper()
	res := h.apply(typ, payload)
	if err, ok := res.(error); ok {
		h.t.Fatalf("apply %s: %v", typ, err)
	}
	return res
}

func (h *harness) view(fn func(v *View)) {
	h.state.View(func(v *View) error { fn(v); return nil })
}

func spec(name string, replicas uint64, ports ...api.PortConfig) api.ServiceSpec {
	return api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: replicas, Ports: ports}
}

func (h *harness) createService(id string, s api.ServiceSpec) *api.Service {
	h.t.Helper()
	return h.mustApply(CmdServiceCreate, ServiceCreate{Service: api.Service{
		Meta: api.Meta{ID: id, CreatedAt: t0, UpdatedAt: t0}, Spec: s}}).(*api.Service)
}

func TestServiceCreate(t *testing.T) {
	h := newHarness(t)
	s := h.createService("svc1", spec("web", 3, api.PortConfig{Target: 80, Published: 8080}))
	if s.Version != h.index || s.SpecVersion != h.index {
		t.Errorf("create: version %d specVersion %d, want both %d", s.Version, s.SpecVersion, h.index)
	}
	h.view(func(v *View) {
		got, err := v.Service("web")
		if err != nil || got.ID != "svc1" {
			t.Fatalf("Service(web) = %v, %v; want svc1", got, err)
		}
		if _, err := v.Service("svc"); err != nil {
			t.Errorf("Service(prefix svc) = %v, want found", err)
		}
		if v.Index() != h.index {
			t.Errorf("Index() = %d, want %d", v.Index(), h.index)
		}
	})
	cases := []struct {
		name string
		svc  api.Service
		code string
	}{
		{"same name", api.Service{Meta: api.Meta{ID: "svc2"}, Spec: spec("web", 1)}, api.CodeConflict},
		{"same ID", api.Service{Meta: api.Meta{ID: "svc1"}, Spec: spec("other", 1)}, api.CodeConflict},
		{"port clash", api.Service{Meta: api.Meta{ID: "svc3"}, Spec: spec("api", 1, api.PortConfig{Target: 81, Published: 8080})}, api.CodeConflict},
		{"port clash bound address", api.Service{Meta: api.Meta{ID: "svc4"}, Spec: spec("api", 1, api.PortConfig{Target: 81, Published: 8080, HostAddr: "10.0.0.1"})}, api.CodeConflict},
		{"host port on an ingress port", api.Service{Meta: api.Meta{ID: "svc4"}, Spec: spec("api", 1, api.PortConfig{Target: 81, Published: 8080, Mode: api.PortModeHost})}, api.CodeConflict},
	}
	for _, c := range cases {
		before := h.hub.Last()
		res := h.apply(CmdServiceCreate, ServiceCreate{Service: c.svc})
		if !api.IsCode(asErr(res), c.code) {
			t.Errorf("%s: create %s = %v, want code %s", c.name, c.svc.Spec.Name, res, c.code)
		}
		var n int
		h.view(func(v *View) { n = v.ServiceCount() })
		if n != 1 {
			t.Errorf("%s: refused create left %d services, want 1", c.name, n)
		}
		changes, _, _ := h.hub.Read(before, &Filter{}, 100, nil)
		if len(changes) != 0 {
			t.Errorf("%s: refused create published %d changes", c.name, len(changes))
		}
	}
	// Same port on another protocol, or two distinct bound addresses: fine.
	h.createService("svc5", spec("dns", 1, api.PortConfig{Target: 53, Published: 8080, Protocol: "udp"}))
	h.createService("svc6", spec("a", 1, api.PortConfig{Target: 1, Published: 9000, HostAddr: "10.0.0.1"}))
	h.createService("svc7", spec("b", 1, api.PortConfig{Target: 1, Published: 9000, HostAddr: "10.0.0.2"}))
}

// TestServicePortModes: an ingress port is taken on every node, so it
// conflicts with any other service's port on the same protocol and port;
// host ports of two services do not conflict (the scheduler keeps their
// tasks on different nodes).
func TestServicePortModes(t *testing.T) {
	h := newHarness(t)
	host := func(pub uint16, addr string) api.PortConfig {
		return api.PortConfig{Target: 80, Published: pub, HostAddr: addr, Mode: api.PortModeHost}
	}
	h.createService("h1", spec("host-a", 1, host(9000, "")))
	h.createService("h2", spec("host-b", 1, host(9000, "")))
	h.createService("h3", spec("host-c", 1, host(9000, "10.0.0.1")))
	h.createService("i1", spec("ingress-a", 1, api.PortConfig{Target: 80, Published: 9100}))
	for _, c := range []struct {
		name string
		spec api.ServiceSpec
		want string
	}{
		{"ingress on host ports", spec("x", 1, api.PortConfig{Target: 80, Published: 9000, Mode: api.PortModeIngress}), "conflicts with port 9000/tcp of service"},
		{"ingress on ingress", spec("x", 1, api.PortConfig{Target: 80, Published: 9100}), `port 9100/tcp is already published by service "ingress-a" (mode ingress, on every node)`},
		{"host on ingress", spec("x", 1, host(9100, "")), `port 9100/tcp (mode host) conflicts with port 9100/tcp of service "ingress-a" (mode ingress)`},
		{"host on one address on ingress", spec("x", 1, host(9100, "10.0.0.1")), `service "ingress-a"`},
	} {
		res := h.apply(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "x1"}, Spec: c.spec}})
		err := asErr(res)
		if !api.IsCode(err, api.CodeConflict) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: create = %v; want a conflict containing %q", c.name, res, c.want)
		}
	}
	// An update that turns h1's port into ingress conflicts with h2 and h3.
	res := h.apply(CmdServiceUpdate, ServiceUpdate{ID: "h1", Spec: spec("host-a", 1, api.PortConfig{Target: 80, Published: 9000})})
	if !api.IsCode(asErr(res), api.CodeConflict) {
		t.Errorf("update of host-a to an ingress port 9000 = %v; want a conflict with host-b", res)
	}
	// Once the other host services are gone, it may.
	h.mustApply(CmdServiceDelete, ServiceDelete{ID: "h2", At: t0})
	h.mustApply(CmdServiceDelete, ServiceDelete{ID: "h3", At: t0})
	h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "h1", Spec: spec("host-a", 1, api.PortConfig{Target: 80, Published: 9000})})
	h.view(func(v *View) {
		if owner := v.PortOwner(host(9000, ""), ""); owner != "h1" {
			t.Errorf("PortOwner(host 9000) = %q after host-a became ingress, want h1", owner)
		}
	})
}

func asErr(v any) error {
	err, _ := v.(error)
	return err
}

func TestServiceUpdateVersionAndIdempotence(t *testing.T) {
	h := newHarness(t)
	s := h.createService("svc1", spec("web", 1))
	v1 := s.Version

	// Same spec: no change, no version bump.
	got := h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "svc1", Spec: s.Spec, ExpectVersion: v1, At: t0}).(*api.Service)
	if got.Version != v1 {
		t.Errorf("update with identical spec bumped version %d → %d", v1, got.Version)
	}
	// Scale-only change: version moves, spec version does not.
	sp := s.Spec
	sp.Replicas = 5
	got = h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "svc1", Spec: sp, ExpectVersion: v1, At: t0}).(*api.Service)
	if got.Version == v1 || got.SpecVersion != s.SpecVersion {
		t.Errorf("replicas-only update: version %d (was %d) specVersion %d (was %d); want version moved, specVersion kept", got.Version, v1, got.SpecVersion, s.SpecVersion)
	}
	// Stale version: refused.
	sp.Image = "localhost/other"
	res := h.apply(CmdServiceUpdate, ServiceUpdate{ID: "svc1", Spec: sp, ExpectVersion: v1, At: t0})
	if !api.IsCode(asErr(res), api.CodeConflict) {
		t.Errorf("update with stale version %d = %v, want conflict", v1, res)
	}
	// Image change: spec version moves, previous spec kept.
	got = h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "svc1", Spec: sp, At: t0}).(*api.Service)
	if got.SpecVersion != got.Version || got.PreviousSpec == nil || got.PreviousSpec.Image != "localhost/busybox" {
		t.Errorf("image update: specVersion %d version %d previous %v", got.SpecVersion, got.Version, got.PreviousSpec)
	}
	// Rename frees the old name.
	sp.Name = "web2"
	h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "svc1", Spec: sp, At: t0})
	h.createService("svc2", spec("web", 1))
}

func TestServiceScale(t *testing.T) {
	h := newHarness(t)
	h.createService("svc1", spec("web", 1))
	got := h.mustApply(CmdServiceScale, ServiceScale{ID: "svc1", Replicas: 7, At: t0}).(*api.Service)
	if got.Spec.Replicas != 7 {
		t.Errorf("scale to 7: replicas %d", got.Spec.Replicas)
	}
	g := spec("agent", 0)
	g.Mode = api.ModeGlobal
	h.createService("svc2", g)
	if res := h.apply(CmdServiceScale, ServiceScale{ID: "svc2", Replicas: 2}); !api.IsCode(asErr(res), api.CodeInvalid) {
		t.Errorf("scale global service = %v, want invalid", res)
	}
	if res := h.apply(CmdServiceScale, ServiceScale{ID: "nope", Replicas: 2}); !api.IsCode(asErr(res), api.CodeNotFound) {
		t.Errorf("scale missing service = %v, want not found", res)
	}
}

func (h *harness) registerNode(id string) *api.Node {
	h.t.Helper()
	return h.mustApply(CmdNodeRegister, NodeRegister{ID: id, Role: api.RoleManager,
		Description: api.NodeDescription{Hostname: "host-" + id, NanoCPUs: 2e9, MemoryBytes: 1 << 30}, At: t0}).(*api.Node)
}

func task(id, svc string, slot uint64, node string) api.Task {
	return api.Task{Meta: api.Meta{ID: id}, ServiceID: svc, ServiceName: "web", Slot: slot, NodeID: node,
		DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskNew}}
}

func TestNodeRegisterSubnetsAndSpec(t *testing.T) {
	h := newHarness(t)
	a := h.registerNode("n1")
	b := h.registerNode("n2")
	if a.Subnet != "10.240.0.0/24" || b.Subnet != "10.240.1.0/24" {
		t.Errorf("subnets %s, %s; want 10.240.0.0/24, 10.240.1.0/24", a.Subnet, b.Subnet)
	}
	if a.Status.State != api.NodeUnknown || a.Spec.Availability != api.AvailabilityActive {
		t.Errorf("new node: state %s availability %s", a.Status.State, a.Spec.Availability)
	}
	again := h.registerNode("n1")
	if again.Subnet != a.Subnet || again.Version != a.Version {
		t.Errorf("re-register with same description changed the node: %+v", again)
	}
	sp := a.Spec
	sp.Availability = api.AvailabilityDrain
	sp.Labels = map[string]string{"zone": "east"}
	got := h.mustApply(CmdNodeSpec, NodeSpec{ID: "n1", Spec: sp, ExpectVersion: a.Version, At: t0}).(*api.Node)
	if got.Spec.Labels["zone"] != "east" || got.Spec.Availability != api.AvailabilityDrain {
		t.Errorf("node spec update: %+v", got.Spec)
	}
	if res := h.apply(CmdNodeSpec, NodeSpec{ID: "n1", Spec: sp, ExpectVersion: a.Version}); !api.IsCode(asErr(res), api.CodeConflict) {
		t.Errorf("node spec with stale version = %v, want conflict", res)
	}
	sp.Role = api.RoleWorker
	if res := h.apply(CmdNodeSpec, NodeSpec{ID: "n1", Spec: sp}); !api.IsCode(asErr(res), api.CodeInvalid) {
		t.Errorf("node role change through spec = %v, want invalid", res)
	}
	st := h.mustApply(CmdNodeStatus, NodeStatus{ID: "n2", Status: api.NodeStatus{State: api.NodeReady, Timestamp: t0}}).(*api.Node)
	if st.Status.State != api.NodeReady {
		t.Errorf("node status: %s", st.Status.State)
	}
	if res := h.apply(CmdNodeRemove, NodeRemove{ID: "n2", At: t0}); !api.IsCode(asErr(res), api.CodeConflict) {
		t.Errorf("remove ready node without force = %v, want conflict", res)
	}
	h.createService("svc1", spec("web", 1))
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{task("t1", "svc1", 1, "n2")}, At: t0})
	h.mustApply(CmdNodeRemove, NodeRemove{ID: "n2", Force: true, At: t0})
	h.view(func(v *View) {
		if _, err := v.Node("n2"); !api.NotFound(err) {
			t.Errorf("Node(n2) after remove = %v, want not found", err)
		}
		tk, _ := v.Task("t1")
		if tk.Status.State != api.TaskOrphaned || tk.DesiredState != api.TaskShutdown {
			t.Errorf("task of removed node: state %s desired %s, want orphaned/shutdown", tk.Status.State, tk.DesiredState)
		}
	})
	// The freed subnet is handed out again.
	if c := h.registerNode("n3"); c.Subnet != "10.240.1.0/24" {
		t.Errorf("subnet after removal = %s, want the freed 10.240.1.0/24", c.Subnet)
	}
}

func TestTaskPlanAndStatus(t *testing.T) {
	h := newHarness(t)
	h.registerNode("n1")
	h.createService("svc1", spec("web", 2))
	res := h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{
		task("t1", "svc1", 1, ""), task("t2", "svc1", 2, ""), task("t3", "gone", 1, "")}, At: t0})
	if sk, _ := res.([]string); len(sk) != 1 {
		t.Errorf("plan with a task of a missing service: skipped %v, want 1", res)
	}
	h.mustApply(CmdTaskPlan, api.TaskPlan{Updates: []api.TaskChange{
		{ID: "t1", NodeID: "n1", State: api.TaskAssigned},
		{ID: "t2", State: api.TaskPending, Message: "no suitable node"},
	}, At: t0})
	h.view(func(v *View) {
		if ts := v.Tasks(TaskFilter{NodeID: "n1"}); len(ts) != 1 || ts[0].ID != "t1" {
			t.Errorf("Tasks(node n1) = %v, want [t1]", ts)
		}
		if ts := v.Tasks(TaskFilter{ServiceID: "svc1"}); len(ts) != 2 {
			t.Errorf("Tasks(service svc1) = %d tasks, want 2", len(ts))
		}
		t2, _ := v.Task("t2")
		if t2.Status.State != api.TaskPending || t2.Status.Message != "no suitable node" {
			t.Errorf("t2 status %+v", t2.Status)
		}
	})
	code := 0
	r := h.mustApply(CmdTaskStatus, TaskStatus{NodeID: "n1", At: t0, Updates: []api.TaskStatusUpdate{
		{TaskID: "t1", Status: api.TaskStatus{State: api.TaskRunning, PID: 42}},
		{TaskID: "t2", Status: api.TaskStatus{State: api.TaskRunning}}, // not on n1
	}}).(*api.TaskStatusResult)
	if r.Applied != 1 || len(r.Skipped) != 1 {
		t.Errorf("status from n1: %+v, want 1 applied and t2 skipped", r)
	}
	r = h.mustApply(CmdTaskStatus, TaskStatus{NodeID: "n1", At: t0, Updates: []api.TaskStatusUpdate{
		{TaskID: "t1", Status: api.TaskStatus{State: api.TaskFailed, ExitCode: &code}},
	}}).(*api.TaskStatusResult)
	if r.Applied != 1 {
		t.Errorf("running → failed: %+v", r)
	}
	r = h.mustApply(CmdTaskStatus, TaskStatus{NodeID: "n1", At: t0, Updates: []api.TaskStatusUpdate{
		{TaskID: "t1", Status: api.TaskStatus{State: api.TaskRunning}},
	}}).(*api.TaskStatusResult)
	if r.Applied != 0 || len(r.Skipped) != 1 {
		t.Errorf("failed → running must be refused: %+v", r)
	}
	// Desired state moves forward only; a node is never reassigned.
	h.mustApply(CmdTaskPlan, api.TaskPlan{Updates: []api.TaskChange{{ID: "t1", DesiredState: api.TaskShutdown}}, At: t0})
	h.mustApply(CmdTaskPlan, api.TaskPlan{Updates: []api.TaskChange{{ID: "t1", DesiredState: api.TaskRunning, NodeID: "n9"}}, At: t0})
	h.view(func(v *View) {
		t1, _ := v.Task("t1")
		if t1.DesiredState != api.TaskShutdown || t1.NodeID != "n1" {
			t.Errorf("t1 desired %s node %s; want shutdown on n1", t1.DesiredState, t1.NodeID)
		}
	})
	h.mustApply(CmdTaskPlan, api.TaskPlan{Deletes: []string{"t1"}, At: t0})
	h.view(func(v *View) {
		if ts := v.Tasks(TaskFilter{NodeID: "n1"}); len(ts) != 0 {
			t.Errorf("node index after delete still has %d tasks", len(ts))
		}
	})
}

func TestServiceDeleteMarksTasks(t *testing.T) {
	h := newHarness(t)
	h.registerNode("n1")
	s := h.createService("svc1", spec("web", 2, api.PortConfig{Target: 80, Published: 80}))
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{task("t1", "svc1", 1, "n1"), task("t2", "svc1", 2, "")}, At: t0})
	if res := h.apply(CmdServiceDelete, ServiceDelete{ID: "svc1", ExpectVersion: s.Version - 1}); !api.IsCode(asErr(res), api.CodeConflict) {
		t.Errorf("delete with stale version = %v", res)
	}
	h.mustApply(CmdServiceDelete, ServiceDelete{ID: "svc1", At: t0})
	h.view(func(v *View) {
		if _, err := v.Service("web"); !api.NotFound(err) {
			t.Errorf("Service(web) after delete: %v", err)
		}
		t1, _ := v.Task("t1")
		t2, _ := v.Task("t2")
		if t1.DesiredState != api.TaskRemove || t2.DesiredState != api.TaskRemove {
			t.Errorf("tasks after service delete: desired %s, %s; want remove", t1.DesiredState, t2.DesiredState)
		}
		if t2.Status.State != api.TaskShutdown {
			t.Errorf("unplaced task after delete: state %s, want shutdown", t2.Status.State)
		}
		if v.PortOwner(api.PortConfig{Target: 80, Published: 80}, "") != "" {
			t.Error("port 80 still owned after delete")
		}
	})
	h.createService("svc2", spec("web", 1, api.PortConfig{Target: 80, Published: 80}))
}

func TestReplaySkipsAppliedEntries(t *testing.T) {
	h := newHarness(t)
	l := h.entry(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "svc1"}, Spec: spec("web", 1)}})
	if res := h.fsm.Apply(l); asErr(res) != nil {
		t.Fatal(res)
	}
	// Raft replays the same entry after a restart: it must be a no-op, not a
	// "name taken" error or a second service.
	if res := h.fsm.Apply(l); res != nil {
		t.Errorf("replayed entry %d returned %v, want nil (skipped)", l.Index, res)
	}
}

func TestBatchRefusedCommandLeavesOthers(t *testing.T) {
	h := newHarness(t)
	logs := []*raft.Log{
		h.entry(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "a"}, Spec: spec("web", 1)}}),
		h.entry(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "b"}, Spec: spec("web", 1)}}),
		h.entry(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "c"}, Spec: spec("api", 1)}}),
	}
	res := h.fsm.ApplyBatch(logs)
	if asErr(res[0]) != nil || !api.IsCode(asErr(res[1]), api.CodeConflict) || asErr(res[2]) != nil {
		t.Fatalf("ApplyBatch results %v; want ok, conflict, ok", res)
	}
	h.view(func(v *View) {
		if v.ServiceCount() != 2 || v.Index() != h.index {
			t.Errorf("after batch: %d services at index %d; want 2 at %d", v.ServiceCount(), v.Index(), h.index)
		}
	})
}

type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	h := newHarness(t)
	h.registerNode("n1")
	h.createService("svc1", spec("web", 2, api.PortConfig{Target: 80, Published: 8080}))
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{task("t1", "svc1", 1, "n1")}, At: t0})
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	wantIndex := h.index

	// Restore into a different manager's state that has moved elsewhere.
	o := newHarness(t)
	o.createService("other", spec("other", 1))
	o.createService("other2", spec("other2", 1))
	o.createService("other3", spec("other3", 1))
	o.createService("other4", spec("other4", 1))
	wait := o.hub.Wait()
	if err := o.fsm.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wait:
	default:
		t.Error("restore did not wake watchers")
	}
	if _, _, err := o.hub.Read(1, &Filter{}, 10, nil); err != ErrTooOld {
		t.Errorf("hub.Read after restore = %v, want ErrTooOld (watchers must resync)", err)
	}
	o.view(func(v *View) {
		if v.Index() != wantIndex {
			t.Errorf("restored index %d, want %d", v.Index(), wantIndex)
		}
		if _, err := v.Service("other"); !api.NotFound(err) {
			t.Errorf("restored state still has the old service: %v", err)
		}
		s, err := v.Service("web")
		if err != nil || s.Spec.Replicas != 2 {
			t.Errorf("restored Service(web) = %v, %v", s, err)
		}
		if ts := v.Tasks(TaskFilter{NodeID: "n1"}); len(ts) != 1 {
			t.Errorf("restored node index: %d tasks on n1, want 1", len(ts))
		}
		if v.PortOwner(api.PortConfig{Target: 80, Published: 8080}, "") != "svc1" {
			t.Error("restored port index lost port 8080")
		}
	})
	// The restored FSM keeps applying.
	o.index = wantIndex
	o.createService("svc9", spec("after", 1))
}

func TestStatePersistsAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenState(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	fsm := NewFSM(st, NewHub(16, 1<<20, 0))
	b, _ := Encode(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "s"}, Spec: spec("web", 1)}})
	fsm.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: b})
	st.Close()
	st, err = OpenState(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.AppliedIndex() != 7 {
		t.Errorf("reopened AppliedIndex = %d, want 7", st.AppliedIndex())
	}
}

func TestUntrustedStateIsSetAsideAfterANewBoot(t *testing.T) {
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot_id")
	old := bootIDFile
	bootIDFile = boot
	t.Cleanup(func() { bootIDFile = old })
	path := filepath.Join(dir, "state.db")
	write := func(id string) { os.WriteFile(boot, []byte(id+"\n"), 0o644) }
	apply := func(st *State, idx uint64) {
		fsm := NewFSM(st, NewHub(16, 1<<20, 0))
		b, _ := Encode(CmdClusterInit, ClusterInit{ClusterID: "c", ClusterCIDR: "10.0.0.0/16", SubnetBits: 24})
		fsm.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: b})
	}

	write("boot-1")
	st, err := OpenState(path)
	if err != nil {
		t.Fatal(err)
	}
	apply(st, 5)
	// The process dies (no Close, no checkpoint) and comes back in the
	// same boot: the page cache kept the write.
	st.db.Close()
	st, _ = OpenState(path)
	if st.Discarded != "" || st.AppliedIndex() != 5 {
		t.Errorf("reopen in the same boot: discarded %q, index %d; want kept at 5", st.Discarded, st.AppliedIndex())
	}
	// A clean close checkpoints: trusted in a new boot too.
	st.Close()
	write("boot-2")
	st, _ = OpenState(path)
	if st.Discarded != "" || st.AppliedIndex() != 5 {
		t.Errorf("reopen after a checkpoint in a new boot: discarded %q, index %d; want kept at 5", st.Discarded, st.AppliedIndex())
	}
	// A write after the checkpoint, then the machine loses power.
	apply(st, 6)
	st.db.Close()
	write("boot-3")
	st, _ = OpenState(path)
	defer st.Close()
	if st.Discarded == "" || st.AppliedIndex() != 0 {
		t.Errorf("reopen after unsynced writes and a new boot: discarded %q, index %d; want set aside and empty", st.Discarded, st.AppliedIndex())
	}
	if _, err := os.Stat(path + ".untrusted"); err != nil {
		t.Errorf("the untrusted database was not kept aside: %v", err)
	}
}

// A worker's replica syncs every write: a write just before a power cut is
// there after the new boot, and the database is never set aside for it.
func TestSyncedReplicaIsKeptAfterANewBoot(t *testing.T) {
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot_id")
	old := bootIDFile
	bootIDFile = boot
	t.Cleanup(func() { bootIDFile = old })
	path := filepath.Join(dir, "state.db")
	os.WriteFile(boot, []byte("boot-1\n"), 0o644)
	st, err := OpenStateSynced(path)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReplica(st, NewHub(16, 1<<20, 0))
	task, _ := json.Marshal(api.Task{Meta: api.Meta{ID: "t1"}, ServiceID: "s1", NodeID: "n1"})
	if err := r.ApplyBatch(api.WatchBatch{Reset: true, Index: 9, Events: []api.Event{{Kind: api.KindTask, Op: api.OpCreate, ID: "t1", Index: 9, Object: task}}}); err != nil {
		t.Fatal(err)
	}
	st.db.Close() // power cut: no Close, no checkpoint
	os.WriteFile(boot, []byte("boot-2\n"), 0o644)
	st, err = OpenStateSynced(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Discarded != "" || st.AppliedIndex() != 9 {
		t.Errorf("the replica after a power cut: discarded %q, index %d; want kept at 9", st.Discarded, st.AppliedIndex())
	}
}

func TestCheckNodeSubnets(t *testing.T) {
	tests := []struct {
		cidr      string
		bits      int
		wantNodes int
		wantErr   string
	}{
		{"10.240.0.0/12", 24, 4096, ""},
		{"10.240.0.0/12", 26, 16384, ""},
		{"10.240.0.0/12", 30, 262144, ""},
		{"10.240.0.0/12", 12, 1, ""},
		{"10.240.5.0/12", 24, 4096, ""}, // host bits: the range is 10.240.0.0/12, as the FSM always read it
		{"10.0.0.0/30", 30, 1, ""},
		{"10.240.0.0/12", 31, 0, "--subnet-bits 31 leaves no address for a container: use 12 to 30 (24 gives 253 containers per node)"},
		{"10.240.0.0/12", 32, 0, "--subnet-bits 32 leaves no address for a container: use 12 to 30 (24 gives 253 containers per node)"},
		{"10.240.0.0/12", 8, 0, "--subnet-bits 8 is larger than --cluster-cidr 10.240.0.0/12: use 12 to 30 (24 gives 4096 nodes of 253 containers)"},
		{"10.240.0.0/26", 24, 0, "--subnet-bits 24 is larger than --cluster-cidr 10.240.0.0/26: use 26 to 30 (26 gives 1 node of 61 containers)"},
		{"10.240.0.0/26", 31, 0, "--subnet-bits 31 leaves no address for a container: use 26 to 30 (26 gives 61 containers per node)"},
		{"10.0.0.0/31", 31, 0, "--cluster-cidr 10.0.0.0/31 leaves no address for a container: give a /30 or larger range, such as 10.240.0.0/12"},
		{"fd00::/48", 64, 0, `--cluster-cidr "fd00::/48" is not an IPv4 range: give one such as 10.240.0.0/12`},
		{"10.240.0.0", 24, 0, `--cluster-cidr "10.240.0.0" is not an IPv4 range: give one such as 10.240.0.0/12`},
	}
	for _, tt := range tests {
		nodes, err := CheckNodeSubnets(tt.cidr, tt.bits)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if nodes != tt.wantNodes || got != tt.wantErr {
			t.Errorf("CheckNodeSubnets(%q, %d) = %d, %q; want %d, %q", tt.cidr, tt.bits, nodes, got, tt.wantNodes, tt.wantErr)
		}
	}
}

// TestNodeRegisterUnusableRange: a cluster recorded with a range that
// leaves no address for a container gives no node a subnet, and says why.
func TestNodeRegisterUnusableRange(t *testing.T) {
	st, err := OpenState(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hub := NewHub(1024, 1<<20, 0)
	h := &harness{t: t, state: st, hub: hub, fsm: NewFSM(st, hub)}
	h.mustApply(CmdClusterInit, ClusterInit{ClusterID: "c1", ClusterCIDR: "10.240.0.0/16", SubnetBits: 31, CreatedAt: t0})
	res := h.apply(CmdNodeRegister, NodeRegister{ID: "n1", Role: api.RoleWorker, At: t0})
	want := `cluster range "10.240.0.0/16" /31 is not usable: --subnet-bits 31 leaves no address for a container`
	if err := asErr(res); !api.IsCode(err, api.CodeInternal) || !strings.Contains(err.Error(), want) {
		t.Errorf("register a node in a cluster of /31 node subnets = %v, want an internal error containing %q", res, want)
	}
}

// TestNodeMeshKeys: a node's mesh end is recorded and kept when a later
// registration says nothing of it; a key another node holds, or one that
// is not a key, is refused and changes nothing.
func TestNodeMeshKeys(t *testing.T) {
	h := newHarness(t)
	d1 := h.registerNode("n1").Description
	d2 := h.registerNode("n2").Description
	k1 := "mXz1hQ9bT0pGZk0ZzXwVb5yA9k0VQkq3pVJr1gqH8Ck="
	m1 := &api.NodeMesh{PublicKey: k1, Port: 51820, Mode: api.MeshUserspace, MTU: 1440}
	d1.Mesh = m1
	n := h.mustApply(CmdNodeRegister, NodeRegister{ID: "n1", Description: d1, At: t0}).(*api.Node)
	if n.Description.Mesh == nil || *n.Description.Mesh != *m1 || n.Description.Hostname != "host-n1" {
		t.Fatalf("n1 after its mesh report: %+v", n.Description)
	}
	d1.Mesh, d1.EngineVersion = nil, "containerd 9"
	n = h.mustApply(CmdNodeRegister, NodeRegister{ID: "n1", Description: d1, At: t0}).(*api.Node)
	if n.Description.Mesh == nil || n.Description.Mesh.PublicKey != k1 {
		t.Errorf("a registration without a mesh dropped n1's: %+v", n.Description)
	}
	d2.Mesh = &api.NodeMesh{PublicKey: k1, Port: 51820, Mode: api.MeshKernel}
	res := h.apply(CmdNodeRegister, NodeRegister{ID: "n2", Description: d2, At: t0})
	if err := asErr(res); !api.IsCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "already has public key") {
		t.Errorf("n2 claiming n1's key = %v, want a conflict", res)
	}
	d2.Mesh = &api.NodeMesh{PublicKey: "bm90IGEga2V5", Port: 51820, Mode: api.MeshKernel}
	res = h.apply(CmdNodeRegister, NodeRegister{ID: "n2", Description: d2, At: t0})
	if err := asErr(res); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("n2 with a key that is not one = %v, want invalid", res)
	}
	h.state.View(func(v *View) error {
		if n2, _ := v.NodeByID("n2"); n2.Description.Mesh != nil {
			t.Errorf("a refused mesh report changed n2: %+v", n2.Description.Mesh)
		}
		return nil
	})
}
