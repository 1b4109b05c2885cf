package manager

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/store"
)

// A worker's warren-manager runs no Raft. It keeps the node-scoped replica
// (store.Replica) from a watch on one of the managers, reconnecting to
// another when that one goes, and serves the same local API from it: the
// node's agent and dns cannot tell the difference. Reads come from the
// replica, so a worker cut off from every manager keeps answering, across
// its own reboots; the writes the node's agent makes (heartbeats, task
// statuses) go to a manager, and fail while none is reachable (the agent
// keeps them and retries).
//
//	managers ──watch (worker scope, mTLS)──▶ replica (bbolt) ──▶ local hub ──▶ agent, dns
//	   ▲                                                                          │
//	   └────────────── heartbeats, task statuses (forwarded) ◀────────────────────┘

type workerState struct {
	replica   *store.Replica
	mu        sync.Mutex
	upstream  string    // the manager streamed from now, "" when offline
	since     time.Time // when the upstream connected or was lost
	alive     atomic.Int64
	connected atomic.Bool
}

func (m *Manager) isWorker() bool { return m.raft == nil }

// managerIDs lists the managers to stream from: those configured, then
// those the replica knows.
func (m *Manager) managerIDs() []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range m.cfg.Managers {
		if !seen[id] && id != m.nodeID {
			seen[id] = true
			out = append(out, id)
		}
	}
	var known []string
	m.state.View(func(v *store.View) error {
		for _, n := range v.Nodes() {
			if n.Spec.Role == api.RoleManager && !seen[n.ID] && n.ID != m.nodeID {
				known = append(known, n.ID)
			}
		}
		return nil
	})
	sort.Strings(known)
	return append(out, known...)
}

// runReplica keeps the replica streaming from some manager.
func (m *Manager) runReplica(ctx context.Context) {
	w := m.work
	backoff := 100 * time.Millisecond
	for i := 0; ctx.Err() == nil; i++ {
		w.alive.Store(time.Now().UnixNano())
		ids := m.managerIDs()
		if len(ids) == 0 {
			m.log.Warn("this worker knows no manager to follow")
			sleepCtx(ctx, 2*time.Second)
			continue
		}
		id := ids[i%len(ids)]
		err := m.follow(ctx, id)
		if ctx.Err() != nil {
			return
		}
		if w.connected.Swap(false) {
			w.mu.Lock()
			w.upstream, w.since = "", time.Now()
			w.mu.Unlock()
			m.log.Warn("lost the manager; serving the last-known state", "manager", id, "err", err)
		} else {
			m.log.Debug("cannot follow manager", "manager", id, "err", err)
		}
		if sleepCtx(ctx, backoff) != nil {
			return
		}
		backoff = min(2*backoff, 2*time.Second)
		if w.connected.Load() {
			backoff = 100 * time.Millisecond
		}
	}
}

// follow streams the worker scope from one manager until it fails.
func (m *Manager) follow(ctx context.Context, id string) error {
	w := m.work
	if m.cfg.Peers == nil {
		return fmt.Errorf("no way to reach managers (no node port)")
	}
	hc, base, err := m.cfg.Peers.Client(id)
	if err != nil {
		return err
	}
	index := w.replica.Index()
	url := base + "/v1/watch?worker=" + m.nodeID
	if index > 0 {
		url += "&index=" + strconv.FormatUint(index, 10)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
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
		m.log.Info("following manager", "manager", id, "from", index)
	}
	// A silent stream is a dead one: managers ping every 10 s.
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
		case <-time.After(3 * pingEvery):
			return fmt.Errorf("no word from manager %s for %s", id, 3*pingEvery)
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

// toManagers passes a node's own writes (heartbeats, task statuses) on: to
// the leader from a manager; from a worker to the manager it follows, or
// another if that one does not answer (a worker cut from one manager must
// not look down while others are reachable).
func (m *Manager) toManagers(h http.HandlerFunc) http.HandlerFunc {
	lead := m.toLeader(h)
	return func(w http.ResponseWriter, r *http.Request) {
		if !m.isWorker() {
			lead(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			writeError(w, bodyError(err))
			return
		}
		m.work.mu.Lock()
		up := m.work.upstream
		m.work.mu.Unlock()
		ids := m.managerIDs()
		if up != "" {
			ids = append([]string{up}, slices.DeleteFunc(ids, func(id string) bool { return id == up })...)
		}
		var lastErr error = errors.New("this worker knows no manager")
		for _, id := range ids {
			resp, err := m.sendTo(r, id, body)
			if err != nil {
				lastErr = err
				continue
			}
			defer resp.Body.Close()
			for k, vs := range resp.Header {
				w.Header()[k] = vs
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
			return
		}
		writeError(w, api.Errorf(api.CodeUnavailable, "no manager answered (%v): the node keeps running its tasks and reports again", lastErr))
	}
}

// sendTo sends a copy of r to one manager, with a deadline.
func (m *Manager) sendTo(r *http.Request, id string, body []byte) (*http.Response, error) {
	hc, base, err := m.cfg.Peers.Client(id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	req, err := http.NewRequestWithContext(ctx, r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = cancelOnClose{resp.Body, cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// workerStatus is the one-line state of a worker.
func (m *Manager) workerStatus() string {
	m.work.mu.Lock()
	up, since := m.work.upstream, m.work.since
	m.work.mu.Unlock()
	var tasks int
	m.state.View(func(v *store.View) error { tasks = len(v.Tasks(store.TaskFilter{NodeID: m.nodeID})); return nil })
	if up == "" {
		return fmt.Sprintf("worker, offline since %s, %d tasks here", since.Format(time.RFC3339), tasks)
	}
	return fmt.Sprintf("worker, following manager %s, %d tasks here", up, tasks)
}
