package controlapi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/authz"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/manager/peer"
	"github.com/warren-edge/warren/daemons/store"
)

// The node's agent serves images, task logs and exec sessions on its
// local socket; the manager's API passes those calls through, so warrenctl
// needs one socket. A task's logs and exec run on the node that runs the
// task: the router places those routes there (onTaskNode), and the
// handlers here talk to that node's agent. A service's logs are merged on
// the manager that was asked, from each task's logs read on its own node.

func (s *Server) agentTransport() *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", s.cfg.AgentSocket)
		},
		DisableCompression: true,
	}
}

func (s *Server) agentUnavailable(w http.ResponseWriter, err error) {
	httpx.Error(w, s.agentError(err))
}

func (s *Server) agentError(err error) error {
	return api.Errorf(api.CodeUnavailable, "the agent of this node does not answer at %s (%v): is warren-agent running?", s.cfg.AgentSocket, unwrapOp(err))
}

func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}

// proxyAgent passes the request to the agent as it is: its answer streams
// back, and a protocol upgrade (an exec session) is spliced both ways.
func (s *Server) proxyAgent(w http.ResponseWriter, r *http.Request) {
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "agent"
		},
		Transport:     s.agentTransport(),
		FlushInterval: -1,
		ErrorHandler:  func(w http.ResponseWriter, _ *http.Request, err error) { s.agentUnavailable(w, err) },
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	p.ServeHTTP(w, r)
}

// blob serves one blob of an image this node's agent holds, for a node
// that fetches the image (the router placed the request on this node):
// the agent's GET /v1/blobs/{digest}, Range and all.
func (s *Server) blob(w http.ResponseWriter, r *http.Request) {
	if err := api.ValidateDigest(r.PathValue("digest")); err != nil {
		httpx.Error(w, err)
		return
	}
	out := r.Clone(r.Context())
	out.URL.Path, out.URL.RawPath = "/v1/blobs/"+r.PathValue("digest"), ""
	s.proxyAgent(w, out)
}

// prestage asks this node's agent to make an image present (the router
// placed the request on this node).
func (s *Server) prestage(w http.ResponseWriter, r *http.Request) {
	out := r.Clone(r.Context())
	out.URL.Path, out.URL.RawPath = "/v1/images/prestage", ""
	s.proxyAgent(w, out)
}

// ownTask resolves the route's task, which the router placed here.
func (s *Server) ownTask(r *http.Request) (*api.Task, error) {
	var t *api.Task
	var err error
	s.store.View(func(v *store.View) error { t, err = v.Task(r.PathValue("ref")); return nil })
	if err != nil {
		return nil, err
	}
	if t.NodeID != s.cfg.NodeID {
		return nil, api.Errorf(api.CodeUnavailable, "task %s runs on node %s, not on this node %s", t.LogName(), t.NodeID, s.cfg.NodeID)
	}
	return t, nil
}

// taskLogs streams one task's log as its container wrote it, from this
// node's agent (the router brings the request to the task's node). A
// stream that breaks is cut off, not ended, so that whoever reads it
// (warrenctl, or the manager merging a service's logs) sees it broke.
func (s *Server) taskLogs(w http.ResponseWriter, r *http.Request) {
	t, err := s.ownTask(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	q, err := logQuery(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	body, err := s.agentLog(r.Context(), t, q)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if body == nil {
		return // the task never started: no log
	}
	defer body.Close()
	fl, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			if r.Context().Err() == nil {
				panic(http.ErrAbortHandler) // the agent's stream broke: say so by cutting ours
			}
			return
		}
	}
}

// logQuery is what a log request passes on: ?tail=N, ?follow and
// ?since=T, a duration made a time here once (api.FormatLogSince), so
// that every node a service's logs are read on cuts at the same instant.
func logQuery(r *http.Request) (url.Values, error) {
	q := url.Values{}
	if v := r.URL.Query().Get("tail"); v != "" && v != "all" {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			return nil, api.Errorf(api.CodeInvalid, "tail %q: give a number of lines or all", v)
		}
		q.Set("tail", v)
	}
	if httpx.Bool(r, "follow") {
		q.Set("follow", "1")
	}
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := api.ParseLogSince(v, time.Now())
		if err != nil {
			return nil, err
		}
		q.Set("since", api.FormatLogSince(t))
	}
	return q, nil
}

// agentLog opens a task's log at this node's agent; nil without error when
// the agent has none (the task never started).
func (s *Server) agentLog(ctx context.Context, t *api.Task, q url.Values) (io.ReadCloser, error) {
	hc := &http.Client{Transport: s.agentTransport()}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent/v1/tasks/"+t.ID+"/logs?"+q.Encode(), nil)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, s.agentError(err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Body, nil
	case http.StatusNotFound:
		resp.Body.Close()
		return nil, nil
	}
	defer resp.Body.Close()
	return nil, api.Errorf(api.CodeUnavailable, "the agent of this node answered %s for the logs of task %s: %s", resp.Status, t.LogName(), errorText(resp))
}

// errorText is the message of an error answer.
func errorText(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e api.Error
	if api.UnmarshalStrict(b, &e) == nil && e.Message != "" {
		return e.Message
	}
	return strings.TrimSpace(string(b))
}

// serviceLogs merges the logs of a service's tasks, wherever they run,
// each line prefixed with its task (api.Task.LogPrefix), as docker service
// logs does; ?task=REF keeps one task. Each task's log is read on its own
// node: from this node's agent, or from the node's manager (GET
// /v1/tasks/{id}/logs there, for the same caller). When a node cannot be
// reached, or its stream breaks, a notice line says so (api.LogNotice)
// and the other nodes' lines still come: a missing node is never silence.
//
// Without ?follow the tasks' logs come one after another (by slot); with
// it, lines come as they are written, from every task at once, until the
// caller leaves.
func (s *Server) serviceLogs(w http.ResponseWriter, r *http.Request) {
	var tasks []*api.Task
	nodes := map[string]string{} // node ID → hostname
	var err error
	s.store.View(func(v *store.View) error {
		svc, e := v.Service(r.PathValue("ref"))
		if e != nil {
			err = e
			return nil
		}
		if ref := r.URL.Query().Get("task"); ref != "" {
			t, e := v.Task(ref)
			if e != nil {
				err = e
				return nil
			}
			if t.ServiceID != svc.ID {
				err = api.Errorf(api.CodeNotFound, "task %s is not a task of service %s", t.LogName(), svc.Spec.Name)
				return nil
			}
			tasks = []*api.Task{t}
		} else {
			tasks = v.Tasks(store.TaskFilter{ServiceID: svc.ID})
		}
		for _, t := range tasks {
			if n, ok := v.NodeByID(t.NodeID); ok {
				nodes[n.ID] = n.Description.Hostname
			}
		}
		return nil
	})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	q, err := logQuery(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	follow := q.Has("follow")
	placed := tasks[:0]
	for _, t := range tasks {
		if t.NodeID != "" { // a task never placed has no log
			placed = append(placed, t)
		}
	}
	tasks = placed
	sort.Slice(tasks, func(i, j int) bool {
		if tasks[i].Slot != tasks[j].Slot {
			return tasks[i].Slot < tasks[j].Slot
		}
		return tasks[i].CreatedAt.Before(tasks[j].CreatedAt)
	})

	// Open every task's stream at once: a node that does not answer costs
	// its timeout once, not once per task.
	type stream struct {
		t    *api.Task
		body io.ReadCloser
		err  error
	}
	streams := make([]stream, len(tasks))
	var wg sync.WaitGroup
	for i, t := range tasks {
		streams[i].t = t
		wg.Add(1)
		go func() {
			defer wg.Done()
			streams[i].body, streams[i].err = s.openTaskLog(r.Context(), t, q)
		}()
	}
	wg.Wait()
	defer func() {
		for _, st := range streams {
			if st.body != nil {
				st.body.Close()
			}
		}
	}()

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	var mu sync.Mutex
	emit := func(line []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		if _, err := w.Write(line); err != nil {
			return false
		}
		if fl != nil && follow {
			fl.Flush()
		}
		return true
	}
	notice := func(t *api.Task, msg string) bool {
		return emit(api.LogNotice{Node: t.NodeID, Hostname: nodes[t.NodeID], Task: t.LogName(), Message: msg}.Line())
	}
	run := func(st stream) {
		if st.err != nil {
			notice(st.t, st.err.Error()+": its lines are missing")
			return
		}
		if st.body == nil {
			return
		}
		err := copyLines(st.body, st.t.LogPrefix(), emit)
		switch {
		case r.Context().Err() != nil || errors.Is(err, errWrite):
		case err != nil:
			notice(st.t, fmt.Sprintf("the log stream broke (%v): lines after this point are missing", unwrapOp(err)))
		case follow:
			notice(st.t, "the log stream ended: lines after this point are missing")
		}
	}
	if !follow {
		for _, st := range streams {
			run(st)
		}
		return
	}
	for _, st := range streams {
		wg.Add(1)
		go func() { defer wg.Done(); run(st) }()
	}
	wg.Wait()
}

// openTaskLog opens a task's log on its node: this node's agent, or the
// node's manager over the node port for the caller of ctx. A node that
// does not begin to answer within peer.HeaderWait is taken as unreachable.
// nil without error: the task has no log (it never started).
func (s *Server) openTaskLog(ctx context.Context, t *api.Task, q url.Values) (io.ReadCloser, error) {
	if t.NodeID == s.cfg.NodeID {
		return s.agentLog(ctx, t, q)
	}
	if s.isWorker() {
		return nil, errors.New("this node is a worker, which serves only its own tasks' logs: read the service's logs through a manager")
	}
	ctx, cancel := context.WithCancelCause(ctx)
	wait := time.AfterFunc(peer.HeaderWait, func() { cancel(fmt.Errorf("no answer within %s", peer.HeaderWait)) })
	resp, err := s.cfg.Peers.Send(ctx, t.NodeID, peer.Request{Method: http.MethodGet, Path: "/v1/tasks/" + t.ID + "/logs?" + q.Encode(),
		As: authz.CallerOf(ctx), Node: true, Header: http.Header{peer.ForwardedHeader: {s.cfg.NodeID}}})
	wait.Stop()
	if err != nil {
		if c := context.Cause(ctx); c != nil {
			err = c
		}
		cancel(nil)
		return nil, fmt.Errorf("cannot be reached (%v)", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		cancel(nil)
		return nil, fmt.Errorf("answered %s (%s)", resp.Status, errorText(resp))
	}
	return cancelOnClose{ReadCloser: resp.Body, cancel: cancel}, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel(nil)
	return err
}

// errWrite: the caller of a merged log went away.
var errWrite = errors.New("controlapi: log caller gone")

// maxLogLine is the longest piece of a line copyLines passes on at once;
// a longer line comes as several, each with the prefix.
const maxLogLine = 64 << 10

// copyLines passes each line of r to emit with prefix, a newline added to
// a last line without one. It returns nil at the end of r, errWrite when
// emit fails, or r's error.
func copyLines(r io.Reader, prefix string, emit func([]byte) bool) error {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			out := make([]byte, 0, len(prefix)+len(line)+1)
			out = append(append(out, prefix...), line...)
			if out[len(out)-1] != '\n' {
				out = append(out, '\n')
			}
			if !emit(out) {
				return errWrite
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case err == io.EOF:
			return nil
		default:
			return err
		}
	}
}

// exec runs a process in the task's container, through this node's agent
// (the router brings the request to the task's node): it checks the
// request and that the task runs, logs the session, and splices the
// client's upgraded connection to the agent's (api.ExecProtocol).
func (s *Server) exec(w http.ResponseWriter, r *http.Request) {
	t, err := s.ownTask(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	body, err := httpx.Body(w, r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	var req api.ExecRequest
	if err := httpx.Unmarshal(body, &req); err != nil {
		httpx.Error(w, err)
		return
	}
	if err := req.Validate(); err != nil {
		httpx.Error(w, err)
		return
	}
	if t.Status.State != api.TaskRunning {
		httpx.Error(w, api.Errorf(api.CodeConflict, "task %s is not running (state %s): exec needs a running container", t.LogName(), t.Status.State))
		return
	}
	if !upgradeTo(r, api.ExecProtocol) {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "exec is a session: ask for it with Connection: Upgrade and Upgrade: %s (warrenctl service exec does)", api.ExecProtocol))
		return
	}
	caller := authz.CallerOf(r.Context())
	start := time.Now()
	s.cfg.Logger.Info("exec", "caller", caller.String(), "task", t.ID, "name", t.LogName(), "cmd", req.Cmd, "tty", req.TTY, "stdin", req.Stdin)
	out := r.Clone(r.Context())
	out.URL.Path, out.URL.RawPath = "/v1/tasks/"+t.ID+"/exec", ""
	out.Body, out.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	out.Header.Del(authz.Header)
	s.proxyAgent(w, out)
	s.cfg.Logger.Info("exec ended", "caller", caller.String(), "task", t.ID, "cmd", req.Cmd, "duration", time.Since(start).Round(time.Millisecond))
}

// upgradeTo says whether r asks to switch to protocol.
func upgradeTo(r *http.Request, protocol string) bool {
	conn := false
	for _, v := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				conn = true
			}
		}
	}
	return conn && strings.EqualFold(r.Header.Get("Upgrade"), protocol)
}
