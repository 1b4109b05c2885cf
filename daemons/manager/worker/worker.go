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
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/controlapi"
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

	mu        sync.Mutex
	upstream  string    // the manager streamed from now, "" when offline
	since     time.Time // when the upstream connected or was lost
	alive     atomic.Int64
	connected atomic.Bool
}

// New makes a worker's manager over its store.
func New(cfg Config, st *core.Store) *Worker {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	w := &Worker{cfg: cfg, log: cfg.Logger, store: st, replica: st.Replica(), since: time.Now()}
	w.alive.Store(time.Now().UnixNano())
	return w
}

// Run keeps the replica streaming from some manager until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for i := 0; ctx.Err() == nil; i++ {
		w.alive.Store(time.Now().UnixNano())
		ids := w.cfg.Managers("")
		if len(ids) == 0 {
			w.log.Warn("this worker knows no manager to follow")
			core.Sleep(ctx, 2*time.Second)
			continue
		}
		id := ids[i%len(ids)]
		err := w.follow(ctx, id)
		if ctx.Err() != nil {
			return
		}
		if w.connected.Swap(false) {
			w.mu.Lock()
			w.upstream, w.since = "", time.Now()
			w.mu.Unlock()
			w.log.Warn("lost the manager; serving the last-known state", "manager", id, "err", err)
		} else {
			w.log.Debug("cannot follow manager", "manager", id, "err", err)
		}
		if core.Sleep(ctx, backoff) != nil {
			return
		}
		backoff = min(2*backoff, 2*time.Second)
		if w.connected.Load() {
			backoff = 100 * time.Millisecond
		}
	}
}

// follow streams the worker scope from one manager until it fails.
func (w *Worker) follow(ctx context.Context, id string) error {
	index := w.replica.Index()
	path := "/v1/watch?worker=" + w.cfg.NodeID
	if index > 0 {
		path += "&index=" + strconv.FormatUint(index, 10)
	}
	resp, err := w.cfg.Peers.Send(ctx, id, peer.Request{Method: http.MethodGet, Path: path})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("manager %s: %s", id, resp.Status)
	}
	w.mu.Lock()
	w.upstream, w.since = id, time.Now()
	w.mu.Unlock()
	if !w.connected.Swap(true) {
		w.log.Info("following manager", "manager", id, "from", index)
	}
	// A silent stream is a dead one: managers ping every PingEvery.
	lines := make(chan []byte)
	errc := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case lines <- append([]byte(nil), sc.Bytes()...):
			case <-ctx.Done():
				return
			}
		}
		errc <- fmt.Errorf("stream from %s ended: %v", id, sc.Err())
	}()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return err
		case <-time.After(3 * controlapi.PingEvery):
			return fmt.Errorf("no word from manager %s for %s", id, 3*controlapi.PingEvery)
		case line := <-lines:
			w.alive.Store(time.Now().UnixNano())
			var ev api.Event
			if err := json.Unmarshal(line, &ev); err != nil {
				return fmt.Errorf("bad line from %s: %w", id, err)
			}
			if err := w.replica.Apply(ev); err != nil {
				return err
			}
		}
	}
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
	w.mu.Lock()
	up := w.upstream
	w.mu.Unlock()
	var lastErr error = fmt.Errorf("this worker knows no manager")
	for _, id := range w.cfg.Managers(up) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		resp, err := w.cfg.Peers.Send(ctx, id, peer.Request{Method: r.Method, Path: r.URL.RequestURI(),
			Body: body, ContentType: r.Header.Get("Content-Type")})
		if err != nil {
			cancel()
			lastErr = err
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

// Alive says whether the replica loop shows signs of life.
func (w *Worker) Alive() error {
	if since := time.Since(time.Unix(0, w.alive.Load())); since > 3*controlapi.PingEvery+10*time.Second {
		return fmt.Errorf("the replica loop has shown no sign of life for %s", since.Round(time.Second))
	}
	return nil
}

// Status is the one-line state of a worker.
func (w *Worker) Status() string {
	w.mu.Lock()
	up, since := w.upstream, w.since
	w.mu.Unlock()
	var tasks int
	w.store.View(func(v *store.View) error { tasks = len(v.Tasks(store.TaskFilter{NodeID: w.cfg.NodeID})); return nil })
	if up == "" {
		return fmt.Sprintf("worker, offline since %s, %d tasks here", since.Format(time.RFC3339), tasks)
	}
	return fmt.Sprintf("worker, following manager %s, %d tasks here", up, tasks)
}
