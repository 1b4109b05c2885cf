package manager

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/authz"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/manager/peer"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// The router: every request is authenticated (who is calling: the socket
// or the certificate, and for a request a manager passes on, the caller
// it names), authorized against its route's rule, then run where its
// route runs: here, on the leader, or on the node that runs its task.
//
//	request ─▶ authenticate ─▶ route ─▶ rule.Check(caller) ─▶ [worker's node port: fence] ─▶ place ─▶ handler
//	                                                                     ├─▶ leader (same caller, checked again there)
//	                                                                     └─▶ the task's node (same caller, checked again there)

// authenticator says who is calling.
type authenticator func(r *http.Request) (authz.Caller, error)

type authnKey struct{}

// nodePortKey marks a request that came over the node port (or the
// in-memory network of tests), not a local socket.
type nodePortKey struct{}

func fromNodePort(r *http.Request) bool { return r.Context().Value(nodePortKey{}) != nil }

// routes builds the mux of the route table.
func (m *Manager) routes() *http.ServeMux {
	mux := http.NewServeMux()
	for _, rt := range m.routeTable() {
		run := m.place(rt)
		path := rt.pattern[strings.IndexByte(rt.pattern, ' ')+1:]
		mux.HandleFunc(rt.pattern, m.metrics.instrument(path, func(w http.ResponseWriter, r *http.Request) {
			authn, _ := r.Context().Value(authnKey{}).(authenticator)
			if authn == nil {
				httpx.Error(w, api.Errorf(api.CodeInternal, "no way to tell who is calling"))
				return
			}
			c, err := authn(r)
			if err != nil {
				httpx.Error(w, err)
				return
			}
			if err := rt.rule.Check(c, r); err != nil {
				httpx.Error(w, err)
				return
			}
			if m.work != nil && fromNodePort(r) && !workerPortServes(rt, c) {
				httpx.Error(w, api.Errorf(api.CodeForbidden, "%s may not call %s %s on the node port of worker %s: a worker's node port serves only the task routes (logs, exec) that a manager passes on for a person; call a manager", c, r.Method, r.URL.Path, m.nodeID))
				return
			}
			if m.lockedRefuses(rt, c, r) {
				httpx.Error(w, api.Errorf(api.CodeUnavailable, "%s", errLocked))
				return
			}
			if rt.rule.Audit && c.Via == "" {
				if !m.audit(w, r, c, rt.pattern) {
					return
				}
			}
			run(&hijackWriter{ResponseWriter: w}, r.WithContext(authz.WithCaller(r.Context(), c)))
		}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		httpx.Error(w, api.Errorf(api.CodeNotFound, "no endpoint %s %s: the API lives under /v1 (services, tasks, nodes, watch, info)", r.Method, r.URL.Path))
	})
	return mux
}

// workerPortServes says whether a worker's node port serves rt to c: only
// the routes placed on a task's node, and only when a manager passes on
// the request of a person (a local caller of a manager, or an operator),
// which it vouches for. Nothing else reaches a worker over the network:
// not other nodes for themselves, not operators' certificates directly,
// not joins.
func workerPortServes(rt route, c authz.Caller) bool {
	switch rt.place {
	case onTaskNode:
		return c.Via != "" && (c.Kind == authz.Local || c.Kind == authz.Operator)
	case onNode: // another node, for itself: an image's blobs
		return c.Via == "" && (c.Kind == authz.Worker || c.Kind == authz.Manager)
	}
	return false
}

// audit logs a call of an audited route where its caller enters the
// cluster: who, the route, and the request's body (an exec's command).
// It says false when it could not read the body (and answered).
func (m *Manager) audit(w http.ResponseWriter, r *http.Request, c authz.Caller, pattern string) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody))
	if err != nil {
		httpx.Error(w, httpx.BodyError(err))
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	m.log.Info("audit", "caller", c.String(), "route", pattern, "ref", r.PathValue("ref"), "request", string(body))
	if pattern == execRoute {
		m.ctl.RecordExec(r, c, body)
	}
	return true
}

// hijackWriter clears the connection's deadlines when a handler takes it
// over (an exec session, spliced for as long as it lasts): the node port
// bounds how long reading a request may take, and that bound must not
// end a session.
type hijackWriter struct{ http.ResponseWriter }

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		conn.SetDeadline(time.Time{})
	}
	return conn, brw, err
}

func (w *hijackWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *hijackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (m *Manager) withAuthn(a authenticator) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authnKey{}, a)))
	})
}

// onNodePort marks h's requests as come over the node port.
func onNodePort(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), nodePortKey{}, true)))
	})
}

// Handler serves the API to the node's local socket: its callers are the
// node's operators (root and group warren), with the admin role.
func (m *Manager) Handler() http.Handler {
	local := authz.Caller{Kind: authz.Local, Role: authz.RoleAdmin, NodeID: m.nodeID}
	return m.withAuthn(func(*http.Request) (authz.Caller, error) { return local, nil })
}

// ReadOnlyHandler serves the API to a local socket whose callers may only
// read (the viewer role): warren-dns uses it.
func (m *Manager) ReadOnlyHandler() http.Handler {
	viewer := authz.Caller{Kind: authz.Local, Role: authz.RoleViewer, NodeID: m.nodeID}
	return m.withAuthn(func(*http.Request) (authz.Caller, error) { return viewer, nil })
}

// IngressHandler serves the API to the local socket of warren-ingress:
// its callers read as viewers do, and use the ingress store, locks and
// route secrets of this node (authz.RoleIngress).
func (m *Manager) IngressHandler() http.Handler {
	ingress := authz.Caller{Kind: authz.Local, Role: authz.RoleIngress, NodeID: m.nodeID}
	return m.withAuthn(func(*http.Request) (authz.Caller, error) { return ingress, nil })
}

// nodePortHandler serves the API on the node port: callers are who their
// certificates say, as the cluster's records have them now.
func (m *Manager) nodePortHandler() http.Handler { return onNodePort(m.withAuthn(m.mem.Authenticate)) }

// PeerHandler serves the API as the node port does, to a transport that
// tells who the caller is itself (tests: an in-memory network between
// managers): identity returns the verified identity of r's sender.
func (m *Manager) PeerHandler(identity func(r *http.Request) (pki.Identity, bool)) http.Handler {
	return onNodePort(m.withAuthn(func(r *http.Request) (authz.Caller, error) {
		id, ok := identity(r)
		return m.mem.AuthenticateAs(r, id, ok)
	}))
}

// place wraps a route's handler with where it runs.
func (m *Manager) place(rt route) http.HandlerFunc {
	switch rt.place {
	case onLeader:
		return m.onLeader(rt.h)
	case readLeader:
		lead := m.onLeader(rt.h)
		return func(w http.ResponseWriter, r *http.Request) {
			if httpx.Bool(r, "consistent") {
				lead(w, r)
				return
			}
			m.awaitForwarded(r.Context())
			rt.h(w, r)
		}
	case nodeWrite:
		if m.work != nil {
			return relayOwn(m.work.Relay)
		}
		return m.onLeader(rt.h)
	case onTaskNode:
		return m.onTaskNode(rt.h)
	case onNode:
		return m.onNode(rt.h)
	}
	return rt.h
}

// onTaskNode runs h on the node that runs the task {ref} names (by ID or
// ID prefix, as the task handlers resolve it): here when that is this
// node, whose agent holds the task's container; else the request goes on
// to that node's manager over the node port (its node record's address),
// with its caller, where the route's rule is checked again and h runs
// against that node's agent. The answer streams back as it comes, an
// exec session's upgraded connection included.
//
// A request passed on already is never passed on again (the task moved
// meanwhile: retry), and a worker's manager passes nothing on: it may not
// vouch for its callers, so it serves its own node's tasks only.
func (m *Manager) onTaskNode(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ref := r.PathValue("ref")
		var t *api.Task
		var node *api.Node
		var err error
		m.store.View(func(v *store.View) error {
			if t, err = v.Task(ref); err == nil {
				node, _ = v.NodeByID(t.NodeID)
			}
			return nil
		})
		if err != nil {
			httpx.Error(w, err)
			return
		}
		name := t.NodeID
		if node != nil && node.Description.Hostname != "" {
			name = fmt.Sprintf("%s (%s)", node.Description.Hostname, t.NodeID)
		}
		switch {
		case t.NodeID == "":
			httpx.Error(w, api.Errorf(api.CodeConflict, "task %s is on no node yet (state %s): it has no container to read or run in", t.LogName(), t.Status.State))
		case t.NodeID == m.nodeID:
			h(w, r)
		case m.work != nil:
			httpx.Error(w, api.Errorf(api.CodeForbidden, "task %s runs on node %s, and this node is a worker: it serves only its own tasks; ask a manager (warrenctl on a manager, or --host with an operator certificate)", t.LogName(), name))
		case r.Header.Get(forwardedHeader) != "":
			httpx.Error(w, api.Errorf(api.CodeUnavailable, "task %s runs on node %s, not on this node %s, as this node's state has it (it moved meanwhile?): retry", t.LogName(), name, m.nodeID))
		default:
			// The task by its ID: the next node resolves the same task
			// whatever prefix was given.
			m.passOn(w, r, "/"+ref+"/", "/"+t.ID+"/", t.NodeID, authz.CallerOf(r.Context()),
				fmt.Sprintf("node %s, which runs task %s,", name, t.LogName()))
		}
	}
}

// onNode runs h on node {ref} (its ID or hostname): here when that is
// this node, else the request goes on to that node's manager over the node
// port as this node (the caller's identity is not passed on: the next node
// sees a node asking for itself, which is what the route allows), where
// the rule is checked again. A request passed on already is not passed on
// again.
func (m *Manager) onNode(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ref := r.PathValue("ref")
		var n *api.Node
		var err error
		m.store.View(func(v *store.View) error { n, err = v.Node(ref); return nil })
		switch {
		case err != nil:
			httpx.Error(w, err)
		case n.ID == m.nodeID:
			h(w, r)
		case r.Header.Get(forwardedHeader) != "":
			httpx.Error(w, api.Errorf(api.CodeUnavailable, "node %s is not this node %s: a request is passed on once", n.ID, m.nodeID))
		default:
			m.passOn(w, r, "/v1/nodes/"+ref+"/", "/v1/nodes/"+n.ID+"/", n.ID, authz.Caller{},
				fmt.Sprintf("node %s (%s)", n.Description.Hostname, n.ID))
		}
	}
}

// passOn sends r on to node id's manager over the node port, once: the
// first from in its path becomes to (the object by its ID, which the next
// node resolves the same whatever the caller wrote), it is marked as passed
// on, and as is its caller (the anonymous caller: this node itself). When
// the node cannot be reached, the answer says who: "<who> cannot be
// reached".
func (m *Manager) passOn(w http.ResponseWriter, r *http.Request, from, to, id string, as authz.Caller, who string) {
	fwd := r.Clone(r.Context())
	fwd.URL.Path = strings.Replace(r.URL.Path, from, to, 1)
	fwd.URL.RawPath = ""
	m.peers.Proxy(w, fwd, id, as, http.Header{forwardedHeader: {m.nodeID}},
		func(w http.ResponseWriter, err error) {
			httpx.Error(w, api.Errorf(api.CodeUnavailable, "%s cannot be reached: %v", who, err))
		})
}

// relayOwn lets a worker's manager relay only its own node's reports
// (from its local socket): it relays them as the node, so relaying anyone
// else's would lend them its identity.
func relayOwn(relay http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c := authz.CallerOf(r.Context()); c.Kind != authz.Local {
			httpx.Error(w, api.Errorf(api.CodeForbidden, "%s may not send this node's reports: a worker relays only what its own agent reports", c))
			return
		}
		relay(w, r)
	}
}

// Headers between managers.
const (
	// forwardedHeader marks a request a manager passed on to the one it
	// took for the leader: that one never passes it on again (during an
	// election it answers "not the leader any more", and the sender finds
	// the new leader).
	forwardedHeader = peer.ForwardedHeader
	// indexHeader carries the leader's applied index on its answers.
	indexHeader = "X-Warren-Index"
)

// leaderWait bounds how long a write waits for an election to end.
const leaderWait = 5 * time.Second

// leaderWaitFor is how long r may wait for a leader: leaderWait, or less
// if its caller gives up sooner (api.TimeoutHeader), leaving the answer
// time to reach it.
func leaderWaitFor(r *http.Request) time.Duration {
	d, err := time.ParseDuration(r.Header.Get(api.TimeoutHeader))
	if err != nil || d <= 0 {
		return leaderWait
	}
	return max(min(leaderWait, d*9/10-50*time.Millisecond), 0)
}

// errLocked is what a locked manager answers a write.
const errLocked = "this manager is locked (autolock): it takes no change until an admin unlocks it on this node with warrenctl unlock (warrenctl unlock-key on an unlocked manager shows the key); meanwhile it serves reads from its copy of the state, passes its node's own reports on, and keeps its Raft seat"

// lockedRefuses says whether a locked manager refuses r: every write but
// the unlock itself, a node's own reports (heartbeats, task statuses:
// nothing sealed) and other managers' calls.
func (m *Manager) lockedRefuses(rt route, c authz.Caller, r *http.Request) bool {
	if m.mem == nil || !m.mem.Autolocked() || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	return rt.pattern != "POST /v1/unlock" && rt.place != nodeWrite && c.Kind != authz.Manager && c.Kind != authz.Worker
}

var (
	errNoLeader  = "the managers have no leader now (an election is on, or no quorum is reachable): retry in a moment; if it persists, check that a majority of managers runs"
	errNotLeader = "this manager is not the leader any more (leadership moved during the request): retry"
)

// onLeader runs h on the leader. A follower passes the request on to the
// leader, with its caller and a request ID (so that the write applies once
// however often it is sent), waiting for an election to end if there is
// no leader; if the leader stops answering and another is elected, the
// request goes to the new one. A manager whose disk is full (its Raft
// stopped) refuses the request with the disk-full error.
func (m *Manager) onLeader(h http.HandlerFunc) http.HandlerFunc {
	if m.work != nil {
		return func(w http.ResponseWriter, r *http.Request) {
			httpx.Error(w, api.Errorf(api.CodeForbidden, "this node is a worker: change the cluster from a manager (warrenctl node ls shows them)"))
		}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if err := m.core.DiskFull(); err != nil {
			// Raft is stopped here: no leader to pass the write on to.
			httpx.Error(w, err)
			return
		}
		reqID := r.Header.Get(api.RequestIDHeader)
		switch {
		case reqID == "":
			reqID = api.NewRequestID()
		case !api.ValidRequestID(reqID):
			httpx.Error(w, api.Errorf(api.CodeInvalid, "%s %q: give 1 to 48 letters, digits, '-', '_' or '.'", api.RequestIDHeader, reqID))
			return
		}
		wait, cancel := context.WithTimeout(r.Context(), leaderWaitFor(r))
		defer cancel()
		var body []byte
		for {
			if m.core.IsLeader() {
				if body != nil {
					r.Body = io.NopCloser(strings.NewReader(string(body)))
				}
				ctx := core.WithRequestID(r.Context(), reqID)
				h(&indexWriter{ResponseWriter: w, m: m}, r.WithContext(ctx))
				return
			}
			if r.Header.Get(forwardedHeader) != "" {
				httpx.Error(w, api.Errorf(api.CodeNotLeader, "%s", errNotLeader))
				return
			}
			leader, err := m.core.WaitLeader(wait)
			if err != nil {
				httpx.Error(w, api.Errorf(api.CodeNotLeader, "%s", errNoLeader))
				return
			}
			if leader == m.nodeID {
				core.Sleep(wait, 5*time.Millisecond) // becoming leader: IsLeader follows
				continue
			}
			if body == nil {
				if body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, httpx.MaxBody)); err != nil {
					httpx.Error(w, httpx.BodyError(err))
					return
				}
			}
			if m.forward(w, r, wait, body, reqID, leader) {
				return
			}
		}
	}
}

// forward passes the request on to the leader and its answer back. It
// returns false, having written nothing, when the request should go to
// another leader: the one it went to stopped answering and another was
// elected, or it answered it no longer leads.
func (m *Manager) forward(w http.ResponseWriter, r *http.Request, wait context.Context, body []byte, reqID, leader string) bool {
	attempt, cancel := context.WithCancel(r.Context())
	defer cancel()
	// Give up on this leader if another is elected while it has not
	// answered.
	var mu sync.Mutex
	answered, moved := false, false
	go func() {
		if m.waitLeaderChange(attempt, leader) {
			mu.Lock()
			if !answered {
				moved = true
				cancel()
			}
			mu.Unlock()
		}
	}()
	req := peer.Request{Method: r.Method, Path: r.URL.RequestURI(), Body: body, ContentType: r.Header.Get("Content-Type"),
		As: authz.CallerOf(r.Context()), Header: http.Header{forwardedHeader: {m.nodeID}, api.RequestIDHeader: {reqID}}}
	if len(body) == 0 {
		req.Body = nil
	}
	resp, err := m.peers.Send(attempt, leader, req)
	mu.Lock()
	answered = true
	gone := moved
	mu.Unlock()
	if gone {
		if resp != nil {
			resp.Body.Close()
		}
		m.log.Info("the leader did not answer and another was elected: passing the request on to it", "old", leader, "path", r.URL.Path)
		return false
	}
	if err != nil {
		if r.Context().Err() != nil {
			return true // the caller is gone
		}
		// The leader could not be reached: if another is elected before
		// the wait ends, try it.
		if errors.Is(err, peer.ErrNoPeers) || !m.waitLeaderChange(wait, leader) {
			httpx.Error(w, api.Errorf(api.CodeUnavailable, "the leader %s did not answer (%v): retry in a moment", leader, err))
			return true
		}
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		// "Not the leader any more": another was elected meanwhile.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e api.Error
		if api.UnmarshalStrict(b, &e) == nil && e.Code == api.CodeNotLeader && wait.Err() == nil {
			// It lost the lead (or has not learnt it is leader yet): ask
			// again whoever leads, once this manager knows, until the wait
			// ends. The request ID makes the second try safe.
			m.waitLeaderChange(wait, leader)
			core.Sleep(wait, 20*time.Millisecond)
			return false
		}
		copyHeader(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		w.Write(b)
		return true
	}
	// Read your writes: this manager's next reads wait until it has
	// applied what the leader had applied when it answered.
	if idx, err := strconv.ParseUint(resp.Header.Get(indexHeader), 10, 64); err == nil {
		m.raiseReadFloor(idx)
	}
	copyHeader(w.Header(), resp.Header)
	w.WriteHeader(resp.StatusCode)
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return true
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err != nil {
			return true
		}
	}
}

// waitLeaderChange waits until a leader other than old is known, or wait
// ends; it says whether one is.
func (m *Manager) waitLeaderChange(wait context.Context, old string) bool {
	for {
		ch := m.core.LeaderChanged()
		if l := m.core.LeaderID(); l != "" && l != old {
			return true
		}
		select {
		case <-wait.Done():
			return false
		case <-ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = vs
	}
}

// readFloorWait bounds how long a read waits for this manager to apply its
// forwarded writes: the leader's next message tells it within
// 2 × CommitTimeout, plus a second of slack. Past it (a follower cut off
// from the leader since), the read is served from what it has.
func (m *Manager) readFloorWait() time.Duration {
	return time.Second + 2*core.Config{CommitTimeout: m.cfg.CommitTimeout}.EffectiveCommitTimeout()
}

// awaitForwarded makes a read on a follower see the writes it forwarded
// (read your writes). A forwarded write returns as soon as the leader
// answers; the follower learns that the entry is committed with the
// leader's next message, up to 2 × CommitTimeout later, and only a read
// that comes before then waits.
func (m *Manager) awaitForwarded(ctx context.Context) {
	floor := m.readFloor.Load()
	if floor == 0 || m.store.Hub().Last() >= floor {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, m.readFloorWait())
	defer cancel()
	m.store.Hub().WaitFor(ctx, floor)
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

// indexWriter stamps the applied index on the leader's answer.
type indexWriter struct {
	http.ResponseWriter
	m       *Manager
	stamped bool
}

func (w *indexWriter) stamp() {
	if !w.stamped {
		w.stamped = true
		w.Header().Set(indexHeader, strconv.FormatUint(w.m.store.Hub().Last(), 10))
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
