package cli_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

func TestIngressLs(t *testing.T) {
	routes := []api.IngressRouteStatus{{Service: "shop", ServiceID: "s1",
		Route:    api.IngressRoute{Host: "shop.example.com", Path: "/api", Port: 8080},
		Backends: []api.IngressBackend{{TaskID: "t1", Serving: true}, {TaskID: "t2"}},
		Cert:     api.IngressCert{State: "valid", Source: "acme", NotAfter: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)}}}
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.Method+" "+r.URL.Path)
		writeJSON(w, 200, routes)
	}))
	defer srv.Close()
	r := runWith(context.Background(), srv.URL, "", "ingress", "ls")
	want := "HOST               PATH   SERVICE   PORT   BACKENDS   TLS            CERT\n" +
		"shop.example.com   /api   shop      8080   1/2        acme/http-01   valid until 2027-03-01\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("ingress ls: exit %d, stdout\n%s\nstderr %s\nwant\n%s", r.code, r.stdout, r.stderr, want)
	}
	if len(asked) != 1 || asked[0] != "GET /v1/ingress/routes" {
		t.Errorf("ingress ls asked %q, want GET /v1/ingress/routes", asked)
	}
	r = runWith(context.Background(), srv.URL, "", "ingress", "ls", "-o", "json")
	var back []api.IngressRouteStatus
	if err := json.Unmarshal([]byte(r.stdout), &back); err != nil || len(back) != 1 || back[0].Route.Host != "shop.example.com" {
		t.Errorf("ingress ls -o json = %q (%v), want the routes as JSON", r.stdout, err)
	}
}

// TestIngressMiddlewareWithoutRoute: --ingress-mw for a route the service
// does not have is refused, and nothing is written.
func TestIngressMiddlewareWithoutRoute(t *testing.T) {
	f, url := newFake(t)
	r := runWith(context.Background(), url, "", "service", "update", "-d", "--ingress-mw", "host=shop.example.com,path=/api,rate=10", "web")
	want := "no ingress route host=shop.example.com path=/api on service web: add it with --ingress first"
	if r.code != 2 || !strings.Contains(r.stderr, want) || len(f.puts) != 0 {
		t.Errorf("service update --ingress-mw for a missing route: exit %d after %d PUTs, stderr %q; want exit 2, no PUT, saying %q", r.code, len(f.puts), r.stderr, want)
	}
	r = runWith(context.Background(), url, "", "service", "update", "-d", "--ingress-add", "host=shop.example.com,path=/api,port=8080",
		"--ingress-mw", "host=shop.example.com,path=/api,rate=10", "web")
	if r.code != 0 || len(f.puts) != 1 || len(f.svc.Spec.Ingress) != 1 || f.svc.Spec.Ingress[0].RateLimit == nil {
		t.Errorf("service update --ingress-add with --ingress-mw: exit %d after %d PUTs, stderr %q, routes %+v; want one PUT with the route and its rate limit",
			r.code, len(f.puts), r.stderr, f.svc.Spec.Ingress)
	}
}
