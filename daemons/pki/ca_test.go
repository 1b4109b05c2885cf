package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	ca := mustCA(t, "c1")
	c := ca.Certificate()
	if !c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("NewCA: IsCA=%v BasicConstraintsValid=%v, want both", c.IsCA, c.BasicConstraintsValid)
	}
	if c.Subject.CommonName != "warren-ca c1" || ca.ClusterID() != "c1" {
		t.Errorf("NewCA(c1): CN %q cluster %q, want \"warren-ca c1\" and c1", c.Subject.CommonName, ca.ClusterID())
	}
	if got := c.NotAfter.Sub(t0); got != CAValidity {
		t.Errorf("NewCA: valid for %v after now, want %v", got, CAValidity)
	}
	if len(ca.Digest()) != DigestLen || !validB32(ca.Digest(), DigestLen) {
		t.Errorf("Digest() = %q, want %d characters of a-z2-7", ca.Digest(), DigestLen)
	}
	if other := mustCA(t, "c1"); other.Digest() == ca.Digest() || bytes.Equal(other.Certificate().RawSubject, c.RawSubject) {
		t.Errorf("two NewCA(c1) share a digest or a subject; a rotation needs them told apart")
	}
	for _, bad := range []string{"", "a/b", "a b", strings.Repeat("x", 65)} {
		if _, err := NewCA(bad, t0); err == nil {
			t.Errorf("NewCA(%q) succeeded, want an error", bad)
		}
	}
}

func TestLoadCARoundTrip(t *testing.T) {
	old, next := mustCA(t, "c1"), mustCA(t, "c1")
	rotating, err := old.CrossSign(next, t0)
	if err != nil {
		t.Fatalf("CrossSign: %v", err)
	}
	for _, ca := range []*CA{old, rotating} {
		keyPEM, err := ca.KeyPEM()
		if err != nil {
			t.Fatalf("KeyPEM: %v", err)
		}
		got, err := LoadCA(ca.CertPEM(), keyPEM)
		if err != nil {
			t.Fatalf("LoadCA(CertPEM, KeyPEM): %v", err)
		}
		if got.Digest() != ca.Digest() || len(got.CrossSigned()) != len(ca.CrossSigned()) {
			t.Errorf("LoadCA: digest %s with %d cross-signed, want %s with %d",
				got.Digest(), len(got.CrossSigned()), ca.Digest(), len(ca.CrossSigned()))
		}
		// The loaded CA signs, and what it signs verifies.
		certPEM, _ := issue(t, got, Identity{"c1", "n1", RoleWorker}, time.Hour, t0)
		if _, err := VerifyPeer(chainOf(t, certPEM), mustBundle(t, ca).Pool(), x509.ExtKeyUsageClientAuth, t0); err != nil {
			t.Errorf("a certificate signed by the loaded CA does not verify: %v", err)
		}
	}
}

func TestLoadCAErrors(t *testing.T) {
	a, b := mustCA(t, "c1"), mustCA(t, "c1")
	aKey, _ := a.KeyPEM()
	nodePEM, nodeKey := issue(t, a, Identity{"c1", "n1", RoleManager}, time.Hour, t0)
	cases := []struct {
		name          string
		certPEM, key  []byte
		wantSubstring string
	}{
		{"no certificate", nil, aKey, "no CERTIFICATE"},
		{"no key", a.CertPEM(), nil, "no PEM block"},
		{"key in the certificate file", aKey, aKey, "PRIVATE KEY"},
		{"certificate in the key file", a.CertPEM(), a.CertPEM(), "CERTIFICATE"},
		{"another CA's key", a.CertPEM(), mustKeyPEM(t, b), "does not belong"},
		{"a node certificate", nodePEM, nodeKey, "not a CA"},
		{"an unrelated certificate after the root", append(a.CertPEM(), b.CertPEM()...), aKey, "not a cross-signed copy"},
	}
	for _, c := range cases {
		_, err := LoadCA(c.certPEM, c.key)
		if err == nil || !strings.Contains(err.Error(), c.wantSubstring) {
			t.Errorf("LoadCA(%s) = %v, want an error mentioning %q", c.name, err, c.wantSubstring)
		}
	}
}

func mustKeyPEM(t *testing.T, ca *CA) []byte {
	k, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignNodeIdentity(t *testing.T) {
	ca := mustCA(t, "c1")
	for _, id := range []Identity{
		{"c1", "n1", RoleWorker},
		{"c1", "mgr-0", RoleManager},
		{"c1", "Node_7.lab", RoleWorker},
	} {
		certPEM, _ := issue(t, ca, id, 0, t0)
		chain := chainOf(t, certPEM)
		leaf := chain[0]
		got, err := IdentityOf(leaf)
		if err != nil || got != id {
			t.Errorf("IdentityOf(SignNode(%v)) = %v, %v; want %v", id, got, err, id)
		}
		if want := "warren://c1/" + string(id.Role) + "/" + id.NodeID; len(leaf.URIs) != 1 || leaf.URIs[0].String() != want {
			t.Errorf("SignNode(%v): URIs %v, want [%s]", id, leaf.URIs, want)
		}
		if len(leaf.IPAddresses)+len(leaf.DNSNames) != 0 {
			t.Errorf("SignNode(%v): IPs %v DNS %v, want none: an address is not an identity", id, leaf.IPAddresses, leaf.DNSNames)
		}
		if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
			t.Errorf("SignNode(%v): ExtKeyUsage %v, want server and client auth", id, leaf.ExtKeyUsage)
		}
		if leaf.IsCA {
			t.Errorf("SignNode(%v) issued a CA certificate", id)
		}
		if got := leaf.NotAfter.Sub(t0); got != DefaultNodeTTL {
			t.Errorf("SignNode(%v, ttl 0): valid for %v, want DefaultNodeTTL %v", id, got, DefaultNodeTTL)
		}
		if len(chain) != 2 || !chain[1].Equal(ca.Certificate()) {
			t.Errorf("SignNode(%v): chain of %d, want the node certificate then the CA", id, len(chain))
		}
	}
}

func TestSignNodeCapsAtCAExpiry(t *testing.T) {
	ca := mustCA(t, "c1")
	late := ca.Certificate().NotAfter.Add(-time.Hour)
	certPEM, _ := issue(t, ca, Identity{"c1", "n1", RoleWorker}, 90*24*time.Hour, late)
	if got := leafOf(t, certPEM).NotAfter; !got.Equal(ca.Certificate().NotAfter) {
		t.Errorf("SignNode an hour before the CA expires: NotAfter %v, want the CA's %v", got, ca.Certificate().NotAfter)
	}
	key, _, _ := NewKey()
	csr, _ := NewCSR(key, "n1")
	if _, err := ca.SignNode(csr, Identity{"c1", "n1", RoleWorker}, time.Hour, ca.Certificate().NotAfter); err == nil {
		t.Errorf("SignNode once the CA has expired succeeded, want an error")
	}
}

func TestSignNodeErrors(t *testing.T) {
	ca := mustCA(t, "c1")
	key, _, _ := NewKey()
	csr, _ := NewCSR(key, "n1")
	tampered := slices.Clone(csr)
	tampered[len(tampered)-3] ^= 0xff // in the signature
	cases := []struct {
		name string
		csr  []byte
		id   Identity
		want string
	}{
		{"another cluster", csr, Identity{"c2", "n1", RoleWorker}, "signs for cluster c1"},
		{"no node ID", csr, Identity{"c1", "", RoleWorker}, "node ID is empty"},
		{"a slash in the node ID", csr, Identity{"c1", "a/b", RoleWorker}, "character '/'"},
		{"an unknown role", csr, Identity{"c1", "n1", "root"}, "role \"root\""},
		{"garbage request", []byte("nope"), Identity{"c1", "n1", RoleWorker}, "read the certificate request"},
		{"tampered request", tampered, Identity{"c1", "n1", RoleWorker}, "request"},
	}
	for _, c := range cases {
		_, err := ca.SignNode(c.csr, c.id, time.Hour, t0)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SignNode(%s) = %v, want an error mentioning %q", c.name, err, c.want)
		}
	}
}

// signRaw signs an arbitrary node template with ca's key: certificates
// SignNode would never issue.
func signRaw(t *testing.T, ca *CA, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	key, _, _ := NewKey()
	tmpl.SerialNumber, _ = newSerial()
	tmpl.NotBefore, tmpl.NotAfter = t0.Add(-time.Hour), t0.Add(time.Hour)
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestIdentityOfRefuses(t *testing.T) {
	ca := mustCA(t, "c1")
	u := func(s string) []*url.URL {
		x, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return []*url.URL{x}
	}
	subj := pkix.Name{CommonName: "n1", Organization: []string{"c1"}, OrganizationalUnit: []string{"worker"}}
	cases := []struct {
		name string
		tmpl *x509.Certificate
	}{
		{"no URI", &x509.Certificate{Subject: subj}},
		{"a URI of another scheme", &x509.Certificate{Subject: subj, URIs: u("spiffe://c1/worker/n1")}},
		{"two warren URIs", &x509.Certificate{Subject: subj, URIs: append(u("warren://c1/worker/n1"), u("warren://c1/manager/n1")...)}},
		{"a role the subject does not say", &x509.Certificate{Subject: subj, URIs: u("warren://c1/manager/n1")}},
		{"another node in the subject", &x509.Certificate{Subject: pkix.Name{CommonName: "n2", Organization: []string{"c1"}, OrganizationalUnit: []string{"worker"}}, URIs: u("warren://c1/worker/n1")}},
		{"an unknown role", &x509.Certificate{Subject: pkix.Name{CommonName: "n1", Organization: []string{"c1"}, OrganizationalUnit: []string{"root"}}, URIs: u("warren://c1/root/n1")}},
		{"a path too deep", &x509.Certificate{Subject: subj, URIs: u("warren://c1/worker/n1/x")}},
		{"a port", &x509.Certificate{Subject: subj, URIs: u("warren://c1:99/worker/n1")}},
	}
	for _, c := range cases {
		_, err := IdentityOf(signRaw(t, ca, c.tmpl))
		if !errors.Is(err, ErrNoIdentity) {
			t.Errorf("IdentityOf(certificate with %s) = %v, want ErrNoIdentity", c.name, err)
		}
	}
	if _, err := IdentityOf(ca.Certificate()); !errors.Is(err, ErrNoIdentity) {
		t.Errorf("IdentityOf(the CA certificate) = %v, want ErrNoIdentity", err)
	}
}

func TestDigest(t *testing.T) {
	ca := mustCA(t, "c1")
	d := Digest(ca.Certificate())
	if !SameDigest(d, strings.ToUpper(d)) || !SameDigest(d, " "+d+"\n") {
		t.Errorf("SameDigest(%s, upper case or padded) = false, want true", d)
	}
	if SameDigest(d, mustCA(t, "c1").Digest()) {
		t.Errorf("SameDigest of two CAs = true, want false")
	}
}

func TestNeedsRenewal(t *testing.T) {
	ca := mustCA(t, "c1")
	for i := 0; i < 20; i++ { // RenewAt depends on the serial number
		leaf := leafOf(t, must2(issue(t, ca, Identity{"c1", "n1", RoleWorker}, 90*24*time.Hour, t0)))
		if !IssuedAt(leaf).Equal(t0) {
			t.Fatalf("IssuedAt(a certificate signed at %s) = %s", t0, IssuedAt(leaf))
		}
		// Its life is from its signing: the Backdate before it is slack
		// for clocks.
		life := leaf.NotAfter.Sub(t0)
		at := func(f float64) time.Time { return t0.Add(time.Duration(f * float64(life))) }
		if r := RenewAt(leaf); r.Before(at(0.60)) || !r.Before(at(0.75)) {
			t.Errorf("RenewAt = %.3f of the lifetime, want within [0.60, 0.75)", float64(r.Sub(t0))/float64(life))
		}
		cases := []struct {
			now  time.Time
			want bool
		}{
			{leaf.NotBefore, false},
			{t0, false},
			{at(0.5), false},
			{at(0.599), false},
			{at(0.75), true},
			{leaf.NotAfter.Add(time.Hour), true},
		}
		for _, c := range cases {
			if got := NeedsRenewal(leaf, c.now); got != c.want {
				t.Errorf("NeedsRenewal(cert, %.3f of its life) = %v, want %v",
					float64(c.now.Sub(t0))/float64(life), got, c.want)
			}
		}
	}
}

func must2(a, _ []byte) []byte { return a }

func TestParseKey(t *testing.T) {
	_, keyPEM, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseKey(keyPEM); err != nil {
		t.Errorf("ParseKey(NewKey's PEM) = %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("junk"), mustCA(t, "c1").CertPEM()} {
		if _, err := ParseKey(bad); err == nil || !strings.HasPrefix(err.Error(), "pki: read key: ") {
			t.Errorf("ParseKey(%.20q) = %v, want a \"pki: read key:\" error", bad, err)
		}
	}
}
