package dns

import (
	"context"
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

// Replica is warren-dns's copy of the cluster's services and tasks: a
// client.Mirror of the local manager, each state it publishes built into a
// new immutable Table.
//
//	manager ─watch─▶ Mirror ─state─▶ BuildTable ─atomic swap─▶ Table()
//
// A watch that ends (manager restarting, socket gone, silence past
// IdleTimeout) is reopened with backoff, resuming after the last whole
// index; the published table keeps being served meanwhile. A full resend
// is swapped in whole, so a query never sees half a state.
type Replica struct {
	cfg    ReplicaConfig
	log    *slog.Logger
	mirror *client.Mirror

	table atomic.Pointer[Table]

	mu          sync.Mutex // guards unreachable
	unreachable map[string]bool
}

// NewReplica makes a replica serving an empty table until Run has synced.
func NewReplica(cfg ReplicaConfig) *Replica {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Replica{cfg: cfg, log: cfg.Logger}
	r.mirror = client.NewMirror(client.MirrorOptions{
		Follow: client.FollowOptions{
			Client:     cfg.API,
			MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff,
			ConnectTimeout: cfg.ConnectTimeout, IdleTimeout: cfg.IdleTimeout,
			Logger: cfg.Logger,
		},
		KeepService: keepService,
		KeepTask:    keepTask,
		Publish:     r.publish,
	})
	r.table.Store(BuildTable(cfg.Table, nil, nil))
	return r
}

// keepService keeps what the table uses of a service.
func keepService(s *api.Service) *api.Service {
	return &api.Service{Meta: api.Meta{ID: s.ID},
		Spec: api.ServiceSpec{Name: s.Spec.Name, Mode: s.Spec.Mode, Ports: s.Spec.Ports}}
}

// keepTask keeps what the table uses of a task (a task carries a whole
// spec), and nothing of one not running or without an address.
func keepTask(t *api.Task) *api.Task {
	if !taskAddr(t).IsValid() {
		return nil // not running, or no address: nothing to answer
	}
	return &api.Task{Meta: api.Meta{ID: t.ID}, ServiceID: t.ServiceID, ServiceName: t.ServiceName,
		Slot: t.Slot, NodeID: t.NodeID, DesiredState: t.DesiredState,
		Status: api.TaskStatus{State: t.Status.State, Addr: t.Status.Addr, Health: t.Status.Health}}
}

// Table returns the current answer table.
func (r *Replica) Table() *Table { return r.table.Load() }

// Synced is closed once the replica holds the whole state once.
func (r *Replica) Synced() <-chan struct{} { return r.mirror.Synced() }

// Connected says whether the watch is open.
func (r *Replica) Connected() bool { return r.mirror.Status().Connected }

// Alive returns an error if the watch loop showed no sign of life for
// maxAge: it is stuck. A loop waiting to reconnect to an absent manager is
// alive.
func (r *Replica) Alive(maxAge time.Duration) error { return r.mirror.Alive(maxAge) }

// Status is a one-line state for systemd's STATUS=.
func (r *Replica) Status() string {
	t := r.Table()
	s, n, h := t.Counts()
	line := fmt.Sprintf("%d services, %d tasks (%d healthy) at index %d", s, n, h, t.Index())
	st := r.mirror.Status()
	if st.Connected {
		return line + "; watching the manager"
	}
	return line + fmt.Sprintf("; manager unreachable for %s, answering from the last state", time.Since(st.Since).Round(time.Second))
}

// apply feeds a batch as if the watch brought it (tests).
func (r *Replica) apply(b api.WatchBatch) error { return r.mirror.Apply(b) }

// Run watches the manager until ctx ends.
func (r *Replica) Run(ctx context.Context) error {
	err := r.mirror.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("dns: watch: %w", err)
}

// SetUnreachable says which nodes this node's mesh does not reach now;
// the table is rebuilt if that changed.
func (r *Replica) SetUnreachable(nodes []string) {
	if !r.setUnreachable(nodes) {
		return
	}
	r.mirror.Republish()
}

func (r *Replica) setUnreachable(nodes []string) (changed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(nodes) == len(r.unreachable) {
		same := true
		for _, n := range nodes {
			same = same && r.unreachable[n]
		}
		if same {
			return false
		}
	}
	r.unreachable = make(map[string]bool, len(nodes))
	for _, n := range nodes {
		r.unreachable[n] = true
	}
	return true
}

// publish builds the table of the mirror's state, whole at its index, and
// swaps it in.
func (r *Replica) publish(st *client.MirrorState) {
	services := make([]*api.Service, 0, len(st.Services))
	for _, s := range st.Services {
		services = append(services, s)
	}
	tasks := make([]*api.Task, 0, len(st.Tasks))
	for _, t := range st.Tasks {
		tasks = append(tasks, t)
	}
	r.mu.Lock()
	o := r.cfg.Table
	o.Index, o.Unreachable = st.Index, r.unreachable
	r.mu.Unlock()
	r.table.Store(BuildTable(o, services, tasks))
}
