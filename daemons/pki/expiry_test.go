package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

func TestVerifyExpiredPeer(t *testing.T) {
	ca, foreign := mustCA(t, "c1"), mustCA(t, "c1")
	roots := mustBundle(t, ca).Pool()
	worker := chainOf(t, must2(issue(t, ca, Identity{"c1", "w1", RoleWorker}, time.Hour, t0)))
	alien := chainOf(t, must2(issue(t, foreign, Identity{"c1", "w1", RoleWorker}, time.Hour, t0)))
	end := worker[0].NotAfter
	// Issued during a rotation (leaf, cross-signed B, B, A), checked
	// after it ended (only B trusted).
	next := mustCA(t, "c1")
	rot, err := ca.CrossSign(next, t0)
	if err != nil {
		t.Fatal(err)
	}
	rotated := chainOf(t, must2(issue(t, rot, Identity{"c1", "w2", RoleWorker}, time.Hour, t0)))
	rotated = append(rotated, ca.Certificate())
	cases := []struct {
		name        string
		chain       []*x509.Certificate
		roots       *x509.CertPool
		now         time.Time
		want        error
		wantExpired time.Time
	}{
		{"a valid certificate", worker, roots, t0, nil, time.Time{}},
		{"at its last valid instant", worker, roots, end, nil, time.Time{}},
		{"expired a second ago", worker, roots, end.Add(time.Second), nil, end},
		{"expired a year ago", worker, roots, end.Add(365 * 24 * time.Hour), nil, end},
		{"expired, of a foreign CA", alien, roots, end.Add(time.Hour), ErrUntrusted, time.Time{}},
		{"expired, of a CA rotated out", worker, mustBundle(t, next).Pool(), end.Add(time.Hour), ErrUntrusted, time.Time{}},
		{"expired, issued during a rotation, the old CA dropped since", rotated, mustBundle(t, next).Pool(), end.Add(time.Hour), nil, rotated[0].NotAfter},
		{"expired, and its CA expired since", worker, roots, ca.Certificate().NotAfter.Add(time.Hour), ErrUntrusted, time.Time{}},
		{"from the future", worker, roots, t0.Add(-Backdate - time.Minute), ErrNotYetValid, time.Time{}},
		{"the CA certificate itself, expired", []*x509.Certificate{ca.Certificate()}, roots, ca.Certificate().NotAfter.Add(time.Hour), ErrUntrusted, time.Time{}},
		{"nothing", nil, roots, t0, ErrNoPeerCertificate, time.Time{}},
	}
	for _, c := range cases {
		id, expired, err := VerifyExpiredPeer(c.chain, c.roots, x509.ExtKeyUsageClientAuth, c.now)
		if !errors.Is(err, c.want) || (c.want != nil) != (err != nil) {
			t.Errorf("VerifyExpiredPeer(%s) = %v, want %v", c.name, err, c.want)
			continue
		}
		if !expired.Equal(c.wantExpired) {
			t.Errorf("VerifyExpiredPeer(%s) says it expired at %v, want %v", c.name, expired, c.wantExpired)
		}
		if c.want == nil && id.NodeID != c.chain[0].Subject.CommonName {
			t.Errorf("VerifyExpiredPeer(%s) identity = %v, want node %s", c.name, id, c.chain[0].Subject.CommonName)
		}
	}
}

// The join listener lets an expired certificate through only on the
// connections its caller says, and nothing else does.
func TestJoinServerConfigLetsExpiredThroughWhenTold(t *testing.T) {
	ca := mustCA(t, "c1")
	trust := mustBundle(t, ca)
	certPEM, keyPEM := issue(t, ca, Identity{"c1", "w1", RoleWorker}, time.Hour, t0)
	end := leafOf(t, certPEM).NotAfter
	late := end.Add(40 * 24 * time.Hour)
	worker, err := NewCredentials(certPEM, keyPEM, trust)
	if err != nil {
		t.Fatal(err)
	}
	manager := nodeCreds(t, ca, Identity{"c1", "m1", RoleManager}, trust, late)
	// The worker's clock agrees; its certificate is expired by it too.
	worker.Clock = manager.Clock
	alienPEM, alienKey := issue(t, mustCA(t, "c1"), Identity{"c1", "w1", RoleWorker}, time.Hour, t0)
	api := func(cs tls.ConnectionState) bool { return cs.NegotiatedProtocol == "http/1.1" }
	withProto := func(cfg *tls.Config, proto string) *tls.Config {
		cfg.NextProtos = []string{proto}
		return cfg
	}
	cases := []struct {
		name           string
		server, client *tls.Config
		want           error // nil: the handshake succeeds
	}{
		{"no policy", JoinServerConfig(manager, nil), ClientConfig(worker, nil), ErrExpired},
		{"the API protocol", withProto(JoinServerConfig(manager, api), "http/1.1"), withProto(ClientConfig(worker, nil), "http/1.1"), nil},
		{"another protocol", withProto(JoinServerConfig(manager, api), "warren-raft"), withProto(ClientConfig(worker, nil), "warren-raft"), ErrExpired},
		{"a foreign CA's expired certificate", withProto(JoinServerConfig(manager, api), "http/1.1"), withProto(rawClient(t, alienPEM, alienKey), "http/1.1"), ErrUntrusted},
		{"the listener between nodes", ServerConfig(manager, nil), ClientConfig(worker, nil), ErrExpired},
	}
	for _, c := range cases {
		r := handshake(t, c.server, c.client)
		switch {
		case c.want == nil && (r.serverErr != nil || r.clientErr != nil):
			t.Errorf("%s: an expired certificate was refused: server %v, client %v", c.name, r.serverErr, r.clientErr)
		case c.want == nil && (r.serverSaw.NodeID != "w1" || !r.serverExpiry.Equal(end)):
			t.Errorf("%s: the server saw %v expiring %v, want w1 and %v", c.name, r.serverSaw, r.serverExpiry, end)
		case c.want != nil && !errors.Is(r.serverErr, c.want):
			t.Errorf("%s: server error %v, want %v", c.name, r.serverErr, c.want)
		}
	}
	// A valid certificate on the same listener: PeerExpiry is its end.
	fresh := nodeCreds(t, ca, Identity{"c1", "w2", RoleWorker}, trust, t0)
	r := handshake(t, JoinServerConfig(nodeCreds(t, ca, Identity{"c1", "m1", RoleManager}, trust, t0), api), ClientConfig(fresh, nil))
	if r.serverErr != nil || !r.serverExpiry.Equal(fresh.Leaf().NotAfter) {
		t.Errorf("a valid certificate: server %v, PeerExpiry %v; want %v", r.serverErr, r.serverExpiry, fresh.Leaf().NotAfter)
	}
}

// A device whose clock is up to MaxClockSkew off the managers', either
// way, talks to them with certificates signed a moment ago, joins, and
// renews well before the managers see its certificate expire.
func TestClockSkew(t *testing.T) {
	ca := mustCA(t, "c1")
	trust := mustBundle(t, ca)
	manager := nodeCreds(t, ca, Identity{"c1", "m1", RoleManager}, trust, t0)
	for _, skew := range []time.Duration{-MaxClockSkew, MaxClockSkew} {
		device := nodeCreds(t, ca, Identity{"c1", "w1", RoleWorker}, trust, t0.Add(skew))
		if r := handshake(t, ServerConfig(manager, nil), ClientConfig(device, RequireRole(RoleManager))); r.serverErr != nil || r.clientErr != nil {
			t.Errorf("a device %v off dials a manager: server %v, client %v", skew, r.serverErr, r.clientErr)
		}
		if r := handshake(t, ServerConfig(device, nil), ClientConfig(manager, nil)); r.serverErr != nil || r.clientErr != nil {
			t.Errorf("a manager dials a device %v off: server %v, client %v", skew, r.serverErr, r.clientErr)
		}
		joiner := BootstrapClientConfig(ca.Digest())
		joiner.Time = func() time.Time { return t0.Add(skew) }
		if r := handshake(t, JoinServerConfig(manager, nil), joiner); r.clientErr != nil {
			t.Errorf("a device %v off joins: client %v", skew, r.clientErr)
		}
		// Its renewal is due, by its own clock, at least a quarter of
		// the life before the end: the managers, whose clock is right,
		// still see the certificate valid then.
		leaf := device.Leaf()
		if due := RenewAt(leaf).Add(-skew); !due.Before(leaf.NotAfter.Add(-MaxClockSkew)) {
			t.Errorf("a device %v off renews at %v by the managers' clock, less than a day before the end %v", skew, due, leaf.NotAfter)
		}
	}
	// Beyond the bound: a clock more than Backdate behind is told so.
	behind := nodeCreds(t, ca, Identity{"c1", "w1", RoleWorker}, trust, t0.Add(-Backdate-time.Minute))
	if r := handshake(t, ServerConfig(manager, nil), ClientConfig(behind, RequireRole(RoleManager))); !errors.Is(r.clientErr, ErrNotYetValid) {
		t.Errorf("a device more than %v behind: client %v, want ErrNotYetValid", Backdate, r.clientErr)
	}
}
