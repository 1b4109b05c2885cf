package authz

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The ingress socket's caller reads as a viewer does, and calls the
// ingress routes of its own node only; the role is a local socket's,
// never an operator's.
func TestIngressCaller(t *testing.T) {
	ing := Caller{Kind: Local, Role: RoleIngress, NodeID: "w1"}
	// The ingress routes' rule, without its Scope (the node's label).
	rule := Rule{Who: Admin | Ingress | Nodes, Self: true, Own: true}
	check := func(rule Rule, c Caller, method, path string) error {
		var err error
		mux := http.NewServeMux()
		mux.HandleFunc(method+" /v1/nodes/{ref}/ingress/store", func(w http.ResponseWriter, r *http.Request) { err = rule.Check(c, r) })
		mux.HandleFunc(method+" /v1/services", func(w http.ResponseWriter, r *http.Request) { err = rule.Check(c, r) })
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, path, nil))
		return err
	}
	for _, tc := range []struct {
		name   string
		rule   Rule
		caller Caller
		method string
		path   string
		want   string
	}{
		{"its own node's store", rule, ing, "GET", "/v1/nodes/w1/ingress/store", ""},
		{"its own node's store, passed on by its manager", rule, Caller{Kind: Local, Role: RoleIngress, NodeID: "m2", Via: "m2"}, "PUT", "/v1/nodes/m2/ingress/store", ""},
		{"another node's store", rule, ing, "GET", "/v1/nodes/w2/ingress/store", "own tasks and data only"},
		{"passed on by another manager", rule, Caller{Kind: Local, Role: RoleIngress, NodeID: "m2", Via: "m1"}, "GET", "/v1/nodes/m2/ingress/store", "own tasks and data only"},
		{"a read", Rule{Who: Readers}, ing, "GET", "/v1/services", ""},
		{"a write", Rule{Who: Writers}, ing, "POST", "/v1/services", "needs the operator or admin role"},
		{"the read socket, the store", rule, Caller{Kind: Local, Role: RoleViewer, NodeID: "w1"}, "GET", "/v1/nodes/w1/ingress/store", "the ingress socket"},
		{"a viewer operator, the store", rule, Caller{Kind: Operator, Role: RoleViewer, Name: "vera"}, "GET", "/v1/nodes/w1/ingress/store", "needs the admin role"},
		{"an admin operator, the store", rule, Caller{Kind: Operator, Role: RoleAdmin, Name: "alice"}, "GET", "/v1/nodes/w1/ingress/store", "only the node"},
		{"an operator claiming the ingress role", rule, Caller{Kind: Operator, Role: RoleIngress, Name: "mallory"}, "GET", "/v1/nodes/w1/ingress/store", "may not call"},
	} {
		err := check(tc.rule, tc.caller, tc.method, tc.path)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: Check(%s, %s %s) refused: %v", tc.name, tc.caller, tc.method, tc.path, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: Check(%s, %s %s) = %v, want a refusal with %q", tc.name, tc.caller, tc.method, tc.path, err, tc.want)
		}
	}

	// A manager passes the caller on; nobody may pass on an operator
	// with the ingress role.
	got, err := Decode(ing.Encode(), "w1")
	if err != nil || got.Kind != Local || got.Role != RoleIngress || got.NodeID != "w1" {
		t.Errorf("Decode(Encode(%s)) = %+v, %v", ing, got, err)
	}
	if _, err := Decode(Caller{Kind: Operator, Role: RoleIngress, Name: "mallory"}.Encode(), "m1"); err == nil {
		t.Error("Decode accepted an operator with the ingress role")
	}
	if RoleIngress.Valid() {
		t.Error("RoleIngress is a valid operator role")
	}
}
