package cli_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/ctl/cli"
	"github.com/warren-edge/warren/daemons/api"
)

// accessNow is the clock of the access tests.
var accessNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// accessFake serves the operator and join-token endpoints and records
// each call as "METHOD PATH?QUERY", with the operator requests' bodies.
type accessFake struct {
	mu       sync.Mutex
	calls    []string
	opReqs   []api.OperatorRequest
	ops      []api.Operator
	tokens   []api.JoinTokenInfo
	managers []string
}

func newAccessFake(t *testing.T) (*accessFake, string) {
	f := &accessFake{
		ops: []api.Operator{
			{Name: "dashboard", Role: "viewer", CreatedAt: accessNow.Add(-72 * time.Hour), ExpiresAt: accessNow.Add(27 * 24 * time.Hour)},
			{Name: "alice", Role: "admin", CreatedAt: accessNow.Add(-90 * time.Minute), ExpiresAt: accessNow.Add(90*24*time.Hour - 90*time.Minute)},
			{Name: "ci", Role: "operator", CreatedAt: accessNow.Add(-100 * 24 * time.Hour), ExpiresAt: accessNow.Add(-10 * 24 * time.Hour)},
		},
		tokens: []api.JoinTokenInfo{
			{ID: "m2aaaaaa", Kind: "manager", CreatedAt: accessNow.Add(-2 * time.Hour), ExpiresAt: accessNow.Add(22 * time.Hour)},
			{ID: "w1aaaaaa", Kind: "worker", CreatedAt: accessNow.Add(-30 * 24 * time.Hour)},
			{ID: "w2aaaaaa", Kind: "worker", CreatedAt: accessNow.Add(-time.Minute), ExpiresAt: accessNow.Add(7 * 24 * time.Hour)},
		},
		managers: []string{"10.0.0.1:4242", "10.0.0.2:4242"},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func (f *accessFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		call += "?" + r.URL.RawQuery
	}
	f.calls = append(f.calls, call)
	path := r.URL.Path
	switch {
	case r.Method == "POST" && path == "/v1/operators":
		var req api.OperatorRequest
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &req); err != nil {
			writeJSON(w, 400, api.Errorf(api.CodeInvalid, "body: %v", err))
			return
		}
		f.opReqs = append(f.opReqs, req)
		if req.Name == "taken" {
			writeJSON(w, 409, api.Errorf(api.CodeConflict, "operator %q was removed and stays revoked until its old certificates expire: choose another name", req.Name))
			return
		}
		op := api.Operator{Name: req.Name, Role: req.Role, CreatedAt: accessNow, ExpiresAt: accessNow.Add(90 * 24 * time.Hour)}
		writeJSON(w, 200, api.OperatorResponse{Operator: op, CertPEM: "CERT OF " + req.Name + "\n", BundlePEM: "THE CLUSTER'S CA\n", Managers: f.managers})
	case r.Method == "GET" && path == "/v1/operators":
		writeJSON(w, 200, f.ops)
	case r.Method == "DELETE" && strings.HasPrefix(path, "/v1/operators/"):
		name := strings.TrimPrefix(path, "/v1/operators/")
		i := slices.IndexFunc(f.ops, func(o api.Operator) bool { return o.Name == name })
		if i < 0 {
			writeJSON(w, 404, api.Errorf(api.CodeNotFound, "no operator %q: list them with warrenctl operator ls", name))
			return
		}
		f.ops = slices.Delete(f.ops, i, i+1)
		writeJSON(w, 200, map[string]string{"removed": name})
	case r.Method == "POST" && strings.HasPrefix(path, "/v1/join-tokens/"):
		kind := strings.TrimPrefix(path, "/v1/join-tokens/")
		t := api.JoinTokenInfo{ID: "n3wt0k3n", Kind: kind, Token: "WRN-1-" + kind[:1] + "-cadigest-n3wt0k3n-s3cr3t", CreatedAt: accessNow, Managers: f.managers}
		if d, err := time.ParseDuration(r.URL.Query().Get("ttl")); err == nil {
			t.ExpiresAt = accessNow.Add(d)
		} else if kind == api.RoleManager {
			t.ExpiresAt = accessNow.Add(24 * time.Hour)
		}
		writeJSON(w, 200, t)
	case r.Method == "GET" && path == "/v1/join-tokens":
		writeJSON(w, 200, f.tokens)
	case r.Method == "DELETE" && strings.HasPrefix(path, "/v1/join-tokens/"):
		id := strings.TrimPrefix(path, "/v1/join-tokens/")
		i := slices.IndexFunc(f.tokens, func(t api.JoinTokenInfo) bool { return t.ID == id })
		if i < 0 {
			writeJSON(w, 404, api.Errorf(api.CodeNotFound, "no live join token %q: list them with warrenctl join-token ls", id))
			return
		}
		t := f.tokens[i]
		t.Revoked = true
		f.tokens = slices.Delete(f.tokens, i, i+1)
		writeJSON(w, 200, t)
	default:
		writeJSON(w, 404, api.Errorf(api.CodeNotFound, "no endpoint %s %s", r.Method, path))
	}
}

func (f *accessFake) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *accessFake) run(url string, args ...string) result {
	return runOpts{env: map[string]string{cli.EnvHost: url}, now: accessNow}.run(context.Background(), args...)
}
