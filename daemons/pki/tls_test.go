package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"
)

func TestVerifyPeer(t *testing.T) {
	ca, foreign := mustCA(t, "c1"), mustCA(t, "c1")
	roots := mustBundle(t, ca).Pool()
	worker := chainOf(t, must2(issue(t, ca, Identity{"c1", "w1", RoleWorker}, time.Hour, t0)))
	alien := chainOf(t, must2(issue(t, foreign, Identity{"c1", "w1", RoleWorker}, time.Hour, t0)))
	cases := []struct {
		name  string
		chain []*x509.Certificate
		roots *x509.CertPool
		now   time.Time
		want  error
	}{
		{"a worker certificate", worker, roots, t0, nil},
		{"a worker certificate without its CA in the chain", worker[:1], roots, t0, nil},
		{"another CA's certificate with the same cluster ID", alien, roots, t0, ErrUntrusted},
		{"an expired certificate", worker, roots, t0.Add(2 * time.Hour), ErrExpired},
		{"a certificate from the future", worker, roots, t0.Add(-Backdate - time.Minute), ErrNotYetValid},
		{"the CA certificate itself", []*x509.Certificate{ca.Certificate()}, roots, t0, ErrUntrusted},
		{"nothing", nil, roots, t0, ErrNoPeerCertificate},
		{"no roots", worker, nil, t0, ErrUntrusted},
	}
	for _, c := range cases {
		id, err := VerifyPeer(c.chain, c.roots, x509.ExtKeyUsageClientAuth, c.now)
		if !errors.Is(err, c.want) {
			t.Errorf("VerifyPeer(%s) = %v, want %v", c.name, err, c.want)
		}
		if c.want == nil && id != (Identity{"c1", "w1", RoleWorker}) {
			t.Errorf("VerifyPeer(%s) identity = %v, want the worker w1", c.name, id)
		}
	}
}

func TestMutualTLS(t *testing.T) {
	ca, foreign := mustCA(t, "c1"), mustCA(t, "c1")
	trust := mustBundle(t, ca)
	now := t0.Add(time.Minute)
	manager := nodeCreds(t, ca, Identity{"c1", "m1", RoleManager}, trust, now)
	worker := nodeCreds(t, ca, Identity{"c1", "w1", RoleWorker}, trust, now)
	// The cluster's CA certificate is public: an attacker trusts it too.
	alien := nodeCreds(t, foreign, Identity{"c1", "w9", RoleWorker}, trust, now)
	otherCert, otherKey := issue(t, mustCA(t, "c2"), Identity{"c2", "w1", RoleWorker}, 0, t0)
	other := rawClient(t, otherCert, otherKey)
	anonymous := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	tls12 := ClientConfig(worker, nil)
	tls12.MinVersion, tls12.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	cases := []struct {
		name           string
		server, client *tls.Config
		wantServer     error // nil: the handshake succeeds
		wantClient     error // checked when not nil
		saw            Identity
	}{
		{name: "a worker dials a manager", server: ServerConfig(manager, nil), client: ClientConfig(worker, RequireRole(RoleManager)),
			saw: Identity{"c1", "w1", RoleWorker}},
		{name: "a manager dials a manager", server: ServerConfig(manager, RequireRole(RoleManager)), client: ClientConfig(manager, RequireRole(RoleManager)),
			saw: Identity{"c1", "m1", RoleManager}},
		{name: "no client certificate", server: ServerConfig(manager, nil), client: anonymous,
			wantServer: errAny},
		{name: "a certificate of a foreign CA", server: ServerConfig(manager, nil), client: ClientConfig(alien, nil),
			wantServer: ErrUntrusted},
		{name: "a certificate of another cluster", server: ServerConfig(manager, nil), client: other,
			wantServer: ErrUntrusted},
		{name: "a worker on the managers-only listener", server: ServerConfig(manager, RequireRole(RoleManager)), client: ClientConfig(worker, nil),
			wantServer: ErrNotAllowed},
		{name: "a worker posing as a manager", server: ServerConfig(worker, nil), client: ClientConfig(manager, RequireRole(RoleManager)),
			wantServer: errAny, wantClient: ErrNotAllowed},
		{name: "a manager with a foreign certificate", server: ServerConfig(alien, nil), client: ClientConfig(worker, nil),
			wantServer: errAny, wantClient: ErrUntrusted},
		{name: "TLS 1.2", server: ServerConfig(manager, nil), client: tls12,
			wantServer: errAny},
	}
	for _, c := range cases {
		r := handshake(t, c.server, c.client)
		switch {
		case c.wantServer == nil && (r.serverErr != nil || r.clientErr != nil || r.peerErr != nil):
			t.Errorf("%s: handshake failed: server %v, client %v, PeerIdentity %v", c.name, r.serverErr, r.clientErr, r.peerErr)
		case c.wantServer == nil && r.serverSaw != c.saw:
			t.Errorf("%s: the server saw %v, want %v", c.name, r.serverSaw, c.saw)
		case c.wantServer == errAny && r.serverErr == nil:
			t.Errorf("%s: the server accepted the connection, want it refused", c.name)
		case c.wantServer != nil && c.wantServer != errAny && !errors.Is(r.serverErr, c.wantServer):
			t.Errorf("%s: server error %v, want %v", c.name, r.serverErr, c.wantServer)
		}
		if c.wantServer != nil && r.clientErr == nil {
			t.Errorf("%s: the client saw a working connection, want it refused", c.name)
		}
		if c.wantClient != nil && !errors.Is(r.clientErr, c.wantClient) {
			t.Errorf("%s: client error %v, want %v", c.name, r.clientErr, c.wantClient)
		}
	}
}

// errAny stands for "some error" where the TLS stack words it.
var errAny = errors.New("any error")

func TestExpiredCertificateRefused(t *testing.T) {
	ca := mustCA(t, "c1")
	trust := mustBundle(t, ca)
	certPEM, keyPEM := issue(t, ca, Identity{"c1", "w1", RoleWorker}, time.Hour, t0)
	worker, err := NewCredentials(certPEM, keyPEM, trust)
	if err != nil {
		t.Fatal(err)
	}
	manager := nodeCreds(t, ca, Identity{"c1", "m1", RoleManager}, trust, t0.Add(2*time.Hour))
	worker.Clock = manager.Clock
	r := handshake(t, ServerConfig(manager, nil), ClientConfig(worker, nil))
	if !errors.Is(r.serverErr, ErrExpired) || r.clientErr == nil {
		t.Errorf("handshake with a certificate expired an hour ago: server %v, client %v; want ErrExpired and a refused client", r.serverErr, r.clientErr)
	}
	if err := worker.SelfCheck(); !errors.Is(err, ErrExpired) {
		t.Errorf("SelfCheck of an expired certificate = %v, want ErrExpired", err)
	}
	if !worker.RenewalDue(t0.Add(2 * time.Hour)) {
		t.Errorf("RenewalDue(an expired certificate) = false, want true")
	}
}

func TestJoinServerConfig(t *testing.T) {
	ca := mustCA(t, "c1")
	trust := mustBundle(t, ca)
	manager := nodeCreds(t, ca, Identity{"c1", "m1", RoleManager}, trust, t0)
	worker := nodeCreds(t, ca, Identity{"c1", "w1", RoleWorker}, trust, t0)
	alien := nodeCreds(t, mustCA(t, "c1"), Identity{"c1", "w1", RoleWorker}, trust, t0)

	joiner := BootstrapClientConfig(ca.Digest())
	joiner.Time = func() time.Time { return t0 }
	r := handshake(t, JoinServerConfig(manager, nil), joiner)
	if r.clientErr != nil || r.serverErr != nil || !errors.Is(r.peerErr, ErrNoPeerCertificate) {
		t.Errorf("a joining node without a certificate: client %v, server %v, PeerIdentity %v; want a connection on which PeerIdentity says ErrNoPeerCertificate",
			r.clientErr, r.serverErr, r.peerErr)
	}
	r = handshake(t, JoinServerConfig(manager, nil), ClientConfig(worker, nil))
	if r.serverErr != nil || r.serverSaw.NodeID != "w1" {
		t.Errorf("a worker on the join listener: server %v saw %v, want w1", r.serverErr, r.serverSaw)
	}
	r = handshake(t, JoinServerConfig(manager, nil), ClientConfig(alien, nil))
	if !errors.Is(r.serverErr, ErrUntrusted) {
		t.Errorf("a foreign certificate on the join listener: server %v, want ErrUntrusted", r.serverErr)
	}
}

// A manager whose address changes keeps working: nothing checks it.
func TestAddressIsNotIdentity(t *testing.T) {
	ca := mustCA(t, "c1")
	trust := mustBundle(t, ca)
	manager := nodeCreds(t, ca, Identity{"c1", "m1", RoleManager}, trust, t0)
	worker := nodeCreds(t, ca, Identity{"c1", "w1", RoleWorker}, trust, t0)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerConfig(manager, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, addr := range []string{"127.0.0.1", "localhost"} {
		c, err := tls.Dial("tcp", net.JoinHostPort(addr, port), ClientConfig(worker, RequireRole(RoleManager)))
		if err != nil {
			t.Errorf("dial the manager at %s: %v", addr, err)
			continue
		}
		id, err := PeerIdentity(c.ConnectionState())
		if err != nil || id.NodeID != "m1" {
			t.Errorf("dial the manager at %s: PeerIdentity = %v, %v; want m1", addr, id, err)
		}
		c.Close()
	}
}

func TestCredentialsUpdate(t *testing.T) {
	ca := mustCA(t, "c1")
	trust := mustBundle(t, ca)
	c := nodeCreds(t, ca, Identity{"c1", "w1", RoleWorker}, trust, t0)
	certPEM, keyPEM := issue(t, ca, Identity{"c1", "w1", RoleManager}, 0, t0)
	if err := c.Update(certPEM, keyPEM, trust); err != nil || c.Identity().Role != RoleManager {
		t.Errorf("Update(a manager certificate after a promotion) = %v, role now %s; want manager", err, c.Identity().Role)
	}
	_, otherKey := issue(t, ca, Identity{"c1", "w1", RoleWorker}, 0, t0)
	if err := c.Update(certPEM, otherKey, trust); err == nil {
		t.Errorf("Update(a certificate with another node's key) succeeded, want an error")
	}
	c2 := mustCA(t, "c2")
	p2, k2 := issue(t, c2, Identity{"c2", "w1", RoleWorker}, 0, t0)
	if err := c.Update(p2, k2, mustBundle(t, c2)); err == nil {
		t.Errorf("Update(a certificate of another cluster) succeeded, want an error")
	}
	if err := c.SetTrust(mustBundle(t, c2)); err == nil {
		t.Errorf("SetTrust(another cluster's CA) succeeded, want an error")
	}
	if _, err := NewCredentials(p2, k2, trust); err == nil {
		t.Errorf("NewCredentials(a c2 certificate, a c1 bundle) succeeded, want an error")
	}
}

// Handshakes running while the credentials are swapped all succeed, with
// one set of credentials or the other (go test -race checks the swap).
func TestCredentialsSwapDuringHandshakes(t *testing.T) {
	ca := mustCA(t, "c1")
	next := mustCA(t, "c1")
	rot, err := ca.CrossSign(next, t0)
	if err != nil {
		t.Fatal(err)
	}
	one, both := mustBundle(t, ca), mustBundle(t, next, ca)
	manager := nodeCreds(t, ca, Identity{"c1", "m1", RoleManager}, one, t0)
	worker := nodeCreds(t, ca, Identity{"c1", "w1", RoleWorker}, one, t0)
	server, client := ServerConfig(manager, nil), ClientConfig(worker, RequireRole(RoleManager))
	certs := [][2][]byte{}
	for range 2 {
		c, k := issue(t, rot, Identity{"c1", "m1", RoleManager}, 0, t0)
		certs = append(certs, [2][]byte{c, k})
	}
	stop := make(chan struct{})
	swapped := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				swapped <- n
				return
			default:
			}
			c := certs[n%2]
			if err := manager.Update(c[0], c[1], both); err != nil {
				t.Errorf("Update: %v", err)
			}
			if err := worker.SetTrust([]*Bundle{one, both}[n%2]); err != nil {
				t.Errorf("SetTrust: %v", err)
			}
			n++
		}
	}()
	for i := range 50 {
		if r := handshake(t, server, client); r.serverErr != nil || r.clientErr != nil {
			t.Errorf("handshake %d while swapping: server %v, client %v", i, r.serverErr, r.clientErr)
		}
	}
	close(stop)
	if n := <-swapped; n == 0 {
		t.Errorf("the credentials were never swapped during the handshakes")
	}
}
