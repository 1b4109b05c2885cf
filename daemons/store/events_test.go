package store

import (
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
)

func (h *harness) events(f EventFilter) []api.ClusterEvent {
	var out []api.ClusterEvent
	h.view(func(v *View) { out = v.Events(0, f) })
	return out
}

func types(evs []api.ClusterEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// eventScript is a cluster's life, as Raft entries, that causes one event
// of each type derived from state, plus an exec.
func eventScript(h *harness) []*raft.Log {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	code := 3
	web := spec("web", 1)
	web2 := web
	web2.Image = "localhost/busybox:2"
	web3 := web
	web3.Image = "localhost/busybox:3"
	sid := "sec1"
	secret := func(v uint64) SecretPut {
		return SecretPut{Secret: api.Secret{Meta: api.Meta{ID: sid}, Spec: api.SecretSpec{Name: "db"},
			Versions: []api.SecretVersion{{Version: v, CreatedAt: at(0), Size: 1}}}, Sealed: sealedOf("x"), At: at(int(v))}
	}
	restarted := task("t2", "svc1", 1, "")
	restarted.Attempt, restarted.Status.Message = 1, "restarted after failed"
	return []*raft.Log{
		h.entry(CmdNodeRegister, NodeRegister{ID: "n1", Role: api.RoleWorker, Description: api.NodeDescription{Hostname: "host-n1"}, At: at(0)}),
		h.entry(CmdNodeStatus, NodeStatus{ID: "n1", Status: api.NodeStatus{State: api.NodeReady, Timestamp: at(1), Message: "agent reports"}}),
		h.entry(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "svc1", CreatedAt: at(1), UpdatedAt: at(1)}, Spec: web}}),
		h.entry(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{task("t1", "svc1", 1, "n1")}, At: at(2)}),
		h.entry(CmdTaskStatus, TaskStatus{NodeID: "n1", At: at(3), Updates: []api.TaskStatusUpdate{{TaskID: "t1", Status: api.TaskStatus{State: api.TaskRunning}}}}),
		h.entry(CmdTaskStatus, TaskStatus{NodeID: "n1", At: at(4), Updates: []api.TaskStatusUpdate{{TaskID: "t1", Status: api.TaskStatus{State: api.TaskFailed, ExitCode: &code, Err: "exited with code 3"}}}}),
		// The same failure again changes nothing: no second event.
		h.entry(CmdTaskStatus, TaskStatus{NodeID: "n1", At: at(5), Updates: []api.TaskStatusUpdate{{TaskID: "t1", Status: api.TaskStatus{State: api.TaskFailed, ExitCode: &code, Err: "exited with code 3"}}}}),
		h.entry(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{restarted}, At: at(6)}),
		h.entry(CmdServiceUpdate, ServiceUpdate{ID: "svc1", Spec: web2, At: at(7)}),
		h.entry(CmdTaskPlan, api.TaskPlan{ServiceStatus: map[string]api.UpdateStatus{"svc1": {State: api.UpdatePaused, Message: "update paused: 1 task failed"}}, At: at(8)}),
		h.entry(CmdServiceUpdate, ServiceUpdate{ID: "svc1", Spec: web, Rollback: true, At: at(9)}),
		h.entry(CmdTaskPlan, api.TaskPlan{ServiceStatus: map[string]api.UpdateStatus{"svc1": {State: api.UpdateRolledBack, Message: "rolled back"}}, At: at(10)}),
		h.entry(CmdServiceUpdate, ServiceUpdate{ID: "svc1", Spec: web3, At: at(11)}),
		h.entry(CmdTaskPlan, api.TaskPlan{ServiceStatus: map[string]api.UpdateStatus{"svc1": {State: api.UpdateCompleted}}, At: at(12)}),
		h.entry(CmdSecretPut, secret(1)),
		h.entry(CmdSecretPut, secret(2)),
		h.entry(CmdEvent, EventRecord{Event: api.ClusterEvent{Type: api.EventExecRun, TaskID: "t2", ServiceID: "svc1", Service: "web",
			Message: "local root ran sh"}, At: at(20)}),
		h.entry(CmdNodeStatus, NodeStatus{ID: "n1", Status: api.NodeStatus{State: api.NodeDown, Timestamp: at(21), Message: "no heartbeat for 30s"}}),
	}
}

func TestEventsDerivedFromState(t *testing.T) {
	h := newHarness(t)
	var counted []string
	h.fsm.OnEvents = func(ts []string) { counted = append(counted, ts...) }
	for _, l := range eventScript(h) {
		if err := asErr(h.fsm.Apply(l)); err != nil {
			t.Fatalf("apply %s: %v", CommandType(l.Data[0]), err)
		}
	}
	evs := h.events(EventFilter{})
	want := []string{api.EventNodeUp, api.EventTaskFailed, api.EventTaskRestarted, api.EventUpdateStarted, api.EventUpdatePaused,
		api.EventRollbackStart, api.EventRolledBack, api.EventUpdateStarted, api.EventUpdateComplete, api.EventSecretRotated,
		api.EventExecRun, api.EventNodeDown}
	if got := types(evs); !reflect.DeepEqual(got, want) {
		t.Fatalf("events = %v\nwant %v", got, want)
	}
	if !reflect.DeepEqual(counted, want) {
		t.Errorf("OnEvents counted %v, want %v", counted, want)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Errorf("event %d (%s) has seq %d, want %d", i, e.Type, e.Seq, i+1)
		}
	}
	failed := evs[1]
	if failed.ExitCode == nil || *failed.ExitCode != 3 || failed.TaskID != "t1" || failed.Node != "host-n1" || failed.NodeID != "n1" ||
		failed.Service != "web" || failed.Message != "exited with code 3" || !failed.Time.Equal(t0.Add(4*time.Minute)) {
		t.Errorf("task.failed = %+v, want t1 on host-n1, exit 3, at t0+4m", failed)
	}
	if r := evs[2]; r.TaskID != "t2" || r.Message != "restarted after failed" {
		t.Errorf("task.restarted = %+v", r)
	}
	if p := evs[4]; p.Message != "update paused: 1 task failed" || p.ServiceID != "svc1" || !p.Time.Equal(t0.Add(8*time.Minute)) {
		t.Errorf("update.paused = %+v, want the status's message at t0+8m", p)
	}
	if rb := evs[5]; !strings.Contains(rb.Message, "by an operator") {
		t.Errorf("an operator's rollback: message %q, want it to say so", rb.Message)
	}
	if s := evs[9]; !strings.Contains(s.Message, "version 2") {
		t.Errorf("secret.rotated message %q, want the new version", s.Message)
	}
	if d := evs[11]; d.Node != "host-n1" || d.Message != "no heartbeat for 30s" || !d.Time.Equal(t0.Add(21*time.Minute)) {
		t.Errorf("node.down = %+v", d)
	}

	// Filters and since.
	if got := types(h.events(EventFilter{Types: map[string]bool{api.EventNodeDown: true, api.EventNodeUp: true}})); !reflect.DeepEqual(got, []string{api.EventNodeUp, api.EventNodeDown}) {
		t.Errorf("Events(type node.*) = %v", got)
	}
	if got := h.events(EventFilter{Node: "host-n1"}); len(got) != 3 {
		t.Errorf("Events(node host-n1) = %v, want node.up, task.failed, node.down", types(got))
	}
	if got := h.events(EventFilter{Service: "web"}); len(got) != 9 {
		t.Errorf("Events(service web) = %v, want 9", types(got))
	}
	if got := h.events(EventFilter{Until: t0.Add(4 * time.Minute)}); len(got) != 2 {
		t.Errorf("Events(until t0+4m) = %v, want 2", types(got))
	}
	h.view(func(v *View) {
		if got := v.Events(10, EventFilter{}); len(got) != 2 || got[0].Seq != 11 {
			t.Errorf("Events(since 10) = %v, want seqs 11 and 12", got)
		}
		if v.LastEventSeq() != 12 {
			t.Errorf("LastEventSeq = %d, want 12", v.LastEventSeq())
		}
	})
}

func TestAutomaticRollbackEvent(t *testing.T) {
	h := newHarness(t)
	s := h.createService("svc1", spec("web", 1))
	web2 := spec("web", 1)
	web2.Image = "localhost/busybox:2"
	u := h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: s.ID, Spec: web2, At: t0}).(*api.Service)
	h.mustApply(CmdTaskPlan, api.TaskPlan{Rollbacks: []api.Rollback{{ServiceID: s.ID, SpecVersion: u.SpecVersion, Reason: "2 tasks failed"}}, At: t0.Add(time.Minute)})
	evs := h.events(EventFilter{Types: map[string]bool{api.EventRollbackStart: true}})
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "2 tasks failed") || !strings.Contains(evs[0].Message, "automatically") {
		t.Fatalf("automatic rollback events = %+v, want one saying why, automatically", evs)
	}
}

func TestRecordedEventIsValidated(t *testing.T) {
	h := newHarness(t)
	for _, c := range []EventRecord{
		{Event: api.ClusterEvent{Type: api.EventTaskFailed, TaskID: "t1"}, At: t0},
		{Event: api.ClusterEvent{Type: api.EventExecRun}, At: t0},
		{Event: api.ClusterEvent{Type: api.EventExecRun, TaskID: "t1"}},
		{Event: api.ClusterEvent{Type: api.EventExecRun, TaskID: "t1", Message: strings.Repeat("x", 600)}, At: t0},
	} {
		if err := asErr(h.apply(CmdEvent, c)); !api.IsCode(err, api.CodeInvalid) {
			t.Errorf("CmdEvent(%+v) = %v, want invalid", c.Event, err)
		}
	}
	if evs := h.events(EventFilter{}); len(evs) != 0 {
		t.Errorf("refused events were stored: %v", evs)
	}
}

// failTasks creates n tasks on n1 and fails them, at time at.
func (h *harness) failTasks(prefix string, n int, at time.Time) {
	h.t.Helper()
	var creates []api.Task
	var ups []api.TaskStatusUpdate
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		creates = append(creates, task(id, "svc1", uint64(i+1), "n1"))
		ups = append(ups, api.TaskStatusUpdate{TaskID: id, Status: api.TaskStatus{State: api.TaskFailed, Err: "boom"}})
	}
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: creates, At: at})
	h.mustApply(CmdTaskStatus, TaskStatus{NodeID: "n1", Updates: ups, At: at})
}

func TestEventRetention(t *testing.T) {
	h := newHarness(t)
	h.fsm.Events = EventOptions{Max: 5}
	h.registerNode("n1")
	h.createService("svc1", spec("web", 1))
	h.failTasks("a", 8, t0)
	evs := h.events(EventFilter{})
	if len(evs) != 5 || evs[0].Seq != 4 || evs[4].Seq != 8 {
		t.Fatalf("after 8 events with Max 5: %d events, seqs %d..%d; want 5, seqs 4..8", len(evs), evs[0].Seq, evs[len(evs)-1].Seq)
	}
	// Eight days later, the old ones are gone whatever the count.
	h.failTasks("b", 1, t0.Add(8*24*time.Hour))
	evs = h.events(EventFilter{})
	if len(evs) != 1 || evs[0].Seq != 9 || evs[0].TaskID != "b0" {
		t.Errorf("after an event 8 days on: %+v, want only seq 9", evs)
	}
}

// Every manager applies the same entries, in batches of its own: they
// hold the same events, seqs and times, whatever their clocks.
func TestEventsReplayIdentical(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	la, lb := eventScript(a), eventScript(b)
	for _, l := range la {
		a.fsm.Apply(l)
	}
	b.fsm.ApplyBatch(lb[:7])
	b.fsm.ApplyBatch(lb[7:])
	ea, eb := a.events(EventFilter{}), b.events(EventFilter{})
	if len(ea) == 0 || !reflect.DeepEqual(ea, eb) {
		t.Errorf("events differ between two replays:\n%+v\n%+v", ea, eb)
	}
	// Replaying entries already applied adds nothing.
	b.fsm.ApplyBatch(lb)
	if eb2 := b.events(EventFilter{}); !reflect.DeepEqual(eb, eb2) {
		t.Errorf("a replay of applied entries changed the events: %d, then %d", len(eb), len(eb2))
	}
}

func TestEventsSurviveSnapshotRestore(t *testing.T) {
	h := newHarness(t)
	for _, l := range eventScript(h) {
		h.fsm.Apply(l)
	}
	want := h.events(EventFilter{})
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	o := newHarness(t)
	if err := o.fsm.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if got := o.events(EventFilter{}); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored events:\n%+v\nwant\n%+v", got, want)
	}
	// The seq goes on from the snapshot's.
	o.index = h.index
	o.mustApply(CmdNodeStatus, NodeStatus{ID: "n1", Status: api.NodeStatus{State: api.NodeReady, Timestamp: t0.Add(time.Hour)}})
	if got := o.events(EventFilter{}); len(got) != len(want)+1 || got[len(got)-1].Seq != uint64(len(want)+1) {
		t.Errorf("after restore, the next event has seq %d, want %d", got[len(got)-1].Seq, len(want)+1)
	}
}

func TestEventsOff(t *testing.T) {
	h := newHarness(t)
	h.fsm.Events = EventOptions{Off: true}
	h.registerNode("n1")
	h.createService("svc1", spec("web", 1))
	h.failTasks("a", 3, t0)
	if evs := h.events(EventFilter{}); len(evs) != 0 {
		t.Errorf("with events off: %d events", len(evs))
	}
}

func TestCanaryPromotedEvent(t *testing.T) {
	h := newHarness(t)
	s := h.createService("svc1", spec("web", 4))
	web2 := spec("web", 4)
	web2.Image = "localhost/busybox:2"
	web2.UpdateConfig = api.UpdateConfig{Canary: "1"}
	u := h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: s.ID, Spec: web2, At: t0}).(*api.Service)
	if !u.InCanary() {
		t.Fatalf("update with a canary: status %+v, want canaries waiting", u.UpdateStatus)
	}
	h.mustApply(CmdServicePromote, ServicePromote{ID: s.ID, SpecVersion: u.SpecVersion, At: t0.Add(time.Minute)})
	evs := h.events(EventFilter{Types: map[string]bool{api.EventCanaryPromoted: true}})
	if len(evs) != 1 || evs[0].Message != "1 canaries promoted" || evs[0].Service != "web" {
		t.Fatalf("canary.promoted events = %+v, want one for web's canary", evs)
	}
	// A plan's status for the same update keeps the promotion: no second event.
	h.mustApply(CmdTaskPlan, api.TaskPlan{ServiceStatus: map[string]api.UpdateStatus{s.ID: {SpecVersion: u.SpecVersion, State: api.UpdateUpdating, Updated: 1}}, At: t0.Add(2 * time.Minute)})
	if evs := h.events(EventFilter{Types: map[string]bool{api.EventCanaryPromoted: true}}); len(evs) != 1 {
		t.Fatalf("canary.promoted after a plan's status: %d events, want still 1", len(evs))
	}
}
