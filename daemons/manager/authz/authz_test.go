package authz

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A node whose certificate has expired may renew it within the grace,
// and call nothing else; after the grace, nothing but joining again.
func TestExpiredCertificates(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	valid := Caller{Kind: Worker, NodeID: "w1"}
	expired := Caller{Kind: Worker, NodeID: "w1", Expired: &Expiry{At: at, GraceEnds: at.Add(30 * 24 * time.Hour)}}
	lapsed := Caller{Kind: Worker, NodeID: "w1", Expired: &Expiry{At: at, GraceEnds: at.Add(30 * 24 * time.Hour), Lapsed: true}}
	manager := Caller{Kind: Manager, NodeID: "m1", Expired: &Expiry{At: at, GraceEnds: at.Add(time.Hour)}}
	renew := Rule{Who: Nodes, Expired: true}
	cases := []struct {
		name   string
		rule   Rule
		path   string
		caller Caller
		want   string // "": allowed; else a part of the refusal
	}{
		{"renew, valid", renew, "/v1/certs/renew", valid, ""},
		{"renew, expired within the grace", renew, "/v1/certs/renew", expired, ""},
		{"renew, a manager's expired within the grace", renew, "/v1/certs/renew", manager, ""},
		{"renew, lapsed", renew, "/v1/certs/renew", lapsed, "expired on 2026-03-01, beyond the managers' 30-day grace (it ended 2026-03-31): re-join the node with a token"},
		{"a node's read, valid", Rule{Who: Readers | Nodes}, "/v1/info", valid, ""},
		{"a node's read, expired", Rule{Who: Readers | Nodes}, "/v1/info", expired, "may only renew it (POST /v1/certs/renew, which the node does by itself until 2026-03-31), not call GET /v1/info"},
		{"a manager's route, expired", Rule{Who: Managers | Admin}, "/v1/internal/command", manager, "may only renew"},
		{"its own heartbeat, expired", Rule{Who: Admin | Workers, Self: true}, "/v1/nodes/w1/heartbeat", expired, "may only renew"},
		{"its own heartbeat, lapsed", Rule{Who: Admin | Workers, Self: true}, "/v1/nodes/w1/heartbeat", lapsed, "re-join the node with a token"},
		{"an operators' route, expired", Rule{Who: Writers}, "/v1/services", expired, "may only renew"},
		// Joining needs a token, not a certificate: warren rejoin
		// presents the lapsed one to keep the node's ID.
		{"join, lapsed", Rule{Who: Anyone}, "/v1/join", lapsed, ""},
	}
	for _, c := range cases {
		r := httptest.NewRequest("GET", c.path, nil)
		err := c.rule.Check(c.caller, r)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Check(%s) = %v, want allowed", c.name, err)
		case c.want != "" && err == nil:
			t.Errorf("Check(%s) allowed, want refused with %q", c.name, c.want)
		case c.want != "" && !strings.Contains(err.Error(), c.want):
			t.Errorf("Check(%s) = %v, want it to say %q", c.name, err, c.want)
		}
	}
}

// A manager passing on the request of a node whose certificate expired
// passes that on too: the next hop checks it again.
func TestEncodeKeepsExpiry(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []Caller{
		{Kind: Worker, NodeID: "w1"},
		{Kind: Worker, NodeID: "w1", Expired: &Expiry{At: at, GraceEnds: at.Add(time.Hour)}},
		{Kind: Worker, NodeID: "w1", Expired: &Expiry{At: at, GraceEnds: at.Add(time.Hour), Lapsed: true}},
	} {
		got, err := Decode(c.Encode(), "m1")
		if err != nil {
			t.Errorf("Decode(Encode(%v)) = %v", c, err)
			continue
		}
		if (got.Expired == nil) != (c.Expired == nil) || got.Expired != nil && *got.Expired != *c.Expired {
			t.Errorf("Decode(Encode(%v)).Expired = %+v, want %+v", c, got.Expired, c.Expired)
		}
	}
	if _, err := Decode("kind=worker&node=w1&expired=yesterday", "m1"); err == nil {
		t.Error("Decode of a garbled expiry succeeded")
	}
}
