package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/warren-edge/warren/daemons/api"
)

func newService(id string, s api.ServiceSpec) api.Service {
	return api.Service{Meta: api.Meta{ID: id, CreatedAt: t0, UpdatedAt: t0}, Spec: s}
}

func withImage(s api.ServiceSpec, image string) api.ServiceSpec {
	s.Image = image
	return s
}

func (h *harness) service(id string) *api.Service {
	h.t.Helper()
	var s *api.Service
	h.view(func(v *View) {
		var err error
		if s, err = v.Service(id); err != nil {
			h.t.Fatalf("Service(%s): %v", id, err)
		}
	})
	return s
}

// dump is every key and value of the state database but the applied
// index, one line each.
func (h *harness) dump() string {
	var b bytes.Buffer
	h.state.View(func(v *View) error {
		return v.tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			return bk.ForEach(func(k, val []byte) error {
				if bytes.Equal(name, bMeta) && bytes.Equal(k, kAppliedIndex) {
					return nil
				}
				fmt.Fprintf(&b, "%s %q %q\n", name, k, val)
				return nil
			})
		})
	})
	return b.String()
}

func TestDeployRecordsDeploymentOnAll(t *testing.T) {
	h := newHarness(t)
	h.createService("a", spec("web", 1))
	h.createService("c", spec("db", 1))
	res := h.mustApply(CmdDeploy, Deploy{ID: "d1", Name: "shop", At: t0,
		Creates: []api.Service{newService("b", spec("api", 1))},
		Updates: []ServiceUpdate{
			{ID: "a", Spec: withImage(spec("web", 1), "localhost/nginx")},
			{ID: "c", Spec: spec("db", 1)}, // unchanged
		}}).(*DeployResult)
	if got, want := fmt.Sprint(res.Services), "[{b api created} {a web updated} {c db unchanged}]"; got != want {
		t.Errorf("deploy d1 result %s; want %s", got, want)
	}
	for _, id := range []string{"a", "b"} {
		s := h.service(id)
		if s.UpdateStatus == nil || s.UpdateStatus.Deployment != "d1" || s.UpdateStatus.State != api.UpdateUpdating {
			t.Errorf("after deploy d1, service %s has UpdateStatus %+v; want updating, deployment d1", id, s.UpdateStatus)
		}
		if s.SpecVersion != h.index {
			t.Errorf("service %s SpecVersion %d; want the deploy's index %d", id, s.SpecVersion, h.index)
		}
	}
	if s := h.service("c"); s.UpdateStatus != nil {
		t.Errorf("an unchanged service got UpdateStatus %+v; want none", s.UpdateStatus)
	}
	if s := h.service("a"); s.PreviousSpec == nil || s.PreviousSpec.Image != "localhost/busybox" {
		t.Errorf("updated service a keeps PreviousSpec %+v; want the busybox spec", s.PreviousSpec)
	}
}

func TestDeployAllOrNothing(t *testing.T) {
	port := func(p uint16) api.PortConfig { return api.PortConfig{Target: 80, Published: p} }
	for _, tc := range []struct {
		name string
		d    Deploy
		want string
	}{
		{"a create clashes with an existing name", Deploy{
			Creates: []api.Service{newService("n1", spec("new", 1, port(8081))), newService("n2", spec("db", 1))},
			Updates: []ServiceUpdate{{ID: "a", Spec: withImage(spec("web", 1, port(8080)), "localhost/nginx")}},
		}, api.CodeConflict},
		{"two creates publish the same port", Deploy{
			Creates: []api.Service{newService("n1", spec("new", 1, port(9000))), newService("n2", spec("other", 1, port(9000)))},
		}, api.CodeConflict},
		{"an update of a missing service", Deploy{
			Creates: []api.Service{newService("n1", spec("new", 1))},
			Updates: []ServiceUpdate{{ID: "a", Spec: withImage(spec("web", 1, port(8080)), "localhost/nginx")}, {ID: "zz", Spec: spec("zz", 1)}},
			Removes: []string{"db"},
		}, api.CodeNotFound},
		{"an update changes a service's mode", Deploy{
			Updates: []ServiceUpdate{{ID: "a", Spec: api.ServiceSpec{Name: "web", Image: "x", Mode: api.ModeGlobal}}},
		}, api.CodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.createService("a", spec("web", 1, port(8080)))
			h.createService("db", spec("db", 1))
			before := h.dump()
			hubBefore := h.hub.Last()
			tc.d.ID, tc.d.At = "d1", t0
			// In one batch with a good command on each side, as Raft may
			// deliver it: those apply, the deployment changes nothing.
			logs := []*raft.Log{
				h.entry(CmdServiceCreate, ServiceCreate{Service: newService("x1", spec("x1", 1))}),
				h.entry(CmdDeploy, tc.d),
				h.entry(CmdServiceDelete, ServiceDelete{ID: "x1", At: t0}),
			}
			res := h.fsm.ApplyBatch(logs)
			if asErr(res[0]) != nil || asErr(res[2]) != nil {
				t.Fatalf("the commands around the deployment: %v, %v; want both applied", res[0], res[2])
			}
			if err := asErr(res[1]); !api.IsCode(err, tc.want) {
				t.Fatalf("deploy = %v; want a %s error", res[1], tc.want)
			}
			if after := h.dump(); after != before {
				t.Errorf("a refused deployment changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			// The hub saw the create and the delete around it, nothing else.
			ch, _, err := h.hub.Read(hubBefore, &Filter{}, 100, nil)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, c := range ch {
				kinds = append(kinds, c.Op+" "+c.ID)
			}
			if fmt.Sprint(kinds) != "[create x1 delete x1]" {
				t.Errorf("changes published for the batch: %v; want [create x1 delete x1]", kinds)
			}
		})
	}
}

func TestDeployPrunes(t *testing.T) {
	h := newHarness(t)
	h.createService("a", spec("web", 1))
	h.createService("old", spec("old", 1))
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{task("t1", "old", 1, "")}, At: t0})
	h.mustApply(CmdDeploy, Deploy{ID: "d1", At: t0, Removes: []string{"old", "gone-already"},
		Updates: []ServiceUpdate{{ID: "a", Spec: withImage(spec("web", 1), "localhost/nginx")}}})
	h.view(func(v *View) {
		if _, err := v.Service("old"); !api.IsCode(err, api.CodeNotFound) {
			t.Errorf("pruned service old: Service() = %v; want not found", err)
		}
		if tk, _ := v.Task("t1"); tk == nil || tk.DesiredState != api.TaskRemove {
			t.Errorf("task of pruned service: %+v; want desired remove", tk)
		}
	})
}

// A plan's rollback of one service of a deployment rolls back the others
// it updated; a service it created has nothing to roll back to: its update
// is paused, naming the service that failed.
func TestDeployRollbackRollsBackAll(t *testing.T) {
	h := newHarness(t)
	h.createService("a", spec("web", 1))
	h.createService("b", spec("api", 1))
	h.createService("other", spec("other", 1))
	h.mustApply(CmdDeploy, Deploy{ID: "d1", At: t0,
		Creates: []api.Service{newService("c", spec("new", 1))},
		Updates: []ServiceUpdate{
			{ID: "a", Spec: withImage(spec("web", 1), "localhost/nginx:2")},
			{ID: "b", Spec: withImage(spec("api", 1), "localhost/api:2")},
		}})
	h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "other", Spec: withImage(spec("other", 1), "localhost/other:2"), At: t0})
	a := h.service("a")
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Rollbacks: []api.Rollback{{ServiceID: "a", SpecVersion: a.SpecVersion, Reason: "task failed"}}})
	for _, id := range []string{"a", "b"} {
		s := h.service(id)
		if !s.Rolling() || s.Spec.Image != "localhost/busybox" || s.UpdateStatus.Deployment != "d1" || !s.UpdateStatus.Automatic {
			t.Errorf("after a's rollback, service %s: image %s, status %+v; want rolling back to busybox in deployment d1", id, s.Spec.Image, s.UpdateStatus)
		}
	}
	c := h.service("c")
	if st := c.UpdateStatus; st.State != api.UpdatePaused || st.Deployment != "d1" ||
		!strings.Contains(st.Message, "service web of deployment d1 failed: task failed") ||
		!strings.Contains(st.Message, "warrenctl service rm new") {
		t.Errorf("created service c: status %+v; want paused in d1, naming web and saying what to do", st)
	}
	if c.Spec.Image != "localhost/busybox" || c.SpecVersion != h.index-2 {
		t.Errorf("created service c: image %s, spec version %d; want its spec as created (version %d)", c.Spec.Image, c.SpecVersion, h.index-2)
	}
	if s := h.service("other"); s.Rolling() || s.Spec.Image != "localhost/other:2" {
		t.Errorf("service other, outside the deployment: image %s, status %+v; want left alone", s.Spec.Image, s.UpdateStatus)
	}
}

// TestDeployRollbackFromCreatedService: a service a deployment created
// fails its update. It has nothing to roll back to, so its update pauses
// with a message saying the deployment failed because of it and what to
// do; the services the deployment updated roll back, the others it
// created pause naming it. Each gets its event. A second rollback of a
// paused service changes nothing.
func TestDeployRollbackFromCreatedService(t *testing.T) {
	h := newHarness(t)
	stack := func(name string) api.ServiceSpec {
		sp := spec("shop-"+name, 1)
		sp.Labels = map[string]string{api.LabelStack: "shop"}
		return sp
	}
	h.createService("web", stack("web"))
	h.mustApply(CmdDeploy, Deploy{ID: "d1", Name: "shop", At: t0,
		Creates: []api.Service{newService("bad", stack("bad")), newService("db", stack("db"))},
		Updates: []ServiceUpdate{{ID: "web", Spec: withImage(stack("web"), "localhost/busybox:2")}}})
	bad, db := h.service("bad"), h.service("db")
	// db's update completed before bad's failed.
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, ServiceStatus: map[string]api.UpdateStatus{
		"db": {State: api.UpdateCompleted, SpecVersion: db.SpecVersion}}})
	seq := h.lastEventSeq()
	at := t0.Add(time.Minute)
	res := h.mustApply(CmdTaskPlan, api.TaskPlan{At: at, Rollbacks: []api.Rollback{
		{ServiceID: "bad", SpecVersion: bad.SpecVersion, Reason: "1 of 1 tasks of the new spec failed"},
		// Planned in the same pass: db is paused by then.
		{ServiceID: "db", SpecVersion: db.SpecVersion, Reason: "x"},
	}})
	if got := fmt.Sprint(res); !strings.Contains(got, "shop-db: its update is paused") {
		t.Errorf("the plan's result %q; want db's rollback skipped as paused", got)
	}

	st := h.service("bad").UpdateStatus
	for _, want := range []string{"update paused: deployment d1 failed because of this service: 1 of 1 tasks of the new spec failed",
		"shop-bad was created by this deployment and has nothing to roll back to (the services it updated roll back)",
		"fix the compose file and deploy the stack again, or remove the stack with warrenctl stack rm shop"} {
		if st.State != api.UpdatePaused || !strings.Contains(st.Message, want) {
			t.Errorf("failed created service: status %+v; want paused, saying %q", st, want)
		}
	}
	if got := h.service("bad"); got.SpecVersion != bad.SpecVersion || got.Spec.Image != bad.Spec.Image || st.Automatic || st.Deployment != "d1" {
		t.Errorf("failed created service: version %d, image %s, status %+v; want its spec kept (version %d), paused, in d1", got.SpecVersion, got.Spec.Image, st, bad.SpecVersion)
	}
	if st := h.service("db").UpdateStatus; st.State != api.UpdatePaused ||
		!strings.Contains(st.Message, "update paused: service shop-bad of deployment d1 failed: 1 of 1 tasks") ||
		!strings.Contains(st.Message, "warrenctl stack rm shop") {
		t.Errorf("other created service: status %+v; want paused, naming shop-bad", st)
	}
	if web := h.service("web"); !web.Rolling() || web.Spec.Image != "localhost/busybox" || !web.UpdateStatus.Automatic ||
		web.UpdateStatus.Message != "rolling back: service shop-bad of deployment d1 failed: 1 of 1 tasks of the new spec failed" {
		t.Errorf("updated service: image %s, status %+v; want rolling back, naming shop-bad", web.Spec.Image, web.UpdateStatus)
	}

	var got []string
	h.view(func(v *View) {
		for _, e := range v.Events(seq, EventFilter{}) {
			got = append(got, e.Type+" "+e.Service)
			if !e.Time.Equal(at) {
				t.Errorf("event %s of %s at %s; want the plan's time %s", e.Type, e.Service, e.Time, at)
			}
			if e.Message == "" || (e.Type == api.EventRollbackStart && !strings.Contains(e.Message, "automatically")) {
				t.Errorf("event %s of %s says %q; want why", e.Type, e.Service, e.Message)
			}
		}
	})
	slices.Sort(got)
	if want := []string{api.EventUpdatePaused + " shop-bad", api.EventUpdatePaused + " shop-db", api.EventRollbackStart + " shop-web"}; !slices.Equal(got, want) {
		t.Errorf("events of the failed deployment: %v; want %v", got, want)
	}

	// The same rollback again (a plan made before the first applied)
	// changes nothing and says so.
	before := h.lastEventSeq()
	res = h.mustApply(CmdTaskPlan, api.TaskPlan{At: at, Rollbacks: []api.Rollback{{ServiceID: "bad", SpecVersion: bad.SpecVersion, Reason: "again"}}})
	if fmt.Sprint(res) == "<nil>" || h.lastEventSeq() != before || !strings.Contains(h.service("bad").UpdateStatus.Message, "1 of 1 tasks") {
		t.Errorf("a second rollback of the paused service: result %v, events %d → %d, status %+v; want skipped, nothing changed",
			res, before, h.lastEventSeq(), h.service("bad").UpdateStatus)
	}
}

// TestDeployFirstRollbackPausesAll: the first deploy of a stack created
// every service; one fails: nothing can roll back, and every service is
// paused. A service created outside any deployment has nothing to roll
// back to and its rollback is skipped, as before.
func TestDeployFirstRollbackPausesAll(t *testing.T) {
	h := newHarness(t)
	h.mustApply(CmdDeploy, Deploy{ID: "d1", At: t0,
		Creates: []api.Service{newService("a", spec("a", 1)), newService("b", spec("b", 1))}})
	h.createService("lone", spec("lone", 1))
	a := h.service("a")
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Rollbacks: []api.Rollback{{ServiceID: "a", SpecVersion: a.SpecVersion, Reason: "a.1 failed"}}})
	for id, want := range map[string]string{
		"a": "update paused: deployment d1 failed because of this service: a.1 failed",
		"b": "update paused: service a of deployment d1 failed: a.1 failed"} {
		if st := h.service(id).UpdateStatus; st.State != api.UpdatePaused || !strings.HasPrefix(st.Message, want) ||
			!strings.HasSuffix(st.Message, "warrenctl service rm "+id) || strings.Contains(st.Message, "roll back)") {
			t.Errorf("service %s: status %+v; want paused, %q, removing it as the fix, and no word of services rolling back", id, st, want)
		}
	}
	lone := h.service("lone")
	res := h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Rollbacks: []api.Rollback{{ServiceID: "lone", SpecVersion: lone.SpecVersion, Reason: "x"}}})
	if fmt.Sprint(res) != "[lone: nothing to roll back to]" || h.service("lone").UpdateStatus != nil {
		t.Errorf("rollback of a service created alone: %v, status %+v; want skipped, nothing to roll back to", res, h.service("lone").UpdateStatus)
	}
}

// TestDeployResumes: the deployment after a failed one fixes the failed
// service and deploys the others unchanged: their paused updates start
// again as part of it (CanResume), each with an update.started event. A
// service no longer paused is left as it is.
func TestDeployResumes(t *testing.T) {
	h := newHarness(t)
	h.mustApply(CmdDeploy, Deploy{ID: "d1", At: t0,
		Creates: []api.Service{newService("a", spec("a", 1)), newService("b", spec("b", 1)), newService("c", spec("c", 1))}})
	a := h.service("a")
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Rollbacks: []api.Rollback{{ServiceID: "a", SpecVersion: a.SpecVersion, Reason: "a.1 failed"}}})
	for _, id := range []string{"a", "b", "c"} {
		if s := h.service(id); !CanResume(s) {
			t.Fatalf("service %s paused by its failed deployment: CanResume = false; status %+v", id, s.UpdateStatus)
		}
	}
	// c is updated by hand meanwhile: no longer paused.
	h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "c", Spec: withImage(spec("c", 1), "localhost/c:2"), At: t0})
	if c := h.service("c"); CanResume(c) {
		t.Fatalf("service c updated by hand: CanResume = true; status %+v", c.UpdateStatus)
	}
	seq := h.lastEventSeq()
	at := t0.Add(time.Minute)
	res := h.mustApply(CmdDeploy, Deploy{ID: "d2", At: at, Resumes: []string{"b", "c", "gone"},
		Updates: []ServiceUpdate{{ID: "a", Spec: withImage(spec("a", 1), "localhost/a:fixed")}}}).(*DeployResult)
	if got, want := fmt.Sprint(res.Services), "[{a a updated} {b b resumed} {c c unchanged}]"; got != want {
		t.Errorf("deploy d2 result %s; want %s", got, want)
	}
	for _, id := range []string{"a", "b"} {
		s := h.service(id)
		if st := s.UpdateStatus; st.State != api.UpdateUpdating || st.Deployment != "d2" || st.Message != "" || st.SpecVersion != s.SpecVersion {
			t.Errorf("service %s after deploy d2: status %+v; want updating in d2, its spec version %d", id, st, s.SpecVersion)
		}
	}
	if b := h.service("b"); b.SpecVersion != a.SpecVersion {
		t.Errorf("resumed service b: spec version %d; want its spec kept (%d)", b.SpecVersion, a.SpecVersion)
	}
	if c := h.service("c"); c.UpdateStatus.Deployment != "" || c.Spec.Image != "localhost/c:2" {
		t.Errorf("service c, updated by hand: %+v, image %s; want left as it was", c.UpdateStatus, c.Spec.Image)
	}
	var got []string
	h.view(func(v *View) {
		for _, e := range v.Events(seq, EventFilter{}) {
			got = append(got, e.Type+" "+e.Service)
		}
	})
	slices.Sort(got)
	if want := []string{api.EventUpdateStarted + " a", api.EventUpdateStarted + " b"}; !slices.Equal(got, want) {
		t.Errorf("events of deploy d2: %v; want %v", got, want)
	}
}

func (h *harness) lastEventSeq() uint64 {
	var seq uint64
	h.view(func(v *View) { seq = v.LastEventSeq() })
	return seq
}
