package managertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// Cluster is several managers in one process: Raft over raft's in-memory
// transport, forwarding between managers over an in-memory network, so
// that tests can cut links (Partition) and heal them.
type Cluster struct {
	t        testing.TB
	Managers []*Member
	net      *memNet
	opts     Options
}

// Member is one manager of a Cluster.
type Member struct {
	*manager.Manager
	ID      string
	DataDir string
	Socket  string
	Client  *client.Client
	trans   *raft.InmemTransport
	cluster *Cluster
	stopped bool
}

// memNet carries manager-to-manager HTTP calls over loopback servers, one
// per member, and can cut links: a cut refuses new connections and closes
// the open ones.
type memNet struct {
	mu      sync.Mutex
	servers map[string]*httptest.Server
	cut     map[[2]string]bool
	conns   map[[2]string][]net.Conn
	// paused members take requests and answer none until resumed.
	paused map[string]chan struct{}
}

func (n *memNet) isCut(a, b string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut[[2]string{a, b}] || n.cut[[2]string{b, a}]
}

// serve starts (or replaces) a member's loopback server.
func (n *memNet) serve(id string, h http.Handler) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.mu.Lock()
		hold := n.paused[id]
		n.mu.Unlock()
		if hold != nil {
			select {
			case <-hold: // resumed: answer now, as a process woken by SIGCONT
			case <-r.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, r)
	}))
	n.mu.Lock()
	old := n.servers[id]
	n.servers[id] = srv
	n.mu.Unlock()
	if old != nil {
		old.Close()
	}
}

func (n *memNet) stop(id string) {
	n.mu.Lock()
	srv := n.servers[id]
	delete(n.servers, id)
	n.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
	}
}

// cutLinks closes the open connections of the cut links.
func (n *memNet) cutLinks() {
	n.mu.Lock()
	var toClose []net.Conn
	for k, cs := range n.conns {
		if n.cut[k] || n.cut[[2]string{k[1], k[0]}] {
			toClose = append(toClose, cs...)
			delete(n.conns, k)
		}
	}
	n.mu.Unlock()
	for _, c := range toClose {
		c.Close()
	}
}

// peers is one member's view of the memNet. Its requests say who sends
// them (peerHeader), as a certificate would on the node port.
type peers struct {
	self string
	role pki.Role
	net  *memNet
}

// peerHeader carries the sending member's identity on the memNet.
const peerHeader = "X-Managertest-Peer"

// memIdentity is the identity of a memNet request's sender.
func memIdentity(r *http.Request) (pki.Identity, bool) {
	id, role, ok := strings.Cut(r.Header.Get(peerHeader), "/")
	if !ok {
		return pki.Identity{}, false
	}
	return pki.Identity{NodeID: id, Role: pki.Role(role)}, true
}

// tagged adds the sender's identity to each request.
type tagged struct {
	rt  http.RoundTripper
	who string
}

func (t tagged) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(peerHeader, t.who)
	return t.rt.RoundTrip(r)
}

// NodeClient reaches any member, manager or worker: the memNet checks no
// roles (the receiving router does, from the sender's identity).
func (p peers) NodeClient(id string) (*http.Client, string, error) { return p.Client(id) }

func (p peers) Client(id string) (*http.Client, string, error) {
	if p.net.isCut(p.self, id) {
		return nil, "", fmt.Errorf("managertest: link %s → %s is cut", p.self, id)
	}
	p.net.mu.Lock()
	srv := p.net.servers[id]
	p.net.mu.Unlock()
	if srv == nil {
		return nil, "", fmt.Errorf("managertest: no manager %s", id)
	}
	addr := srv.Listener.Addr().String()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		if p.net.isCut(p.self, id) {
			return nil, errors.New("link cut")
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			p.net.mu.Lock()
			k := [2]string{p.self, id}
			p.net.conns[k] = append(p.net.conns[k], c)
			p.net.mu.Unlock()
		}
		return c, err
	}}
	return &http.Client{Transport: tagged{rt: tr, who: p.self + "/" + string(p.role)}}, "http://" + id, nil
}

// StartCluster runs n managers that bootstrap one cluster together.
func StartCluster(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, opts: o, net: &memNet{servers: map[string]*httptest.Server{}, cut: map[[2]string]bool{}, conns: map[[2]string][]net.Conn{}}}
	var ids []string
	for i := 1; i <= n; i++ {
		ids = append(ids, fmt.Sprintf("mgr%d", i))
	}
	for _, id := range ids {
		m := &Member{ID: id, DataDir: o.DataDirs[id], cluster: c}
		if m.DataDir == "" {
			m.DataDir = t.TempDir()
		}
		_, m.trans = raft.NewInmemTransport(raft.ServerAddress(id))
		c.Managers = append(c.Managers, m)
	}
	for _, a := range c.Managers {
		for _, b := range c.Managers {
			if a != b {
				a.trans.Connect(raft.ServerAddress(b.ID), b.trans)
			}
		}
	}
	for _, m := range c.Managers {
		m.start(o, ids)
	}
	l := c.WaitLeader()
	// Each manager registers its node record once it runs; until the
	// leader has them all, a manager's forwarded calls are answered "not
	// in the records yet", and the newer commands are held back (the
	// leader's command gate: each says which it applies).
	deadline := time.Now().Add(15 * time.Second)
	for {
		ns, err := l.Client.Nodes(context.Background(), client.ReadOptions{})
		said := 0
		for _, nd := range ns {
			if nd.Description.RaftCommands > 0 {
				said++
			}
		}
		if err == nil && len(ns) >= n && said >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("managertest: the leader lists %d of %d managers' nodes after 15 s (%v)", len(ns), n, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return c
}

func (m *Member) start(o Options, voters []string) {
	t := m.cluster.t
	t.Helper()
	logLevel := slog.LevelWarn
	if testing.Verbose() {
		logLevel = slog.LevelInfo
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel}))
	}
	mgr, err := manager.New(manager.Config{
		DataDir: m.DataDir, Hostname: m.ID, NodeID: m.ID, BootstrapVoters: voters,
		RaftTransport: m.trans, Peers: peers{self: m.ID, role: pki.RoleManager, net: m.cluster.net},
		RescheduleGrace: o.RescheduleGrace, NodeTimeout: o.NodeTimeout, RaftLogLevel: "error",
		RaftLogStore:        o.RaftLogStore,
		RaftTrailingLogs:    o.RaftTrailingLogs,
		RaftWALSegmentBytes: o.RaftWALSegmentBytes,
		HeartbeatTimeout:    o.HeartbeatTimeout,
		CommitTimeout:       o.CommitTimeout,
		AgentSocket:         o.AgentSockets[m.ID],
		Logger:              logger.With("manager", m.ID),
	})
	if err != nil {
		t.Fatalf("start manager %s: %v", m.ID, err)
	}
	sockDir, err := os.MkdirTemp("", "warren-c-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	m.Socket = filepath.Join(sockDir, "api.sock")
	l, err := net.Listen("unix", m.Socket)
	if err != nil {
		t.Fatal(err)
	}
	go mgr.Serve(l)
	m.Manager, m.stopped = mgr, false
	m.Client, _ = client.New("unix://" + m.Socket)
	m.cluster.net.serve(m.ID, mgr.PeerHandler(memIdentity))
	t.Cleanup(m.Stop)
}

// Cut cuts the links between one member and every other.
func (c *Cluster) Cut(m *Member) {
	var others []*Member
	for _, x := range c.Managers {
		if x != m {
			others = append(others, x)
		}
	}
	c.Partition(others...)
}

// Stop stops a member (a clean shutdown; its transport stays for a restart).
func (m *Member) Stop() {
	if m.stopped {
		return
	}
	m.stopped = true
	m.cluster.net.stop(m.ID)
	m.Client.Close()
	m.Manager.Close()
}

// Restart starts a stopped member again on its data dir.
func (m *Member) Restart(o Options) {
	m.cluster.t.Helper()
	_, m.trans = raft.NewInmemTransport(raft.ServerAddress(m.ID))
	for _, b := range m.cluster.Managers {
		if b != m {
			m.trans.Connect(raft.ServerAddress(b.ID), b.trans)
			b.trans.Connect(raft.ServerAddress(m.ID), m.trans)
		}
	}
	m.start(o, nil)
}

// Leader returns the member that leads now, or nil.
func (c *Cluster) Leader() *Member {
	for _, m := range c.Managers {
		if !m.stopped && m.trans != nil && m.Manager.IsLeader() {
			return m
		}
	}
	return nil
}

// WaitLeader waits for a leader among the running members.
func (c *Cluster) WaitLeader() *Member {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if l := c.Leader(); l != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := l.WaitReady(ctx)
			cancel()
			if err == nil {
				return l
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("managertest: no leader within 15s")
	return nil
}

// Followers returns the running members that do not lead.
func (c *Cluster) Followers() []*Member {
	var out []*Member
	for _, m := range c.Managers {
		if !m.stopped && m.trans != nil && !m.Manager.IsLeader() {
			out = append(out, m)
		}
	}
	return out
}

// Partition cuts every link between the members of group and the others,
// both Raft and API forwarding.
func (c *Cluster) Partition(group ...*Member) {
	in := map[*Member]bool{}
	for _, m := range group {
		in[m] = true
	}
	defer c.net.cutLinks()
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	for _, a := range c.Managers {
		for _, b := range c.Managers {
			if a != b && in[a] != in[b] {
				if a.trans != nil && b.trans != nil {
					a.trans.Disconnect(raft.ServerAddress(b.ID))
				}
				c.net.cut[[2]string{a.ID, b.ID}] = true
			}
		}
	}
}

// Pause makes a member stop answering, as a process under SIGSTOP: its
// Raft links go silent and the requests it is sent wait, unanswered,
// until Resume.
func (c *Cluster) Pause(m *Member) {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	for _, b := range c.Managers {
		if b != m && m.trans != nil && b.trans != nil {
			m.trans.Disconnect(raft.ServerAddress(b.ID))
			b.trans.Disconnect(raft.ServerAddress(m.ID))
		}
	}
	if c.net.paused == nil {
		c.net.paused = map[string]chan struct{}{}
	}
	c.net.paused[m.ID] = make(chan struct{})
}

// Resume undoes Pause.
func (c *Cluster) Resume(m *Member) {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	if ch := c.net.paused[m.ID]; ch != nil {
		close(ch)
		delete(c.net.paused, m.ID)
	}
	for _, b := range c.Managers {
		if b != m && m.trans != nil && b.trans != nil {
			m.trans.Connect(raft.ServerAddress(b.ID), b.trans)
			b.trans.Connect(raft.ServerAddress(m.ID), m.trans)
		}
	}
}

// Heal restores every link.
func (c *Cluster) Heal() {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	for _, a := range c.Managers {
		for _, b := range c.Managers {
			if a != b && a.trans != nil && b.trans != nil {
				a.trans.Connect(raft.ServerAddress(b.ID), b.trans)
			}
		}
	}
	c.net.cut = map[[2]string]bool{}
}

// AddWorker starts a worker node's manager that follows the cluster's
// managers, registering the node first as a join would.
func (c *Cluster) AddWorker(id string) *Member {
	c.t.Helper()
	m := &Member{ID: id, DataDir: c.t.TempDir(), cluster: c}
	c.Managers = append(c.Managers, m)
	var mgrs []string
	for _, x := range c.Managers {
		if x.trans != nil {
			mgrs = append(mgrs, x.ID)
		}
	}
	// Register the node through the leader's internal endpoint, as the
	// join handler does for a joining device.
	leader := c.WaitLeader()
	reg := store.NodeRegister{ID: id, Role: api.RoleWorker, Description: api.NodeDescription{Hostname: id}, At: time.Now().UTC()}
	body, _ := store.Encode(store.CmdNodeRegister, reg)
	rec := httptest.NewRecorder()
	leader.Manager.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/internal/command", bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		c.t.Fatalf("register worker %s: %d %s", id, rec.Code, rec.Body)
	}
	m.startWorker(mgrs)
	return m
}

func (m *Member) startWorker(managers []string) {
	t := m.cluster.t
	logger := m.cluster.opts.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	mgr, err := manager.New(manager.Config{
		DataDir: m.DataDir, Hostname: m.ID, NodeID: m.ID, Worker: true, Managers: managers,
		Peers: peers{self: m.ID, role: pki.RoleWorker, net: m.cluster.net}, RaftLogLevel: "error",
		AgentSocket: m.cluster.opts.AgentSockets[m.ID],
		Logger:      logger.With("worker", m.ID),
	})
	if err != nil {
		t.Fatalf("start worker %s: %v", m.ID, err)
	}
	sockDir, err := os.MkdirTemp("", "warren-w-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	m.Socket = filepath.Join(sockDir, "api.sock")
	l, err := net.Listen("unix", m.Socket)
	if err != nil {
		t.Fatal(err)
	}
	go mgr.Serve(l)
	m.Manager, m.stopped = mgr, false
	m.Client, _ = client.New("unix://" + m.Socket)
	m.cluster.net.serve(m.ID, mgr.PeerHandler(memIdentity))
	t.Cleanup(m.Stop)
}

// RestartWorker starts a stopped worker again on its data dir.
func (m *Member) RestartWorker() {
	var mgrs []string
	for _, x := range m.cluster.Managers {
		if x.trans != nil {
			mgrs = append(mgrs, x.ID)
		}
	}
	m.startWorker(mgrs)
}
