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
	// MinBackoff and MaxBackoff bound the wait between reconnects
	// (defaults 100ms and 5s).
	MinBackoff, MaxBackoff time.Duration
	// ConnectTimeout bounds opening the watch, until the response headers
	// (default 35s: the manager sends them with its first line, which for
	// a resumed watch of an idle cluster is the first ping, after 10s).
	ConnectTimeout time.Duration
	// IdleTimeout ends a watch that brought neither an event nor a ping
	// for that long (default 35s: the manager pings every 10s).
	IdleTimeout time.Duration
	Logger      *slog.Logger
}

// Replica is warren-dns's copy of the cluster's services and tasks: one
// watch on the local manager (kinds service and task), applied in batches,
// each batch published as a new immutable Table.
//
//	manager ─watch─▶ reader ─events─▶ apply (maps) ─▶ BuildTable ─atomic swap─▶ Table()
//
// A watch that ends (manager restarting, socket gone, silence past
// IdleTimeout) is reopened with backoff, resuming after the last index
// applied; the published table keeps being served meanwhile. A full resend
// (reset … synced) is gathered apart and swapped in whole, so a query
// never sees half a state.
type Replica struct {
	cfg ReplicaConfig
	log *slog.Logger

	table     atomic.Pointer[Table]
	synced    chan struct{}
	syncOnce  sync.Once
	alive     atomic.Int64 // unix nanos: the watch loop's last sign of life
	connected atomic.Bool
	downSince atomic.Int64 // unix nanos: when the watch last ended, 0 while connected

	// Owned by Run.
	state   replicaState
	staging *replicaState // during a reset
	index   uint64
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
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Second
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 35 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 35 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Replica{cfg: cfg, log: cfg.Logger, synced: make(chan struct{}), state: newState()}
	r.table.Store(BuildTable(cfg.Table, nil, nil))
	r.alive.Store(time.Now().UnixNano())
	r.downSince.Store(time.Now().UnixNano())
	return r
}

// Table returns the current answer table.
func (r *Replica) Table() *Table { return r.table.Load() }

// Synced is closed once the replica holds the whole state once.
func (r *Replica) Synced() <-chan struct{} { return r.synced }

// Connected says whether the watch is open.
func (r *Replica) Connected() bool { return r.connected.Load() }

// Alive returns an error if the watch loop showed no sign of life for
// maxAge: it is stuck. A loop waiting to reconnect to an absent manager is
// alive.
func (r *Replica) Alive(maxAge time.Duration) error {
	if age := time.Since(time.Unix(0, r.alive.Load())); age > maxAge {
		return fmt.Errorf("dns: the watch loop has been stuck for %s", age.Round(time.Second))
	}
	return nil
}

// Status is a one-line state for systemd's STATUS=.
func (r *Replica) Status() string {
	t := r.Table()
	s, n, h := t.Counts()
	line := fmt.Sprintf("%d services, %d tasks (%d healthy) at index %d", s, n, h, t.Index())
	if r.Connected() {
		return line + "; watching the manager"
	}
	since := time.Unix(0, r.downSince.Load())
	return line + fmt.Sprintf("; manager unreachable for %s, answering from the last state", time.Since(since).Round(time.Second))
}

// Run watches the manager until ctx ends.
func (r *Replica) Run(ctx context.Context) error {
	backoff := r.cfg.MinBackoff
	for {
		r.touch()
		progressed, err := r.session(ctx)
		wasConnected := r.connected.Swap(false)
		if wasConnected {
			r.downSince.Store(time.Now().UnixNano())
		}
		if ctx.Err() != nil {
			return nil
		}
		if progressed {
			backoff = r.cfg.MinBackoff
		}
		if wasConnected {
			r.log.Warn("manager watch ended; answering from the last state while reconnecting", "index", r.index, "err", err)
		} else {
			r.log.Debug("manager watch failed", "index", r.index, "err", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, r.cfg.MaxBackoff)
	}
}

func (r *Replica) touch() { r.alive.Store(time.Now().UnixNano()) }

// session runs one watch until it fails. progressed says it applied
// something.
func (r *Replica) session(ctx context.Context) (progressed bool, err error) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	connectTimer := time.AfterFunc(r.cfg.ConnectTimeout, cancel)
	w, err := r.cfg.API.Watch(wctx, client.WatchQuery{Index: r.index, Kinds: []string{api.KindService, api.KindTask}})
	late := !connectTimer.Stop()
	if err != nil {
		return false, err
	}
	defer w.Close()
	if late {
		return false, fmt.Errorf("dns: the watch took over %s to open", r.cfg.ConnectTimeout)
	}
	r.staging = nil
	if r.connected.CompareAndSwap(false, true) {
		if down := r.downSince.Swap(0); r.index > 0 && down != 0 {
			r.log.Info("watching the manager again", "after_index", r.index, "down_for", time.Since(time.Unix(0, down)).Round(time.Millisecond))
		} else {
			r.log.Info("watching the manager", "after_index", r.index)
		}
	}

	events := make(chan api.Event, 256)
	errc := make(chan error, 1)
	go func() {
		for {
			ev, err := w.Next()
			if err != nil {
				errc <- err
				return
			}
			select {
			case events <- ev:
			case <-wctx.Done():
				return
			}
		}
	}()
	idle := time.NewTimer(r.cfg.IdleTimeout)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return progressed, ctx.Err()
		case err := <-errc:
			return progressed, err
		case <-idle.C:
			return progressed, fmt.Errorf("dns: no event nor ping from the manager for %s", r.cfg.IdleTimeout)
		case ev := <-events:
			changed := r.apply(ev)
		drain:
			for range 1024 {
				select {
				case ev := <-events:
					changed = r.apply(ev) || changed
				default:
					break drain
				}
			}
			if changed {
				r.publish()
				progressed = true
			}
			idle.Reset(r.cfg.IdleTimeout)
			r.touch()
		}
	}
}

// apply takes one event into the replica (or the reset being gathered);
// it says whether the published state must be rebuilt.
func (r *Replica) apply(ev api.Event) bool {
	switch ev.Op {
	case api.OpReset:
		s := newState()
		r.staging = &s
		return false
	case api.OpSynced:
		if r.staging != nil {
			r.state, r.staging = *r.staging, nil
		}
		r.index = max(r.index, ev.Index)
		r.syncOnce.Do(func() { close(r.synced) })
		return true
	case api.OpPing:
		if r.staging == nil {
			r.index = max(r.index, ev.Index)
		}
		return false
	case api.OpCreate, api.OpUpdate, api.OpDelete:
	default:
		r.log.Warn("unknown watch event; ignored", "op", ev.Op, "index", ev.Index)
		return false
	}
	st := &r.state
	if r.staging != nil {
		st = r.staging
	}
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
	if r.staging != nil {
		return false
	}
	r.index = max(r.index, ev.Index)
	return true
}

// publish builds the table of the current state and swaps it in.
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
	o.Index = r.index
	r.table.Store(BuildTable(o, services, tasks))
}
