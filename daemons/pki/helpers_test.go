package pki

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"testing"
	"time"
)

// t0 is the time the tests' CAs and certificates are made at.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustCA(t *testing.T, cluster string) *CA {
	t.Helper()
	ca, err := NewCA(cluster, t0)
	if err != nil {
		t.Fatalf("NewCA(%q): %v", cluster, err)
	}
	return ca
}

// issue makes a node key on the "node" and has ca sign it.
func issue(t *testing.T, ca *CA, id Identity, ttl time.Duration, now time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, keyPEM, err := NewKey()
	if err != nil {
		t.Fatalf("NewKey: %v", err)
	}
	csr, err := NewCSR(key, id.NodeID)
	if err != nil {
		t.Fatalf("NewCSR: %v", err)
	}
	certPEM, err = ca.SignNode(csr, id, ttl, now)
	if err != nil {
		t.Fatalf("SignNode(%v): %v", id, err)
	}
	return certPEM, keyPEM
}

func mustBundle(t *testing.T, active *CA, others ...*CA) *Bundle {
	t.Helper()
	var oc []*x509.Certificate
	for _, o := range others {
		oc = append(oc, o.Certificate())
	}
	b, err := NewBundle(active.Certificate(), oc...)
	if err != nil {
		t.Fatalf("NewBundle: %v", err)
	}
	return b
}

// nodeCreds issues a certificate for id at t0 (valid for DefaultNodeTTL)
// and wraps it in Credentials trusting trust, whose clock says now.
func nodeCreds(t *testing.T, ca *CA, id Identity, trust *Bundle, now time.Time) *Credentials {
	t.Helper()
	certPEM, keyPEM := issue(t, ca, id, 0, t0)
	c, err := NewCredentials(certPEM, keyPEM, trust)
	if err != nil {
		t.Fatalf("NewCredentials(%v): %v", id, err)
	}
	c.Clock = func() time.Time { return now }
	return c
}

func chainOf(t *testing.T, certPEM []byte) []*x509.Certificate {
	t.Helper()
	certs, err := parseCerts(certPEM)
	if err != nil {
		t.Fatalf("parseCerts: %v", err)
	}
	return certs
}

func leafOf(t *testing.T, certPEM []byte) *x509.Certificate { return chainOf(t, certPEM)[0] }

// presented is the chain c sends in a handshake, parsed.
func presented(t *testing.T, c *Credentials) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, der := range c.certificate().Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

type handshakeResult struct {
	serverErr    error     // the server's handshake
	serverSaw    Identity  // PeerIdentity on the server side, after a handshake
	serverExpiry time.Time // PeerExpiry on the server side
	peerErr      error     // PeerIdentity's error
	clientErr    error     // the client's handshake, or reading the server's first byte
}

// handshake runs a TLS handshake over net.Pipe. The server, once its
// handshake succeeds, sends one byte; the client reads it, so a client
// certificate the server refuses (which TLS 1.3 reports after the
// client's handshake returns) shows as a client error too.
func handshake(t *testing.T, server, client *tls.Config) handshakeResult {
	t.Helper()
	sc, cc := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	_ = sc.SetDeadline(deadline)
	_ = cc.SetDeadline(deadline)
	done := make(chan handshakeResult, 1)
	go func() {
		defer sc.Close()
		s := tls.Server(sc, server)
		var r handshakeResult
		if r.serverErr = s.Handshake(); r.serverErr == nil {
			r.serverSaw, r.peerErr = PeerIdentity(s.ConnectionState())
			r.serverExpiry = PeerExpiry(s.ConnectionState())
			_, r.serverErr = s.Write([]byte{1})
		}
		done <- r
	}()
	c := tls.Client(cc, client)
	clientErr := c.Handshake()
	if clientErr == nil {
		var b [1]byte
		_, clientErr = io.ReadFull(c, b[:])
	}
	cc.Close()
	r := <-done
	r.clientErr = clientErr
	return r
}

// rawClient presents a certificate chain and checks nothing: an attacker,
// or a node of another cluster, whose certificate the server must judge.
func rawClient(t *testing.T, certPEM, keyPEM []byte) *tls.Config {
	t.Helper()
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{kp}}
}
