package core

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/warren-edge/warren/daemons/store"
)

// Store is a node's state database and its watch hub: the whole cluster
// on a manager, the node's scope on a worker.
type Store struct {
	state *store.State
	hub   *store.Hub
}

// OpenStore opens (or creates) the state database in dataDir. A worker's
// (replica) is synced on every write: it has no Raft log to be rebuilt
// from, and a worker cut off from the managers must boot with it whole.
func OpenStore(dataDir string, replica bool, log *slog.Logger) (*Store, error) {
	open := store.OpenState
	if replica {
		open = store.OpenStateSynced
	}
	state, err := open(filepath.Join(dataDir, "state.db"))
	if err != nil {
		return nil, err
	}
	switch {
	case state.Discarded != "" && replica:
		log.Warn("state database set aside; the replica starts empty and fills again from the managers", "why", state.Discarded)
	case state.Discarded != "":
		log.Warn("state database set aside; rebuilding it from the Raft snapshot and log", "why", state.Discarded)
	}
	return &Store{state: state, hub: store.NewHub(8192, 16<<20, state.AppliedIndex())}, nil
}

// View runs fn on a consistent read-only view of the state.
func (s *Store) View(fn func(v *store.View) error) error { return s.state.View(fn) }

// Hub is the stream of changes, for watches and loops.
func (s *Store) Hub() *store.Hub { return s.hub }

// AppliedIndex is the last Raft index applied to the state.
func (s *Store) AppliedIndex() uint64 { return s.state.AppliedIndex() }

// Replica makes the worker's node-scoped replica over this store.
func (s *Store) Replica() *store.Replica { return store.NewReplica(s.state, s.hub) }

// RunCheckpoints persists the state database when idle, until ctx ends.
func (s *Store) RunCheckpoints(ctx context.Context) { s.state.RunCheckpoints(ctx, time.Second) }

// Close closes the state database.
func (s *Store) Close() error {
	if err := s.state.Close(); err != nil {
		return fmt.Errorf("core: close state: %w", err)
	}
	return nil
}
