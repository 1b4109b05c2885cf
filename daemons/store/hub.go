package store

import (
	"context"
	"errors"
	"strconv"
	"sync"

	"github.com/warren-edge/warren/daemons/api"
)

// ErrTooOld means a watcher asked for changes the hub no longer holds: it
// must resync from a full read of the state.
var ErrTooOld = errors.New("store: watch index is older than the hub's history")

// Change is one object changed at one index, ready to send: Line is the
// encoded api.Event with a trailing newline, made once and shared by every
// watcher.
type Change struct {
	Index     uint64
	Op        string // api.OpCreate, OpUpdate or OpDelete
	Kind      string
	ID        string
	NodeID    string // for tasks: the node they are on
	ServiceID string // for tasks: their service
	Line      []byte
	// Object is the object's JSON after the change (before it, for a
	// delete): a slice of Line.
	Object []byte
	// Public is the line with the object's public projection (api.Public*),
	// sent to workers for objects that are not theirs; nil when it is the
	// same as Line.
	Public []byte
}

// Filter selects changes for a watcher. Empty fields match everything.
type Filter struct {
	Kinds     map[string]bool
	NodeID    string // tasks on this node only
	ServiceID string // tasks of this service only
	// Worker, when set, is a worker node's ID: the watcher gets every
	// object, in full only if it is its own (its tasks, its node), as the
	// public projection otherwise. NodeID is then ignored.
	Worker string
}

// LineFor returns the line this watcher may see of a matching change.
func (f *Filter) LineFor(c *Change) []byte {
	if f.Worker == "" || c.Public == nil {
		return c.Line
	}
	switch {
	case c.Kind == api.KindTask && c.NodeID == f.Worker:
		return c.Line
	case c.Kind == api.KindNode && c.ID == f.Worker:
		return c.Line
	}
	return c.Public
}

// Match says whether c passes the filter.
func (f *Filter) Match(c *Change) bool {
	if len(f.Kinds) > 0 && !f.Kinds[c.Kind] {
		return false
	}
	if f.Worker != "" && (c.Kind == api.KindSecret || c.Kind == api.KindConfig) {
		return false // a worker knows its tasks' references, nothing more
	}
	if c.Kind == api.KindVolume && f.Worker != "" {
		return false // a worker's replica keeps no volumes
	}
	if c.Kind == api.KindTask && f.Worker == "" {
		if f.NodeID != "" && c.NodeID != f.NodeID {
			return false
		}
		if f.ServiceID != "" && c.ServiceID != f.ServiceID {
			return false
		}
	}
	return true
}

// Hub keeps the most recent changes in a bounded ring and wakes watchers.
// Memory is bounded by the ring, never by the number or speed of watchers:
// each watcher only holds a cursor (an index).
type Hub struct {
	mu       sync.Mutex
	ring     []Change
	head     int // position of the oldest change
	n        int
	bytes    int
	maxN     int
	maxBytes int
	// floor: every change with an index above floor is in the ring.
	floor uint64
	// last is the newest applied index, whether or not it changed anything.
	last    uint64
	changed chan struct{}
}

// NewHub makes a hub holding at most maxN changes and about maxBytes of
// encoded lines, starting at index.
func NewHub(maxN, maxBytes int, index uint64) *Hub {
	return &Hub{ring: make([]Change, maxN), maxN: maxN, maxBytes: maxBytes,
		floor: index, last: index, changed: make(chan struct{})}
}

// Reset forgets all history: every watcher must resync (after a snapshot
// restore, for instance).
func (h *Hub) Reset(index uint64) {
	h.mu.Lock()
	for i := range h.ring {
		h.ring[i] = Change{}
	}
	h.head, h.n, h.bytes = 0, 0, 0
	h.floor, h.last = index, index
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// publish appends the changes of one applied batch, all at or below index,
// and wakes every watcher.
func (h *Hub) publish(changes []Change, index uint64) {
	h.mu.Lock()
	for _, c := range changes {
		for h.n > 0 && (h.n == h.maxN || h.bytes+len(c.Line) > h.maxBytes) {
			old := &h.ring[h.head]
			h.floor = max(h.floor, old.Index)
			h.bytes -= len(old.Line)
			*old = Change{}
			h.head = (h.head + 1) % h.maxN
			h.n--
		}
		h.ring[(h.head+h.n)%h.maxN] = c
		h.n++
		h.bytes += len(c.Line)
	}
	h.last = max(h.last, index)
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// Last returns the newest index the hub has seen.
func (h *Hub) Last() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// Read appends to buf the changes after index that pass f, at most max of
// them, and returns the index the result is complete up to: the index of
// the last change returned if it stopped at max, else the hub's newest
// index. The changes of one index are never split, so max may be exceeded
// to finish one. It returns ErrTooOld if changes after index were dropped.
func (h *Hub) Read(after uint64, f *Filter, max int, buf []Change) ([]Change, uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if after < h.floor {
		return buf, 0, ErrTooOld
	}
	// Binary search the first change with Index > after.
	lo, hi := 0, h.n
	for lo < hi {
		mid := (lo + hi) / 2
		if h.ring[(h.head+mid)%h.maxN].Index <= after {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	upTo := h.last
	for i := lo; i < h.n; i++ {
		c := &h.ring[(h.head+i)%h.maxN]
		if !f.Match(c) {
			continue
		}
		if len(buf) >= max && buf[len(buf)-1].Index != c.Index {
			// Stop on an index boundary so no index is half delivered.
			upTo = buf[len(buf)-1].Index
			break
		}
		buf = append(buf, *c)
	}
	return buf, upTo, nil
}

// Wait returns a channel that is closed at the next publish or reset.
func (h *Hub) Wait() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// WaitFor blocks until the hub has seen index, or ctx ends.
func (h *Hub) WaitFor(ctx context.Context, index uint64) error {
	for {
		h.mu.Lock()
		last, ch := h.last, h.changed
		h.mu.Unlock()
		if last >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// encodeChange builds the shared NDJSON line of a change (an api.Event)
// without re-encoding the object, which is stored JSON already. IDs are
// base36 and ops and kinds are constants, so nothing needs escaping.
func encodeChange(index uint64, op, kind, id string, obj []byte) []byte {
	b := make([]byte, 0, 64+len(id)+len(obj))
	b = append(b, `{"index":`...)
	b = strconv.AppendUint(b, index, 10)
	b = append(b, `,"op":"`...)
	b = append(b, op...)
	b = append(b, `","kind":"`...)
	b = append(b, kind...)
	b = append(b, `","id":`...)
	b = strconv.AppendQuote(b, id)
	if obj != nil {
		b = append(b, `,"object":`...)
		b = append(b, obj...)
	}
	return append(b, "}\n"...)
}
