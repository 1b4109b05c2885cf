// Package worker is a worker node's manager: no Raft, a node-scoped
// replica of the cluster (store.Replica) streamed from a manager's watch
// over the node port, reconnecting to another manager when that one goes,
// and the same local API served from it: the node's agent and dns cannot
// tell the difference. Reads come from the replica, so a worker cut off
// from every manager keeps answering, across its own reboots; the writes
// the node's agent makes (heartbeats, task statuses) are relayed to a
// manager, as this node: the manager holds them to the node's own tasks.
//
//	managers ──watch (worker scope, mTLS)──▶ replica (bbolt) ──▶ local hub ──▶ agent, dns
//	   ▲                                                                          │
//	   └────────────── heartbeats, task statuses (relayed) ◀──────────────────────┘
package worker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/manager/peer"
	"github.com/warren-edge/warren/daemons/store"
)

// Config is what a worker's manager is made of.
type Config struct {
	NodeID string
	// Managers lists the managers to follow and send to, the one given
	// first if it is among them (membership.ManagerIDs).
	Managers func(first string) []string
	Peers    *peer.Client
	Logger   *slog.Logger
}

// Worker keeps the replica and relays the node's writes.
type Worker struct {
	cfg     Config
	log     *slog.Logger
	store   *core.Store
	replica *store.Replica
	follow  *client.Follower

	mu     sync.Mutex
	picked string // the manager the follower's session streams from
	turn   int
	// failed is when a relay to each manager last failed: those are tried
	// last for a while, so a report does not wait out the dial timeout of
	// a manager that is cut off every time.
	failed map[string]time.Time
}

// relayPenalty is how long a manager a relay failed to reach is tried
// last.
const relayPenalty = 15 * time.Second

// New makes a worker's manager over its store.
func New(cfg Config, st *core.Store) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Worker{cfg: cfg, log: cfg.Logger, store: st, replica: st.Replica()}
	// The node's scope, from one manager after another: the watch
	// follower resumes after the last whole index the replica holds.
	w.follow = client.NewFollower(client.FollowOptions{
		Pick:   w.pick,
		Query:  client.WatchQuery{Index: w.replica.Index(), Worker: cfg.NodeID},
		Logger: cfg.Logger.With("watch", "worker replica"),
	})
	return w
}

// pick chooses the manager the next session streams from: the managers in
// turn.
func (w *Worker) pick() (*client.Client, error) {
	ids := w.cfg.Managers("")
	if len(ids) == 0 {
		return nil, fmt.Errorf("this worker knows no manager to follow")
	}
	w.mu.Lock()
	id := ids[w.turn%len(ids)]
	w.turn++
	w.picked = id
	w.mu.Unlock()
	if w.cfg.Peers == nil || w.cfg.Peers.Dialer == nil {
		return nil, peer.ErrNoPeers
	}
	hc, base, err := w.cfg.Peers.Dialer.Client(id)
	if err != nil {
		return nil, fmt.Errorf("manager %s: %w", id, err)
	}
	return client.NewHTTP(base, hc)
}

// Run keeps the replica streaming from some manager until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	w.follow.Run(ctx, w.replica.ApplyBatch)
}

// upstream is the manager streamed from now, "" when offline.
func (w *Worker) upstream() (string, time.Time) {
	st := w.follow.Status()
	if !st.Connected {
		return "", st.Since
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.picked, st.Since
}

// Relay passes the node's own writes (heartbeats, task statuses) to the
// manager it follows, or another if that one does not answer (a worker
// cut from one manager must not look down while others are reachable).
// The manager sees this node as the caller.
func (w *Worker) Relay(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, httpx.MaxBody))
	if err != nil {
		httpx.Error(rw, httpx.BodyError(err))
		return
	}
	up, _ := w.upstream()
	var lastErr error = fmt.Errorf("this worker knows no manager")
	for _, id := range w.relayOrder(up) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		resp, err := w.cfg.Peers.Send(ctx, id, peer.Request{Method: r.Method, Path: r.URL.RequestURI(),
			Body: body, ContentType: r.Header.Get("Content-Type")})
		if err != nil {
			cancel()
			lastErr = err
			w.mu.Lock()
			if w.failed == nil {
				w.failed = map[string]time.Time{}
			}
			w.failed[id] = time.Now()
			w.mu.Unlock()
			continue
		}
		for k, vs := range resp.Header {
			rw.Header()[k] = vs
		}
		rw.WriteHeader(resp.StatusCode)
		io.Copy(rw, resp.Body)
		resp.Body.Close()
		cancel()
		return
	}
	httpx.Error(rw, api.Errorf(api.CodeUnavailable, "no manager answered (%v): the node keeps running its tasks and reports again", lastErr))
}

// relayOrder is the managers to relay to, in turn: the one followed
// first, then the others, those that failed lately last.
func (w *Worker) relayOrder(up string) []string {
	ids := w.cfg.Managers(up)
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	recent := func(id string) bool { t, ok := w.failed[id]; return ok && now.Sub(t) < relayPenalty }
	slices.SortStableFunc(ids, func(a, b string) int {
		switch ra, rb := recent(a), recent(b); {
		case ra == rb:
			return 0
		case ra:
			return 1
		}
		return -1
	})
	return ids
}

// Alive says whether the replica loop shows signs of life (a loop waiting
// to reconnect is alive; one stuck is not).
func (w *Worker) Alive() error {
	if since := time.Since(w.follow.Status().Alive); since > 4*api.WatchPing+10*time.Second {
		return fmt.Errorf("the replica loop has shown no sign of life for %s", since.Round(time.Second))
	}
	return nil
}

// Status is the one-line state of a worker.
func (w *Worker) Status() string {
	up, since := w.upstream()
	var tasks int
	w.store.View(func(v *store.View) error { tasks = len(v.Tasks(store.TaskFilter{NodeID: w.cfg.NodeID})); return nil })
	if up == "" {
		return fmt.Sprintf("worker, offline since %s, %d tasks here", since.Format(time.RFC3339), tasks)
	}
	return fmt.Sprintf("worker, following manager %s, %d tasks here", up, tasks)
}
