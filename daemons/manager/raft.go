package manager

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
)

// raftNode is the Raft instance and the stores under it.
type raftNode struct {
	r     *raft.Raft
	logs  *raftboltdb.BoltStore
	trans raft.Transport
}

// Raft timing for a LAN of small devices. Elections start after
// HeartbeatTimeout without a leader; the defaults (1 s) are made for WANs.
const (
	defaultHeartbeatTimeout = 500 * time.Millisecond
	defaultElectionTimeout  = 500 * time.Millisecond
	defaultLeaderLease      = 250 * time.Millisecond
)

func startRaft(m *Manager, cfg Config) (*raftNode, error) {
	dir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("manager: %w", err)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.LevelFromString(cfg.RaftLogLevel), Output: os.Stderr, JSONFormat: true})
	bs, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType},
	})
	if err != nil {
		return nil, fmt.Errorf("manager: open raft log %s: %w (is another warren manager using this data dir?)", dir, err)
	}
	logs, err := raft.NewLogCache(1024, bs)
	if err != nil {
		bs.Close()
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, logger)
	if err != nil {
		bs.Close()
		return nil, fmt.Errorf("manager: snapshot store: %w", err)
	}
	// The state database survives restarts and Raft does not restore the
	// snapshot over it (NoSnapshotRestoreOnStart). If the database is older
	// than the newest snapshot (it was lost or replaced), fill it from the
	// snapshot now, before Raft replays the log after it.
	if metas, err := snaps.List(); err == nil && len(metas) > 0 && metas[0].Index > m.state.AppliedIndex() {
		_, rc, err := snaps.Open(metas[0].ID)
		if err != nil {
			bs.Close()
			return nil, fmt.Errorf("manager: open snapshot %s: %w", metas[0].ID, err)
		}
		if err := m.fsm.Restore(rc); err != nil {
			bs.Close()
			return nil, err
		}
		m.log.Info("state database restored from snapshot", "index", metas[0].Index)
	}

	// Raft addresses are node IDs: the transport resolves them to the
	// current node-port address, so a manager whose address changes keeps
	// its place in the cluster.
	trans := cfg.RaftTransport
	switch {
	case trans != nil:
	case m.np != nil:
		trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: m.np.raft, MaxPool: 4, Timeout: 2 * time.Second, Logger: logger})
	default:
		// No node port: a manager alone, reachable only on its socket.
		_, trans = raft.NewInmemTransport(raft.ServerAddress(m.nodeID))
	}
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(m.nodeID)
	rc.Logger = logger
	rc.NoSnapshotRestoreOnStart = true
	rc.HeartbeatTimeout = defaultHeartbeatTimeout
	if cfg.HeartbeatTimeout > 0 {
		rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	}
	rc.ElectionTimeout = max(defaultElectionTimeout, rc.HeartbeatTimeout)
	rc.LeaderLeaseTimeout = min(defaultLeaderLease, rc.HeartbeatTimeout)
	rc.MaxAppendEntries = 256
	rc.BatchApplyCh = true

	has, err := raft.HasExistingState(logs, bs, snaps)
	if err != nil {
		bs.Close()
		return nil, fmt.Errorf("manager: read raft state: %w", err)
	}
	if cfg.ForceNewCluster {
		if !has {
			bs.Close()
			return nil, fmt.Errorf("manager: --force-new-cluster needs the state of an existing manager in %s", cfg.DataDir)
		}
		conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: raft.ServerAddress(m.nodeID), Suffrage: raft.Voter}}}
		if err := raft.RecoverCluster(rc, m.fsm, logs, bs, snaps, trans, conf); err != nil {
			bs.Close()
			return nil, fmt.Errorf("manager: force a new cluster: %w", err)
		}
		m.log.Warn("forced a new cluster: this manager is its only voter; add managers back with join tokens", "node", m.nodeID)
	}
	r, err := raft.NewRaft(rc, m.fsm, logs, bs, snaps, trans)
	if err != nil {
		bs.Close()
		return nil, fmt.Errorf("manager: start raft: %w", err)
	}
	if !has && m.bootstrap {
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
			r.Shutdown()
			bs.Close()
			return nil, fmt.Errorf("manager: bootstrap: %w", err)
		}
		m.log.Info("bootstrapped a new cluster", "node", m.nodeID, "voters", len(voters))
	}
	return &raftNode{r: r, logs: bs, trans: trans}, nil
}

func (n *raftNode) close() error {
	err := n.r.Shutdown().Error()
	if cerr := n.logs.Close(); err == nil {
		err = cerr
	}
	return err
}
