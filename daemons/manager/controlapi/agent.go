package controlapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"sync"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
)

// The node's agent serves images and task logs on its local socket; the
// manager's API passes those calls through, so warrenctl needs one socket.
// Tasks and images on other nodes are reached through their own managers
// (not yet: only this node's are served).

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
	httpx.Error(w, api.Errorf(api.CodeUnavailable, "the agent of this node does not answer at %s (%v): is warren-agent running?", s.cfg.AgentSocket, unwrapOp(err)))
}

func unwrapOp(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}

// proxyAgent passes the request to the agent as it is.
func (s *Server) proxyAgent(w http.ResponseWriter, r *http.Request) {
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "agent"
		},
		Transport:     s.agentTransport(),
		FlushInterval: -1,
		ErrorHandler:  func(w http.ResponseWriter, _ *http.Request, err error) { s.agentUnavailable(w, err) },
	}
	p.ServeHTTP(w, r)
}

// serviceLogs streams the logs of a service's tasks on this node, each line
// prefixed with the task's name, as docker service logs does.
func (s *Server) serviceLogs(w http.ResponseWriter, r *http.Request) {
	var tasks []*api.Task
	var err error
	s.store.View(func(v *store.View) error {
		svc, e := v.Service(r.PathValue("ref"))
		if e != nil {
			err = e
			return nil
		}
		tasks = v.Tasks(store.TaskFilter{ServiceID: svc.ID, NodeID: s.cfg.NodeID})
		return nil
	})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	sort.Slice(tasks, func(i, j int) bool {
		if tasks[i].Slot != tasks[j].Slot {
			return tasks[i].Slot < tasks[j].Slot
		}
		return tasks[i].CreatedAt.Before(tasks[j].CreatedAt)
	})
	s.streamLogs(w, r, tasks)
}

func (s *Server) taskLogs(w http.ResponseWriter, r *http.Request) {
	var t *api.Task
	var err error
	s.store.View(func(v *store.View) error { t, err = v.Task(r.PathValue("ref")); return nil })
	if err != nil {
		httpx.Error(w, err)
		return
	}
	if t.NodeID != s.cfg.NodeID {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "task %s runs on node %s: read its logs on that node's manager", t.ID, t.NodeID))
		return
	}
	s.streamLogs(w, r, []*api.Task{t})
}

func (s *Server) streamLogs(w http.ResponseWriter, r *http.Request, tasks []*api.Task) {
	q := url.Values{}
	if v := r.URL.Query().Get("tail"); v != "" {
		q.Set("tail", v)
	}
	follow := r.URL.Query().Has("follow")
	if follow {
		q.Set("follow", "1")
	}
	hc := &http.Client{Transport: s.agentTransport()}
	// Open every task's stream first, so an unreachable agent is an error,
	// not an empty log.
	type stream struct {
		prefix string
		body   io.ReadCloser
	}
	var streams []stream
	defer func() {
		for _, s := range streams {
			s.body.Close()
		}
	}()
	for _, t := range tasks {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://agent/v1/tasks/"+t.ID+"/logs?"+q.Encode(), nil)
		resp, err := hc.Do(req)
		if err != nil {
			s.agentUnavailable(w, err)
			return
		}
		if resp.StatusCode == http.StatusNotFound {
			resp.Body.Close()
			continue // the task never started: no log
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			httpx.Error(w, api.Errorf(api.CodeUnavailable, "agent: logs of task %s: %s", t.ID, resp.Status))
			return
		}
		streams = append(streams, stream{prefix: fmt.Sprintf("%s.%s | ", t.Name(), shortID(t.ID)), body: resp.Body})
	}
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
	copyLines := func(s stream) {
		sc := bufio.NewScanner(s.body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := append([]byte(s.prefix), sc.Bytes()...)
			if !emit(append(line, '\n')) {
				return
			}
		}
	}
	if !follow {
		for _, s := range streams {
			copyLines(s)
		}
		return
	}
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() { defer wg.Done(); copyLines(s) }()
	}
	wg.Wait()
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
