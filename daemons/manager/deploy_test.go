package manager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

func depSpec(name, image string, port uint16) api.ServiceSpec {
	s := api.ServiceSpec{Name: name, Image: image, Replicas: 1}
	if port != 0 {
		s.Ports = []api.PortConfig{{Target: 80, Published: port}}
	}
	return s
}

// actions is "name=action ..." of a deployment's answer, sorted by name.
func actions(d *api.Deployment) string {
	var out []string
	for _, s := range d.Services {
		out = append(out, s.Name+"="+s.Action)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func TestDeployCreatesUpdatesAndPrunes(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	c := ctx(t)
	d, err := m.Client.Deploy(c, api.DeploymentRequest{Name: "shop", Services: []api.ServiceSpec{
		depSpec("shop-web", "localhost/nginx:1", 8080), depSpec("shop-db", "localhost/db:1", 0)}})
	if err != nil {
		t.Fatalf("Deploy(shop: web, db) = %v", err)
	}
	if got := actions(d); got != "shop-db=created shop-web=created" || d.ID == "" {
		t.Errorf("first deploy: id %q, %s; want an ID and both created", d.ID, got)
	}
	for _, s := range d.Services {
		if s.Service == nil || s.Service.Spec.Labels[api.LabelStack] != "shop" || s.Service.UpdateStatus == nil || s.Service.UpdateStatus.Deployment != d.ID {
			t.Errorf("created %s: %+v; want label %s=shop and deployment %s", s.Name, s.Service, api.LabelStack, d.ID)
		}
	}
	// Again, the same: nothing changes, no deployment is made.
	again, err := m.Client.Deploy(c, api.DeploymentRequest{Name: "shop", Services: []api.ServiceSpec{
		depSpec("shop-web", "localhost/nginx:1", 8080), depSpec("shop-db", "localhost/db:1", 0)}})
	if err != nil || actions(again) != "shop-db=unchanged shop-web=unchanged" || again.ID != "" {
		t.Errorf("the same deploy again = %+v, %v; want both unchanged and no ID", again, err)
	}
	// A dry run answers and changes nothing.
	before, _ := m.Client.Service(c, "shop-web", client.ReadOptions{Consistent: true})
	dry, err := m.Client.DeployDryRun(c, api.DeploymentRequest{Name: "shop", Prune: true, Services: []api.ServiceSpec{
		depSpec("shop-web", "localhost/nginx:2", 8080), depSpec("shop-api", "localhost/api:1", 0)}})
	if err != nil || actions(dry) != "shop-api=created shop-db=removed shop-web=updated" {
		t.Errorf("dry run = %s, %v; want api created, db removed, web updated", actions(dry), err)
	}
	after, _ := m.Client.Service(c, "shop-web", client.ReadOptions{Consistent: true})
	if after.Version != before.Version {
		t.Errorf("a dry run changed shop-web: version %d → %d", before.Version, after.Version)
	}
	// Update one, create one, prune one: one deployment.
	d2, err := m.Client.Deploy(c, api.DeploymentRequest{Name: "shop", Prune: true, Services: []api.ServiceSpec{
		depSpec("shop-web", "localhost/nginx:2", 8080), depSpec("shop-api", "localhost/api:1", 0)}})
	if err != nil {
		t.Fatalf("second deploy = %v", err)
	}
	if got := actions(d2); got != "shop-api=created shop-db=removed shop-web=updated" {
		t.Errorf("second deploy: %s; want api created, db removed, web updated", got)
	}
	web, _ := m.Client.Service(c, "shop-web", client.ReadOptions{Consistent: true})
	api1, _ := m.Client.Service(c, "shop-api", client.ReadOptions{Consistent: true})
	for _, s := range []*api.Service{web, api1} {
		if s.UpdateStatus == nil || s.UpdateStatus.Deployment != d2.ID {
			t.Errorf("service %s after deployment %s: update status %+v; want that deployment", s.Spec.Name, d2.ID, s.UpdateStatus)
		}
	}
	if web.SpecVersion != api1.SpecVersion {
		t.Errorf("web (spec version %d) and api (%d) were not changed by one entry", web.SpecVersion, api1.SpecVersion)
	}
	if _, err := m.Client.Service(c, "shop-db", client.ReadOptions{Consistent: true}); !api.NotFound(err) {
		t.Errorf("pruned shop-db: Service() = %v; want not found", err)
	}
}

func TestDeployBadInputChangesNothing(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	c := ctx(t)
	web := depSpec("web", "localhost/nginx:1", 8080)
	web.Ingress = []api.IngressRoute{{Host: "www.example.com", Port: 80}}
	if _, err := m.Client.CreateService(c, web); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Client.Deploy(c, api.DeploymentRequest{Name: "shop", Services: []api.ServiceSpec{depSpec("shop-db", "localhost/db:1", 0)}}); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		svcs, err := m.Client.Services(c, client.ReadOptions{Consistent: true})
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, s := range svcs {
			fmt.Fprintf(&b, "%s@%d ", s.Spec.Name, s.Version)
		}
		return b.String()
	}
	before := state()
	post := func(body string) (int, api.Error) {
		req, _ := http.NewRequest(http.MethodPost, "http://warren/v1/deployments", strings.NewReader(body))
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (netConn, error) {
			return dialUnix(ctx, m.Socket)
		}}}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e api.Error
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &e)
		return resp.StatusCode, e
	}
	good := `{"name":"shop-api","image":"localhost/api:1"}`
	for i, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		// The first four are refused before any service is looked at.
		{"unknown field", `{"name":"shop","services":[` + good + `],"prunee":true}`, 400, `unknown field "prunee"`},
		{"no services", `{"name":"shop"}`, 400, `needs a list of services`},
		{"prune without a name", `{"services":[` + good + `],"prune":true}`, 400, "prune needs the stack's"},
		{"bad stack name", `{"name":"Shop_1","services":[` + good + `]}`, 400, "stack name"},
		{"one bad spec among good ones", `{"name":"shop","services":[` + good + `,{"name":"shop-x","image":"UPPER:Case:x"}]}`, 400, "services.shop-x: invalid service spec"},
		{"an unknown field in a spec", `{"name":"shop","services":[` + good + `,{"name":"shop-x","image":"a","replicaz":2}]}`, 400, `services[1]: unknown field "replicaz"`},
		{"a name twice", `{"name":"shop","services":[` + good + `,` + good + `]}`, 400, "names each service once"},
		{"a port another service publishes", `{"name":"shop","services":[` + good + `,{"name":"shop-x","image":"a","ports":[{"target":80,"published":8080}]}]}`, 409, `already published by service "web"`},
		{"a service of no stack", `{"name":"shop","services":[` + good + `,{"name":"web","image":"a"}]}`, 409, "not part of stack shop"},
		{"another stack's label", `{"name":"shop","services":[{"name":"shop-x","image":"a","labels":{"warren.stack":"other"}}]}`, 400, "belongs to stack other"},
		{"a mode change", `{"name":"shop","services":[` + good + `,{"name":"shop-db","image":"a","mode":"global"}]}`, 400, "mode cannot change"},
		{"a missing secret", `{"name":"shop","services":[` + good + `,{"name":"shop-x","image":"a","secrets":[{"name":"nope"}]}]}`, 404, `secret "nope", which does not exist`},
		{"a route claimed twice", `{"name":"shop","services":[{"name":"shop-a","image":"a","ingress":[{"host":"shop.example.com","path":"/api","port":80}]},` +
			`{"name":"shop-b","image":"a","ingress":[{"host":"Shop.example.com","path":"/api/","port":81}]}]}`, 400,
			"ingress route host=shop.example.com path=/api is claimed by services[0] (shop-a) too"},
		{"a route another service claims", `{"name":"shop","services":[{"name":"shop-a","image":"a","ingress":[{"host":"www.example.com","port":80}]}]}`, 409,
			`ingress route host=www.example.com path=/ is already claimed by service "web"`},
	} {
		status, e := post(tc.body)
		if status != tc.status || !strings.Contains(e.Error(), tc.want) {
			t.Errorf("%s: POST /v1/deployments %s = %d %q; want %d containing %q", tc.name, tc.body, status, e.Error(), tc.status, tc.want)
		}
		// A problem with one of the services says the others were not
		// deployed either.
		if i >= 4 && !strings.Contains(e.Error(), "nothing was changed") {
			t.Errorf("%s: error %q does not say nothing was changed", tc.name, e.Error())
		}
	}
	if after := state(); after != before {
		t.Errorf("refused deployments changed the services: %s → %s", before, after)
	}
}

// TestDeployMovesARoute: a stack may move an ingress route from one of its
// services to another in one deployment, and a route change alone does
// not update the tasks.
func TestDeployMovesARoute(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	c := ctx(t)
	route := []api.IngressRoute{{Host: "shop.example.com", Path: "/api", Port: 80}}
	a, b := depSpec("shop-a", "localhost/a:1", 0), depSpec("shop-b", "localhost/b:1", 0)
	a.Ingress = route
	if _, err := m.Client.Deploy(c, api.DeploymentRequest{Name: "shop", Services: []api.ServiceSpec{a, b}}); err != nil {
		t.Fatalf("Deploy(shop: a with the route, b) = %v", err)
	}
	before, _ := m.Client.Service(c, "shop-b", client.ReadOptions{Consistent: true})
	a.Ingress, b.Ingress = nil, route
	d, err := m.Client.Deploy(c, api.DeploymentRequest{Name: "shop", Services: []api.ServiceSpec{b, a}})
	if err != nil {
		t.Fatalf("Deploy(shop: the route moved from a to b) = %v, want it accepted", err)
	}
	if got := actions(d); got != "shop-a=updated shop-b=updated" {
		t.Errorf("the move: %s, want both updated", got)
	}
	after, _ := m.Client.Service(c, "shop-b", client.ReadOptions{Consistent: true})
	if len(after.Spec.Ingress) != 1 || after.SpecVersion != before.SpecVersion {
		t.Errorf("shop-b after the move: routes %+v, specVersion %d → %d; want the route, and the same specVersion (no task replaced)",
			after.Spec.Ingress, before.SpecVersion, after.SpecVersion)
	}
}

// TestDryRunOfARouteChange: a dry run of a change of routes alone says
// no task is replaced, as the write itself does.
func TestDryRunOfARouteChange(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	c := ctx(t)
	spec := depSpec("web", "localhost/nginx:1", 0)
	cur, err := m.Client.CreateService(c, spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Ingress = []api.IngressRoute{{Host: "www.example.com", Port: 80}}
	dr, err := m.Client.UpdateServiceDryRun(c, cur.ID, spec, 0)
	if err != nil {
		t.Fatalf("UpdateServiceDryRun(web, a route added) = %v", err)
	}
	if dr.Service.SpecVersion != cur.SpecVersion || dr.Service.UpdateStatus != nil || len(dr.Stops) != 0 {
		t.Errorf("dry run of a route added: specVersion %d → %d, update %+v, %d stops; want no update",
			cur.SpecVersion, dr.Service.SpecVersion, dr.Service.UpdateStatus, len(dr.Stops))
	}
	if len(dr.Service.Spec.Ingress) != 1 {
		t.Errorf("dry run of a route added shows routes %+v, want the new one", dr.Service.Spec.Ingress)
	}
}
