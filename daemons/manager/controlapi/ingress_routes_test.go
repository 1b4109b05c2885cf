package controlapi

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

func certPEM(t *testing.T, notBefore, notAfter time.Time) (cert, key []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "a.example", Organization: []string{"Test"}},
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

func TestCertState(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	fresh, key := certPEM(t, now.Add(-10*day), now.Add(80*day))
	old, _ := certPEM(t, now.Add(-70*day), now.Add(20*day))
	gone, _ := certPEM(t, now.Add(-91*day), now.Add(-day))
	for _, c := range []struct {
		name  string
		chain []byte
		want  string
	}{
		{"a third into its life", fresh, "valid"},
		{"its key first, then it", append(append([]byte{}, key...), fresh...), "valid"},
		{"past two thirds", old, "expiring"},
		{"past its end", gone, "expired"},
		{"a key alone", key, "error"},
		{"not PEM", []byte("hello"), "error"},
	} {
		got := CertState(c.chain, now)
		if got.State != c.want {
			t.Errorf("CertState(%s) = %+v, want state %s", c.name, got, c.want)
		}
		if got.State != "error" && (got.Issuer != "Test a.example" || got.NotAfter.IsZero()) {
			t.Errorf("CertState(%s) = issuer %q, notAfter %v", c.name, got.Issuer, got.NotAfter)
		}
	}
}

// Each route is listed once, sorted by host and path, with the live
// tasks of its service at the route's port.
func TestIngressRouteStatuses(t *testing.T) {
	svc := &api.Service{Meta: api.Meta{ID: "s1"}, Spec: api.ServiceSpec{Name: "web", Ingress: []api.IngressRoute{
		{Host: "b.example", Port: 8080}, {Host: "a.example", Path: "/api", Port: 9090}}}}
	plain := &api.Service{Meta: api.Meta{ID: "s2"}, Spec: api.ServiceSpec{Name: "db"}}
	running := &api.Task{Meta: api.Meta{ID: "t1"}, ServiceID: "s1", NodeID: "n1", DesiredState: api.TaskRunning,
		Status: api.TaskStatus{State: api.TaskRunning, Addr: "10.240.1.5/24"}}
	pending := &api.Task{Meta: api.Meta{ID: "t2"}, ServiceID: "s1", DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskPending}}
	stopped := &api.Task{Meta: api.Meta{ID: "t3"}, ServiceID: "s1", NodeID: "n2", DesiredState: api.TaskShutdown,
		Status: api.TaskStatus{State: api.TaskShutdown}}
	got := IngressRouteStatuses([]*api.Service{svc, plain}, map[string][]*api.Task{"s1": {stopped, pending, running}},
		func(rt *api.IngressRoute) api.IngressCert { return api.IngressCert{State: "pending", Source: "acme"} })
	if len(got) != 2 || got[0].Route.Host != "a.example" || got[1].Route.Host != "b.example" {
		t.Fatalf("IngressRouteStatuses = %+v, want a.example then b.example", got)
	}
	b := got[0].Backends
	if len(b) != 2 || b[0].TaskID != "t1" || b[0].Addr != "10.240.1.5:9090" || !b[0].Serving || b[0].NodeID != "n1" ||
		b[1].TaskID != "t2" || b[1].Addr != "" || b[1].Serving {
		t.Errorf("the backends of a.example/api = %+v, want t1 at 10.240.1.5:9090 serving, t2 with no address", b)
	}
}
