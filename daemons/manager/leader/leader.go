// Package leader runs the loops of the cluster's leader: reconcile (the
// orchestrator and scheduler over what changed, their plans committed),
// the node monitor (nodes whose agents stop reporting are marked down),
// and the heartbeats that feed it. They run while this manager leads and
// stop when it does not; they hold the core through the narrow Core
// handle.
package leader

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/orchestrator"
	"github.com/warren-edge/warren/daemons/store"
	"github.com/warren-edge/warren/daemons/wake"
)

// Core is what the leader's loops need of the manager's core.
type Core interface {
	View(fn func(v *store.View) error) error
	Hub() *store.Hub
	Propose(ctx context.Context, t store.CommandType, payload any) (any, error)
	IsLeader() bool
	LeaderCh() <-chan bool
	Barrier(timeout time.Duration) error
	State() (int, string)
}

// Config tunes the loops.
type Config struct {
	// NodeTimeout: a node silent this long is marked down.
	NodeTimeout time.Duration
	// Orchestrator: the reschedule grace and the other planner options.
	Orchestrator orchestrator.Options
	// Prepare runs each time this manager becomes leader, once the state
	// has caught up, before the loops start (a new cluster's first entry,
	// this manager's certificate); it is retried until it succeeds.
	Prepare func(ctx context.Context) error
	// OnReconcile observes each reconcile pass; OnState each Raft state
	// (metrics).
	OnReconcile func(time.Duration)
	OnState     func(code int)
	Logger      *slog.Logger
}

// Leader is the leader's loops of one manager.
type Leader struct {
	cfg   Config
	core  Core
	log   *slog.Logger
	beats *heartbeats
}

// New makes the loops; Run runs them.
func New(cfg Config, c Core) *Leader {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnReconcile == nil {
		cfg.OnReconcile = func(time.Duration) {}
	}
	if cfg.OnState == nil {
		cfg.OnState = func(int) {}
	}
	return &Leader{cfg: cfg, core: c, log: cfg.Logger, beats: newHeartbeats()}
}

// Run starts the leader's loops when this manager becomes leader and stops
// them when it is not any more, until ctx ends.
func (l *Leader) Run(ctx context.Context) {
	notify := l.core.LeaderCh()
	var stop context.CancelFunc
	var wg sync.WaitGroup
	for {
		leader := l.core.IsLeader()
		switch {
		case leader && stop == nil:
			var lctx context.Context
			lctx, stop = context.WithCancel(ctx)
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.lead(lctx)
			}()
		case !leader && stop != nil:
			stop()
			wg.Wait()
			stop = nil
		}
		code, _ := l.core.State()
		l.cfg.OnState(code)
		select {
		case <-ctx.Done():
			if stop != nil {
				stop()
			}
			wg.Wait()
			return
		case <-notify:
		case <-time.After(wake.Until(stateEvery)):
		}
	}
}

// stateEvery is how often Run looks at Raft's state without being told
// (LeaderCh tells it of leadership changes; a candidate's state only
// shows in the metric), aligned with the manager's other periodic
// wakeups (package wake).
const stateEvery = time.Second

// lead runs while this manager is the leader.
func (l *Leader) lead(ctx context.Context) {
	// Apply everything earlier leaders committed before deciding anything.
	for l.core.Barrier(5*time.Second) != nil {
		if core.Sleep(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
	if l.cfg.Prepare != nil {
		for {
			err := l.cfg.Prepare(ctx)
			if err == nil {
				break
			}
			l.log.Warn("prepare to lead", "err", err)
			if core.Sleep(ctx, 200*time.Millisecond) != nil {
				return
			}
		}
	}
	l.log.Info("leading the cluster")
	l.beats.reset(time.Now())
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); l.monitorNodes(ctx) }()
	go func() { defer wg.Done(); l.reconcileLoop(ctx) }()
	go func() { defer wg.Done(); l.pruneVersions(ctx) }()
	wg.Wait()
}

// pruneEvery is how often the leader looks for old versions of secrets
// and configs that nothing holds any more.
const pruneEvery = time.Second

// pruneVersions removes the old versions of secrets and configs that no
// service pins and no task that has not ended holds (a secret's sealed
// value leaves the state with it). The FSM checks again when it applies
// the removal, against the state of that moment.
func (l *Leader) pruneVersions(ctx context.Context) {
	for {
		if wake.Sleep(ctx, pruneEvery) != nil {
			return
		}
		for _, k := range []struct {
			kind string
			cmd  store.CommandType
		}{{api.KindSecret, store.CmdSecretRemove}, {api.KindConfig, store.CmdConfigRemove}} {
			var prune map[string][]uint64
			l.core.View(func(v *store.View) error { prune = v.PrunableVersions(k.kind); return nil })
			for id, versions := range prune {
				if _, err := l.core.Propose(ctx, k.cmd, store.SecretRemove{ID: id, Versions: versions}); err != nil {
					l.log.Warn("prune old versions", "kind", k.kind, "id", id, "err", err)
				}
			}
		}
	}
}

// fullPassEvery bounds how long any service goes without a reconcile pass.
const fullPassEvery = 15 * time.Second

// reconcileLoop runs the orchestrator and scheduler over the services that
// changed, and over all of them at the times they ask for, and commits
// their plans. It follows the hub through a mirror, so it decodes only
// what changed.
func (l *Leader) reconcileLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	full := time.NewTicker(fullPassEvery)
	defer full.Stop()
	mr := newMirror()
	l.core.View(func(v *store.View) error { mr.load(v); return nil })
	buf := make([]store.Change, 0, 1024)
	var wake time.Time
	var last []byte // the last plan committed, without its time
	for {
		wait := l.core.Hub().Wait()
		changes, upTo, err := l.core.Hub().Read(mr.index, &store.Filter{}, 1<<20, buf[:0])
		if err == store.ErrTooOld {
			l.core.View(func(v *store.View) error { mr.load(v); return nil })
		} else {
			for i := range changes {
				mr.apply(&changes[i])
			}
			mr.index = max(mr.index, upTo)
		}
		if !wake.IsZero() && !time.Now().Before(wake) {
			mr.all, wake = true, time.Time{}
		}
		if mr.hasWork() {
			start := time.Now()
			plan, next := orchestrator.Plan(mr.take(start), l.cfg.Orchestrator)
			if !next.IsZero() && (wake.IsZero() || next.Before(wake)) {
				wake = next
			}
			if !orchestrator.IsEmpty(&plan) {
				key := planKey(plan)
				if !bytes.Equal(key, last) {
					if _, err := l.core.Propose(ctx, store.CmdTaskPlan, plan); err != nil {
						l.log.Warn("commit task plan", "err", err)
						mr.all = true
						if core.Sleep(ctx, 200*time.Millisecond) != nil {
							return
						}
						continue
					}
					last = key
				}
			}
			l.cfg.OnReconcile(time.Since(start))
		}
		timer.Stop()
		if !wake.IsZero() {
			timer.Reset(max(time.Until(wake), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		case <-timer.C:
		case <-full.C:
			mr.all = true
		}
		// Let a burst of writes land before the next pass: one pass then
		// handles many changes.
		if core.Sleep(ctx, 2*time.Millisecond) != nil {
			return
		}
	}
}

// planKey identifies a plan's content. Committing the same plan twice in a
// row would change nothing; not doing so keeps a plan the FSM skips from
// spinning the loop.
func planKey(p api.TaskPlan) []byte {
	p.At = time.Time{}
	b, _ := json.Marshal(p)
	return b
}

// monitorNodes marks nodes down when their agent stops reporting.
func (l *Leader) monitorNodes(ctx context.Context) {
	for {
		// Each second (sharing the manager's 1 s wakeup), or more
		// often under a short timeout.
		if wake.Sleep(ctx, min(l.cfg.NodeTimeout/4, time.Second)) != nil {
			return
		}
		var nodes []*api.Node
		l.core.View(func(v *store.View) error { nodes = v.Nodes(); return nil })
		now := time.Now().UTC()
		for _, n := range nodes {
			if n.Status.State != api.NodeReady {
				continue
			}
			if seen := l.beats.lastSeen(n.ID); now.Sub(seen) > l.cfg.NodeTimeout {
				_, err := l.core.Propose(ctx, store.CmdNodeStatus, store.NodeStatus{ID: n.ID, Status: api.NodeStatus{
					State: api.NodeDown, Timestamp: now, Message: "no heartbeat since " + seen.Format(time.RFC3339)}})
				if err != nil {
					l.log.Warn("mark node down", "node", n.ID, "err", err)
				} else {
					l.log.Warn("node down", "node", n.ID, "hostname", n.Description.Hostname)
				}
			}
		}
	}
}

// heartbeat records a node's report; the first after a silence marks the
// node ready. A heartbeat may refresh only what the agent knows and the
// join did not fix: its container engine's version, its mesh, its images
// and its disk's free space. The hostname, the
// resources and the address were set when the node joined (a node's
// identity is its ID; its name cannot be changed from the node, so a
// node.hostname constraint cannot be spoofed).
func (l *Leader) heartbeat(ctx context.Context, nodeID string, hb api.Heartbeat) (*api.Node, error) {
	if !l.core.IsLeader() {
		return nil, api.Errorf(api.CodeNotLeader, "this manager is not the leader; heartbeats go to the leader")
	}
	var n *api.Node
	l.core.View(func(v *store.View) error { n, _ = v.NodeByID(nodeID); return nil })
	if n == nil {
		return nil, api.Errorf(api.CodeNotFound, "no node %q: a node that was removed joins again with a new token", nodeID)
	}
	l.beats.record(n.ID, time.Now())
	now := time.Now().UTC()
	// The agent tells its engine, its mesh, its images and its disk; the
	// rest of the description was fixed when the node joined.
	d := n.Description
	if ev := hb.Description.EngineVersion; ev != "" {
		d.EngineVersion = ev
	}
	if m := hb.Description.Mesh; m != nil {
		if err := m.Validate(); err != nil {
			return nil, err
		}
		d.Mesh = m
	}
	// The disk is recorded when it moved enough to matter (each record
	// is a Raft write; the scheduler needs only to know it is low).
	if k := hb.Description.Disk; k != nil {
		if err := k.Validate(); err != nil {
			return nil, err
		}
		if api.DiskChanged(d.Disk, k) {
			d.Disk = k
		}
	}
	if hb.ImagesChanged {
		if err := api.ValidateNodeImages(hb.Description.Images); err != nil {
			return nil, err
		}
		d.Images = hb.Description.Images
		if len(d.Images) == 0 {
			d.Images = nil
		}
	}
	if !d.Equal(n.Description) {
		if _, err := l.core.Propose(ctx, store.CmdNodeRegister, store.NodeRegister{ID: n.ID, Description: d, ImagesSet: hb.ImagesChanged, At: now}); err != nil {
			return nil, err
		}
	}
	if n.Status.State != api.NodeReady {
		res, err := l.core.Propose(ctx, store.CmdNodeStatus, store.NodeStatus{ID: n.ID, Status: api.NodeStatus{State: api.NodeReady, Timestamp: now, Message: "agent reporting"}})
		if err != nil {
			return nil, err
		}
		if nn, ok := res.(*api.Node); ok {
			n = nn
		} // else a replayed request: the node as read above will do
	}
	return n, nil
}

// PostHeartbeat is POST /v1/nodes/{ref}/heartbeat, on the leader: node
// {ref}'s agent is alive.
func (l *Leader) PostHeartbeat(w http.ResponseWriter, r *http.Request) {
	var hb api.Heartbeat
	if err := httpx.Decode(w, r, &hb); err != nil {
		httpx.Error(w, err)
		return
	}
	n, err := l.heartbeat(r.Context(), r.PathValue("ref"), hb)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, n)
}
