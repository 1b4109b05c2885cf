package manager_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/membership"
	"github.com/warren-edge/warren/daemons/pki"
)

// A worker cut off from its managers for longer than its certificate
// lives keeps serving its node; back within the managers' grace, it
// renews with the expired certificate (the one route that takes it) and
// follows again as the same node.
func TestExpiredCertificateRenewsWithinTheGrace(t *testing.T) {
	defer membership.SetCertTTLForTest(3 * time.Second)()
	defer membership.SetRenewRetryForTest(200 * time.Millisecond)()
	ctx := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	w := startNetNode(t, filepath.Join(base, "w"), a.addr, a.joinToken(t, api.RoleWorker))
	wID := w.NodeID()
	if _, err := a.cl().CreateService(ctx, api.ServiceSpec{Name: "before", Image: "busybox", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the worker's replica has the service", 15*time.Second, func() error {
		_, err := w.cl().Service(ctx, "before", client.ReadOptions{})
		return err
	})

	// Its only manager goes; its certificate expires meanwhile.
	a.stop()
	expired := waitCertExpired(t, w.dir)

	// Nothing on the node needed it: its manager serves its replica on
	// the local socket, and its watchdog check passes, across a restart
	// of the node's manager (a reboot) too.
	if _, err := w.cl().Service(ctx, "before", client.ReadOptions{}); err != nil {
		t.Errorf("the cut-off worker's local API with its certificate expired: %v", err)
	}
	w.stop()
	w.restart(t)
	if _, err := w.cl().Service(ctx, "before", client.ReadOptions{}); err != nil {
		t.Errorf("the cut-off worker's local API with its certificate expired, after its manager restarted: %v", err)
	}
	if info, err := w.cl().Info(ctx); err != nil || info.NodeID != wID {
		t.Errorf("the cut-off worker's info = %+v, %v", info, err)
	}
	if err := w.RaftAlive(ctx); err != nil {
		t.Errorf("the cut-off worker's watchdog check: %v", err)
	}

	// The manager is back. The expired certificate calls nothing but the
	// renewal (a copy: the worker renews its own meanwhile).
	a.restart(t)
	eventually(t, "the manager ready", 15*time.Second, func() error { _, err := a.cl().Info(ctx); return err })
	old := certClient(t, expired.pair)
	for _, rt := range []struct{ method, path string }{
		{"GET", "/v1/info"},
		{"GET", "/v1/health"},
		{"GET", "/v1/ca"},
		{"GET", "/v1/watch?worker=" + wID},
		{"POST", "/v1/nodes/" + wID + "/heartbeat"},
		{"POST", "/v1/nodes/" + wID + "/tasks/status"},
		{"GET", "/v1/nodes/" + wID + "/agent/v1/blobs/sha256:" + strings.Repeat("0", 64)},
		{"GET", "/v1/services"},
		{"GET", "/v1/nodes"},
		{"POST", "/v1/internal/command"},
		{"GET", "/metrics"},
	} {
		code, body := call(t, old, rt.method, "https://"+a.addr+rt.path, nil)
		if code != http.StatusForbidden || !strings.Contains(body, "may only renew it") {
			t.Errorf("%s %s with an expired certificate = %d %s; want 403 saying it may only renew", rt.method, rt.path, code, body)
		}
	}
	// Nor Raft: the handshake refuses it there.
	if err := raftHandshake(a.addr, expired.pair); err == nil || !strings.Contains(err.Error(), "bad certificate") {
		t.Errorf("a Raft connection with an expired certificate: %v; want the handshake refused", err)
	}
	// The renewal: the same node, the same role, a valid certificate.
	key, keyPEM, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, wID)
	code, body := call(t, old, "POST", "https://"+a.addr+"/v1/certs/renew", api.RenewRequest{CSR: csr})
	var res api.RenewResponse
	if code != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil {
		t.Fatalf("renew with an expired certificate within the grace = %d %s", code, body)
	}
	leaf := firstCert(t, []byte(res.CertPEM))
	if id, err := pki.IdentityOf(leaf); err != nil || id.NodeID != wID || id.Role != pki.RoleWorker || !leaf.NotAfter.After(time.Now()) {
		t.Errorf("renewed certificate: %v (%v), until %v; want worker %s, valid", id, err, leaf.NotAfter, wID)
	}
	// (A valid certificate gets past Raft's handshake, to be refused for
	// being a worker's: the check above tells the two apart.)
	if renewed, err := tls.X509KeyPair([]byte(res.CertPEM), keyPEM); err != nil {
		t.Fatal(err)
	} else if err := raftHandshake(a.addr, renewed); err != nil && strings.Contains(err.Error(), "bad certificate") {
		t.Errorf("a Raft connection with a valid worker certificate: %v; want the handshake through", err)
	}

	// The worker renews its own, and follows again.
	eventually(t, "the worker renewed its certificate", 20*time.Second, func() error {
		c := readCert(t, w.dir)
		if !c.leaf.NotAfter.After(expired.leaf.NotAfter) {
			return fmt.Errorf("its certificate still ends at %v", c.leaf.NotAfter)
		}
		if id, _ := pki.IdentityOf(c.leaf); id.NodeID != wID || id.Role != pki.RoleWorker {
			return fmt.Errorf("its certificate says %v, want worker %s", id, wID)
		}
		return nil
	})
	if _, err := a.cl().CreateService(ctx, api.ServiceSpec{Name: "after", Image: "busybox", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the worker follows again", 20*time.Second, func() error {
		_, err := w.cl().Service(ctx, "after", client.ReadOptions{})
		return err
	})
	n, err := a.cl().Node(ctx, wID)
	if err != nil {
		t.Fatal(err)
	}
	if c := n.Description.Certificate; c == nil || !c.NotAfter.After(expired.leaf.NotAfter) {
		t.Errorf("the worker's record says its certificate ends %+v; want after %v", c, expired.leaf.NotAfter)
	}
}

// After the grace the managers refuse the node, saying what to do; it
// joins again with a token and keeps its ID. A removed node cannot.
func TestLapsedCertificateJoinsAgainWithAToken(t *testing.T) {
	defer membership.SetCertTTLForTest(3 * time.Second)()
	defer membership.SetRenewRetryForTest(200 * time.Millisecond)()
	ctx := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	w := startNetNode(t, filepath.Join(base, "w"), a.addr, a.joinToken(t, api.RoleWorker))
	wID := w.NodeID()
	eventually(t, "the worker registered", 15*time.Second, func() error { _, err := a.cl().Node(ctx, wID); return err })

	// Cut off past its certificate's end and a grace of a second.
	a.stop()
	expired := waitCertExpired(t, w.dir)
	for time.Now().Before(expired.leaf.NotAfter.Add(time.Second)) {
		time.Sleep(100 * time.Millisecond)
	}
	a.grace = time.Second
	a.restart(t)
	eventually(t, "the manager ready", 15*time.Second, func() error { _, err := a.cl().Info(ctx); return err })

	key, _, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, wID)
	code, body := call(t, certClient(t, expired.pair), "POST", "https://"+a.addr+"/v1/certs/renew", api.RenewRequest{CSR: csr})
	if code != http.StatusForbidden || !strings.Contains(body, "beyond the managers' 1s grace") || !strings.Contains(body, "re-join the node with a token") {
		t.Errorf("renew after the grace = %d %s; want 403 saying it is beyond the grace and to re-join with a token", code, body)
	}
	// What node ls reads: the record's certificate has ended, and the
	// managers' grace.
	n, err := a.cl().Node(ctx, wID)
	if err != nil {
		t.Fatal(err)
	}
	if c := n.Description.Certificate; c == nil || c.NotAfter.After(time.Now()) {
		t.Errorf("the lapsed worker's record says its certificate ends %+v; want a time past", c)
	}
	if ca, err := a.cl().CA(ctx); err != nil || ca.CertGrace.D() != time.Second {
		t.Errorf("GET /v1/ca = %+v, %v; want a grace of 1s", ca, err)
	}

	// warren rejoin, the worker's manager stopped: a manager's token is
	// refused, a worker's keeps the node's ID.
	w.stop()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := membership.Rejoin(ctx, membership.Config{DataDir: w.dir}, a.addr, a.joinToken(t, api.RoleManager), quiet); err == nil || !strings.Contains(err.Error(), "use a worker token") {
		t.Errorf("rejoin with a manager token: %v; want it refused, asking for a worker token", err)
	}
	id, err := membership.Rejoin(ctx, membership.Config{DataDir: w.dir}, a.addr, a.joinToken(t, api.RoleWorker), quiet)
	if err != nil || id.NodeID != wID {
		t.Fatalf("rejoin = %+v, %v; want node %s", id, err, wID)
	}
	if c := readCert(t, w.dir); !c.leaf.NotAfter.After(time.Now()) {
		t.Errorf("after rejoining the node's certificate ends %v", c.leaf.NotAfter)
	}
	// The same node, not a new one beside it. (Counted by workers: the
	// restarted manager registers its own record again once it leads,
	// which may come before or after this.)
	after, err := a.cl().Nodes(ctx, client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range after {
		if n.Spec.Role == api.RoleWorker && n.ID != wID {
			t.Errorf("rejoining made a new worker node %s beside %s; want the same node", n.ID, wID)
		}
	}
	w.restart(t)
	if _, err := a.cl().CreateService(ctx, api.ServiceSpec{Name: "rejoined", Image: "busybox", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rejoined worker follows", 20*time.Second, func() error {
		_, err := w.cl().Service(ctx, "rejoined", client.ReadOptions{})
		return err
	})

	// Removed: its certificate proves nothing any more.
	w.stop()
	if err := a.cl().RemoveNode(ctx, wID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := membership.Rejoin(ctx, membership.Config{DataDir: w.dir}, a.addr, a.joinToken(t, api.RoleWorker), quiet); err == nil || !strings.Contains(err.Error(), "removed") {
		t.Errorf("rejoin of a removed node: %v; want it refused as removed", err)
	}
}

// restart starts n's manager again on its address, after stop.
func (n *netNode) restart(t *testing.T) {
	t.Helper()
	n.mu.Lock()
	n.stopped = nil
	n.mu.Unlock()
	l, err := net.Listen("tcp", n.addr)
	if err != nil {
		t.Fatalf("rebind %s: %v", n.addr, err)
	}
	n.start(t, l, "", "")
}

// nodeCert is a node's certificate as its data dir holds it.
type nodeCert struct {
	pair tls.Certificate
	leaf *x509.Certificate
}

func readCert(t *testing.T, dir string) nodeCert {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls", "node.crt"), filepath.Join(dir, "tls", "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return nodeCert{pair, leaf}
}

// waitCertExpired waits until the certificate in dir has expired (its
// node cut off, nothing renews it) and returns it.
func waitCertExpired(t *testing.T, dir string) nodeCert {
	t.Helper()
	var c nodeCert
	eventually(t, "the certificate expired", 30*time.Second, func() error {
		if c = readCert(t, dir); !time.Now().After(c.leaf.NotAfter) {
			return fmt.Errorf("valid until %v", c.leaf.NotAfter)
		}
		return nil
	})
	return c
}

func firstCert(t *testing.T, chainPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(chainPEM)
	if b == nil {
		t.Fatalf("no certificate in %q", chainPEM)
	}
	return mustParse(t, b.Bytes)
}

// certClient presents cert on the node port and checks nothing of the
// server.
func certClient(t *testing.T, cert tls.Certificate) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}}}
}

// call sends body (JSON, if not nil) and returns the status and the
// answer.
func call(t *testing.T, hc *http.Client, method, url string, body any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b)
}

// raftHandshake opens a Raft connection with cert: an error if the node
// port refuses it (which TLS 1.3 reports on the first read).
func raftHandshake(addr string, cert tls.Certificate) error {
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}, NextProtos: []string{"warren-raft"}})
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("{}\n")); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 1))
	return err
}
