package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/wake"
)

// reporter sends task statuses to the manager in batches. It keeps only the
// latest status per task, so its memory is bounded by the node's tasks, and
// keeps them until the manager has taken them (through outages too).
type reporter struct {
	api    *client.Client
	nodeID string
	log    *slog.Logger

	mu      sync.Mutex
	pending map[string]pendingStatus
	sending map[string]bool // in the report on its way now
	seq     uint64
	kick    chan struct{}
}

type pendingStatus struct {
	st  api.TaskStatus
	seq uint64 // which report this is; a newer one replaces it
}

func newReporter(c *client.Client, nodeID string, log *slog.Logger) *reporter {
	return &reporter{api: c, nodeID: nodeID, log: log, pending: map[string]pendingStatus{}, kick: make(chan struct{}, 1)}
}

// undelivered says whether a status of the task waits to reach a manager.
func (r *reporter) undelivered(taskID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.pending[taskID]
	return ok
}

// withdraw takes back the task's waiting status, unless it is on its way
// (a manager may be taking it now): it says whether it did.
func (r *reporter) withdraw(taskID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[taskID]; !ok || r.sending[taskID] {
		return false
	}
	delete(r.pending, taskID)
	return true
}

func (r *reporter) report(taskID string, st api.TaskStatus) {
	r.mu.Lock()
	r.seq++
	r.pending[taskID] = pendingStatus{st: st, seq: r.seq}
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run flushes whenever there is something to send; a failed send is retried
// with backoff.
func (r *reporter) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		}
		for {
			more, err := r.flush(ctx)
			if err == nil && !more {
				backoff = 100 * time.Millisecond
				break
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				r.log.Warn("report task status", "err", err)
				if wake.For(ctx, backoff) != nil {
					return
				}
				backoff = min(2*backoff, 5*time.Second)
			}
		}
	}
}

// flush sends what is pending; more says statuses arrived while it sent.
func (r *reporter) flush(ctx context.Context) (more bool, err error) {
	r.mu.Lock()
	if len(r.pending) == 0 {
		r.mu.Unlock()
		return false, nil
	}
	ups := make([]api.TaskStatusUpdate, 0, len(r.pending))
	sent := make(map[string]uint64, len(r.pending))
	r.sending = map[string]bool{}
	for id, p := range r.pending {
		ups = append(ups, api.TaskStatusUpdate{TaskID: id, Status: p.st})
		sent[id] = p.seq
		r.sending[id] = true
	}
	r.mu.Unlock()
	res, err := r.api.ReportTaskStatus(ctx, r.nodeID, ups)
	r.mu.Lock()
	r.sending = nil
	r.mu.Unlock()
	if err != nil {
		return false, err
	}
	for _, s := range res.Skipped {
		r.log.Debug("status not applied", "why", s)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, seq := range sent {
		if r.pending[id].seq == seq {
			delete(r.pending, id)
		}
	}
	return len(r.pending) > 0, nil
}
