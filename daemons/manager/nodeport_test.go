package manager_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager"
	"github.com/warren-edge/warren/daemons/manager/membership"
	"github.com/warren-edge/warren/daemons/pki"
)

// netNode is a manager process's worth of a node on loopback: the real
// node port, mTLS, join tokens.
type netNode struct {
	mu sync.Mutex
	*manager.Manager
	dir     string
	sock    string
	client  *client.Client
	addr    string
	stopped chan struct{}
	// grace is the manager's CertGrace (0: the default) from its next
	// start.
	grace time.Duration
}

func startNetNode(t *testing.T, dir, join, token string) *netNode {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sockDir, _ := os.MkdirTemp("", "warren-np-")
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	n := &netNode{dir: dir, sock: filepath.Join(sockDir, "api.sock"), addr: l.Addr().String()}
	n.start(t, l, join, token)
	t.Cleanup(func() { n.stop() })
	return n
}

// startFirstManager starts a cluster's first manager in base/a and waits
// until it hands out join tokens.
func startFirstManager(t *testing.T, base string) *netNode {
	t.Helper()
	a := startNetNode(t, filepath.Join(base, "a"), "", "")
	eventually(t, "the first manager ready", 15*time.Second, func() error {
		_, err := a.cl().JoinToken(ctx(t), api.RoleManager, false, 0)
		return err
	})
	// Its own node record comes a moment later (registerSelf): a test
	// that restarts it, locked, would find none.
	eventually(t, "the first manager's node record", 15*time.Second, func() error {
		nodes, err := a.cl().Nodes(ctx(t), client.ReadOptions{})
		if err == nil && len(nodes) != 1 {
			err = fmt.Errorf("%d nodes", len(nodes))
		}
		return err
	})
	return a
}

// joinToken is the node's current join token for role.
func (n *netNode) joinToken(t *testing.T, role string) string {
	t.Helper()
	tok, err := n.cl().JoinToken(ctx(t), role, false, 0)
	if err != nil {
		t.Fatalf("join token %s: %v", role, err)
	}
	return tok.Token
}

// start runs the node's manager; like the daemon, it restarts it in the
// node's new role when that changes.
func (n *netNode) start(t *testing.T, l net.Listener, join, token string) {
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	m, err := manager.New(manager.Config{DataDir: n.dir, Hostname: filepath.Base(n.dir), NodePort: l,
		JoinAddr: join, JoinToken: token, RaftLogLevel: "error", CertGrace: n.grace,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("node", filepath.Base(n.dir))})
	if err != nil {
		l.Close()
		t.Fatalf("start node %s: %v", n.dir, err)
	}
	os.Remove(n.sock)
	ul, err := net.Listen("unix", n.sock)
	if err != nil {
		t.Fatal(err)
	}
	go m.Serve(ul)
	n.mu.Lock()
	n.Manager = m
	n.client, _ = client.New("unix://" + n.sock)
	n.mu.Unlock()
	go func() {
		select {
		case <-m.RoleChanged():
		case <-n.done():
			return
		}
		n.mu.Lock()
		if n.Manager != m {
			n.mu.Unlock()
			return
		}
		n.client.Close()
		m.Close()
		n.Manager = nil
		n.mu.Unlock()
		l2, err := net.Listen("tcp", n.addr)
		if err != nil {
			t.Errorf("rebind %s: %v", n.addr, err)
			return
		}
		n.start(t, l2, "", "")
	}()
}

func (n *netNode) done() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped == nil {
		n.stopped = make(chan struct{})
	}
	return n.stopped
}

func (n *netNode) cl() *client.Client {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.client
}

func (n *netNode) stop() {
	n.done()
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.stopped:
	default:
		close(n.stopped)
	}
	if n.Manager != nil {
		n.client.Close()
		n.Manager.Close()
		n.Manager = nil
	}
}

func TestJoinWithTokensOverMTLS(t *testing.T) {
	ctx := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	mtok, wtok := a.joinToken(t, api.RoleManager), a.joinToken(t, api.RoleWorker)
	if !strings.HasPrefix(mtok, "WRN-1-m-") || !strings.HasPrefix(wtok, "WRN-1-w-") {
		t.Fatalf("tokens %q and %q do not look like manager and worker tokens", mtok, wtok)
	}
	b := startNetNode(t, filepath.Join(base, "b"), a.addr, mtok)
	c := startNetNode(t, filepath.Join(base, "c"), b.addr, mtok) // join through any manager
	w := startNetNode(t, filepath.Join(base, "w"), a.addr, wtok)

	eventually(t, "three managers vote and a worker is registered", 20*time.Second, func() error {
		nodes, err := a.cl().Nodes(ctx, client.ReadOptions{})
		if err != nil {
			return err
		}
		roles := map[string]int{}
		for _, n := range nodes {
			roles[n.Spec.Role]++
		}
		if roles[api.RoleManager] != 3 || roles[api.RoleWorker] != 1 {
			return fmt.Errorf("roles %v", roles)
		}
		return nil
	})
	for _, n := range []*netNode{a, b, c} {
		info, err := n.cl().Info(ctx)
		if err != nil || info.Role != api.RoleManager {
			t.Errorf("manager %s info = %+v, %v", n.dir, info, err)
		}
	}
	if info, _ := w.cl().Info(ctx); info == nil || info.Role != api.RoleWorker {
		t.Errorf("the worker's info = %+v, want role worker", info)
	}
	// A write through the last joiner, seen by the worker's replica.
	if _, err := c.cl().CreateService(ctx, api.ServiceSpec{Name: "web", Image: "busybox", Replicas: 1}); err != nil {
		t.Fatalf("create through a joined manager: %v", err)
	}
	eventually(t, "the worker's replica follows", 10*time.Second, func() error {
		_, err := w.cl().Service(ctx, "web", client.ReadOptions{})
		return err
	})

	// Refused joins: each with its reason, nothing registered.
	before, _ := a.cl().Nodes(ctx, client.ReadOptions{})
	expiring, err := a.cl().JoinToken(ctx, api.RoleWorker, true, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, token, want string
	}{
		{"garbage", "hello", "malformed"},
		{"rotated out", wtok, "revoked"},
		{"wrong secret", expiring.Token[:len(expiring.Token)-4] + "aaaa", "secret"},
		{"another cluster's CA", strings.Replace(expiring.Token, expiring.Token[8:20], "aaaaaaaaaaaa", 1), "another cluster"},
	} {
		n, err := manager.New(manager.Config{DataDir: filepath.Join(base, "bad-"+strings.ReplaceAll(tc.name, " ", "-")), Hostname: "bad",
			JoinAddr: a.addr, JoinToken: tc.token, RaftLogLevel: "error", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err == nil {
			n.Close()
			t.Errorf("join with a %s token succeeded", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("join with a %s token: %v; want it to say %q", tc.name, err, tc.want)
		}
	}
	after, _ := a.cl().Nodes(ctx, client.ReadOptions{})
	if len(after) != len(before) {
		t.Errorf("refused joins registered %d nodes", len(after)-len(before))
	}

	// The node port refuses callers without a certificate, with a foreign
	// one, and workers calling manager endpoints.
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}}}
	resp, err := anon.Get("https://" + a.addr + "/v1/services")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("anonymous GET /v1/services on the node port = %d %s, want 403", resp.StatusCode, body)
		}
	}
	foreign := foreignClient(t)
	if _, err := foreign.Get("https://" + a.addr + "/v1/services"); err == nil {
		t.Error("a certificate from another CA was accepted on the node port")
	}
	wc := workerClient(t, w.dir)
	for _, path := range []string{"/v1/services", "/v1/tasks", "/v1/join-tokens"} {
		resp, err := wc.Get("https://" + a.addr + path)
		if err != nil {
			t.Errorf("worker GET %s: %v", path, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("worker certificate GET %s = %d, want 403", path, resp.StatusCode)
		}
	}
	// Its watch is held to its scope, whatever it asks for.
	resp, err = wc.Get("https://" + a.addr + "/v1/watch?worker=somebody-else")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	k, _ := io.ReadAtLeast(resp.Body, buf, 1)
	resp.Body.Close()
	if strings.Contains(string(buf[:k]), `"env"`) {
		t.Errorf("a worker's watch carried another scope's environment: %s", buf[:k])
	}
}

// foreignClient has a certificate from a CA of another cluster.
func foreignClient(t *testing.T) *http.Client {
	ca, err := pki.NewCA("other", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, keyPEM, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, "intruder")
	certPEM, err := ca.SignNode(csr, pki.Identity{ClusterID: "other", NodeID: "intruder", Role: pki.RoleManager}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}}}
}

// workerClient uses a joined worker's own certificate.
func workerClient(t *testing.T, dir string) *http.Client {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls", "node.crt"), filepath.Join(dir, "tls", "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}}}
}

func TestPromoteAndDemote(t *testing.T) {
	ctx := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	b := startNetNode(t, filepath.Join(base, "b"), a.addr, a.joinToken(t, api.RoleManager))
	w := startNetNode(t, filepath.Join(base, "w"), a.addr, a.joinToken(t, api.RoleWorker))
	wID := w.NodeID()
	bID := b.NodeID()
	roleOf := func(id string) string {
		n, err := a.cl().Node(ctx, id)
		if err != nil {
			return ""
		}
		return n.Spec.Role
	}
	// Promote the worker: it restarts as a manager and comes to vote.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://warren/v1/nodes/"+wID+"/promote", nil)
	if _, err := rawDo(a.sock, req); err != nil {
		t.Fatalf("promote: %v", err)
	}
	eventually(t, "the promoted node runs as a manager", 20*time.Second, func() error {
		info, err := w.cl().Info(ctx)
		if err != nil {
			return err
		}
		if info.Role != api.RoleManager || !info.RaftVoter {
			return fmt.Errorf("info %+v", info)
		}
		return nil
	})
	if r := roleOf(wID); r != api.RoleManager {
		t.Errorf("promoted node's role %q", r)
	}
	// Demote b: it restarts as a worker and keeps following.
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, "http://warren/v1/nodes/"+bID+"/demote", nil)
	if _, err := rawDo(a.sock, req); err != nil {
		t.Fatalf("demote: %v", err)
	}
	eventually(t, "the demoted node runs as a worker", 20*time.Second, func() error {
		info, err := b.cl().Info(ctx)
		if err != nil {
			return err
		}
		if info.Role != api.RoleWorker {
			return fmt.Errorf("info %+v", info)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(b.dir, "raft")); err == nil {
		t.Error("the demoted node kept its Raft log: a worker must not hold the cluster's state")
	}
	if _, err := a.cl().CreateService(ctx, api.ServiceSpec{Name: "after", Image: "busybox", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the demoted node follows as a worker", 15*time.Second, func() error {
		_, err := b.cl().Service(ctx, "after", client.ReadOptions{})
		return err
	})
}

func rawDo(sock string, req *http.Request) ([]byte, error) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return b, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return b, nil
}

func TestCertificatesRenewBeforeTheyExpire(t *testing.T) {
	defer membership.SetCertTTLForTest(6 * time.Second)()
	ctx := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	w := startNetNode(t, filepath.Join(base, "w"), a.addr, a.joinToken(t, api.RoleWorker))
	first, _ := os.ReadFile(filepath.Join(w.dir, "tls", "node.crt"))
	// Past the certificates' lifetime both nodes still talk.
	time.Sleep(8 * time.Second)
	now, _ := os.ReadFile(filepath.Join(w.dir, "tls", "node.crt"))
	if string(now) == string(first) {
		t.Error("the worker's certificate was not renewed")
	}
	if _, err := a.cl().CreateService(ctx, api.ServiceSpec{Name: "late", Image: "busybox", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the worker follows on renewed certificates", 15*time.Second, func() error {
		_, err := w.cl().Service(ctx, "late", client.ReadOptions{})
		return err
	})
}

func TestCARotationWithoutDowntime(t *testing.T) {
	defer membership.SetCAPollForTest(200 * time.Millisecond)()
	ctx := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	wtok := a.joinToken(t, api.RoleWorker)
	b := startNetNode(t, filepath.Join(base, "b"), a.addr, a.joinToken(t, api.RoleManager))
	w := startNetNode(t, filepath.Join(base, "w"), a.addr, wtok)
	before, err := a.cl().CA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	started, err := a.cl().RotateCA(ctx, false)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if !started.Rotating || started.Digest == before.Digest || len(started.Digests) != 2 {
		t.Fatalf("after rotate: %+v; want rotating, a new active digest, two trusted", started)
	}
	// While rotating, writes flow and the worker follows.
	issuer := func(dir string) string {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls", "node.crt"), filepath.Join(dir, "tls", "node.key"))
		if err != nil {
			return ""
		}
		if len(cert.Certificate) < 2 {
			return ""
		}
		return pki.Digest(mustParse(t, cert.Certificate[len(cert.Certificate)-1]))
	}
	eventually(t, "every node renewed under the new CA", 20*time.Second, func() error {
		for _, n := range []*netNode{a, b, w} {
			if got := issuer(n.dir); got != started.Digest {
				return fmt.Errorf("%s's chain ends at %s", filepath.Base(n.dir), got)
			}
		}
		return nil
	})
	if _, err := b.cl().CreateService(ctx, api.ServiceSpec{Name: "during", Image: "busybox", Replicas: 1}); err != nil {
		t.Fatalf("write during the rotation: %v", err)
	}
	finished, err := a.cl().RotateCA(ctx, true)
	if err != nil || finished.Rotating || len(finished.Digests) != 1 || finished.Digest != started.Digest {
		t.Fatalf("finish = %+v, %v; want the new CA alone", finished, err)
	}
	if _, err := a.cl().CreateService(ctx, api.ServiceSpec{Name: "after", Image: "busybox", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the worker follows after the rotation", 15*time.Second, func() error {
		_, err := w.cl().Service(ctx, "after", client.ReadOptions{})
		return err
	})
	// The old token pinned the old CA: refused now.
	_, err = manager.New(manager.Config{DataDir: filepath.Join(base, "late"), Hostname: "late", JoinAddr: a.addr, JoinToken: wtok,
		RaftLogLevel: "error", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		t.Error("a token from before the rotation still joins")
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startManagers starts a first manager and joins two more.
func startManagers(t *testing.T, base string) []*netNode {
	ctx := ctx(t)
	a := startFirstManager(t, base)
	mtok := a.joinToken(t, api.RoleManager)
	b := startNetNode(t, filepath.Join(base, "b"), a.addr, mtok)
	c := startNetNode(t, filepath.Join(base, "c"), a.addr, mtok)
	for _, n := range []*netNode{b, c} {
		eventually(t, "manager votes", 15*time.Second, func() error {
			info, err := n.cl().Info(ctx)
			if err != nil || !info.RaftVoter {
				return fmt.Errorf("info %+v, %v", info, err)
			}
			return nil
		})
	}
	return []*netNode{a, b, c}
}

func TestManagerWhoseAddressChangesKeepsItsPlace(t *testing.T) {
	ctx := ctx(t)
	ms := startManagers(t, t.TempDir())
	b := ms[1]
	// b comes back on another port (a new DHCP lease, say).
	b.stop()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = l.Addr().String()
	b.stopped = nil
	b.start(t, l, "", "")
	if _, err := ms[0].cl().CreateService(ctx, api.ServiceSpec{Name: "moved", Image: "busybox", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the moved manager follows at its new address", 15*time.Second, func() error {
		_, err := b.cl().Service(ctx, "moved", client.ReadOptions{})
		return err
	})
	eventually(t, "its node record has the new address", 15*time.Second, func() error {
		n, err := ms[0].cl().Node(ctx, b.NodeID())
		if err != nil {
			return err
		}
		if n.Description.Addr != b.addr {
			return fmt.Errorf("addr %s, want %s", n.Description.Addr, b.addr)
		}
		return nil
	})
	// And it still takes part: with the first manager gone, b and c elect.
	ms[0].stop()
	eventually(t, "a write with the first manager gone", 20*time.Second, func() error {
		_, err := b.cl().CreateService(ctx, api.ServiceSpec{Name: "later", Image: "busybox", Replicas: 1})
		return err
	})
}

func TestForceNewClusterRecoversFromALostQuorum(t *testing.T) {
	ctx := ctx(t)
	base := t.TempDir()
	ms := startManagers(t, base)
	if _, err := ms[0].cl().CreateService(ctx, api.ServiceSpec{Name: "kept", Image: "busybox", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "c has the write", 10*time.Second, func() error {
		_, err := ms[2].cl().Service(ctx, "kept", client.ReadOptions{})
		return err
	})
	// Two of three managers are lost for good: no quorum.
	ms[0].stop()
	ms[1].stop()
	c := ms[2]
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err := c.cl().CreateService(short, api.ServiceSpec{Name: "stuck", Image: "busybox", Replicas: 1})
	cancel()
	if err == nil {
		t.Fatal("a write without a quorum succeeded")
	}
	// Recovery on the survivor.
	c.stop()
	l, err := net.Listen("tcp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manager.New(manager.Config{DataDir: c.dir, Hostname: "c", NodePort: l, ForceNewCluster: true, RaftLogLevel: "error",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("--force-new-cluster: %v", err)
	}
	defer m.Close()
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	if err := m.WaitReady(wctx); err != nil {
		t.Fatalf("recovered manager not ready: %v", err)
	}
	sock := filepath.Join(t.TempDir(), "api.sock")
	ul, _ := net.Listen("unix", sock)
	go m.Serve(ul)
	cl, _ := client.New("unix://" + sock)
	defer cl.Close()
	if _, err := cl.Service(ctx, "kept", client.ReadOptions{}); err != nil {
		t.Errorf("the state before the loss: %v", err)
	}
	if _, err := cl.CreateService(ctx, api.ServiceSpec{Name: "after", Image: "busybox", Replicas: 1}); err != nil {
		t.Errorf("a write after recovery: %v", err)
	}
}

// TestWritesThroughAFollowerAtConcurrency: a follower passes writes to the
// leader over a pool of node-port connections. Many at once must not make
// it open and drop connections faster than the leader's handshake limit
// for one address takes them (which refuses the rest): every write of 32
// clients at once through a follower succeeds.
func TestWritesThroughAFollowerAtConcurrency(t *testing.T) {
	ms := startManagers(t, t.TempDir())
	c := ctx(t)
	var follower *netNode
	eventually(t, "a follower", 10*time.Second, func() error {
		for _, n := range ms {
			if !n.IsLeader() {
				follower = n
				return nil
			}
		}
		return fmt.Errorf("no follower")
	})
	const n, conc = 600, 32
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= n; i = next.Add(1) {
				if _, err := follower.cl().CreateService(c, small(fmt.Sprintf("via-follower-%d", i))); err != nil {
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Errorf("%d of %d writes through a follower, %d at once, failed; the first: %v", len(failed), n, conc, failed[0])
	}
}
