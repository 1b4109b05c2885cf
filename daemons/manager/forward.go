package manager

import (
	"context"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
)

// PeerDialer reaches other managers' APIs by node ID.
type PeerDialer interface {
	// Client returns an HTTP client and the base URL of a manager's API.
	Client(nodeID string) (*http.Client, string, error)
}

// forwardedHeader marks a request a manager passed on, so that it is never
// passed on again (a request reaching a non-leader twice fails instead of
// bouncing between managers during an election).
const forwardedHeader = "X-Warren-Forwarded-By"

func (m *Manager) isLeader() bool { return m.raft != nil && m.raft.r.State() == raft.Leader }

// IsLeader says whether this manager leads the cluster now.
func (m *Manager) IsLeader() bool { return m.isLeader() }

// leaderID is the current leader's node ID, or "".
func (m *Manager) leaderID() string {
	if m.raft == nil {
		return ""
	}
	_, id := m.raft.r.LeaderWithID()
	return string(id)
}

// toLeader runs h on the leader: on a follower, the request is passed to
// the leader and its answer passed back.
func (m *Manager) toLeader(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if m.isLeader() {
			h(&indexWriter{ResponseWriter: w, m: m}, r)
			return
		}
		if m.isWorker() {
			writeError(w, api.Errorf(api.CodeForbidden, "this node is a worker: change the cluster from a manager (warrenctl node ls shows them)"))
			return
		}
		leader := m.leaderID()
		switch {
		case leader == "":
			writeError(w, api.Errorf(api.CodeNotLeader, "the managers have no leader now (an election is on, or no quorum is reachable): retry in a moment; if it persists, check that a majority of managers runs"))
			return
		case r.Header.Get(forwardedHeader) != "":
			writeError(w, api.Errorf(api.CodeNotLeader, "this manager is not the leader any more (leadership moved during the request): retry"))
			return
		}
		m.forward(w, r, leader, true)
	}
}

// readToLeader sends consistent reads to the leader; other reads are
// served here, once this manager has applied the writes it forwarded.
func (m *Manager) readToLeader(h http.HandlerFunc) http.HandlerFunc {
	lead := m.toLeader(h)
	return func(w http.ResponseWriter, r *http.Request) {
		if queryBool(r, "consistent") {
			lead(w, r)
			return
		}
		m.awaitForwarded(r.Context())
		h(w, r)
	}
}

// readFloorWait bounds how long a read waits for this manager to apply its
// forwarded writes: the leader's next message tells it within
// 2 × CommitTimeout, plus a second of slack. Past it (a follower cut off
// from the leader since), the read is served from what it has.
func (m *Manager) readFloorWait() time.Duration {
	return time.Second + 2*commitTimeout(m.cfg)
}

// awaitForwarded makes a read on a follower see the writes it forwarded
// (read your writes). A forwarded write returns as soon as the leader
// answers; the follower learns that the entry is committed with the
// leader's next message, up to 2 × CommitTimeout later, and only a read
// that comes before then waits.
func (m *Manager) awaitForwarded(ctx context.Context) {
	floor := m.readFloor.Load()
	if floor == 0 || m.hub.Last() >= floor {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, m.readFloorWait())
	defer cancel()
	m.hub.WaitFor(ctx, floor)
}

// raiseReadFloor records the index the leader answered a forwarded write at.
func (m *Manager) raiseReadFloor(idx uint64) {
	for {
		cur := m.readFloor.Load()
		if idx <= cur || m.readFloor.CompareAndSwap(cur, idx) {
			return
		}
	}
}

// forward passes a request to another manager. toLeader marks it so the
// receiver never passes it on again; a worker's requests go to any
// manager, which passes them to its leader.
func (m *Manager) forward(w http.ResponseWriter, r *http.Request, leader string, toLeader bool) {
	if m.cfg.Peers == nil {
		writeError(w, api.Errorf(api.CodeNotLeader, "this manager is not the leader and cannot reach the others (no node port configured)"))
		return
	}
	hc, base, err := m.cfg.Peers.Client(leader)
	if err != nil {
		writeError(w, api.Errorf(api.CodeUnavailable, "cannot reach the leader %s: %v", leader, err))
		return
	}
	target, err := url.Parse(base)
	if err != nil {
		writeError(w, api.Errorf(api.CodeInternal, "leader address %q: %v", base, err))
		return
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			if toLeader {
				pr.Out.Header.Set(forwardedHeader, m.nodeID)
			}
		},
		Transport:     hc.Transport,
		FlushInterval: -1,
		// Read your writes: this manager's next reads wait until it has
		// applied what the leader had applied when it answered.
		ModifyResponse: func(resp *http.Response) error {
			// (A worker sees only its scope: it cannot wait for an index.)
			if idx, err := strconv.ParseUint(resp.Header.Get(indexHeader), 10, 64); err == nil && !m.isWorker() {
				m.raiseReadFloor(idx)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeError(w, api.Errorf(api.CodeUnavailable, "the leader %s did not answer (%v): retry in a moment", leader, err))
		},
	}
	p.ServeHTTP(w, r)
}

// indexHeader carries the leader's applied index on its answers.
const indexHeader = "X-Warren-Index"

// indexWriter stamps the applied index on the leader's answer.
type indexWriter struct {
	http.ResponseWriter
	m       *Manager
	stamped bool
}

func (w *indexWriter) stamp() {
	if !w.stamped {
		w.stamped = true
		w.Header().Set(indexHeader, strconv.FormatUint(w.m.hub.Last(), 10))
	}
}

func (w *indexWriter) WriteHeader(code int) {
	w.stamp()
	w.ResponseWriter.WriteHeader(code)
}

func (w *indexWriter) Write(b []byte) (int, error) {
	w.stamp()
	return w.ResponseWriter.Write(b)
}

func (w *indexWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
