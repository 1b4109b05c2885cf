package core

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/warren-edge/warren/daemons/store"
)

// raftNode is one Raft instance over the core's stores. After a stop for
// a full disk the core starts a new one over the same stores (disk.go).
type raftNode struct {
	r        *raft.Raft
	stopOnce sync.Once
	stopped  chan struct{}
}

func newNode(r *raft.Raft) *raftNode { return &raftNode{r: r, stopped: make(chan struct{})} }

// stop shuts the instance down (it stops leading and voting at once) and
// returns a channel closed once all its goroutines have returned: Raft's
// own future says so only to its first caller.
func (n *raftNode) stop() <-chan struct{} {
	n.stopOnce.Do(func() {
		f := n.r.Shutdown()
		go func() {
			f.Error()
			close(n.stopped)
		}()
	})
	return n.stopped
}

// raftStores are what every Raft instance of the core runs over, opened
// once: the log and stable stores (guarded against a full disk), the
// snapshot store, the transport, and the Raft configuration.
type raftStores struct {
	logs    raft.LogStore
	stable  raft.StableStore
	snaps   raft.SnapshotStore
	trans   kept
	conf    raft.Config
	closers []func() error // the log and stable stores
	// wal is the log, if it is kept in raft-wal.
	wal *walLog
}

// reopenLog opens a raft-wal log again (no Raft instance may run): after a
// full disk, one that failed to move to a new file refuses every write
// until then.
func (st *raftStores) reopenLog() error {
	if st.wal == nil {
		return nil
	}
	return st.wal.reopen()
}

// logSpace is the free space the Raft log's directory must have again
// before Raft restarts after a full disk: a raft-wal log may have to make
// its next file, whole, before it writes.
func (st *raftStores) logSpace() int64 {
	if st.wal != nil {
		return int64(st.wal.segment) + probeBytes
	}
	return probeBytes
}

// Raft timing for a LAN of small devices. A follower starts an election
// 1-1.5 HeartbeatTimeouts after it last heard from the leader (Warren's
// copy of Raft, contactDue; upstream: 1-3, on a timer of its own); the
// defaults (1 s) are made for WANs. The leader heartbeats every follower
// at the same instants, every half LeaderLeaseTimeout (heartbeatInterval),
// and steps down when a quorum has not answered for 1-1.5 leases.
//
// The lease is HeartbeatTimeout, so a follower sees two heartbeats inside
// its shortest timeout, and a cut-off leader steps down 1-1.5 timeouts
// after it last heard from a quorum: about when the others elect a new
// one. At 450 ms: heartbeats every 225 ms, elections 450-675 ms after
// the last one.
//
// Heartbeats are most of what idle managers send, and each one costs
// more in thread wakeups than in the message (Go's sysmon thread alone
// makes most of a follower's context switches). Three idle managers
// (qa/bench idle, 60 s):
//   - 300 ms timeout with a 150 ms lease: 88 TCP segments/s, 480 thread
//     wakeups/s;
//   - 450 ms with a 300 ms lease (heartbeats every 150 ms): 48/s,
//     294-325/s, 1.47-1.48 % of a core;
//   - 450 ms with a 450 ms lease (every 225 ms): 34/s, 248-280/s,
//     0.87-0.95 % (runs alternated with the line above; 1.03 % in a
//     whole make bench on a busier machine), and the same failover time
//     (qa/bench ha).
//
// A longer lease costs nothing in safety (Raft's terms keep a deposed
// leader from committing; Warren serves no read on the strength of a
// lease), only time: a leader cut off from its quorum gives up its
// leadership, and with it the writes it holds, 150-225 ms later than
// with the shorter lease.

// CommitTimeout is how soon an idle leader tells followers what is
// committed: a read on a follower right after a write through it waits
// for that (see awaitForwarded), and so do the follower's watchers.
// Upstream Raft sends each follower a message every 1–2 × CommitTimeout
// even when idle; Warren's copy (third_party/raft) sends only while a
// follower may not know the commit index, and once a second otherwise.
const (
	defaultHeartbeatTimeout = 450 * time.Millisecond
	defaultCommitTimeout    = 20 * time.Millisecond
)

// leaderLease is the LeaderLeaseTimeout for a HeartbeatTimeout of hb.
func leaderLease(hb time.Duration) time.Duration { return hb }

// Config is how the core's Raft node is started.
type Config struct {
	DataDir string
	NodeID  string
	// Bootstrap: a fresh data dir starts a new cluster of BootstrapVoters
	// (node IDs; default this node alone). A joined node never does.
	Bootstrap       bool
	BootstrapVoters []string
	// Stream carries Raft between managers (the node port); Transport, if
	// set, replaces it (tests use raft's in-memory transport). With
	// neither, a lone manager runs on an in-memory transport of its own.
	Stream    raft.StreamLayer
	Transport raft.Transport
	// HeartbeatTimeout and CommitTimeout: zero takes the defaults above.
	HeartbeatTimeout time.Duration
	CommitTimeout    time.Duration
	// ForceNewCluster makes this manager the only voter, keeping the state.
	ForceNewCluster bool
	// RaftLogStore is "wal", "bbolt", or "" (the data dir's, wal for a
	// new one): logStoreKind.
	RaftLogStore string
	// RaftLogLevel is the level of Raft's own log lines (default warn).
	RaftLogLevel string
	// TrailingLogs is how many entries a snapshot leaves in the log
	// (zero: Raft's default), and WALSegmentBytes the size of a raft-wal
	// log's files (zero: walSegmentBytes); tests lower both.
	TrailingLogs    uint64
	WALSegmentBytes int
	Logger          *slog.Logger
	// OnApply observes each batch the FSM applies; OnCommit each proposal's
	// time to commit (metrics).
	OnApply  func(n int, d time.Duration)
	OnCommit func(d time.Duration)
	// OnEvents observes the types of the events each batch derived.
	OnEvents func(types []string)
}

func (c *Config) defaults() error {
	if c.DataDir == "" || c.NodeID == "" {
		return errors.New("core: a data dir and a node ID are required")
	}
	if c.RaftLogLevel == "" {
		c.RaftLogLevel = "warn"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// CommitTimeout is the CommitTimeout cfg gives Raft: its own, or the
// default.
func (c Config) EffectiveCommitTimeout() time.Duration {
	if c.CommitTimeout > 0 {
		return c.CommitTimeout
	}
	return defaultCommitTimeout
}

// logStoreKind decides where the Raft log in dir is kept: want ("bbolt",
// "wal", or "" for the data dir's own choice), checked against what the
// data dir started with (its logstore file). A new data dir records its
// choice, raft-wal unless told otherwise.
func logStoreKind(dir, want string) (string, error) {
	switch want {
	case "", "bbolt", "wal":
	default:
		return "", fmt.Errorf("manager: raft log store %q: use wal or bbolt (or leave it out: a data dir keeps the store it started with, a new one uses wal)", want)
	}
	marker := filepath.Join(dir, "logstore")
	b, err := os.ReadFile(marker)
	switch {
	case err == nil:
		have := strings.TrimSpace(string(b))
		if have != "bbolt" && have != "wal" {
			return "", fmt.Errorf("manager: %s says the Raft log is kept in %q, which this warren does not know: restore the file (wal or bbolt)", marker, have)
		}
		if want != "" && want != have {
			return "", fmt.Errorf("manager: this data dir's Raft log is kept in %s: start it with --raft-log-store %s, or without the flag", have, have)
		}
		return have, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("manager: %w", err)
	}
	if want == "" {
		want = "wal"
		if _, err := os.Stat(filepath.Join(dir, "raft.db")); err == nil {
			// A data dir from before the logstore file: bbolt was all
			// there was.
			want = "bbolt"
		}
	}
	if err := store.WriteFileAtomic(marker, []byte(want+"\n")); err != nil {
		return "", fmt.Errorf("manager: %w", err)
	}
	return want, nil
}

// openRaft opens the Raft stores and starts the first Raft instance over
// them (bootstrapping or forcing a new cluster as cfg says).
func openRaft(m *Core, cfg Config) (*raftStores, *raftNode, error) {
	st, err := openRaftStores(m, cfg)
	if err != nil {
		return nil, nil, err
	}
	rn, err := m.newRaftNode(st, cfg, true)
	if err != nil {
		st.close()
		return nil, nil, err
	}
	return st, rn, nil
}

func openRaftStores(m *Core, cfg Config) (*raftStores, error) {
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	kind, err := logStoreKind(dir, cfg.RaftLogStore)
	if err != nil {
		return nil, err
	}
	logger := HCLog(cfg.Logger.With("component", "raft"), hclog.LevelFromString(cfg.RaftLogLevel))
	bs, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType},
	})
	if err != nil {
		return nil, fmt.Errorf("manager: open raft log %s: %w (is another warren manager using this data dir?)", dir, err)
	}
	// The log store: raft-wal (the default for a new data dir), an
	// append-only log with one fsync per batch, or bbolt, which needs two
	// and rewrites its pages (the stable store is always bbolt).
	var logStore raft.LogStore = bs
	var walStore *walLog
	var closers []func() error
	switch kind {
	case "bbolt":
	case "wal":
		if err := os.MkdirAll(filepath.Join(dir, "wal"), 0o700); err != nil {
			bs.Close()
			return nil, fmt.Errorf("manager: %w", err)
		}
		w, err := openWAL(filepath.Join(dir, "wal"), cmp.Or(cfg.WALSegmentBytes, walSegmentBytes))
		if err != nil {
			bs.Close()
			return nil, fmt.Errorf("manager: %w", err)
		}
		logStore, walStore = w, w
		closers = append(closers, w.Close)
	}
	closers = append(closers, bs.Close)
	st := &raftStores{logs: guardedLog{logStore, m.diskFull}, stable: guardedStable{bs, m.diskFull}, closers: closers, wal: walStore}
	if st.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, 2, logger); err != nil {
		st.close()
		return nil, fmt.Errorf("manager: snapshot store: %w", err)
	}

	// Raft addresses are node IDs: the transport resolves them to the
	// current node-port address, so a manager whose address changes keeps
	// its place in the cluster.
	trans := cfg.Transport
	switch {
	case trans != nil:
	case cfg.Stream != nil:
		trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: cfg.Stream, MaxPool: 4, Timeout: 2 * time.Second, Logger: logger})
	default:
		// No node port: a manager alone, reachable only on its socket.
		_, trans = raft.NewInmemTransport(raft.ServerAddress(m.nodeID))
	}
	st.trans = keep(trans)
	st.conf = raftConfig(cfg, m.nodeID, logger)
	return st, nil
}

// raftConfig is Raft's configuration for node nodeID under cfg.
func raftConfig(cfg Config, nodeID string, logger hclog.Logger) raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(nodeID)
	rc.Logger = logger
	rc.NoSnapshotRestoreOnStart = true
	rc.HeartbeatTimeout = defaultHeartbeatTimeout
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	}
	rc.ElectionTimeout = rc.HeartbeatTimeout
	rc.LeaderLeaseTimeout = leaderLease(rc.HeartbeatTimeout)
	rc.CommitTimeout = cfg.EffectiveCommitTimeout()
	if cfg.TrailingLogs > 0 {
		rc.TrailingLogs = cfg.TrailingLogs
	}
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true
	return *rc
}

// newRaftNode starts a Raft instance over st: the first of the core
// (first: it may bootstrap or force a new cluster), or a restart after a
// stop for a full disk.
func (m *Core) newRaftNode(st *raftStores, cfg Config, first bool) (*raftNode, error) {
	// The state database survives restarts and Raft does not restore the
	// snapshot over it (NoSnapshotRestoreOnStart). If the database is older
	// than the newest snapshot (it was lost or replaced), fill it from the
	// snapshot now, before Raft replays the log after it.
	if metas, err := st.snaps.List(); err == nil && len(metas) > 0 && metas[0].Index > m.state.AppliedIndex() {
		_, rc, err := st.snaps.Open(metas[0].ID)
		if err != nil {
			return nil, fmt.Errorf("manager: open snapshot %s: %w", metas[0].ID, err)
		}
		if err := m.fsm.Restore(rc); err != nil {
			return nil, err
		}
		m.log.Info("state database restored from snapshot", "index", metas[0].Index)
	}
	logs, err := raft.NewLogCache(1024, st.logs)
	if err != nil {
		return nil, err
	}
	rc := st.conf // a copy: Raft keeps its own
	has, err := raft.HasExistingState(logs, st.stable, st.snaps)
	if err != nil {
		return nil, fmt.Errorf("manager: read raft state: %w", err)
	}
	if first && cfg.ForceNewCluster {
		if !has {
			return nil, fmt.Errorf("manager: --force-new-cluster needs the state of an existing manager in %s", cfg.DataDir)
		}
		conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: raft.ServerAddress(m.nodeID), Suffrage: raft.Voter}}}
		if err := raft.RecoverCluster(&rc, m.fsm, logs, st.stable, st.snaps, st.trans, conf); err != nil {
			return nil, fmt.Errorf("manager: force a new cluster: %w", err)
		}
		m.log.Warn("forced a new cluster: this manager is its only voter; add managers back with join tokens", "node", m.nodeID)
	}
	r, err := raft.NewRaft(&rc, m.fsm, logs, st.stable, st.snaps, st.trans)
	if err != nil {
		return nil, fmt.Errorf("manager: start raft: %w", err)
	}
	if first && !has && cfg.Bootstrap {
		voters := cfg.BootstrapVoters
		if len(voters) == 0 {
			voters = []string{m.nodeID}
		}
		var conf raft.Configuration
		for _, id := range voters {
			conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(id), Address: raft.ServerAddress(id), Suffrage: raft.Voter})
		}
		f := r.BootstrapCluster(conf)
		if err := f.Error(); err != nil {
			r.Shutdown().Error()
			return nil, fmt.Errorf("manager: bootstrap: %w", err)
		}
		m.log.Info("bootstrapped a new cluster", "node", m.nodeID, "voters", len(voters))
	}
	return newNode(r), nil
}

// close closes the stores and the transport (no Raft instance may run).
func (st *raftStores) close() error {
	var err error
	for _, c := range st.closers {
		if cerr := c(); err == nil {
			err = cerr
		}
	}
	if st.trans != nil {
		if cerr := st.trans.close(); err == nil {
			err = cerr
		}
	}
	return err
}
