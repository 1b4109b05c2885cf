package authz

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

// A node's own data (its tasks' secret values): the node itself, or its
// agent on its own socket, and only while the state says it runs a
// consumer (Scope); never an operator, never another node.
func TestOwnRouteWithScope(t *testing.T) {
	// The state: w1 runs a task that uses secret s1 version 2.
	holds := func(c Caller, r *http.Request) error {
		if r.PathValue("ref") == "w1" && r.PathValue("id") == "s1" && r.PathValue("version") == "2" {
			return nil
		}
		return api.Errorf(api.CodeNotFound, "node %s runs no task that uses it", r.PathValue("ref"))
	}
	rule := Rule{Who: Admin | Nodes, Self: true, Own: true, Scope: holds}
	cases := []struct {
		name   string
		caller Caller
		path   string
		want   string
	}{
		{"the node, for its task", Caller{Kind: Worker, NodeID: "w1"}, "/v1/nodes/w1/secrets/s1/2", ""},
		{"the node's agent on its socket", Caller{Kind: Local, Role: RoleAdmin, NodeID: "w1"}, "/v1/nodes/w1/secrets/s1/2", ""},
		{"the node's agent, passed on by its own manager", Caller{Kind: Local, Role: RoleAdmin, NodeID: "w1", Via: "w1"}, "/v1/nodes/w1/secrets/s1/2", ""},
		{"a node with no consumer task", Caller{Kind: Worker, NodeID: "w2"}, "/v1/nodes/w2/secrets/s1/2", "runs no task"},
		{"the node, an old version", Caller{Kind: Worker, NodeID: "w1"}, "/v1/nodes/w1/secrets/s1/1", "runs no task"},
		{"a stolen worker certificate asking for another node's", Caller{Kind: Worker, NodeID: "w2"}, "/v1/nodes/w1/secrets/s1/2", "acts only for itself"},
		{"a manager's certificate for another node", Caller{Kind: Manager, NodeID: "m1"}, "/v1/nodes/w1/secrets/s1/2", "acts only for itself"},
		{"a local admin of another node", Caller{Kind: Local, Role: RoleAdmin, NodeID: "m1"}, "/v1/nodes/w1/secrets/s1/2", "own tasks and data only"},
		{"a local admin passed on by another manager", Caller{Kind: Local, Role: RoleAdmin, NodeID: "w1", Via: "m1"}, "/v1/nodes/w1/secrets/s1/2", "own tasks and data only"},
		{"an admin operator", Caller{Kind: Operator, Role: RoleAdmin, Name: "alice"}, "/v1/nodes/w1/secrets/s1/2", "only the node that runs a task"},
		{"a viewer", Caller{Kind: Local, Role: RoleViewer, NodeID: "w1"}, "/v1/nodes/w1/secrets/s1/2", "needs the admin role"},
	}
	for _, c := range cases {
		mux := http.NewServeMux()
		var err error
		mux.HandleFunc("GET /v1/nodes/{ref}/secrets/{id}/{version}", func(w http.ResponseWriter, r *http.Request) { err = rule.Check(c.caller, r) })
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", c.path, nil))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: Check(%s, %s) refused: %v", c.name, c.caller, c.path, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: Check(%s, %s) = %v, want a refusal with %q", c.name, c.caller, c.path, err, c.want)
		}
	}
}
