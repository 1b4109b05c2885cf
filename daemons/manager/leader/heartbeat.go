package leader

import (
	"sync"
	"time"
)

// heartbeats keeps, in the leader's memory only, when each node's agent
// last reported. Only a change of a node's state goes through Raft.
type heartbeats struct {
	mu   sync.Mutex
	last map[string]time.Time
	// since is when this manager started counting (its leadership began):
	// a node that has not reported since then is given the full timeout.
	since time.Time
}

func newHeartbeats() *heartbeats { return &heartbeats{last: map[string]time.Time{}} }

func (h *heartbeats) reset(now time.Time) {
	h.mu.Lock()
	h.last = map[string]time.Time{}
	h.since = now
	h.mu.Unlock()
}

func (h *heartbeats) record(node string, now time.Time) {
	h.mu.Lock()
	h.last[node] = now
	h.mu.Unlock()
}

// lastSeen returns the node's last heartbeat, or when counting began.
func (h *heartbeats) lastSeen(node string) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t, ok := h.last[node]; ok {
		return t
	}
	return h.since
}
