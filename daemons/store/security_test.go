package store

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
)

// A node reports only its own tasks, at addresses in its own subnet: the
// FSM skips the rest, whoever passed the report on.
func TestTaskStatusHeldToTheNodeAndItsSubnet(t *testing.T) {
	h := newHarness(t)
	n1, n2 := h.registerNode("n1"), h.registerNode("n2")
	h.createService("s1", spec("web", 2))
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{task("t1", "s1", 1, "n1"), task("t2", "s1", 2, "n2")}, At: t0})
	in1 := strings.TrimSuffix(n1.Subnet, "0/24") + "7"
	for _, c := range []struct {
		what    string
		node    string
		task    string
		addr    string
		applied int
		skipped string
	}{
		{"its own task, its own subnet", "n1", "t1", in1, 1, ""},
		{"its own task, no address", "n1", "t1", "", 1, ""},
		{"another node's task", "n1", "t2", in1, 0, "not assigned to this node"},
		{"its own task at another node's address", "n1", "t1", strings.TrimSuffix(n2.Subnet, "0/24") + "9", 0, "not in node n1's subnet"},
		{"its own task at an outside address", "n1", "t1", "6.6.6.6", 0, "not in node n1's subnet"},
		{"its own task at a bad address", "n1", "t1", "not-an-ip", 0, "not in node n1's subnet"},
	} {
		st := api.TaskStatus{State: api.TaskRunning, Addr: c.addr, Message: c.what}
		res := h.apply(CmdTaskStatus, TaskStatus{NodeID: c.node, Updates: []api.TaskStatusUpdate{{TaskID: c.task, Status: st}}, At: t0})
		r, ok := res.(*api.TaskStatusResult)
		if !ok {
			t.Fatalf("%s: result %v", c.what, res)
		}
		if r.Applied != c.applied || c.skipped != "" && (len(r.Skipped) != 1 || !strings.Contains(r.Skipped[0], c.skipped)) {
			t.Errorf("TaskStatus(%s) = applied %d, skipped %v; want applied %d, skipped saying %q", c.what, r.Applied, r.Skipped, c.applied, c.skipped)
		}
	}
	if err := asErr(h.apply(CmdTaskStatus, TaskStatus{NodeID: "gone", Updates: []api.TaskStatusUpdate{{TaskID: "t1"}}, At: t0})); !api.IsCode(err, api.CodeNotFound) {
		t.Errorf("TaskStatus from an unknown node = %v, want not found", err)
	}
}

// A removed node goes on the deny list until its certificates expire: it
// is refused as it registers again, and the list forgets it afterwards.
func TestRemovedNodeStaysDenied(t *testing.T) {
	h := newHarness(t)
	h.registerNode("n1")
	h.mustApply(CmdNodeRemove, NodeRemove{ID: "n1", Force: true, At: t0, RevokeUntil: t0.Add(time.Hour)})
	h.view(func(v *View) {
		if !v.Revoked(RevokedNode, "n1", t0.Add(time.Minute)) || v.Revoked(RevokedNode, "n1", t0.Add(2*time.Hour)) {
			t.Errorf("Revoked(n1) a minute / two hours after its removal (for an hour) = %v / %v, want true / false",
				v.Revoked(RevokedNode, "n1", t0.Add(time.Minute)), v.Revoked(RevokedNode, "n1", t0.Add(2*time.Hour)))
		}
	})
	err := asErr(h.apply(CmdNodeRegister, NodeRegister{ID: "n1", Role: api.RoleManager, Description: api.NodeDescription{Hostname: "back"}, At: t0.Add(time.Minute)}))
	if !api.IsCode(err, api.CodeForbidden) || !strings.Contains(err.Error(), "removed") {
		t.Errorf("NodeRegister of a removed node = %v, want it refused as removed", err)
	}
	// After the certificates' lifetime the entry goes with the next change.
	h.registerNode("n2")
	h.mustApply(CmdNodeRemove, NodeRemove{ID: "n2", Force: true, At: t0.Add(2 * time.Hour), RevokeUntil: t0.Add(3 * time.Hour)})
	h.view(func(v *View) {
		if rs := v.Revocations(); len(rs) != 1 || rs[0].ID != "n2" {
			t.Errorf("the deny list after n1's entry expired: %+v, want n2 only", rs)
		}
	})
}

func TestOperatorsPutDropAndDeny(t *testing.T) {
	h := newHarness(t)
	op := api.Operator{Name: "ana", Role: "viewer", CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour)}
	h.mustApply(CmdOperatorPut, OperatorPut{Operator: op})
	op.Role = "admin"
	h.mustApply(CmdOperatorPut, OperatorPut{Operator: op}) // a new certificate, another role
	h.view(func(v *View) {
		if got, ok := v.Operator("ana"); !ok || got.Role != "admin" || len(v.Operators()) != 1 {
			t.Errorf("operators after two puts of ana: %+v", v.Operators())
		}
	})
	h.mustApply(CmdOperatorDrop, OperatorDrop{Name: "ana", At: t0, RevokeUntil: t0.Add(24 * time.Hour)})
	if err := asErr(h.apply(CmdOperatorDrop, OperatorDrop{Name: "ana", At: t0, RevokeUntil: t0.Add(time.Hour)})); !api.IsCode(err, api.CodeNotFound) {
		t.Errorf("dropping ana twice = %v, want not found", err)
	}
	op.CreatedAt = t0.Add(time.Minute)
	if err := asErr(h.apply(CmdOperatorPut, OperatorPut{Operator: op})); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("a new certificate for a removed operator's name while it is denied = %v, want a conflict", err)
	}
}

// A request applied again answers its first result and changes nothing;
// requests are forgotten after OnceWindow.
func TestOnceAppliesARequestOnce(t *testing.T) {
	h := newHarness(t)
	create := func(reqID, svcID string, at time.Time) any {
		inner, _ := Encode(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: svcID}, Spec: spec("web", 1)}})
		b, err := EncodeOnce(Once{RequestID: reqID, At: at, Command: inner})
		if err != nil {
			t.Fatal(err)
		}
		h.index++
		return h.fsm.Apply(&raft.Log{Index: h.index, Term: 1, Type: raft.LogCommand, Data: b})
	}
	first, ok := create("r1/1", "s1", t0).(*api.Service)
	if !ok {
		t.Fatalf("the first create: %v", first)
	}
	again := create("r1/1", "s2", t0.Add(time.Second))
	raw, ok := again.(Replayed)
	if !ok || !strings.Contains(string(raw), `"id":"s1"`) {
		t.Errorf("the same request again = %v, want the first result (service s1)", again)
	}
	if err := asErr(create("r2/1", "s3", t0.Add(2*time.Second))); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("another request creating web = %v, want a conflict", err)
	}
	if err := asErr(create("r2/1", "s4", t0.Add(3*time.Second))); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("that request again = %v, want its first answer, the conflict", err)
	}
	h.view(func(v *View) {
		if n := v.ServiceCount(); n != 1 {
			t.Errorf("%d services after one create sent twice, want 1", n)
		}
	})
	// Past the window a request is forgotten (and its ID may come back).
	create(fmt.Sprintf("r%d/1", 3), "s5", t0.Add(OnceWindow+time.Minute))
	h.view(func(v *View) {
		if v.OnceApplied("r1/1") || !v.OnceApplied("r3/1") {
			t.Errorf("after the window: r1 remembered %v, r3 remembered %v; want false, true", v.OnceApplied("r1/1"), v.OnceApplied("r3/1"))
		}
	})
}

// A task written off while its node was down is taken back when its node
// reports it running, if it is still wanted; not once it was stopped, and
// never a task that ended.
func TestWrittenOffTaskReadoptedOnReconnect(t *testing.T) {
	h := newHarness(t)
	h.registerNode("n1")
	h.createService("s1", spec("web", 3))
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{task("t1", "s1", 1, "n1"), task("t2", "s1", 2, "n1"), task("t3", "s1", 3, "n1")}, At: t0})
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Updates: []api.TaskChange{
		{ID: "t1", State: api.TaskOrphaned},
		{ID: "t2", State: api.TaskOrphaned, DesiredState: api.TaskShutdown},
		{ID: "t3", State: api.TaskFailed}}})
	run := api.TaskStatus{State: api.TaskRunning, Offline: &api.OfflineRun{Restarts: 2}}
	res := h.apply(CmdTaskStatus, TaskStatus{NodeID: "n1", At: t0.Add(time.Minute), Updates: []api.TaskStatusUpdate{
		{TaskID: "t1", Status: run}, {TaskID: "t2", Status: run}, {TaskID: "t3", Status: run}}})
	r := res.(*api.TaskStatusResult)
	if r.Applied != 1 || len(r.Skipped) != 2 {
		t.Fatalf("reports of a written-off, a stopped and a failed task: applied %d, skipped %v; want the written-off one alone", r.Applied, r.Skipped)
	}
	h.view(func(v *View) {
		t1, _ := v.Task("t1")
		if t1.Status.State != api.TaskRunning || t1.Status.Offline == nil || !t1.Status.Offline.Readopted || t1.Status.Offline.Restarts != 2 {
			t.Errorf("t1 after its node's report: %+v, want running, readopted, its 2 local restarts kept", t1.Status)
		}
	})
	// A later report that does not repeat the history (health, an agent
	// that lost its record) keeps it.
	h.mustApply(CmdTaskStatus, TaskStatus{NodeID: "n1", At: t0.Add(2 * time.Minute), Updates: []api.TaskStatusUpdate{
		{TaskID: "t1", Status: api.TaskStatus{State: api.TaskRunning, Health: api.HealthHealthy}}}})
	h.view(func(v *View) {
		t1, _ := v.Task("t1")
		if t1.Status.Health != api.HealthHealthy || t1.Status.Offline == nil || !t1.Status.Offline.Readopted || t1.Status.Offline.Restarts != 2 {
			t.Errorf("t1 after a later report without its history: %+v, want healthy, still readopted with 2 local restarts", t1.Status)
		}
	})
}

// A node's journal is taken only where it follows on, by hash, from what
// the managers hold: a resend is skipped, an altered or gapped batch is
// refused whole.
func TestNodeJournalChain(t *testing.T) {
	h := newHarness(t)
	h.registerNode("n1")
	var chain []api.JournalEntry
	prev := ""
	for i := range 4 {
		e := api.JournalEntry{Seq: uint64(i + 1), At: t0, Node: "n1", User: "alice", Action: api.LocalStop, Task: "t1", Result: "ok", Prev: prev}
		e.Hash = e.ComputeHash()
		prev = e.Hash
		chain = append(chain, e)
	}
	h.mustApply(CmdNodeJournal, NodeJournal{NodeID: "n1", Entries: chain[:2]})
	h.mustApply(CmdNodeJournal, NodeJournal{NodeID: "n1", Entries: chain[:3]}) // a resend and one more
	altered := chain[3]
	altered.User = "mallory"
	if err := asErr(h.apply(CmdNodeJournal, NodeJournal{NodeID: "n1", Entries: []api.JournalEntry{altered}})); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("an altered entry: %v, want refused", err)
	}
	if err := asErr(h.apply(CmdNodeJournal, NodeJournal{NodeID: "n2", Entries: chain[3:]})); err == nil {
		t.Errorf("another node's upload of n1's entries was taken")
	}
	h.view(func(v *View) {
		got := v.Journal("n1")
		if len(got) != 3 || api.VerifyJournal(got, 0, "") != nil {
			t.Errorf("n1's journal: %d entries (%v), want the 3 good ones, chained", len(got), api.VerifyJournal(got, 0, ""))
		}
	})
}
