package manager

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/manager/authz"
)

// A node whose certificate has expired calls the renewal route and
// nothing else (joining needs a token, not a certificate): the route
// table says so, whatever a route's other callers.
func TestOnlyRenewalTakesAnExpiredCertificate(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir(), Hostname: "h", RaftLogLevel: "error", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	at := time.Now().Add(-time.Hour)
	for _, c := range []authz.Caller{
		{Kind: authz.Worker, NodeID: "w1", Expired: &authz.Expiry{At: at, GraceEnds: at.Add(24 * time.Hour)}},
		{Kind: authz.Manager, NodeID: "m1", Expired: &authz.Expiry{At: at, GraceEnds: at.Add(24 * time.Hour)}},
	} {
		for _, rt := range m.routeTable() {
			method, path, _ := strings.Cut(rt.pattern, " ")
			path = strings.NewReplacer("{ref}", c.NodeID, "{digest}", "sha256:0", "{kind}", "worker", "{action}", "rotate", "{id}", "x", "{name}", "x").Replace(path)
			r := httptest.NewRequest(method, path, nil)
			r.SetPathValue("ref", c.NodeID)
			err := rt.rule.Check(c, r)
			switch {
			case rt.pattern == "POST /v1/certs/renew" || rt.pattern == "POST /v1/join":
				if err != nil {
					t.Errorf("%s refused %s: %v", rt.pattern, c, err)
				}
			case err == nil:
				t.Errorf("%s let in %s", rt.pattern, c)
			case !strings.Contains(err.Error(), "may only renew"):
				t.Errorf("%s refused %s with %q; want it to say it may only renew", rt.pattern, c, err)
			}
		}
	}
}

// The cluster's events are read by the callers of GET /v1/services, and
// never by a worker's certificate (a worker reads its own scope only).
func TestEventsRouteIsForReaders(t *testing.T) {
	m, err := New(Config{DataDir: t.TempDir(), Hostname: "h", RaftLogLevel: "error", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rules := map[string]route{}
	for _, rt := range m.routeTable() {
		rules[rt.pattern] = rt
	}
	ev, ok := rules["GET /v1/events"]
	if !ok {
		t.Fatal("no route GET /v1/events")
	}
	if svc := rules["GET /v1/services"]; ev.rule.Who != svc.rule.Who || ev.rule.Self || ev.rule.Own {
		t.Errorf("GET /v1/events is for %v, GET /v1/services for %v: want the same readers", ev.rule.Who, svc.rule.Who)
	}
	r := httptest.NewRequest("GET", "/v1/events", nil)
	if err := ev.rule.Check(authz.Caller{Kind: authz.Worker, NodeID: "w1"}, r); err == nil {
		t.Error("GET /v1/events let in a worker's certificate")
	}
	if err := ev.rule.Check(authz.Caller{Kind: authz.Operator, Name: "vera", Role: authz.RoleViewer}, r); err != nil {
		t.Errorf("GET /v1/events refused a viewer: %v", err)
	}
}
