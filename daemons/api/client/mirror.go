package client

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// MirrorOptions configure a Mirror.
type MirrorOptions struct {
	// Follow is the watch followed; its Query's Kinds are set to services
	// and tasks, and nodes with KeepNode.
	Follow FollowOptions
	// KeepService and KeepTask return what of an object the mirror keeps
	// (a smaller copy; nil drops it, as if deleted). Nil functions keep
	// objects whole.
	KeepService func(*api.Service) *api.Service
	KeepTask    func(*api.Task) *api.Task
	// KeepNode, if set, makes the mirror follow the nodes too, keeping
	// what it returns of each (nil drops it). Without it, none.
	KeepNode func(*api.Node) *api.Node
	// Publish is called after each batch with the state the batch left,
	// and again after Republish. It runs under the mirror's lock: it must
	// not keep the maps, only build from them.
	Publish func(st *MirrorState)
}

// MirrorState is the services and tasks (and nodes, with KeepNode) a
// Mirror holds, by ID, whole at Index.
type MirrorState struct {
	Services map[string]*api.Service
	Tasks    map[string]*api.Task
	Nodes    map[string]*api.Node
	Index    uint64
}

// Mirror is a daemon's copy of the cluster's services and tasks, kept by
// one watch on the local manager (warren-dns's answer table and
// warren-ingress's routes are built from one):
//
//	manager ─watch─▶ Follower ─batch─▶ apply (maps) ─▶ Publish
//
// A full resend replaces the state whole, and Publish sees the state
// before a batch or after it, never in between.
type Mirror struct {
	o      MirrorOptions
	log    *slog.Logger
	follow *Follower

	synced   chan struct{}
	syncOnce sync.Once

	mu sync.Mutex
	st MirrorState
}

// NewMirror makes a mirror holding nothing until Run has synced.
func NewMirror(o MirrorOptions) *Mirror {
	o.Follow = o.Follow.withDefaults()
	o.Follow.Query.Kinds = []string{api.KindService, api.KindTask}
	if o.KeepNode != nil {
		o.Follow.Query.Kinds = append(o.Follow.Query.Kinds, api.KindNode)
	}
	m := &Mirror{o: o, log: o.Follow.Logger, synced: make(chan struct{}), st: emptyMirror()}
	m.follow = NewFollower(o.Follow)
	return m
}

func emptyMirror() MirrorState {
	return MirrorState{Services: map[string]*api.Service{}, Tasks: map[string]*api.Task{}, Nodes: map[string]*api.Node{}}
}

// Run follows the watch until ctx ends; see Follower.Run.
func (m *Mirror) Run(ctx context.Context) error { return m.follow.Run(ctx, m.Apply) }

// Synced is closed once the mirror holds the whole state once.
func (m *Mirror) Synced() <-chan struct{} { return m.synced }

// Status is the watch's.
func (m *Mirror) Status() FollowStatus { return m.follow.Status() }

// Alive returns an error if the watch loop showed no sign of life for
// maxAge: it is stuck. A loop waiting to reconnect to an absent manager
// is alive.
func (m *Mirror) Alive(maxAge time.Duration) error {
	if age := time.Since(m.Status().Alive); age > maxAge {
		return fmt.Errorf("the watch loop has been stuck for %s", age.Round(time.Second))
	}
	return nil
}

// Republish calls Publish again with the current state (something else
// it builds from has changed).
func (m *Mirror) Republish() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.o.Publish != nil {
		m.o.Publish(&m.st)
	}
}

// Apply takes one batch in, as Run does with each batch of the watch
// (tests feed batches with it).
func (m *Mirror) Apply(b api.WatchBatch) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b.Reset {
		m.st = emptyMirror()
	}
	for _, ev := range b.Events {
		m.applyEvent(ev)
	}
	m.st.Index = b.Index
	if m.o.Publish != nil {
		m.o.Publish(&m.st)
	}
	if b.Reset {
		m.syncOnce.Do(func() { close(m.synced) })
	}
	return nil
}

// applyEvent folds one change into the state.
func (m *Mirror) applyEvent(ev api.Event) {
	switch ev.Kind {
	case api.KindService:
		keep(m, ev, m.st.Services, m.o.KeepService, func(s *api.Service) string { return s.ID })
	case api.KindTask:
		keep(m, ev, m.st.Tasks, m.o.KeepTask, func(t *api.Task) string { return t.ID })
	case api.KindNode:
		if m.o.KeepNode != nil {
			keep(m, ev, m.st.Nodes, m.o.KeepNode, func(n *api.Node) string { return n.ID })
		}
	}
}

// keep applies a change of one object to its map: a delete, an object the
// keep function drops or one that does not decode removes it.
func keep[T any](m *Mirror, ev api.Event, objs map[string]*T, fn func(*T) *T, id func(*T) string) {
	if ev.Op == api.OpDelete {
		delete(objs, ev.ID)
		return
	}
	o := new(T)
	if err := json.Unmarshal(ev.Object, o); err != nil || id(o) == "" {
		m.log.Error("undecodable object in the watch; ignored", "kind", ev.Kind, "id", ev.ID, "index", ev.Index, "err", err)
		return
	}
	if fn != nil {
		o = fn(o)
	}
	if o == nil {
		delete(objs, ev.ID)
		return
	}
	objs[id(o)] = o
}
