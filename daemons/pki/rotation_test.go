package pki

import (
	"crypto/tls"
	"errors"
	"testing"
	"time"
)

// TestRotation walks a CA rotation with configs built once, as the
// daemons hold them: the steps only swap credentials.
func TestRotation(t *testing.T) {
	now := t0.Add(time.Hour)
	old := mustCA(t, "c1")
	onlyOld := mustBundle(t, old)
	m1 := nodeCreds(t, old, Identity{"c1", "m1", RoleManager}, onlyOld, now)
	m2 := nodeCreds(t, old, Identity{"c1", "m2", RoleManager}, onlyOld, now)
	w1 := nodeCreds(t, old, Identity{"c1", "w1", RoleWorker}, onlyOld, now)
	w2 := nodeCreds(t, old, Identity{"c1", "w2", RoleWorker}, onlyOld, now)
	m1Server := ServerConfig(m1, nil)
	m2Server := ServerConfig(m2, nil)
	dial := map[*Credentials]*tls.Config{
		m1: ClientConfig(m1, RequireRole(RoleManager)),
		w1: ClientConfig(w1, RequireRole(RoleManager)),
		w2: ClientConfig(w2, RequireRole(RoleManager)),
	}
	expect := func(step, who string, server *tls.Config, client *Credentials, want error) {
		t.Helper()
		r := handshake(t, server, dial[client])
		switch {
		case want == nil && (r.serverErr != nil || r.clientErr != nil):
			t.Errorf("%s: %s: server %v, client %v; want a connection", step, who, r.serverErr, r.clientErr)
		case want != nil && !errors.Is(r.serverErr, want) && !errors.Is(r.clientErr, want):
			t.Errorf("%s: %s: server %v, client %v; want %v", step, who, r.serverErr, r.clientErr, want)
		}
	}
	renew := func(c *Credentials, ca *CA, trust *Bundle) {
		t.Helper()
		certPEM, keyPEM := issue(t, ca, c.Identity(), 0, now)
		if err := c.Update(certPEM, keyPEM, trust); err != nil {
			t.Fatalf("Update(%v): %v", c.Identity(), err)
		}
	}

	expect("before", "w1 → m1", m1Server, w1, nil)

	// 1. The leader makes the new CA, cross-signed by the old one; the
	// managers trust both and sign with the new one, renewing first.
	next := mustCA(t, "c1")
	rot, err := old.CrossSign(next, now)
	if err != nil {
		t.Fatalf("CrossSign: %v", err)
	}
	both := mustBundle(t, next, old)
	if err := m2.SetTrust(both); err != nil {
		t.Fatal(err)
	}
	renew(m1, rot, both)
	expect("rotating", "w1 (old certificate, trusts only the old CA) → m1 (new certificate)", m1Server, w1, nil)
	expect("rotating", "m1 (new certificate) → m2 (old certificate, trusts both)", m2Server, m1, nil)

	// Without the cross-signed certificate, a node that has not heard of
	// the rotation yet refuses the renewed manager: the reason for it.
	bare := nodeCreds(t, next, Identity{"c1", "m3", RoleManager}, both, now)
	expect("rotating", "w1 (trusts only the old CA) → a manager signed by the new CA with no cross-signature", ServerConfig(bare, nil), w1, ErrUntrusted)

	// 2. Each node gets the bundle of both CAs, sees its certificate is
	// not of the active CA, and renews.
	if w1.RenewalDue(now) {
		t.Errorf("w1.RenewalDue before it hears of the rotation = true, want false")
	}
	if err := w1.SetTrust(both); err != nil {
		t.Fatal(err)
	}
	if !w1.RenewalDue(now) {
		t.Errorf("w1.RenewalDue with both CAs and an old certificate = false, want true")
	}
	expect("rotating", "w1 (old certificate, trusts both) → m1", m1Server, w1, nil)
	renew(w1, rot, both)
	if w1.RenewalDue(now) {
		t.Errorf("w1.RenewalDue after renewing under the new CA = true, want false")
	}
	expect("rotating", "w1 (new certificate) → m1", m1Server, w1, nil)
	expect("rotating", "w1 (new certificate) → m2 (old certificate, trusts both)", m2Server, w1, nil)
	if err := w2.SetTrust(both); err != nil { // w2 hears of it but is off before renewing
		t.Fatal(err)
	}
	expect("rotating", "w2 (old certificate, trusts both) → m1", m1Server, w2, nil)

	// 3. Every node has renewed but w2: the operator finishes. The old CA
	// is dropped; the managers' CA loses its cross-signed certificate.
	onlyNew := mustBundle(t, next)
	for _, c := range []*Credentials{m1, w1} {
		if err := c.SetTrust(onlyNew); err != nil {
			t.Fatal(err)
		}
	}
	expect("finished", "w1 (new certificate) → m1", m1Server, w1, nil)
	expect("finished", "w2 (old certificate) → m1", m1Server, w2, ErrUntrusted)
	if err := w2.SetTrust(onlyNew); err != nil {
		t.Fatal(err)
	}
	if err := w2.SelfCheck(); !errors.Is(err, ErrUntrusted) {
		t.Errorf("w2.SelfCheck with an old certificate after the rotation = %v, want ErrUntrusted (it must join again)", err)
	}
	renew(m1, rot.WithoutCrossSigned(), onlyNew)
	if n := len(presented(t, m1)); n != 2 {
		t.Errorf("after the rotation m1 presents %d certificates, want 2 (its own and the CA)", n)
	}
	expect("finished", "w1 → m1 (renewed without the cross-signature)", m1Server, w1, nil)
	if err := w1.SelfCheck(); err != nil {
		t.Errorf("w1.SelfCheck after the rotation = %v, want nil", err)
	}
}
