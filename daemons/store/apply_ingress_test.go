package store

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/warren-edge/warren/daemons/api"
)

func withRoutes(s api.ServiceSpec, routes ...api.IngressRoute) api.ServiceSpec {
	s.Ingress = routes
	api.NormalizeSpec(&s) // as the handlers store them
	return s
}

func rt(host, path string) api.IngressRoute {
	return api.IngressRoute{Host: host, Path: path, Port: 80}
}

// routeOwner is the service that claims host and path, by the index.
func (h *harness) routeOwner(host, path string) string {
	var id string
	h.view(func(v *View) { id = v.RouteOwner(rt(host, path).Key(), "") })
	return id
}

func TestServiceRouteConflicts(t *testing.T) {
	h := newHarness(t)
	h.createService("a", withRoutes(spec("shop", 1), rt("shop.example.com", "/api"), rt("*.example.com", "/")))
	for i, c := range []struct {
		name  string
		route api.IngressRoute
		want  string // "": accepted
	}{
		{"the same route", rt("shop.example.com", "/api"), `ingress route host=shop.example.com path=/api is already claimed by service "shop"`},
		{"the same route, written otherwise", rt("SHOP.example.com", "/api/"), "--ingress-rm shop.example.com/api shop"},
		{"the same wildcard", rt("*.example.com", ""), "--ingress-rm *.example.com shop"},
		{"another path", rt("shop.example.com", "/web"), ""},
		{"a longer path", rt("shop.example.com", "/api/v2"), ""},
		{"another host", rt("www.example.com", "/api"), ""},
	} {
		id := fmt.Sprintf("b%d", i)
		s := spec(id, 1)
		s.Ingress = []api.IngressRoute{c.route} // not normalized: the index normalizes too
		res := h.apply(CmdServiceCreate, ServiceCreate{Service: newService(id, s)})
		err := asErr(res)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: create with route %+v = %v, want it accepted", c.name, c.route, err)
			}
			continue
		}
		if !api.IsCode(err, api.CodeConflict) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: create with route %+v = %v, want a conflict saying %q", c.name, c.route, err, c.want)
		}
	}

	// The handlers' check says the same before Raft.
	h.view(func(v *View) {
		s := withRoutes(spec("other", 1), rt("shop.example.com", "/api"))
		if err := v.CheckServiceConflicts("", &s); !api.IsCode(err, api.CodeConflict) {
			t.Errorf("CheckServiceConflicts(other with shop's route) = %v, want a conflict", err)
		}
		if err := v.CheckServiceConflicts("a", &s); err != nil {
			t.Errorf("CheckServiceConflicts(shop's own route, as shop) = %v, want nil", err)
		}
		next := withRoutes(spec("shop", 1))
		if err := v.CheckServiceConflicts("", &s, InDeployment(map[string]*api.ServiceSpec{"a": &next})); err != nil {
			t.Errorf("CheckServiceConflicts(shop's route, in a deployment where shop gives it up) = %v, want nil", err)
		}
	})

	// An update that gives a route up frees it; a delete frees the rest.
	a := h.service("a")
	h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "a", Spec: withRoutes(spec("shop", 1), rt("*.example.com", "/")), ExpectVersion: a.Version, At: t0})
	if got := h.routeOwner("shop.example.com", "/api"); got != "" {
		t.Errorf("after shop gave up /api, the index says %q claims it, want none", got)
	}
	h.createService("c", withRoutes(spec("api", 1), rt("shop.example.com", "/api")))
	if got := h.routeOwner("shop.example.com", "/api"); got != "c" {
		t.Errorf("route /api claimed by %q, want c", got)
	}
	h.mustApply(CmdServiceDelete, ServiceDelete{ID: "a", At: t0})
	if got := h.routeOwner("*.example.com", "/"); got != "" {
		t.Errorf("after shop was removed, its wildcard route is claimed by %q, want none", got)
	}
	h.createService("d", withRoutes(spec("wild", 1), rt("*.example.com", "/")))
}

// TestRouteChangeKeepsTasks: routes are warren-ingress's business; a
// change of them alone neither restarts nor updates a task.
func TestRouteChangeKeepsTasks(t *testing.T) {
	h := newHarness(t)
	h.registerNode("n1")
	s := h.createService("svc1", withRoutes(spec("web", 1)))
	tk := task("t1", "svc1", 1, "n1")
	tk.SpecVersion = s.SpecVersion
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{tk}, At: t0})
	for i, routes := range [][]api.IngressRoute{
		{rt("shop.example.com", "/")},
		{rt("shop.example.com", "/"), {Host: "shop.example.com", Path: "/api", Port: 8080, StripPrefix: true, Allow: []string{"10.0.0.0/8"}}},
		nil,
	} {
		cur := h.service("svc1")
		upd := h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "svc1", Spec: withRoutes(spec("web", 1), routes...), ExpectVersion: cur.Version, At: t0}).(*api.Service)
		if upd.Version != h.index {
			t.Fatalf("update %d (routes %v) was not applied: version %d, index %d", i, routes, upd.Version, h.index)
		}
		if upd.SpecVersion != s.SpecVersion || upd.UpdateStatus != nil {
			t.Errorf("update %d changed only the routes (%v), but specVersion went %d → %d and the update status is %+v: tasks would be replaced",
				i, routes, s.SpecVersion, upd.SpecVersion, upd.UpdateStatus)
		}
		var tasks []*api.Task
		h.view(func(v *View) { tasks = v.Tasks(TaskFilter{ServiceID: "svc1"}) })
		if len(tasks) != 1 || !upd.IsCurrent(tasks[0]) {
			t.Errorf("update %d (routes %v): task t1 is no longer current", i, routes)
		}
	}
	// A change that reaches the container still does.
	cur := h.service("svc1")
	upd := h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "svc1", Spec: withImage(withRoutes(spec("web", 1), rt("shop.example.com", "/")), "localhost/nginx"),
		ExpectVersion: cur.Version, At: t0}).(*api.Service)
	if upd.SpecVersion == s.SpecVersion {
		t.Errorf("an image change with a route kept specVersion %d: the tasks would not be updated", upd.SpecVersion)
	}
}

func TestDeployRoutes(t *testing.T) {
	x := rt("shop.example.com", "/api")
	t.Run("two services claim one route", func(t *testing.T) {
		h := newHarness(t)
		h.createService("a", spec("web", 1))
		before := h.dump()
		res := h.apply(CmdDeploy, Deploy{ID: "d1", At: t0,
			Creates: []api.Service{newService("b", withRoutes(spec("api", 1), x))},
			Updates: []ServiceUpdate{{ID: "a", Spec: withRoutes(spec("web", 1), x)}}})
		if err := asErr(res); !api.IsCode(err, api.CodeConflict) || !strings.Contains(err.Error(), `claimed by service "api"`) {
			t.Fatalf("deploy of two services with one route = %v, want a conflict naming api", res)
		}
		if after := h.dump(); after != before {
			t.Errorf("a refused deployment changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("a route moves between updated services", func(t *testing.T) {
		h := newHarness(t)
		h.createService("a", withRoutes(spec("web", 1), x))
		h.createService("b", spec("api", 1))
		// b comes first: its claim is checked while a still has x in
		// its stored spec.
		h.mustApply(CmdDeploy, Deploy{ID: "d1", At: t0, Updates: []ServiceUpdate{
			{ID: "b", Spec: withRoutes(spec("api", 1), x)},
			{ID: "a", Spec: withRoutes(spec("web", 1), rt("www.example.com", "/"))},
		}})
		if got := h.routeOwner(x.Host, x.Path); got != "b" {
			t.Errorf("after the move, route %v is claimed by %q, want b", x.Key(), got)
		}
		if got := h.routeOwner("www.example.com", "/"); got != "a" {
			t.Errorf("a's new route is claimed by %q, want a", got)
		}
	})
	t.Run("a route moves to a created service", func(t *testing.T) {
		h := newHarness(t)
		h.createService("a", withRoutes(spec("web", 1), x))
		h.mustApply(CmdDeploy, Deploy{ID: "d1", At: t0,
			Creates: []api.Service{newService("c", withRoutes(spec("api", 1), x))},
			Updates: []ServiceUpdate{{ID: "a", Spec: spec("web", 1)}}})
		if got := h.routeOwner(x.Host, x.Path); got != "c" {
			t.Errorf("after the move, route %v is claimed by %q, want c", x.Key(), got)
		}
	})
	t.Run("an unchanged service keeps its route", func(t *testing.T) {
		h := newHarness(t)
		h.createService("a", withRoutes(spec("web", 1), x))
		res := h.apply(CmdDeploy, Deploy{ID: "d1", At: t0,
			Creates: []api.Service{newService("c", withRoutes(spec("api", 1), x))},
			Updates: []ServiceUpdate{{ID: "a", Spec: withRoutes(spec("web", 1), x)}}})
		if err := asErr(res); !api.IsCode(err, api.CodeConflict) {
			t.Fatalf("deploy claiming the route of an unchanged service = %v, want a conflict", res)
		}
		if got := h.routeOwner(x.Host, x.Path); got != "a" {
			t.Errorf("route %v is claimed by %q, want a", x.Key(), got)
		}
	})
}

func TestRouteIndexSurvivesRestoreAndOldStates(t *testing.T) {
	h := newHarness(t)
	h.createService("svc1", withRoutes(spec("web", 1), rt("shop.example.com", "/")))
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	o := newHarness(t)
	o.createService("other", withRoutes(spec("other", 1), rt("other.example.com", "/")))
	if err := o.fsm.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	if got := o.routeOwner("shop.example.com", "/"); got != "svc1" {
		t.Errorf("restored route index: shop.example.com claimed by %q, want svc1", got)
	}
	if got := o.routeOwner("other.example.com", "/"); got != "" {
		t.Errorf("restored route index still has the replaced state's route, claimed by %q", got)
	}

	// A state from before the index: opening it builds the index.
	path := filepath.Join(t.TempDir(), "state.db")
	st, err := OpenState(path)
	if err != nil {
		t.Fatal(err)
	}
	hub := NewHub(16, 1<<20, 0)
	old := &harness{t: t, state: st, hub: hub, fsm: NewFSM(st, hub)}
	old.apply(CmdClusterInit, ClusterInit{ClusterID: "c1", ClusterCIDR: "10.240.0.0/16", SubnetBits: 24, CreatedAt: t0})
	old.createService("svc1", withRoutes(spec("web", 1), rt("shop.example.com", "/")))
	if err := st.update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bIngressRoutes) }); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = OpenState(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var owner string
	st.View(func(v *View) error { owner = v.RouteOwner(rt("shop.example.com", "/").Key(), ""); return nil })
	if owner != "svc1" {
		t.Errorf("a state without the route index, reopened: shop.example.com claimed by %q, want svc1", owner)
	}
}
