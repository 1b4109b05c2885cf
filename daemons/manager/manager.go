package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// Version is the Warren version, set at build time.
var Version = "dev"

// Config is what warren-manager is started with.
type Config struct {
	// DataDir holds the Raft log, snapshots, the state database and the
	// node's identity.
	DataDir string
	// Hostname and Labels describe this node (defaults: os.Hostname, none).
	Hostname string
	Labels   map[string]string
	// ClusterCIDR is the range node container subnets come from, used when
	// this manager initialises a new cluster (default 10.240.0.0/12, /24 each).
	ClusterCIDR string
	SubnetBits  int
	// RescheduleGrace is how long a down node's tasks wait before they are
	// replaced on other nodes (default 1m).
	RescheduleGrace time.Duration
	// NodeTimeout is how long a node may go without a heartbeat before it
	// is marked down (default 6s).
	NodeTimeout time.Duration
	// AgentSocket is this node's agent, which serves images and task logs
	// (default /run/warren/agent.sock).
	AgentSocket string
	// Raft timing; zero values take the defaults in raft.go.
	HeartbeatTimeout time.Duration
	CommitTimeout    time.Duration

	// AdvertiseAddr is this manager's node port as the other nodes reach
	// it (host:port); it is recorded on the node and in peers' address
	// books, never used as its identity.
	AdvertiseAddr string
	// RaftTransport replaces the node port's Raft transport (tests use
	// raft's in-memory transport). Raft server addresses are node IDs.
	RaftTransport raft.Transport
	// Peers reaches other managers' APIs (forwarding writes to the leader).
	// Nil: the node port's mTLS client. Tests pass an in-memory one.
	Peers PeerDialer
	// BootstrapVoters, when set on a fresh data dir, bootstraps a cluster of
	// these voters (node IDs) instead of a one-manager cluster (tests).
	BootstrapVoters []string
	// NodeID fixes this node's ID on a fresh data dir (tests); empty: random.
	NodeID string
	// Worker runs this node's manager as a worker's: no Raft, a node-scoped
	// replica streamed from Managers (node IDs), the same local API. (A
	// joined node's role comes from its token; this is for tests.)
	Worker   bool
	Managers []string

	// NodePort is the listener of the node port (mTLS between nodes);
	// nil with ListenAddr empty: no node port (one manager, local API only).
	NodePort   net.Listener
	ListenAddr string
	// JoinAddr and JoinToken join a fresh data dir to a cluster through the
	// manager at JoinAddr; the token's kind makes the node a manager or a
	// worker. Ignored once the node has joined.
	JoinAddr  string
	JoinToken string
	// ForceNewCluster makes this manager the only voter of its cluster,
	// keeping the state: the recovery from a lost quorum.
	ForceNewCluster bool
	// RaftLogStore is "bbolt" (the default) or "wal" (raft-wal, faster
	// writes: see raft.go). A data dir keeps the store it started with.
	RaftLogStore string
	// RaftLogLevel is the level of Raft's own log lines (default warn).
	RaftLogLevel string
	Logger       *slog.Logger
}

func (c *Config) defaults() error {
	if c.DataDir == "" {
		return errors.New("manager: a data directory is required (--data-dir)")
	}
	if c.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("manager: hostname: %w", err)
		}
		c.Hostname = h
	}
	if c.ClusterCIDR == "" {
		c.ClusterCIDR = "10.240.0.0/12"
	}
	if c.SubnetBits == 0 {
		c.SubnetBits = 24
	}
	if c.RescheduleGrace == 0 {
		c.RescheduleGrace = time.Minute
	}
	if c.NodeTimeout == 0 {
		c.NodeTimeout = 6 * time.Second
	}
	if c.NodeTimeout < time.Second {
		return fmt.Errorf("manager: a node timeout of %s would mark healthy nodes down: give at least three agent heartbeats (agents report every 2s, so 6s)", c.NodeTimeout)
	}
	if c.AgentSocket == "" {
		c.AgentSocket = "/run/warren/agent.sock"
	}
	if c.RaftLogLevel == "" {
		c.RaftLogLevel = "warn"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Manager is one running warren-manager.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	nodeID  string
	state   *store.State
	hub     *store.Hub
	fsm     *store.FSM
	raft    *raftNode
	metrics *metrics
	beats   *heartbeats
	handler http.Handler

	mu      sync.Mutex
	servers []*http.Server
	cancel  context.CancelFunc
	done    chan struct{}
	// bootstrap: a fresh data dir starts a new cluster (not a join).
	bootstrap bool
	// work is the worker's replica state (nil on a manager).
	work *workerState

	book     *addrBook
	np       *nodePort
	credMu   sync.Mutex
	creds    *pki.Credentials
	joined   *api.JoinResponse // set on the start that joined
	identity identity

	tokenMu sync.Mutex // serialises join token changes on the leader
	// readFloor is the highest index the leader answered this manager's
	// forwarded writes at; local reads wait until it is applied here.
	readFloor   atomic.Uint64
	roleChanged chan struct{}
	roleOnce    sync.Once
	dropState   bool // a demoted manager drops the full state on Close
}

// identity is what a node keeps about itself in its data directory.
type identity struct {
	NodeID    string `json:"nodeID"`
	ClusterID string `json:"clusterID,omitempty"`
	Role      string `json:"role,omitempty"` // "" is a manager (a cluster it started)
	// Managers it learned at join time, to follow or to reach first.
	Managers []api.PeerAddr `json:"managers,omitempty"`
}

// New opens (or creates) the manager's data directory and starts Raft. On a
// fresh directory it bootstraps a one-voter cluster.
func New(cfg Config) (*Manager, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("manager: data dir: %w", err)
	}
	idPath := filepath.Join(cfg.DataDir, "node.json")
	id, fresh, err := loadIdentity(idPath, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, nodeID: id.NodeID, done: make(chan struct{}), bootstrap: true,
		book: newAddrBook(), roleChanged: make(chan struct{})}
	// Bind the node port first: a joining manager announces its address.
	if m.cfg.NodePort == nil && m.cfg.ListenAddr != "" {
		l, err := net.Listen("tcp", m.cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("manager: node port: %w", err)
		}
		m.cfg.NodePort = l
	}
	if m.cfg.NodePort != nil && m.cfg.AdvertiseAddr == "" {
		if m.cfg.AdvertiseAddr, err = advertiseFor(m.cfg.NodePort.Addr(), m.cfg.ClusterCIDR); err != nil {
			m.cfg.NodePort.Close()
			return nil, err
		}
	}
	if fresh && cfg.JoinAddr != "" {
		if err := m.joinNow(&id); err != nil {
			if m.cfg.NodePort != nil {
				m.cfg.NodePort.Close()
			}
			return nil, err
		}
	}
	if err := saveIdentity(idPath, id); err != nil {
		return nil, err
	}
	m.identity = id
	if id.Role == api.RoleWorker {
		cfg.Worker, m.cfg.Worker = true, true
	}
	for _, p := range id.Managers {
		m.book.set(p.ID, p.Addr)
		m.cfg.Managers = append(m.cfg.Managers, p.ID)
	}
	if m.creds, err = m.loadCredentials(); err != nil {
		return nil, err
	}
	m.state, err = store.OpenState(filepath.Join(cfg.DataDir, "state.db"))
	if err != nil {
		return nil, err
	}
	if m.state.Discarded != "" {
		m.log.Warn("state database set aside; rebuilding it from the Raft snapshot and log", "why", m.state.Discarded)
	}
	m.hub = store.NewHub(8192, 16<<20, m.state.AppliedIndex())
	m.fsm = store.NewFSM(m.state, m.hub)
	m.metrics = newMetrics(m)
	m.fsm.OnApply = m.metrics.observeApply
	m.beats = newHeartbeats()
	if id.Role != "" || m.joined != nil {
		m.bootstrap = false // a joined node never starts a cluster of its own
	}
	m.state.View(func(v *store.View) error { m.book.learn(v); return nil })
	if err := m.openNodePort(); err != nil {
		m.state.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.state.RunCheckpoints(ctx, time.Second)
	if m.cfg.Worker {
		m.work = &workerState{replica: store.NewReplica(m.state, m.hub), since: time.Now()}
		m.work.alive.Store(time.Now().UnixNano())
		m.handler = m.routes()
		go m.watchOwnRole(ctx)
		go m.keepWorkerCredentials(ctx)
		go m.followCA(ctx)
		go func() {
			defer close(m.done)
			m.runReplica(ctx)
		}()
		return m, nil
	}
	m.raft, err = startRaft(m, m.cfg)
	if err != nil {
		cancel()
		m.closeNodePort()
		m.state.Close()
		return nil, err
	}
	m.handler = m.routes()
	go m.registerSelf(ctx)
	go m.keepCredentials(ctx)
	go m.watchOwnRole(ctx)
	go m.followCA(ctx)
	go m.learnAddresses(ctx)
	if !m.bootstrap {
		var index uint64
		if m.joined != nil {
			index = m.joined.Index
		}
		go m.askToVote(ctx, index)
	}
	go func() {
		defer close(m.done)
		m.runLeadership(ctx)
	}()
	return m, nil
}

// loadIdentity reads the node's identity, or makes one for a fresh data
// dir (fresh is then true; nothing is written yet).
func loadIdentity(path, wantID string) (id identity, fresh bool, err error) {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &id); err != nil || id.NodeID == "" {
			return id, false, fmt.Errorf("manager: %s is damaged (%v): restore it from a backup, or move the data dir away to start a new node", path, err)
		}
		return id, false, nil
	case !errors.Is(err, os.ErrNotExist):
		return id, false, fmt.Errorf("manager: %w", err)
	}
	id.NodeID = wantID
	if id.NodeID == "" {
		id.NodeID = api.NewID()
	}
	return id, true, nil
}

func saveIdentity(path string, id identity) error {
	b, _ := json.Marshal(id)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := writeFileAtomic(path, b); err != nil {
		return fmt.Errorf("manager: save identity: %w", err)
	}
	return nil
}

// joinNow joins the cluster before anything else starts.
func (m *Manager) joinNow(id *identity) error {
	desc := localDescription(m.cfg.Hostname)
	desc.Addr = m.cfg.AdvertiseAddr
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The manager may not be up yet (devices boot together): retry what
	// did not reach it; a refusal is final.
	var jr *api.JoinResponse
	var keyPEM []byte
	var err error
	for backoff := 200 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		jr, keyPEM, err = joinCluster(ctx, m.cfg.JoinAddr, m.cfg.JoinToken, desc)
		if err == nil || !errors.Is(err, errJoinUnreachable) || ctx.Err() != nil {
			break
		}
		m.log.Info("waiting for the manager to join through", "addr", m.cfg.JoinAddr, "err", err)
		sleepCtx(ctx, backoff)
	}
	if err != nil {
		return err
	}
	id.NodeID, id.ClusterID, id.Role, id.Managers = jr.NodeID, jr.ClusterID, jr.Role, jr.Managers
	m.nodeID = jr.NodeID
	if err := m.saveCredentials([]byte(jr.CertPEM), keyPEM, []byte(jr.BundlePEM)); err != nil {
		return err
	}
	m.joined = jr
	m.bootstrap = false
	m.log.Info("joined the cluster", "node", jr.NodeID, "role", jr.Role, "cluster", jr.ClusterID)
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// NodeID is this node's ID.
func (m *Manager) NodeID() string { return m.nodeID }

// Handler is the API's HTTP handler (for tests that serve it themselves).
func (m *Manager) Handler() http.Handler { return m.handler }

// Serve serves the API on l until Close.
func (m *Manager) Serve(l net.Listener) error {
	clearDeadline(l)
	srv := &http.Server{Handler: m.handler, ReadHeaderTimeout: 10 * time.Second}
	m.mu.Lock()
	m.servers = append(m.servers, srv)
	m.mu.Unlock()
	err := srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// WaitReady blocks until this manager has a leader and its state has
// caught up with it, and the cluster is initialised.
func (m *Manager) WaitReady(ctx context.Context) error {
	for {
		if err := m.Healthy(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("manager: not ready: %w", m.Healthy())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Healthy reports whether the manager can serve: Raft runs and knows a
// leader, and the cluster is initialised with this node in it.
func (m *Manager) Healthy() error {
	if m.isWorker() {
		return nil // a worker serves its replica, connected or not
	}
	if st := m.raft.r.State(); st == raft.Shutdown {
		return errors.New("raft is shut down")
	}
	if addr, _ := m.raft.r.LeaderWithID(); addr == "" {
		return errors.New("no raft leader")
	}
	var err error
	m.state.View(func(v *store.View) error {
		if v.Cluster() == nil {
			err = errors.New("cluster not initialised yet")
		} else if _, e := v.Node(m.nodeID); e != nil {
			err = errors.New("this node is not registered yet")
		}
		return nil
	})
	return err
}

// RaftAlive checks that Raft's main loop answers (a configuration read
// goes through it), whatever the cluster's state.
func (m *Manager) RaftAlive(ctx context.Context) error {
	if m.isWorker() {
		if since := time.Since(time.Unix(0, m.work.alive.Load())); since > 3*pingEvery+10*time.Second {
			return fmt.Errorf("the replica loop has shown no sign of life for %s", since.Round(time.Second))
		}
		return nil
	}
	f := m.raft.r.GetConfiguration()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("raft: %w", err)
		}
		return nil
	case <-ctx.Done():
		return errors.New("raft's main loop does not answer")
	}
}

// Status is a one-line summary for systemd's STATUS=.
func (m *Manager) Status() string {
	if m.isWorker() {
		return m.workerStatus()
	}
	var svcs, tasks int
	m.state.View(func(v *store.View) error {
		svcs, tasks = v.ServiceCount(), v.TaskCount()
		return nil
	})
	return fmt.Sprintf("%s, %d services, %d tasks", m.raft.r.State().String(), svcs, tasks)
}

// Close stops serving, steps down and closes the stores.
func (m *Manager) Close() error {
	m.mu.Lock()
	servers := m.servers
	m.servers = nil
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(ctx)
	}
	for _, s := range servers {
		s.Close() // watch streams do not end on their own
	}
	m.cancel()
	<-m.done
	var err error
	if m.raft != nil {
		err = m.raft.close()
	}
	m.closeNodePort()
	if cerr := m.state.Close(); err == nil {
		err = cerr
	}
	if m.dropState {
		m.dropFullState()
	}
	return err
}

// localDescription describes this host.
func localDescription(hostname string) api.NodeDescription {
	return api.NodeDescription{
		Hostname:    hostname,
		OS:          runtime.GOOS,
		Arch:        runtime.GOARCH,
		NanoCPUs:    int64(runtime.NumCPU()) * 1e9,
		MemoryBytes: totalMemory(),
	}
}

func totalMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		var kb int64
		if n, _ := fmt.Sscanf(line, "MemTotal: %d kB", &kb); n == 1 {
			return kb << 10
		}
	}
	return 0
}

// clearDeadline undoes the deadline an earlier manager on the same
// listener set to stop accepting (a restart in a new role).
func clearDeadline(l net.Listener) {
	if d, ok := l.(interface{ SetDeadline(time.Time) error }); ok {
		d.SetDeadline(time.Time{})
	}
}

// ReadIdentity reads the identity of the node whose data dir this is.
func ReadIdentity(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "node.json"))
	if err != nil {
		return "", err
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return "", err
	}
	return id.NodeID, nil
}

// InitInfo waits for a new cluster's CA and certificate, and returns the
// cluster's identity and its first join tokens (warren init).
func (m *Manager) InitInfo(ctx context.Context) (*api.Info, []api.JoinTokenInfo, error) {
	for m.credentials() == nil {
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return nil, nil, fmt.Errorf("manager: no certificate yet: %w", err)
		}
	}
	var info api.Info
	m.state.View(func(v *store.View) error {
		if c := v.Cluster(); c != nil {
			info.ClusterID = c.ClusterID
		}
		return nil
	})
	info.NodeID = m.nodeID
	var out []api.JoinTokenInfo
	for _, kind := range []string{api.RoleWorker, api.RoleManager} {
		t, err := m.tokenFor(kind, false, 0)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, api.JoinTokenInfo{Kind: kind, Token: t.Token})
	}
	return &info, out, nil
}
