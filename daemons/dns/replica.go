package dns

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// ReplicaConfig says where a Replica watches and how it names things.
type ReplicaConfig struct {
	// API is the node's own manager.
	API *client.Client
	// Table is the domain and TTL of the tables built (Index is ignored).
	Table TableOptions
	// MinBackoff, MaxBackoff, ConnectTimeout and IdleTimeout tune the
	// watch (client.FollowOptions; zero takes the follower's defaults).
	MinBackoff, MaxBackoff      time.Duration
	ConnectTimeout, IdleTimeout time.Duration
	Logger                      *slog.Logger
}

// Replica is warren-dns's copy of the cluster's services and tasks: one
// watch on the local manager (kinds service and task), followed by a
// client.Follower, each batch it hands out applied and published as a new
// immutable Table.
//
//	manager ─watch─▶ Follower ─batch─▶ apply (maps) ─▶ BuildTable ─atomic swap─▶ Table()
//
// A watch that ends (manager restarting, socket gone, silence past
// IdleTimeout) is reopened with backoff, resuming after the last whole
// index; the published table keeps being served meanwhile. A full resend
// comes as one batch and is swapped in whole, so a query never sees half
// a state.
type Replica struct {
	cfg    ReplicaConfig
	log    *slog.Logger
	follow *client.Follower

	table    atomic.Pointer[Table]
	synced   chan struct{}
	syncOnce sync.Once

	mu          sync.Mutex   // guards what publish reads
	state       replicaState // written by Run
	index       uint64       // of the last batch
	unreachable map[string]bool
}

type replicaState struct {
	services map[string]*api.Service
	tasks    map[string]*api.Task
}

func newState() replicaState {
	return replicaState{services: map[string]*api.Service{}, tasks: map[string]*api.Task{}}
}

// NewReplica makes a replica serving an empty table until Run has synced.
func NewReplica(cfg ReplicaConfig) *Replica {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Replica{cfg: cfg, log: cfg.Logger, synced: make(chan struct{}), state: newState()}
	r.follow = client.NewFollower(client.FollowOptions{
		Client:     cfg.API,
		Query:      client.WatchQuery{Kinds: []string{api.KindService, api.KindTask}},
		MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff,
		ConnectTimeout: cfg.ConnectTimeout, IdleTimeout: cfg.IdleTimeout,
		Logger: cfg.Logger,
	})
	r.table.Store(BuildTable(cfg.Table, nil, nil))
	return r
}

// Table returns the current answer table.
func (r *Replica) Table() *Table { return r.table.Load() }

// Synced is closed once the replica holds the whole state once.
func (r *Replica) Synced() <-chan struct{} { return r.synced }

// Connected says whether the watch is open.
func (r *Replica) Connected() bool { return r.follow.Status().Connected }

// Alive returns an error if the watch loop showed no sign of life for
// maxAge: it is stuck. A loop waiting to reconnect to an absent manager is
// alive.
func (r *Replica) Alive(maxAge time.Duration) error {
	if age := time.Since(r.follow.Status().Alive); age > maxAge {
		return fmt.Errorf("dns: the watch loop has been stuck for %s", age.Round(time.Second))
	}
	return nil
}

// Status is a one-line state for systemd's STATUS=.
func (r *Replica) Status() string {
	t := r.Table()
	s, n, h := t.Counts()
	line := fmt.Sprintf("%d services, %d tasks (%d healthy) at index %d", s, n, h, t.Index())
	st := r.follow.Status()
	if st.Connected {
		return line + "; watching the manager"
	}
	return line + fmt.Sprintf("; manager unreachable for %s, answering from the last state", time.Since(st.Since).Round(time.Second))
}

// Run watches the manager until ctx ends.
func (r *Replica) Run(ctx context.Context) error {
	err := r.follow.Run(ctx, r.apply)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("dns: watch: %w", err)
}

// apply takes one batch of the watch in and publishes the table of the
// result: queries see the state before the batch or after it, never in
// between, and a full resend replaces everything.
func (r *Replica) apply(b api.WatchBatch) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b.Reset {
		r.state = newState()
	}
	for _, ev := range b.Events {
		r.applyEvent(&r.state, ev)
	}
	r.index = b.Index
	r.publish()
	if b.Reset {
		r.syncOnce.Do(func() { close(r.synced) })
	}
	return nil
}

// applyEvent folds one change into st.
func (r *Replica) applyEvent(st *replicaState, ev api.Event) {
	switch ev.Kind {
	case api.KindService:
		if ev.Op == api.OpDelete {
			delete(st.services, ev.ID)
			break
		}
		var s api.Service
		if err := json.Unmarshal(ev.Object, &s); err != nil || s.ID == "" {
			r.log.Error("undecodable service in the watch; ignored", "id", ev.ID, "index", ev.Index, "err", err)
			break
		}
		st.services[s.ID] = &api.Service{Meta: api.Meta{ID: s.ID},
			Spec: api.ServiceSpec{Name: s.Spec.Name, Mode: s.Spec.Mode, Ports: s.Spec.Ports}}
	case api.KindTask:
		if ev.Op == api.OpDelete {
			delete(st.tasks, ev.ID)
			break
		}
		var t api.Task
		if err := json.Unmarshal(ev.Object, &t); err != nil || t.ID == "" {
			r.log.Error("undecodable task in the watch; ignored", "id", ev.ID, "index", ev.Index, "err", err)
			break
		}
		if !taskAddr(&t).IsValid() {
			delete(st.tasks, t.ID) // not running, or no address: nothing to answer
			break
		}
		// Keep only what the table uses: a task carries a whole spec.
		st.tasks[t.ID] = &api.Task{Meta: api.Meta{ID: t.ID}, ServiceID: t.ServiceID, ServiceName: t.ServiceName,
			Slot: t.Slot, NodeID: t.NodeID, DesiredState: t.DesiredState,
			Status: api.TaskStatus{State: t.Status.State, Addr: t.Status.Addr, Health: t.Status.Health}}
	}
}

// SetUnreachable says which nodes this node's mesh does not reach now;
// the table is rebuilt if that changed.
func (r *Replica) SetUnreachable(nodes []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(nodes) == len(r.unreachable) {
		same := true
		for _, n := range nodes {
			same = same && r.unreachable[n]
		}
		if same {
			return
		}
	}
	r.unreachable = make(map[string]bool, len(nodes))
	for _, n := range nodes {
		r.unreachable[n] = true
	}
	r.publish()
}

// publish builds the table of the current state, whole at the last index,
// and swaps it in. Callers hold r.mu.
func (r *Replica) publish() {
	services := make([]*api.Service, 0, len(r.state.services))
	for _, s := range r.state.services {
		services = append(services, s)
	}
	tasks := make([]*api.Task, 0, len(r.state.tasks))
	for _, t := range r.state.tasks {
		tasks = append(tasks, t)
	}
	o := r.cfg.Table
	o.Index, o.Unreachable = r.index, r.unreachable
	r.table.Store(BuildTable(o, services, tasks))
}
