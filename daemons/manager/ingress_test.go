package manager_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager"
	"github.com/warren-edge/warren/daemons/manager/authz"
	"github.com/warren-edge/warren/daemons/manager/managertest"
	"github.com/warren-edge/warren/daemons/pki"
)

// ingressClient serves m's ingress socket (warren-ingress's) and returns
// a client of it.
func ingressClient(t *testing.T, m *manager.Manager) *client.Client {
	t.Helper()
	dir, err := os.MkdirTemp("", "warren-i-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "ingress.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go m.ServeIngress(l)
	c, err := client.New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// labelIngress makes node an ingress node, and waits until each of
// others' (managers') state says so: each checks the label against its
// own state.
func labelIngress(t *testing.T, c *client.Client, node string, others ...*client.Client) {
	t.Helper()
	// The node's record moves on meanwhile (its status): read it again.
	eventually(t, "label node "+node, 5*time.Second, func() error {
		n, err := c.Node(ctx(t), node)
		if err != nil {
			return err
		}
		spec := n.Spec
		if spec.Labels == nil {
			spec.Labels = map[string]string{}
		}
		spec.Labels[api.LabelIngress] = "true"
		_, err = c.UpdateNodeSpec(ctx(t), node, spec, n.Version)
		return err
	})
	for _, o := range others {
		eventually(t, "the label reaches every manager", 5*time.Second, func() error {
			n, err := o.Node(ctx(t), node)
			if err != nil || n.Spec.Labels[api.LabelIngress] != "true" {
				return errorf("node %s: %+v, %v", node, n, err)
			}
			return nil
		})
	}
}

// testCert is a self-signed certificate for host, valid from notBefore
// to notAfter, in PEM, and its key's PEM.
func testCert(t *testing.T, host string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host},
		Issuer: pkix.Name{CommonName: "Test CA"}, DNSNames: []string{host}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// grepDir says which files under dir hold b.
func grepDir(t *testing.T, dir string, b []byte) []string {
	t.Helper()
	var hits []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if raw, err := os.ReadFile(path); err == nil && bytes.Contains(raw, b) {
			hits = append(hits, path)
		}
		return nil
	})
	return hits
}

// The ingress store is one store for the cluster: put through a
// follower's ingress socket, read through a worker's (relayed as the
// node), listed, deleted; its locks exclude a second holder until the
// lease ends; its values are sealed on every manager's disk.
func TestIngressStoreThroughFollowersAndWorkers(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	ctx := ctx(t)
	leader := c.WaitLeader()
	f := c.Followers()[0]
	w := c.AddWorker("wrk1")
	var mgrs []*client.Client
	for _, m := range c.Managers[:3] {
		mgrs = append(mgrs, m.Client)
	}
	labelIngress(t, leader.Client, f.ID, mgrs...)
	labelIngress(t, leader.Client, "wrk1", mgrs...)
	fi, wi := ingressClient(t, f.Manager), ingressClient(t, w.Manager)

	const value = "-----BEGIN EC PRIVATE KEY----- the-ingress-test-account-key"
	if err := fi.IngressPut(ctx, f.ID, "acme/acme-v02.example/users/default/default.key", []byte(value)); err != nil {
		t.Fatalf("IngressPut through follower %s: %v", f.ID, err)
	}
	obj, err := wi.IngressGet(ctx, "wrk1", "acme/acme-v02.example/users/default/default.key")
	if err != nil || string(obj.Value) != value || obj.Size != int64(len(value)) {
		t.Fatalf("IngressGet through worker wrk1 = %+v, %v; want the value put", obj, err)
	}
	if err := wi.IngressPut(ctx, "wrk1", "certificates/acme-v02.example/a.example/a.example.crt", []byte("crt")); err != nil {
		t.Fatalf("IngressPut through worker wrk1: %v", err)
	}
	if err := wi.IngressPut(ctx, "wrk1", "certificates/acme-v02.example/a.example/a.example.key", []byte("key")); err != nil {
		t.Fatalf("IngressPut through worker wrk1: %v", err)
	}
	for _, tc := range []struct {
		c         *client.Client
		node      string
		prefix    string
		recursive bool
		want      string
	}{
		{fi, f.ID, "", false, "acme/ certificates/"},
		{wi, "wrk1", "certificates", true, "certificates/acme-v02.example/a.example/a.example.crt certificates/acme-v02.example/a.example/a.example.key"},
		{wi, "wrk1", "certificates/acme-v02.example", false, "certificates/acme-v02.example/a.example/"},
		{wi, "wrk1", "certificates/acme-v02.example/", false, "certificates/acme-v02.example/a.example/"},
	} {
		l, err := tc.c.IngressList(ctx, tc.node, tc.prefix, tc.recursive)
		var got []string
		for _, o := range l {
			if len(o.Value) > 0 {
				t.Errorf("IngressList(%q) carries %s's value", tc.prefix, o.Key)
			}
			k := o.Key
			if o.Dir {
				k += "/"
			}
			got = append(got, k)
		}
		if err != nil || strings.Join(got, " ") != tc.want {
			t.Errorf("IngressList(%s, %q, %v) = %q, %v; want %q", tc.node, tc.prefix, tc.recursive, got, err, tc.want)
		}
	}
	if err := wi.IngressDelete(ctx, "wrk1", "certificates/acme-v02.example/a.example"); err != nil {
		t.Errorf("IngressDelete a directory through the worker: %v", err)
	}
	if _, err := fi.IngressGet(ctx, f.ID, "certificates/acme-v02.example/a.example/a.example.key"); !api.NotFound(err) {
		t.Errorf("IngressGet of a deleted key = %v, want not found", err)
	}
	if err := fi.IngressDelete(ctx, f.ID, "certificates/acme-v02.example/a.example"); !api.NotFound(err) {
		t.Errorf("IngressDelete again = %v, want not found", err)
	}
	if err := fi.IngressPut(ctx, f.ID, "../etc/passwd", []byte("x")); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("IngressPut ../etc/passwd = %v, want it refused", err)
	}
	if err := fi.IngressPut(ctx, f.ID, "big", make([]byte, api.MaxIngressValue+1)); !api.IsCode(err, api.CodeTooLarge) {
		t.Errorf("IngressPut of %d bytes = %v, want too large", api.MaxIngressValue+1, err)
	}

	// Locks: one holder at a time, until its lease ends.
	l, err := fi.IngressLock(ctx, f.ID, "issue_cert_a.example", api.IngressLockRequest{Holder: "ingress-" + f.ID, TTL: api.Duration(time.Second)})
	if err != nil || l.Holder != "ingress-"+f.ID {
		t.Fatalf("IngressLock by %s = %+v, %v", f.ID, l, err)
	}
	if _, err := wi.IngressLock(ctx, "wrk1", "issue_cert_a.example", api.IngressLockRequest{Holder: "ingress-wrk1", TTL: api.Duration(time.Minute)}); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("IngressLock by wrk1 while %s holds it = %v, want a conflict", f.ID, err)
	}
	if err := wi.IngressUnlock(ctx, "wrk1", "issue_cert_a.example", "ingress-wrk1"); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("IngressUnlock by wrk1 of %s's lock = %v, want a conflict", f.ID, err)
	}
	eventually(t, "wrk1 takes the lock once its lease ended", 5*time.Second, func() error {
		_, err := wi.IngressLock(ctx, "wrk1", "issue_cert_a.example", api.IngressLockRequest{Holder: "ingress-wrk1", TTL: api.Duration(time.Minute)})
		return err
	})
	if err := wi.IngressUnlock(ctx, "wrk1", "issue_cert_a.example", "ingress-wrk1"); err != nil {
		t.Errorf("IngressUnlock by its holder: %v", err)
	}
	if _, err := fi.IngressLock(ctx, f.ID, "issue_cert_a.example", api.IngressLockRequest{Holder: "ingress-" + f.ID, TTL: api.Duration(time.Minute)}); err != nil {
		t.Errorf("IngressLock of a released lock: %v", err)
	}

	// A lock's name may have slashes, as a key does.
	if _, err := wi.IngressLock(ctx, "wrk1", "locks/a.example", api.IngressLockRequest{Holder: "ingress-wrk1", TTL: api.Duration(time.Minute)}); err != nil {
		t.Errorf("IngressLock(locks/a.example) through the worker: %v", err)
	}
	if _, err := fi.IngressLock(ctx, f.ID, "locks/a.example", api.IngressLockRequest{Holder: "ingress-" + f.ID, TTL: api.Duration(time.Minute)}); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("IngressLock(locks/a.example) held by wrk1 = %v, want a conflict", err)
	}
	if err := wi.IngressUnlock(ctx, "wrk1", "locks/a.example", "ingress-wrk1"); err != nil {
		t.Errorf("IngressUnlock(locks/a.example): %v", err)
	}

	// Sealed at rest: no manager's data dir (state, Raft log, snapshots)
	// holds the value in the clear.
	for _, m := range c.Managers {
		if hits := grepDir(t, m.DataDir, []byte("the-ingress-test-account-key")); len(hits) > 0 {
			t.Errorf("the value is in the clear in %v", hits)
		}
	}

	t.Run("authorization", func(t *testing.T) { ingressAuthz(t, c, leader, f, w) })
}

// Who may use the ingress routes, checked where each caller enters.
func ingressAuthz(t *testing.T, c *managertest.Cluster, leader, f, w *managertest.Member) {
	ctx := ctx(t)
	wrk2 := c.AddWorker("wrk2") // no ingress label
	for _, m := range c.Managers[:3] {
		eventually(t, "every manager knows wrk2", 5*time.Second, func() error {
			_, err := m.Client.Node(ctx, "wrk2")
			return err
		})
	}
	if _, err := leader.Client.AddOperator(ctx, api.OperatorRequest{Name: "vera", Role: string(authz.RoleAdmin), CSR: operatorCSR(t)}); err != nil {
		t.Fatalf("operator add: %v", err)
	}
	var other *managertest.Member // a follower without the label
	for _, m := range c.Followers() {
		if m != f && strings.HasPrefix(m.ID, "mgr") {
			other = m
		}
	}
	as := func(id string, role pki.Role) func(*http.Request) (pki.Identity, bool) {
		return func(*http.Request) (pki.Identity, bool) { return pki.Identity{NodeID: id, Role: role}, true }
	}
	vouch := func(c authz.Caller) http.Header { return http.Header{authz.Header: {c.Encode()}} }
	key := "?key=acme/acme-v02.example/users/default/default.key"
	store := func(node string) string { return "/v1/nodes/" + node + "/ingress/store" + key }
	for _, tc := range []struct {
		name string
		h    http.Handler
		path string
		hdr  http.Header
		want int
		says string
	}{
		{"the ingress socket, its own node", f.IngressHandler(), store(f.ID), nil, 200, ""},
		{"an ingress node's certificate, for itself", leader.PeerHandler(as("wrk1", pki.RoleWorker)), store("wrk1"), nil, 200, ""},
		{"the local admin", leader.Handler(), store(leader.ID), nil, 200, ""},

		{"a worker certificate of a node that is no ingress node", leader.PeerHandler(as("wrk2", pki.RoleWorker)), store("wrk2"), nil, 403, "not an ingress node"},
		{"an ingress node's certificate for another node", leader.PeerHandler(as("wrk1", pki.RoleWorker)), store(f.ID), nil, 403, "acts only for itself"},
		{"an admin operator's certificate", leader.PeerHandler(as("vera", pki.RoleAdmin)), store(f.ID), nil, 403, "may not call"},
		{"an admin operator passed on by a manager", leader.PeerHandler(as(f.ID, pki.RoleManager)), store(f.ID), vouch(authz.Caller{Kind: authz.Operator, Role: authz.RoleAdmin, Name: "vera"}), 403, "may not call"},
		{"the read socket", f.ReadOnlyHandler(), store(f.ID), nil, 403, "needs the admin role"},
		{"the ingress socket for another node", f.IngressHandler(), store("wrk1"), nil, 403, "own tasks and data only"},
		{"the ingress socket of a node that is no ingress node", other.IngressHandler(), store(other.ID), nil, 403, "not an ingress node"},
		{"a manager's certificate for itself, no ingress node", leader.PeerHandler(as(other.ID, pki.RoleManager)), store(other.ID), nil, 403, "not an ingress node"},
		{"a manager passing on the ingress socket of another node", leader.PeerHandler(as(other.ID, pki.RoleManager)), store(f.ID), vouch(authz.Caller{Kind: authz.Local, Role: authz.RoleIngress, NodeID: f.ID}), 403, "own tasks and data only"},
		{"a worker's admin socket for another node", w.Handler(), store(f.ID), nil, 403, "own tasks and data only"},
		{"the worker's ingress socket for another node", w.IngressHandler(), store("wrk2"), nil, 403, "own tasks and data only"},
		{"the non-ingress worker's ingress socket, relayed", wrk2.IngressHandler(), store("wrk2"), nil, 403, "not an ingress node"},
		{"the read socket, the routes' status", f.ReadOnlyHandler(), "/v1/ingress/routes", nil, 200, ""},
		{"a worker certificate, the routes' status", leader.PeerHandler(as("wrk1", pki.RoleWorker)), "/v1/ingress/routes", nil, 403, "worker certificate may not call"},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", tc.path, nil)
		for k, vs := range tc.hdr {
			r.Header[k] = vs
		}
		tc.h.ServeHTTP(rec, r)
		if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.says) {
			t.Errorf("%s: GET %s = %d %s; want %d saying %q", tc.name, tc.path, rec.Code, strings.TrimSpace(rec.Body.String()), tc.want, tc.says)
		}
		if tc.want != 200 && strings.Contains(rec.Body.String(), "the-ingress-test-account-key") {
			t.Errorf("%s: the refusal holds the value", tc.name)
		}
	}

	// The secrets routes name, and no other.
	tlsCert, tlsKey := testCert(t, "shop.example", time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour))
	for name, data := range map[string][]byte{"shop-tls": append(append([]byte{}, tlsCert...), tlsKey...), "unnamed": []byte("db password")} {
		if _, err := leader.Client.CreateFile(ctx, api.KindSecret, api.SecretRequest{Name: name, Data: data}); err != nil {
			t.Fatalf("secret create %s: %v", name, err)
		}
	}
	spec := svcSpec("shop")
	spec.Ingress = []api.IngressRoute{{Host: "shop.example", Port: 8080, TLS: &api.IngressTLS{Source: api.TLSSecret, Secret: "shop-tls"}},
		{Host: "a.example", Port: 8080}}
	if _, err := leader.Client.CreateService(ctx, spec); err != nil {
		t.Fatalf("create a service with ingress routes: %v", err)
	}
	fi, wi := ingressClient(t, f.Manager), ingressClient(t, w.Manager)
	for _, m := range c.Managers[:3] {
		eventually(t, "every manager sees the service", 5*time.Second, func() error {
			_, err := m.Client.Service(ctx, "shop", client.ReadOptions{})
			return err
		})
	}
	if got, err := wi.IngressSecret(ctx, "wrk1", "shop-tls"); err != nil || !bytes.Contains(got, tlsKey) {
		t.Errorf("IngressSecret(shop-tls) through the worker = %d bytes, %v; want the secret a route names", len(got), err)
	}
	_, errUnnamed := fi.IngressSecret(ctx, f.ID, "unnamed")
	_, errMissing := fi.IngressSecret(ctx, f.ID, "missing")
	if !api.NotFound(errUnnamed) || !api.NotFound(errMissing) {
		t.Errorf("IngressSecret of a secret no route names = %v, of none = %v; want not found", errUnnamed, errMissing)
	} else if strings.ReplaceAll(errUnnamed.Error(), "unnamed", "X") != strings.ReplaceAll(errMissing.Error(), "missing", "X") {
		t.Errorf("the refusals of a secret no route names (%v) and of none (%v) differ", errUnnamed, errMissing)
	}
	rec := httptest.NewRecorder()
	leader.PeerHandler(as("wrk2", pki.RoleWorker)).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/nodes/wrk2/ingress/secrets/shop-tls", nil))
	if rec.Code != 403 {
		t.Errorf("a worker that is no ingress node asks for shop-tls: %d %s, want 403", rec.Code, rec.Body)
	}

	// The routes' status: backends, and the certificates' state, with no
	// key in it.
	acmeCert, _ := testCert(t, "a.example", time.Now().Add(-80*24*time.Hour), time.Now().Add(10*24*time.Hour))
	if err := fi.IngressPut(ctx, f.ID, "certificates/acme-v02.example/a.example/a.example.crt", acmeCert); err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	f.ReadOnlyHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/v1/ingress/routes?consistent", nil))
	var routes []api.IngressRouteStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &routes); err != nil || rec.Code != 200 {
		t.Fatalf("GET /v1/ingress/routes = %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "PRIVATE KEY") || strings.Contains(rec.Body.String(), "BEGIN") {
		t.Errorf("GET /v1/ingress/routes holds key material: %s", rec.Body)
	}
	states := map[string]string{}
	for _, r := range routes {
		states[r.Route.Host] = r.Cert.Source + " " + r.Cert.State
		if r.Service != "shop" || r.Backends == nil {
			t.Errorf("route %s: service %q, backends %v", r.Route.Host, r.Service, r.Backends)
		}
	}
	if states["a.example"] != "acme expiring" || states["shop.example"] != "secret valid" {
		t.Errorf("the routes' certificates: %v; want a.example acme expiring, shop.example secret valid", states)
	}
}

// The ingress store survives a manager's restart, sealed.
func TestIngressStoreSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	m := managertest.Start(t, managertest.Options{DataDir: dir})
	ctx := ctx(t)
	labelIngress(t, m.Client, m.NodeID())
	if err := ingressClient(t, m.Manager).IngressPut(ctx, m.NodeID(), "acme/k", []byte("kept across a restart")); err != nil {
		t.Fatal(err)
	}
	if err := m.Snapshot(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	m.Stop()
	if hits := grepDir(t, dir, []byte("kept across a restart")); len(hits) > 0 {
		t.Errorf("the value is in the clear in %v", hits)
	}
	m = managertest.Start(t, managertest.Options{DataDir: dir})
	obj, err := ingressClient(t, m.Manager).IngressGet(ctx, m.NodeID(), "acme/k")
	if err != nil || string(obj.Value) != "kept across a restart" {
		t.Errorf("IngressGet after a restart = %+v, %v", obj, err)
	}
}

// A data key rotation seals the ingress store's values again: they read
// the same after it, under the new key.
func TestIngressValuesTakePartInKeyRotation(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	ctx := ctx(t)
	labelIngress(t, m.Client, m.NodeID())
	ic := ingressClient(t, m.Manager)
	if err := ic.IngressPut(ctx, m.NodeID(), "acme/k", []byte("rotated with the rest")); err != nil {
		t.Fatal(err)
	}
	before, err := m.Client.CheckKeys(ctx)
	if err != nil || before.Checked < 2 {
		t.Fatalf("check before: %+v, %v; want the CA key and the ingress value at least", before, err)
	}
	rot, err := m.Client.RotateDataKey(ctx)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	eventually(t, "the rotation done", 20*time.Second, func() error {
		k, err := m.Client.Keys(ctx)
		if err != nil || k.Rotating || len(k.Keys) != 1 || k.Keys[0].ID != rot.Active {
			return errorf("%+v, %v", k, err)
		}
		return nil
	})
	chk, err := m.Client.CheckKeys(ctx)
	if err != nil || chk.Checked != before.Checked || chk.Readable != chk.Checked || chk.NotActive != 0 {
		t.Errorf("check after the rotation: %+v, %v (before: %+v)", chk, err, before)
	}
	obj, err := ic.IngressGet(ctx, m.NodeID(), "acme/k")
	if err != nil || string(obj.Value) != "rotated with the rest" {
		t.Errorf("IngressGet after the rotation = %+v, %v", obj, err)
	}
}
