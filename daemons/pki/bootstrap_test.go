package pki

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestVerifyPinned(t *testing.T) {
	ca, mitmCA := mustCA(t, "c1"), mustCA(t, "c1")
	trust := mustBundle(t, ca)
	manager := presented(t, nodeCreds(t, ca, Identity{"c1", "m1", RoleManager}, trust, t0))
	worker := presented(t, nodeCreds(t, ca, Identity{"c1", "w1", RoleWorker}, trust, t0))
	mitm := chainOf(t, must2(issue(t, mitmCA, Identity{"c1", "m1", RoleManager}, 0, t0)))
	// The rotation's middle: a manager certificate of the new CA, trusting both.
	next := mustCA(t, "c1")
	rot, err := ca.CrossSign(next, t0)
	if err != nil {
		t.Fatal(err)
	}
	rotating := presented(t, nodeCreds(t, rot, Identity{"c1", "m1", RoleManager}, mustBundle(t, next, ca), t0))

	cases := []struct {
		name   string
		chain  []*x509.Certificate
		digest string
		now    time.Time
		want   error // errAny: some error
	}{
		{"a manager of the token's cluster", manager, ca.Digest(), t0, nil},
		{"the digest in upper case", manager, strings.ToUpper(ca.Digest()), t0, nil},
		{"a token of another cluster", manager, mustCA(t, "c2").Digest(), t0, ErrPinMismatch},
		{"a man in the middle with its own CA", mitm, ca.Digest(), t0, ErrPinMismatch},
		{"a man in the middle sending the cluster's CA too", append(mitm, ca.Certificate()), ca.Digest(), t0, ErrPinMismatch},
		{"the cluster's CA certificate as the server's own", []*x509.Certificate{ca.Certificate(), ca.Certificate()}, ca.Digest(), t0, ErrPinMismatch},
		{"a worker of the cluster posing as a manager", worker, ca.Digest(), t0, ErrPinMismatch},
		{"only a leaf, no CA", manager[:1], ca.Digest(), t0, ErrPinMismatch},
		{"no certificate", nil, ca.Digest(), t0, ErrNoPeerCertificate},
		{"a manager certificate that expired", manager, ca.Digest(), t0.Add(DefaultNodeTTL + time.Hour), ErrExpired},
		{"not a digest", manager, "abc", t0, errAny},
		{"rotating: a token of the old CA", rotating, ca.Digest(), t0, nil},
		{"rotating: a token of the new CA", rotating, next.Digest(), t0, nil},
	}
	for _, c := range cases {
		id, pinned, err := VerifyPinned(c.chain, c.digest, c.now)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("VerifyPinned(%s) = %v, want nil", c.name, err)
		case c.want == nil && (id.NodeID != "m1" || !SameDigest(Digest(pinned), c.digest)):
			t.Errorf("VerifyPinned(%s) = %v, CA %s; want m1 and the pinned CA", c.name, id, Digest(pinned))
		case c.want == errAny && err == nil:
			t.Errorf("VerifyPinned(%s) succeeded, want an error", c.name)
		case c.want != nil && c.want != errAny && !errors.Is(err, c.want):
			t.Errorf("VerifyPinned(%s) = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestBootstrapHandshake(t *testing.T) {
	ca, mitmCA := mustCA(t, "c1"), mustCA(t, "c1")
	trust := mustBundle(t, ca)
	manager := nodeCreds(t, ca, Identity{"c1", "m1", RoleManager}, trust, t0)
	// The man in the middle sends the cluster's real CA certificate too.
	mitm := nodeCreds(t, mitmCA, Identity{"c1", "m1", RoleManager}, mustBundle(t, mitmCA, ca), t0)

	cases := []struct {
		name   string
		server *Credentials
		digest string
		want   error
	}{
		{"the token's digest", manager, ca.Digest(), nil},
		{"a man in the middle", mitm, ca.Digest(), ErrPinMismatch},
		{"a token of another cluster", manager, mustCA(t, "c1").Digest(), ErrPinMismatch},
	}
	for _, c := range cases {
		joiner := BootstrapClientConfig(c.digest)
		joiner.Time = func() time.Time { return t0 }
		r := handshake(t, JoinServerConfig(c.server, nil), joiner)
		if !errors.Is(r.clientErr, c.want) {
			t.Errorf("join over BootstrapClientConfig(%s): client %v, want %v", c.name, r.clientErr, c.want)
		}
		if c.want != nil && r.serverErr == nil {
			t.Errorf("join over BootstrapClientConfig(%s): the server finished its handshake, want it cut off", c.name)
		}
	}
}
