package managertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager"
)

// Cluster is several managers in one process: Raft over raft's in-memory
// transport, forwarding between managers over an in-memory network, so
// that tests can cut links (Partition) and heal them.
type Cluster struct {
	t        testing.TB
	Managers []*Member
	net      *memNet
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

// memNet routes manager-to-manager HTTP calls to handlers, unless cut.
type memNet struct {
	mu       sync.Mutex
	handlers map[string]http.Handler
	cut      map[[2]string]bool
}

func (n *memNet) isCut(a, b string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut[[2]string{a, b}]
}

// peers is one member's view of the memNet.
type peers struct {
	self string
	net  *memNet
}

func (p peers) Client(id string) (*http.Client, string, error) {
	if p.net.isCut(p.self, id) {
		return nil, "", fmt.Errorf("managertest: link %s → %s is cut", p.self, id)
	}
	p.net.mu.Lock()
	h := p.net.handlers[id]
	p.net.mu.Unlock()
	if h == nil {
		return nil, "", fmt.Errorf("managertest: no manager %s", id)
	}
	return &http.Client{Transport: handlerTransport{h: h, check: func() error {
		if p.net.isCut(p.self, id) {
			return errors.New("link cut")
		}
		return nil
	}}}, "http://" + id, nil
}

// handlerTransport serves a request with a handler in the same process.
type handlerTransport struct {
	h     http.Handler
	check func() error
}

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// StartCluster runs n managers that bootstrap one cluster together.
func StartCluster(t testing.TB, n int, o Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, net: &memNet{handlers: map[string]http.Handler{}, cut: map[[2]string]bool{}}}
	var ids []string
	for i := 1; i <= n; i++ {
		ids = append(ids, fmt.Sprintf("mgr%d", i))
	}
	for _, id := range ids {
		m := &Member{ID: id, DataDir: t.TempDir(), cluster: c}
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
	c.WaitLeader()
	return c
}

func (m *Member) start(o Options, voters []string) {
	t := m.cluster.t
	t.Helper()
	logLevel := slog.LevelWarn
	if testing.Verbose() {
		logLevel = slog.LevelInfo
	}
	mgr, err := manager.New(manager.Config{
		DataDir: m.DataDir, Hostname: m.ID, NodeID: m.ID, BootstrapVoters: voters,
		RaftTransport: m.trans, Peers: peers{self: m.ID, net: m.cluster.net},
		RescheduleGrace: o.RescheduleGrace, NodeTimeout: o.NodeTimeout, RaftLogLevel: "error",
		HeartbeatTimeout: o.HeartbeatTimeout,
		Logger:           slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel})).With("manager", m.ID),
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
	m.cluster.net.mu.Lock()
	m.cluster.net.handlers[m.ID] = mgr.Handler()
	m.cluster.net.mu.Unlock()
	t.Cleanup(m.Stop)
}

// Stop stops a member (a clean shutdown; its transport stays for a restart).
func (m *Member) Stop() {
	if m.stopped {
		return
	}
	m.stopped = true
	m.cluster.net.mu.Lock()
	delete(m.cluster.net.handlers, m.ID)
	m.cluster.net.mu.Unlock()
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
		if !m.stopped && m.Manager.IsLeader() {
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
		if !m.stopped && !m.Manager.IsLeader() {
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
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	for _, a := range c.Managers {
		for _, b := range c.Managers {
			if a != b && in[a] != in[b] {
				a.trans.Disconnect(raft.ServerAddress(b.ID))
				c.net.cut[[2]string{a.ID, b.ID}] = true
			}
		}
	}
}

// Heal restores every link.
func (c *Cluster) Heal() {
	c.net.mu.Lock()
	defer c.net.mu.Unlock()
	for _, a := range c.Managers {
		for _, b := range c.Managers {
			if a != b {
				a.trans.Connect(raft.ServerAddress(b.ID), b.trans)
			}
		}
	}
	c.net.cut = map[[2]string]bool{}
}
