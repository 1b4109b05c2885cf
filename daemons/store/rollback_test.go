package store

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// TestAutoRollback: a plan's rollback returns the service to its previous
// spec, keeps the tasks the update never reached (SameAsVersions), and is
// dropped if an operator updated the service since the plan was made. A
// status for a replaced update is stale and dropped too.
func TestAutoRollback(t *testing.T) {
	h := newHarness(t)
	v1 := spec("web", 3)
	s := h.createService("web", v1)
	first := s.SpecVersion
	v2 := v1
	v2.Image = "localhost/busybox:broken"
	v2.UpdateConfig.FailureAction = api.FailureRollback
	s = h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "web", Spec: v2, At: t0}).(*api.Service)
	second := s.SpecVersion
	if s.PreviousSpecVersion != first || s.UpdateStatus.SpecVersion != second || s.UpdateStatus.State != api.UpdateUpdating {
		t.Fatalf("after an update: previous version %d (want %d), status %+v", s.PreviousSpecVersion, first, s.UpdateStatus)
	}

	// A stale rollback (planned against another version) changes nothing.
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Rollbacks: []api.Rollback{{ServiceID: "web", SpecVersion: second - 1, Reason: "x"}}})
	if got := h.service("web"); got.SpecVersion != second || got.Spec.Image != v2.Image {
		t.Fatalf("a stale rollback changed the service: %+v", got)
	}

	at := t0.Add(time.Minute)
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: at, Rollbacks: []api.Rollback{{ServiceID: "web", SpecVersion: second, Reason: "1 of 3 tasks failed"}}})
	got := h.service("web")
	st := got.UpdateStatus
	if got.Spec.Image != v1.Image || got.SpecVersion <= second || !slices.Equal(got.SameAsVersions, []uint64{first}) || got.PreviousSpec != nil ||
		st.State != api.UpdateRollingBack || !st.Automatic || st.Message != "rolling back: 1 of 3 tasks failed" || st.SpecVersion != got.SpecVersion {
		t.Fatalf("after the rollback: %+v, status %+v", got, st)
	}
	if !got.IsCurrent(&api.Task{SpecVersion: first}) || got.IsCurrent(&api.Task{SpecVersion: second}) {
		t.Errorf("IsCurrent: tasks of the first spec must be current again, of the failed one not")
	}

	// A status written for the failed update no longer applies.
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: at, ServiceStatus: map[string]api.UpdateStatus{
		"web": {State: api.UpdateCompleted, SpecVersion: second}}})
	if got := h.service("web"); got.UpdateStatus.State != api.UpdateRollingBack {
		t.Errorf("a stale status replaced the rollback's: %+v", got.UpdateStatus)
	}
	// A second rollback has nothing to go back to.
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: at, Rollbacks: []api.Rollback{{ServiceID: "web", SpecVersion: got.SpecVersion, Reason: "again"}}})
	if again := h.service("web"); again.SpecVersion != got.SpecVersion {
		t.Errorf("a rollback of a rollback changed the spec version %d → %d", got.SpecVersion, again.SpecVersion)
	}
}

// TestAutoRollbackDeployment: the services updated by one deployment roll
// back together; a service updated since by another deployment stays.
func TestAutoRollbackDeployment(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"a", "b", "c", "d"} {
		h.createService(n, spec(n, 1))
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		sp := spec(n, 1)
		sp.Image = "localhost/busybox:2"
		dep := "stack@1"
		if n == "d" {
			dep = "other@1"
		}
		h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: n, Spec: sp, At: t0, Deployment: dep})
	}
	a := h.service("a")
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Rollbacks: []api.Rollback{{ServiceID: "a", SpecVersion: a.SpecVersion, Reason: "a failed"}}})
	for _, n := range []string{"a", "b", "c"} {
		s := h.service(n)
		if s.Spec.Image != "localhost/busybox" || !s.Rolling() || s.UpdateStatus.Deployment != "stack@1" {
			t.Errorf("service %s of the deployment: image %s, status %+v; want rolled back", n, s.Spec.Image, s.UpdateStatus)
		}
	}
	if d := h.service("d"); d.Spec.Image != "localhost/busybox:2" || d.Rolling() {
		t.Errorf("service d of another deployment was rolled back: %+v", d.UpdateStatus)
	}
}

// TestRollbackChainKeepsTasks: update, roll back, update again, roll back
// again: the tasks made before the first update, which neither update
// reached, are still current after the second rollback.
func TestRollbackChainKeepsTasks(t *testing.T) {
	h := newHarness(t)
	v1 := spec("web", 3)
	first := h.createService("web", v1).SpecVersion
	for i, img := range []string{"localhost/busybox:2", "localhost/busybox:3"} {
		v := v1
		v.Image = img
		s := h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "web", Spec: v, At: t0}).(*api.Service)
		h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Rollbacks: []api.Rollback{{ServiceID: "web", SpecVersion: s.SpecVersion, Reason: "failed"}}})
		got := h.service("web")
		if !got.IsCurrent(&api.Task{SpecVersion: first}) {
			t.Fatalf("after rollback %d: tasks of version %d are not current (spec version %d, same as %v)", i+1, first, got.SpecVersion, got.SameAsVersions)
		}
		if got.IsCurrent(&api.Task{SpecVersion: s.SpecVersion}) {
			t.Fatalf("after rollback %d: tasks of the failed version %d are current", i+1, s.SpecVersion)
		}
	}
}

// TestAutoRollbackRefused: an automatic rollback whose previous spec
// claims what another service has taken since (a route, a port, a name)
// is refused, as the same update would be: the service keeps its spec and
// its update pauses, saying why; the indexes still hold one owner each.
func TestAutoRollbackRefused(t *testing.T) {
	route := func(host string) []api.IngressRoute { return []api.IngressRoute{{Host: host, Port: 80}} }
	for _, c := range []struct {
		name  string
		v1    func(*api.ServiceSpec)       // web's spec before the update
		v2    func(*api.ServiceSpec)       // its update
		taker func(*api.ServiceSpec)       // what the other service takes since
		owner func(v *View) (string, bool) // who owns it after the refused rollback, and whether that is "other"
		want  string
	}{
		{"a route", func(s *api.ServiceSpec) { s.Ingress = route("shop.example") }, func(s *api.ServiceSpec) { s.Ingress = route("new.example") },
			func(s *api.ServiceSpec) { s.Ingress = route("shop.example") },
			func(v *View) (string, bool) {
				o := v.RouteOwner(api.IngressRoute{Host: "shop.example", Port: 80}.Key(), "")
				return o, o == "id-other"
			}, "shop.example"},
		{"a port", func(s *api.ServiceSpec) { s.Ports = []api.PortConfig{{Target: 80, Published: 8080}} }, func(s *api.ServiceSpec) { s.Ports = []api.PortConfig{{Target: 80, Published: 8081}} },
			func(s *api.ServiceSpec) { s.Ports = []api.PortConfig{{Target: 80, Published: 8080}} },
			func(v *View) (string, bool) {
				o, _ := v.portOwner(api.PortConfig{Target: 80, Published: 8080}, "")
				return o, o == "id-other"
			}, "port 8080/tcp"},
		{"a name", func(s *api.ServiceSpec) { s.Name = "web" }, func(s *api.ServiceSpec) { s.Name = "web2" },
			func(s *api.ServiceSpec) { s.Name = "web" },
			func(v *View) (string, bool) {
				o := string(v.tx.Bucket(bServiceNames).Get([]byte("web")))
				return o, o == "id-other"
			}, `a service named "web" exists`},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			v1 := spec("web", 1)
			c.v1(&v1)
			h.createService("id-web", v1)
			h.createService("id-other", spec("other", 1))
			v2 := v1
			c.v2(&v2)
			s := h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "id-web", Spec: v2, At: t0}).(*api.Service)
			taken := spec("other", 1)
			c.taker(&taken)
			h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "id-other", Spec: taken, At: t0})

			h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0.Add(time.Minute), Rollbacks: []api.Rollback{{ServiceID: "id-web", SpecVersion: s.SpecVersion, Reason: "1 of 1 tasks failed"}}})
			got := h.service("id-web")
			if got.SpecVersion != s.SpecVersion || !api.SpecEqual(&got.Spec, &v2) {
				t.Errorf("the refused rollback changed the spec: %+v", got.Spec)
			}
			if st := got.UpdateStatus; st.State != api.UpdatePaused || !strings.Contains(st.Message, "automatic rollback was refused") ||
				!strings.Contains(st.Message, c.want) || !strings.Contains(st.Message, "1 of 1 tasks failed") {
				t.Errorf("status %+v: want paused, saying the rollback was refused because of %s", st, c.want)
			}
			h.view(func(v *View) {
				if o, ok := c.owner(v); !ok {
					t.Errorf("after the refused rollback, %s is owned by %q, want id-other", c.want, o)
				}
			})
		})
	}
}

// TestAutoRollbackSwapsRoutes: a deployment that moved a route from one
// of its services to another rolls back as one: the route goes back,
// which checked one service at a time would look like a conflict.
func TestAutoRollbackSwapsRoutes(t *testing.T) {
	h := newHarness(t)
	a, b := spec("a", 1), spec("b", 1)
	a.Ingress = []api.IngressRoute{{Host: "shop.example", Port: 80}}
	h.createService("a", a)
	h.createService("b", b)
	a2, b2 := a, b
	a2.Ingress, b2.Ingress = nil, a.Ingress
	a2.Image, b2.Image = "localhost/busybox:2", "localhost/busybox:2" // an update of the tasks, part of the deployment
	h.mustApply(CmdDeploy, Deploy{ID: "stack@1", At: t0, Updates: []ServiceUpdate{{ID: "a", Spec: a2, At: t0}, {ID: "b", Spec: b2, At: t0}}})
	got := h.service("b")
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0.Add(time.Minute), Rollbacks: []api.Rollback{{ServiceID: "b", SpecVersion: got.SpecVersion, Reason: "b failed"}}})
	for id, want := range map[string]int{"a": 1, "b": 0} {
		s := h.service(id)
		if len(s.Spec.Ingress) != want || !s.Rolling() {
			t.Errorf("service %s: routes %v, status %+v; want %d route(s), rolling back", id, s.Spec.Ingress, s.UpdateStatus, want)
		}
	}
	h.view(func(v *View) {
		if o := v.RouteOwner(a.Ingress[0].Key(), ""); o != "a" {
			t.Errorf("the route is owned by %q after the rollback, want a", o)
		}
	})
}
