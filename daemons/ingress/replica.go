package ingress

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// ReplicaConfig says where a Replica watches and what it publishes to.
type ReplicaConfig struct {
	// API is the node's own manager.
	API *client.Client
	// Table is the node and options the tables are built with (Index and
	// Unreachable are the replica's).
	Table TableOptions
	// OnTable is called with each new table, and the routes of every
	// service (the certificate manager's input), under the replica's lock.
	OnTable func(t *Table, routes []api.IngressRoute)
	// OnlyIngressNode: the tables route only while this node
	// (Table.NodeID) is an ingress node (api.Node.IsIngressNode), as the
	// same watch tells; otherwise OnTable gets an empty table and no
	// routes (every request gets 404, no certificate is asked for).
	OnlyIngressNode bool
	// MinBackoff and MaxBackoff tune the watch (zero: the follower's
	// defaults).
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Replica is warren-ingress's copy of the services that have routes and
// of their tasks: a client.Mirror of the local manager, each state it
// publishes built into a new Table (BuildTable) and handed to OnTable.
type Replica struct {
	cfg    ReplicaConfig
	mirror *client.Mirror

	mu          sync.Mutex // guards unreachable
	unreachable map[string]bool

	routing, published bool // under the mirror's lock (publish)
}

// NotIngressNode is what warren-ingress says on a node without the label.
const NotIngressNode = "this node is not an ingress node: it routes nothing (every request gets 404) until it is labelled"

// NewReplica makes a replica; Run starts it.
func NewReplica(cfg ReplicaConfig) *Replica {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Replica{cfg: cfg}
	mo := client.MirrorOptions{
		Follow: client.FollowOptions{Client: cfg.API, MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff, Logger: cfg.Logger},
		KeepService: func(s *api.Service) *api.Service {
			if len(s.Spec.Ingress) == 0 {
				return nil
			}
			return &api.Service{Meta: api.Meta{ID: s.ID}, Spec: api.ServiceSpec{Name: s.Spec.Name, Ingress: s.Spec.Ingress}}
		},
		KeepTask: keepTask,
		Publish:  r.publish,
	}
	if cfg.OnlyIngressNode {
		mo.KeepNode = func(n *api.Node) *api.Node {
			if n.ID != cfg.Table.NodeID {
				return nil
			}
			k := &api.Node{Meta: api.Meta{ID: n.ID}}
			if n.IsIngressNode() {
				k.Spec.Labels = map[string]string{api.LabelIngress: "true"}
			}
			return k
		}
	}
	r.mirror = client.NewMirror(mo)
	return r
}

// keepTask keeps what Serving and the table use of a task that could get
// traffic: its health check is kept only as "has one".
func keepTask(t *api.Task) *api.Task {
	if !t.RunningAddr().IsValid() {
		return nil
	}
	k := &api.Task{Meta: api.Meta{ID: t.ID}, ServiceID: t.ServiceID, ServiceName: t.ServiceName, Slot: t.Slot,
		NodeID: t.NodeID, DesiredState: t.DesiredState, Standby: t.Standby,
		Status: api.TaskStatus{State: t.Status.State, Addr: t.Status.Addr, Health: t.Status.Health}}
	if t.Spec.HealthCheck != nil {
		k.Spec.HealthCheck = &api.HealthCheck{}
	}
	return k
}

// Run watches the manager until ctx ends.
func (r *Replica) Run(ctx context.Context) error {
	err := r.mirror.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("ingress: watch: %w", err)
}

// Republish builds the table of the current state again and hands it to
// OnTable (something OnTable depends on changed).
func (r *Replica) Republish() { r.mirror.Republish() }

// Apply feeds a batch as if the watch brought it (tests).
func (r *Replica) Apply(b api.WatchBatch) error { return r.mirror.Apply(b) }

// Synced is closed once the replica holds the whole state once.
func (r *Replica) Synced() <-chan struct{} { return r.mirror.Synced() }

// Connected says whether the watch is open.
func (r *Replica) Connected() bool { return r.mirror.Status().Connected }

// Alive returns an error if the watch loop showed no sign of life for
// maxAge. A loop waiting to reconnect to an absent manager is alive.
func (r *Replica) Alive(maxAge time.Duration) error { return r.mirror.Alive(maxAge) }

// Status is a one-line state of the watch for systemd's STATUS=.
func (r *Replica) Status() string {
	st := r.mirror.Status()
	if st.Connected {
		return fmt.Sprintf("watching the manager at index %d", st.Index)
	}
	return fmt.Sprintf("manager unreachable for %s, routing from the state at index %d", time.Since(st.Since).Round(time.Second), st.Index)
}

// SetUnreachable says which nodes this node's mesh does not reach now;
// their tasks leave the table.
func (r *Replica) SetUnreachable(nodes []string) {
	r.mu.Lock()
	next := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		next[n] = true
	}
	changed := !maps.Equal(next, r.unreachable)
	r.unreachable = next
	r.mu.Unlock()
	if changed {
		r.mirror.Republish()
	}
}

func (r *Replica) publish(st *client.MirrorState) {
	services := slices.Collect(maps.Values(st.Services))
	slices.SortFunc(services, func(a, b *api.Service) int { return cmp.Compare(a.ID, b.ID) })
	tasks := slices.Collect(maps.Values(st.Tasks))
	var routes []api.IngressRoute
	for _, s := range services {
		routes = append(routes, s.Spec.Ingress...)
	}
	r.mu.Lock()
	o := r.cfg.Table
	o.Index, o.Unreachable = st.Index, r.unreachable
	r.mu.Unlock()
	if r.cfg.OnlyIngressNode {
		routing := st.Nodes[o.NodeID].IsIngressNode()
		switch {
		case r.published && routing && !r.routing:
			r.cfg.Logger.Info("this node is an ingress node now: routing", "label", api.LabelIngress+"=true")
		case r.published && !routing && r.routing:
			r.cfg.Logger.Warn(NotIngressNode)
		}
		r.routing, r.published = routing, true
		if !routing {
			services, tasks, routes = nil, nil, nil
		}
	}
	t := BuildTable(o, services, tasks)
	if r.cfg.OnTable != nil {
		r.cfg.OnTable(t, routes)
	}
}
