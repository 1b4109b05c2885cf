package manager

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
	"github.com/warren-edge/warren/daemons/manager/controlapi"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/manager/leader"
	"github.com/warren-edge/warren/daemons/manager/membership"
	"github.com/warren-edge/warren/daemons/manager/peer"
	"github.com/warren-edge/warren/daemons/manager/worker"
	"github.com/warren-edge/warren/daemons/orchestrator"
	"github.com/warren-edge/warren/daemons/store"
)

// Version is the Warren version, set at build time.
var Version = "dev"

// PeerDialer reaches other managers' APIs by node ID.
type PeerDialer = peer.Dialer

// Config is what warren-manager is started with.
type Config struct {
	// DataDir holds the Raft log, snapshots, the state database and the
	// node's identity.
	DataDir string
	// Hostname and Labels describe this node (defaults: os.Hostname, none).
	Hostname string
	Labels   map[string]string
	// ClusterCIDR is the range node container subnets come from, used when
	// this manager initialises a new cluster (default 10.240.0.0/12, /24 each:
	// 4096 nodes of 253 containers). New refuses a pair that
	// store.CheckNodeSubnets refuses.
	ClusterCIDR string
	SubnetBits  int
	// RescheduleGrace is how long a down node's tasks wait before they are
	// replaced on other nodes (default 1m).
	RescheduleGrace time.Duration
	// NodeTimeout is how long a node may go without a heartbeat before it
	// is marked down (default 6s).
	NodeTimeout time.Duration
	// CertGrace is how long after a node's certificate expired this
	// manager still renews it, for a node that was cut off meanwhile
	// (default 30 days; negative: none). Give every manager the same.
	CertGrace time.Duration
	// AgentSocket is this node's agent, which serves images and task logs
	// (default /run/warren/agent.sock).
	AgentSocket string
	// Raft timing; zero values take the core's defaults.
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
	// RaftLogStore is "wal" (raft-wal) or "bbolt"; empty: the data dir's
	// own, or wal for a new one. A data dir keeps the store it started
	// with.
	RaftLogStore string
	// RaftTrailingLogs is how many entries a snapshot leaves in the Raft
	// log (default Raft's, 10240), and RaftWALSegmentBytes the size of a
	// raft-wal log's files (default 8 MiB); tests make a follower catch up
	// from a snapshot with few and small.
	RaftTrailingLogs    uint64
	RaftWALSegmentBytes int
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
	if _, err := store.CheckNodeSubnets(c.ClusterCIDR, c.SubnetBits); err != nil {
		return fmt.Errorf("manager: %w", err)
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
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// Manager is one running warren-manager: the core and its roles, wired.
//
//	     ┌──────────── router (authenticate, authorize, place) ────────────┐
//	     │ local socket · read-only socket · node port (membership's mTLS) │
//	     └───┬──────────────┬─────────────┬──────────────┬─────────────────┘
//	    controlapi       leader       membership       worker
//	(services, tasks,  (reconcile,   (tokens, join,  (replica, relay:
//	 nodes, watch)      monitor,      certificates,   a worker's node
//	     │              heartbeats)   CA, voters)     only)
//	     └───────────── core: Raft, state, hub ────────────────┘
type Manager struct {
	cfg    Config
	log    *slog.Logger
	nodeID string

	store *core.Store
	core  *core.Core // nil on a worker
	mem   *membership.Membership
	ctl   *controlapi.Server
	lead  *leader.Leader // nil on a worker
	work  *worker.Worker // nil on a manager
	peers *peer.Client
	// keys seals what the managers keep encrypted (secret values, the CA
	// key); nil on a worker.
	keys *keys.Ring

	metrics *metrics
	mux     *http.ServeMux

	// readFloor is the highest index the leader answered this manager's
	// forwarded writes at; local reads wait until it is applied here.
	readFloor atomic.Uint64

	mu      sync.Mutex
	servers []*http.Server
	cancel  context.CancelFunc
	done    chan struct{}
}

// New opens (or creates) the manager's data directory and starts it: on a
// fresh directory it bootstraps a one-voter cluster, or joins one.
func New(cfg Config) (*Manager, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("manager: data dir: %w", err)
	}
	id, fresh, err := membership.LoadIdentity(cfg.DataDir, cfg.NodeID)
	if err != nil {
		return nil, err
	}
	// Bind the node port first: a joining manager announces its address.
	if cfg.NodePort == nil && cfg.ListenAddr != "" {
		l, err := net.Listen("tcp", cfg.ListenAddr)
		if err != nil {
			return nil, fmt.Errorf("manager: node port: %w", err)
		}
		cfg.NodePort = l
	}
	closePort := func() {
		if cfg.NodePort != nil {
			cfg.NodePort.Close()
		}
	}
	if cfg.NodePort != nil && cfg.AdvertiseAddr == "" {
		if cfg.AdvertiseAddr, err = membership.AdvertiseFor(cfg.NodePort.Addr(), cfg.ClusterCIDR); err != nil {
			closePort()
			return nil, err
		}
	}
	memCfg := membership.Config{DataDir: cfg.DataDir, Hostname: cfg.Hostname, Labels: cfg.Labels,
		ClusterCIDR: cfg.ClusterCIDR, SubnetBits: cfg.SubnetBits, AdvertiseAddr: cfg.AdvertiseAddr,
		BootstrapVoters: cfg.BootstrapVoters, Peers: cfg.Peers, CertGrace: cfg.CertGrace, Logger: cfg.Logger}
	var joinIndex uint64
	if fresh && cfg.JoinAddr != "" {
		if id, joinIndex, err = membership.Join(context.Background(), memCfg, cfg.JoinAddr, cfg.JoinToken, cfg.Logger); err != nil {
			closePort()
			return nil, err
		}
	}
	if err := membership.SaveIdentity(cfg.DataDir, id); err != nil {
		closePort()
		return nil, err
	}
	if id.Role == api.RoleWorker {
		cfg.Worker = true
	}
	for _, mid := range cfg.Managers { // tests name the managers to follow
		id.Managers = append(id.Managers, api.PeerAddr{ID: mid})
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, nodeID: id.NodeID, done: make(chan struct{})}
	if !cfg.Worker {
		if m.keys, err = membership.OpenKeyRing(cfg.DataDir, id.Role == ""); err != nil {
			closePort()
			return nil, err
		}
		memCfg.Keys = m.keys
	}
	if m.mem, err = membership.Open(memCfg, id, cfg.NodePort); err != nil {
		closePort()
		return nil, err
	}
	m.mem.SetJoinIndex(joinIndex)
	m.peers = m.mem.Peers()
	if m.store, err = core.OpenStore(cfg.DataDir, id.Role == api.RoleWorker, cfg.Logger); err != nil {
		closePort()
		return nil, err
	}
	m.metrics = newMetrics(m.store)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.store.RunCheckpoints(ctx)
	ctlCfg := controlapi.Config{NodeID: m.nodeID, ClusterID: id.ClusterID, ClusterCIDR: id.ClusterCIDR, DataDir: cfg.DataDir, Version: Version, AgentSocket: cfg.AgentSocket,
		Orchestrator: orchestrator.Options{RescheduleGrace: cfg.RescheduleGrace}, RevokeFor: m.mem.RevokeFor(),
		Health: m.Healthy, Watchers: m.metrics.watchersDelta, Peers: m.peers, Keys: m.keys, Logger: cfg.Logger}

	if cfg.Worker {
		m.work = worker.New(worker.Config{NodeID: m.nodeID, Managers: m.mem.ManagerIDs, Peers: m.peers, Logger: cfg.Logger}, m.store)
		m.ctl = controlapi.New(ctlCfg, m.store, nil)
		m.mux = m.routes()
		m.mem.Start(ctx, m.store, nil, m.nodePortHandler())
		go func() {
			defer close(m.done)
			m.work.Run(ctx)
		}()
		return m, nil
	}
	m.core, err = core.Start(m.store, core.Config{
		DataDir: cfg.DataDir, NodeID: m.nodeID, Bootstrap: id.Role == "", BootstrapVoters: cfg.BootstrapVoters,
		Stream: m.mem.Stream(), Transport: cfg.RaftTransport,
		HeartbeatTimeout: cfg.HeartbeatTimeout, CommitTimeout: cfg.CommitTimeout,
		ForceNewCluster: cfg.ForceNewCluster, RaftLogStore: cfg.RaftLogStore, RaftLogLevel: cfg.RaftLogLevel,
		TrailingLogs: cfg.RaftTrailingLogs, WALSegmentBytes: cfg.RaftWALSegmentBytes, Logger: cfg.Logger, OnApply: m.metrics.observeApply, OnCommit: m.metrics.observeCommit,
		OnEvents: m.metrics.countEvents})
	if err != nil {
		cancel()
		m.mem.Close()
		m.store.Close()
		return nil, err
	}
	ctlCfg.Autolocked = m.mem.Autolocked
	ctlCfg.LeaderWrite = m.mem.LeaderWrite
	m.ctl = controlapi.New(ctlCfg, m.store, m.core)
	m.lead = leader.New(leader.Config{NodeTimeout: cfg.NodeTimeout, Orchestrator: ctlCfg.Orchestrator,
		Prepare: m.mem.PrepareToLead, OnReconcile: m.metrics.observeReconcile, OnState: m.metrics.setRaftState,
		Logger: cfg.Logger}, m.core)
	m.mux = m.routes()
	m.mem.Start(ctx, m.store, m.core, m.nodePortHandler())
	go func() {
		defer close(m.done)
		m.lead.Run(ctx)
	}()
	return m, nil
}

// NodeID is this node's ID.
func (m *Manager) NodeID() string { return m.nodeID }

// Snapshot takes a Raft snapshot now (a manager's; a worker has none).
func (m *Manager) Snapshot() error {
	if m.core == nil {
		return errors.New("manager: a worker keeps no Raft snapshot")
	}
	return m.core.Snapshot()
}

// IsLeader says whether this manager leads the cluster now.
func (m *Manager) IsLeader() bool { return m.core != nil && m.core.IsLeader() }

// Serve serves the API on the local socket l until Close: its callers are
// the node's operators (root and group warren).
func (m *Manager) Serve(l net.Listener) error { return m.serve(l, m.Handler()) }

// ServeReadOnly serves the API on a second local socket whose callers may
// only read (warren-dns).
func (m *Manager) ServeReadOnly(l net.Listener) error { return m.serve(l, m.ReadOnlyHandler()) }

// ServeIngress serves the API on the local socket of warren-ingress,
// whose callers read, and share this node's ingress state with the other
// ingress nodes.
func (m *Manager) ServeIngress(l net.Listener) error { return m.serve(l, m.IngressHandler()) }

func (m *Manager) serve(l net.Listener, h http.Handler) error {
	membership.ClearDeadline(l)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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
	if m.work != nil {
		return nil // a worker serves its replica, connected or not
	}
	if err := m.core.DiskFull(); err != nil {
		return err
	}
	if m.core.Shutdown() {
		return errors.New("raft is shut down")
	}
	if m.core.LeaderID() == "" {
		return errors.New("no raft leader")
	}
	var err error
	m.store.View(func(v *store.View) error {
		if v.Cluster() == nil {
			err = errors.New("cluster not initialised yet")
		} else if _, ok := v.NodeByID(m.nodeID); !ok {
			err = errors.New("this node is not registered yet")
		}
		return nil
	})
	return err
}

// RaftAlive checks that Raft's main loop (a worker's replica loop)
// answers, whatever the cluster's state.
func (m *Manager) RaftAlive(ctx context.Context) error {
	if m.work != nil {
		return m.work.Alive()
	}
	return m.core.Alive(ctx)
}

// Status is a one-line summary for systemd's STATUS=.
func (m *Manager) Status() string {
	if m.work != nil {
		return m.work.Status()
	}
	var svcs, tasks int
	m.store.View(func(v *store.View) error {
		svcs, tasks = v.ServiceCount(), v.TaskCount()
		return nil
	})
	_, state := m.core.State()
	if d := m.core.DiskStatus(); d != "" {
		state = d
	}
	return fmt.Sprintf("%s, %d services, %d tasks", state, svcs, tasks)
}

// RoleChanged is closed when this node's role changed and its manager must
// be restarted in the new mode (the daemon does so).
func (m *Manager) RoleChanged() <-chan struct{} { return m.mem.RoleChanged() }

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
	if m.core != nil {
		err = m.core.Close()
	} else {
		err = m.store.Close()
	}
	m.mem.Close()
	return err
}

// ReadIdentity reads the identity of the node whose data dir this is.
func ReadIdentity(dataDir string) (string, error) { return membership.ReadIdentity(dataDir) }

// InitInfo waits for a new cluster's CA and certificate, and returns the
// cluster's identity and its first join tokens (warren init).
func (m *Manager) InitInfo(ctx context.Context) (*api.Info, []api.JoinTokenInfo, error) {
	for !m.mem.HasCredentials() {
		if err := core.Sleep(ctx, 20*time.Millisecond); err != nil {
			return nil, nil, fmt.Errorf("manager: no certificate yet: %w", err)
		}
	}
	var info api.Info
	m.store.View(func(v *store.View) error {
		if c := v.Cluster(); c != nil {
			info.ClusterID = c.ClusterID
		}
		return nil
	})
	info.NodeID = m.nodeID
	tokens, err := m.mem.InitTokens(ctx)
	if err != nil {
		return nil, nil, err
	}
	return &info, tokens, nil
}
