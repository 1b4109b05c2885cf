package manager_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/authz"
	"github.com/warren-edge/warren/daemons/manager/managertest"
	"github.com/warren-edge/warren/daemons/pki"
)

// fakeAgent serves a node's agent socket as warren-agent does for logs
// and exec, saying which node it is: each log line names the node, and
// exec runs "echo ARGS", "exit N" and "cat" (stdin back to stdout).
type fakeAgent struct {
	node string
	mu   sync.Mutex
	seen []string // the requests it was asked, "METHOD PATH"
	// logQueries are the queries of the log requests it was asked.
	logQueries []string
}

func (a *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.Method+" "+r.URL.Path)
	if strings.HasSuffix(r.URL.Path, "/logs") {
		a.logQueries = append(a.logQueries, r.URL.RawQuery)
	}
	a.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/logs"):
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello from %s\nsecond line from %s\n", a.node, a.node)
		if r.URL.Query().Has("follow") {
			for i := 0; ; i++ {
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(30 * time.Millisecond):
				}
				fmt.Fprintf(w, "tick %d from %s\n", i, a.node)
			}
		}
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/exec"):
		var req api.ExecRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+api.ExecProtocol+"\r\n\r\n")
		exit := api.ExecExit{}
		switch req.Cmd[0] {
		case "echo":
			api.WriteFrame(conn, api.FrameStdout, []byte(strings.Join(req.Cmd[1:], " ")+" (on "+a.node+")\n"))
		case "exit":
			exit.Code, _ = strconv.Atoi(req.Cmd[1])
		case "cat":
			for {
				kind, p, err := api.ReadFrame(brw)
				if err != nil || kind == api.FrameStdinEOF {
					break
				}
				if kind == api.FrameStdin {
					api.WriteFrame(conn, api.FrameStdout, p)
				}
			}
		default:
			exit = api.ExecExit{Code: -1, Error: fmt.Sprintf("%q: command not found in the container", req.Cmd[0]), NotFound: true}
		}
		b, _ := json.Marshal(exit)
		api.WriteFrame(conn, api.FrameExit, b)
	default:
		http.NotFound(w, r)
	}
}

// spread is a cluster of one manager and two workers, each node with a
// fake agent, and a service "web" with one running task on each worker.
type spread struct {
	c        *managertest.Cluster
	m        *managertest.Member
	w1, w2   *managertest.Member
	t1, t2   api.Task // web's tasks on w1 and w2
	agents   map[string]*fakeAgent
	log      *syncBuffer
	stopBeat context.CancelFunc
}

// syncBuffer is a log destination tests read while managers write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startSpread(t *testing.T) *spread {
	t.Helper()
	dir, err := os.MkdirTemp("", "warren-ag-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &spread{agents: map[string]*fakeAgent{}, log: &syncBuffer{}}
	socks := map[string]string{}
	for _, id := range []string{"mgr1", "wrk1", "wrk2"} {
		s.agents[id] = &fakeAgent{node: id}
		socks[id] = filepath.Join(dir, id+".sock")
		l, err := net.Listen("unix", socks[id])
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: s.agents[id]}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
	}
	s.c = managertest.StartCluster(t, 1, managertest.Options{AgentSockets: socks,
		Logger: slog.New(slog.NewTextHandler(s.log, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	s.m = s.c.Managers[0]
	s.w1, s.w2 = s.c.AddWorker("wrk1"), s.c.AddWorker("wrk2")
	ctx := ctx(t)
	beat, stop := context.WithCancel(context.Background())
	s.stopBeat = stop
	t.Cleanup(stop)
	for _, w := range []*managertest.Member{s.w1, s.w2} {
		go func() {
			for beat.Err() == nil {
				w.Client.Heartbeat(beat, w.ID, api.Heartbeat{Description: api.NodeDescription{Hostname: w.ID, NanoCPUs: 2e9, MemoryBytes: 1 << 30}})
				select {
				case <-beat.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
	}
	// Both workers ready before the service is placed: else both of its
	// tasks may go to the one that reported first.
	eventually(t, "both workers ready", 15*time.Second, func() error {
		for _, w := range []*managertest.Member{s.w1, s.w2} {
			n, err := s.m.Client.Node(ctx, w.ID)
			if err != nil {
				return err
			}
			if n.Status.State != api.NodeReady {
				return fmt.Errorf("%s is %s", w.ID, n.Status.State)
			}
		}
		return nil
	})
	spec := svcSpec("web")
	spec.Replicas = 2
	spec.Placement.Constraints = []string{"node.role==worker"}
	if _, err := s.m.Client.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	// Each worker's agent says its task runs.
	for _, w := range []*managertest.Member{s.w1, s.w2} {
		eventually(t, w.ID+" runs a task of web", 15*time.Second, func() error {
			ts, err := w.Client.Tasks(ctx, client.TaskQuery{Node: w.ID, Service: "web"})
			if err != nil || len(ts) != 1 {
				return fmt.Errorf("%d tasks, %v", len(ts), err)
			}
			if ts[0].Status.State != api.TaskRunning {
				_, err := w.Client.ReportTaskStatus(ctx, w.ID, []api.TaskStatusUpdate{{TaskID: ts[0].ID,
					Status: api.TaskStatus{State: api.TaskRunning, Message: "started", Timestamp: time.Now()}}})
				if err != nil {
					return err
				}
				return errors.New("reported running")
			}
			if w == s.w1 {
				s.t1 = ts[0]
			} else {
				s.t2 = ts[0]
			}
			return nil
		})
	}
	// The manager knows both run.
	eventually(t, "the manager sees both tasks run", 10*time.Second, func() error {
		for _, id := range []string{s.t1.ID, s.t2.ID} {
			tk, err := s.m.Client.Task(ctx, id)
			if err != nil || tk.Status.State != api.TaskRunning {
				return fmt.Errorf("task %s: %v %v", id, tk, err)
			}
		}
		return nil
	})
	return s
}

// serviceLogs reads web's merged logs through m and returns the lines and
// the notices.
func serviceLogs(t *testing.T, c *client.Client, o client.LogOptions) (string, []api.LogNotice, error) {
	t.Helper()
	rc, err := c.ServiceLogs(ctx(t), "web", o)
	if err != nil {
		return "", nil, err
	}
	defer rc.Close()
	var out bytes.Buffer
	var notices []api.LogNotice
	err = client.CopyLogs(&out, rc, func(n api.LogNotice) { notices = append(notices, n) })
	return out.String(), notices, err
}

func TestLogsAndExecRunOnTheTaskNode(t *testing.T) {
	s := startSpread(t)
	ctx := ctx(t)

	// A service's logs through the manager hold both workers' lines, each
	// with its task's prefix, and nothing from the manager's own agent.
	out, notices, err := serviceLogs(t, s.m.Client, client.LogOptions{Tail: -1})
	if err != nil || len(notices) != 0 {
		t.Fatalf("service logs through the manager: %v, notices %v", err, notices)
	}
	for _, want := range []string{s.t1.LogPrefix() + "hello from wrk1\n", s.t2.LogPrefix() + "hello from wrk2\n",
		s.t2.LogPrefix() + "second line from wrk2\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("service logs through the manager lack %q; got:\n%s", want, out)
		}
	}
	if strings.Contains(out, "mgr1") {
		t.Errorf("service logs hold lines of the manager's agent, which runs no task of web:\n%s", out)
	}
	// One task's logs, by an ID prefix, come from its node's agent only.
	rc, err := s.m.Client.TaskLogs(ctx, s.t2.ID[:10], client.LogOptions{Tail: -1})
	if err != nil {
		t.Fatalf("task logs of w2's task through the manager: %v", err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "hello from wrk2\nsecond line from wrk2\n" {
		t.Errorf("task logs of w2's task = %q, %v; want w2 agent's two lines", b, err)
	}
	// ?task= keeps one task, prefixed.
	out, _, err = serviceLogs(t, s.m.Client, client.LogOptions{Tail: -1, Task: s.t1.ID})
	if err != nil || !strings.Contains(out, "hello from wrk1") || strings.Contains(out, "wrk2") {
		t.Errorf("service logs of task %s = %q, %v; want w1's lines only", s.t1.ID, out, err)
	}

	// ?since travels on every hop, as one instant: to the manager's peers
	// and on to their agents, for a service's logs and a task's.
	since := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	for _, a := range s.agents {
		a.mu.Lock()
		a.logQueries = nil
		a.mu.Unlock()
	}
	if _, _, err := serviceLogs(t, s.m.Client, client.LogOptions{Tail: 5, Since: since}); err != nil {
		t.Fatalf("service logs since %v: %v", since, err)
	}
	if rc, err := s.m.Client.TaskLogs(ctx, s.t2.ID, client.LogOptions{Tail: -1, Since: since}); err != nil {
		t.Fatalf("task logs since %v: %v", since, err)
	} else {
		io.ReadAll(rc)
		rc.Close()
	}
	for node, want := range map[string][]string{"wrk1": {"since=2026-12-05T10%3A00%3A00Z&tail=5"},
		"wrk2": {"since=2026-12-05T10%3A00%3A00Z&tail=5", "since=2026-12-05T10%3A00%3A00Z"}} {
		a := s.agents[node]
		a.mu.Lock()
		got := slices.Clone(a.logQueries)
		a.mu.Unlock()
		if !slices.Equal(got, want) {
			t.Errorf("logs since %v through the manager: %s's agent was asked %q, want %q", since, node, got, want)
		}
	}
	// A duration given to the manager becomes a time there.
	before := time.Now()
	if _, err := s.m.Client.Raw(ctx, http.MethodGet, "/v1/tasks/"+s.t1.ID+"/logs?since=1h"); err != nil {
		t.Fatalf("task logs since=1h: %v", err)
	}
	a := s.agents["wrk1"]
	a.mu.Lock()
	last := a.logQueries[len(a.logQueries)-1]
	a.mu.Unlock()
	q, _ := url.ParseQuery(last)
	if got, err := time.Parse(time.RFC3339Nano, q.Get("since")); err != nil || got.Before(before.Add(-time.Hour-time.Second)) || got.After(time.Now().Add(-time.Hour)) {
		t.Errorf("task logs since=1h through the manager: w1's agent was asked %q, want since the time an hour ago", last)
	}
	if _, err := s.m.Client.Raw(ctx, http.MethodGet, "/v1/services/web/logs?since=soon"); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("service logs since=soon: %v, want an invalid-request error", err)
	}

	// Exec on w2's task from the manager: output and exit code come back.
	var stdout bytes.Buffer
	code, err := s.m.Client.Exec(ctx, s.t2.ID, api.ExecRequest{Cmd: []string{"echo", "hi"}}, client.ExecStreams{Stdout: &stdout})
	if err != nil || code != 0 || stdout.String() != "hi (on wrk2)\n" {
		t.Errorf("exec echo hi on w2's task: code %d, %v, stdout %q; want 0 and \"hi (on wrk2)\"", code, err, stdout.String())
	}
	code, err = s.m.Client.Exec(ctx, s.t1.ID, api.ExecRequest{Cmd: []string{"exit", "3"}}, client.ExecStreams{})
	if err != nil || code != 3 {
		t.Errorf("exec exit 3 on w1's task: code %d, %v; want 3", code, err)
	}
	stdout.Reset()
	code, err = s.m.Client.Exec(ctx, s.t2.ID, api.ExecRequest{Cmd: []string{"cat"}, Stdin: true},
		client.ExecStreams{Stdin: strings.NewReader("piped through two hops\n"), Stdout: &stdout})
	if err != nil || code != 0 || stdout.String() != "piped through two hops\n" {
		t.Errorf("exec cat with stdin on w2's task: code %d, %v, stdout %q", code, err, stdout.String())
	}
	var ee *client.ExecError
	if _, err := s.m.Client.Exec(ctx, s.t2.ID, api.ExecRequest{Cmd: []string{"nope"}}, client.ExecStreams{}); !errors.As(err, &ee) || !ee.NotFound {
		t.Errorf("exec of a missing command = %v, want an ExecError saying not found", err)
	}
	// Every exec is recorded where the caller entered, with who and what.
	if log := s.log.String(); !strings.Contains(log, "msg=audit") || !strings.Contains(log, `echo\",\"hi`) ||
		!strings.Contains(log, "local admin on node mgr1") {
		t.Errorf("the exec was not audited with its caller and command; the managers logged:\n%s", log)
	}
	// …and an exec.run event says who ran what (argv[0] only), in which task.
	eventually(t, "an exec.run event of w2's task", 10*time.Second, func() error {
		for _, ev := range readEvents(t, s.m.Client, client.EventQuery{Types: []string{api.EventExecRun}}) {
			if ev.TaskID == s.t2.ID && ev.NodeID == "wrk2" && ev.Message == "local admin on node mgr1 ran echo" {
				return nil
			}
		}
		return fmt.Errorf("none")
	})
	for _, ev := range readEvents(t, s.m.Client, client.EventQuery{Types: []string{api.EventExecRun}}) {
		if strings.Contains(ev.Message, "hi") || strings.Contains(ev.Message, "3") {
			t.Errorf("exec.run event %+v carries the command's arguments", ev)
		}
	}
	// Bad input: no command; a task that does not run.
	if _, err := s.m.Client.Exec(ctx, s.t2.ID, api.ExecRequest{}, client.ExecStreams{}); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("exec without a command = %v, want invalid", err)
	}
	if _, err := s.w1.Client.ReportTaskStatus(ctx, "wrk1", []api.TaskStatusUpdate{{TaskID: s.t1.ID,
		Status: api.TaskStatus{State: api.TaskComplete, Message: "exited", Timestamp: time.Now()}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "w1's task complete on the manager and in w1's replica", 10*time.Second, func() error {
		for _, c := range []*client.Client{s.m.Client, s.w1.Client} {
			tk, err := c.Task(ctx, s.t1.ID)
			if err != nil || tk.Status.State != api.TaskComplete {
				return fmt.Errorf("%v %v", tk, err)
			}
		}
		return nil
	})
	_, err = s.m.Client.Exec(ctx, s.t1.ID, api.ExecRequest{Cmd: []string{"echo", "hi"}}, client.ExecStreams{})
	if !api.IsCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "is not running (state complete): exec needs a running container") {
		t.Errorf("exec on a complete task = %v, want a conflict saying it is not running", err)
	}
	if _, err := s.m.Client.Exec(ctx, "nosuchtask", api.ExecRequest{Cmd: []string{"echo"}}, client.ExecStreams{}); !api.IsCode(err, api.CodeNotFound) {
		t.Errorf("exec on an unknown task = %v, want not found", err)
	}
}

func TestLogsNameTheNodeThatCannotBeReached(t *testing.T) {
	s := startSpread(t)
	ctx := ctx(t)

	// Follow both, then cut w2 off: the stream says w2's broke and w1's
	// lines keep coming.
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	rc, err := s.m.Client.ServiceLogs(fctx, "web", client.LogOptions{Follow: true, Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		br := bufio.NewReader(rc)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	waitLine := func(what string, match func(string) bool) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the followed logs ended before %s", what)
				}
				if match(l) {
					return
				}
			case <-deadline:
				t.Fatalf("the followed logs never showed %s", what)
			}
		}
	}
	waitLine("a tick from w2", func(l string) bool { return strings.Contains(l, "tick") && strings.Contains(l, "wrk2") })
	s.c.Cut(s.w2)
	waitLine("a notice naming w2", func(l string) bool {
		n, ok := api.ParseLogNotice([]byte(strings.TrimSuffix(l, "\n")))
		return ok && n.Node == "wrk2" && strings.Contains(n.Message, "broke")
	})
	waitLine("w1's lines after w2 broke", func(l string) bool { return strings.Contains(l, "tick") && strings.Contains(l, "wrk1") })
	stop()

	// With w2 cut off: w1's lines, and a notice that names w2.
	out, notices, err := serviceLogs(t, s.m.Client, client.LogOptions{Tail: -1})
	var inc *client.IncompleteLogsError
	if !errors.As(err, &inc) || !strings.Contains(err.Error(), "wrk2") {
		t.Errorf("service logs with w2 cut off: %v; want an incomplete-logs error naming wrk2", err)
	}
	if len(notices) != 1 || notices[0].Node != "wrk2" || !strings.Contains(notices[0].Message, "cannot be reached") {
		t.Errorf("notices with w2 cut off = %+v; want one naming wrk2 unreachable", notices)
	}
	if !strings.Contains(out, s.t1.LogPrefix()+"hello from wrk1") {
		t.Errorf("w1's lines are missing with w2 cut off:\n%s", out)
	}
	// One task of w2: an error that names it; exec too.
	if _, err := s.m.Client.TaskLogs(ctx, s.t2.ID, client.LogOptions{Tail: -1}); !api.IsCode(err, api.CodeUnavailable) || !strings.Contains(err.Error(), "wrk2") {
		t.Errorf("task logs of w2's task with w2 cut off = %v; want unavailable naming wrk2", err)
	}
	if _, err := s.m.Client.Exec(ctx, s.t2.ID, api.ExecRequest{Cmd: []string{"echo"}}, client.ExecStreams{}); !api.IsCode(err, api.CodeUnavailable) || !strings.Contains(err.Error(), "wrk2") {
		t.Errorf("exec on w2's task with w2 cut off = %v; want unavailable naming wrk2", err)
	}
	// An unknown service: not found.
	if _, err := s.m.Client.ServiceLogs(ctx, "nope", client.LogOptions{Tail: -1}); !api.IsCode(err, api.CodeNotFound) {
		t.Errorf("logs of an unknown service = %v, want not found", err)
	}
}

// TestTaskNodeRoutesAreAuthorizedOnEveryHop calls the task routes on each
// hop as the callers that may and may not reach them.
func TestTaskNodeRoutesAreAuthorizedOnEveryHop(t *testing.T) {
	s := startSpread(t)
	as := func(id string, role pki.Role) func(*http.Request) (pki.Identity, bool) {
		return func(*http.Request) (pki.Identity, bool) { return pki.Identity{NodeID: id, Role: role}, true }
	}
	anonymous := func(*http.Request) (pki.Identity, bool) { return pki.Identity{}, false }
	vouch := func(c authz.Caller) http.Header { return http.Header{authz.Header: {c.Encode()}} }
	adminOnM := authz.Caller{Kind: authz.Local, Role: authz.RoleAdmin, NodeID: "mgr1"}
	// Operators are checked against the records on a manager: make one.
	if _, err := s.m.Client.AddOperator(ctx(t), api.OperatorRequest{Name: "vera", Role: string(authz.RoleViewer), CSR: operatorCSR(t)}); err != nil {
		t.Fatalf("operator add: %v", err)
	}
	viewer := authz.Caller{Kind: authz.Operator, Role: authz.RoleViewer, Name: "vera"}
	logs2, exec2 := "/v1/tasks/"+s.t2.ID+"/logs", "/v1/tasks/"+s.t2.ID+"/exec"
	execBody := `{"cmd":["echo","hi"]}`
	blob2 := "/v1/nodes/wrk2/agent/v1/blobs/sha256:" + strings.Repeat("ab", 32)
	prestage2 := "/v1/nodes/wrk2/agent/v1/images/prestage?ref=localhost/app:1"

	for _, tc := range []struct {
		name   string
		h      http.Handler
		method string
		path   string
		hdr    http.Header
		want   int
		says   string
	}{
		// The worker's node port: only a manager passing on a person.
		{"w1's certificate on w2's node port", s.w2.PeerHandler(as("wrk1", pki.RoleWorker)), "GET", logs2, nil, 403, "a worker certificate may not call"},
		{"w1's certificate naming an admin on w2's node port", s.w2.PeerHandler(as("wrk1", pki.RoleWorker)), "GET", logs2, vouch(adminOnM), 403, "a worker certificate may not call"},
		{"a manager for itself on w2's node port", s.w2.PeerHandler(as("mgr1", pki.RoleManager)), "GET", logs2, nil, 403, "manager certificate may not call"},
		{"a manager passing on a worker on w2's node port", s.w2.PeerHandler(as("mgr1", pki.RoleManager)), "GET", "/v1/info", vouch(authz.Caller{Kind: authz.Worker, NodeID: "wrk1"}), 403, "serves only the task routes"},
		{"a manager passing on an admin for a service on w2's node port", s.w2.PeerHandler(as("mgr1", pki.RoleManager)), "GET", "/v1/services/web", vouch(adminOnM), 403, "serves only the task routes"},
		{"a join on w2's node port", s.w2.PeerHandler(anonymous), "POST", "/v1/join", nil, 403, "serves only the task routes"},
		{"a manager passing on a viewer's exec on w2's node port", s.w2.PeerHandler(as("mgr1", pki.RoleManager)), "POST", exec2, vouch(viewer), 403, "needs the operator or admin role"},
		{"a manager passing on a viewer's logs on w2's node port", s.w2.PeerHandler(as("mgr1", pki.RoleManager)), "GET", logs2, vouch(viewer), 200, "hello from wrk2"},
		{"a manager passing on w1's task to w2", s.w2.PeerHandler(as("mgr1", pki.RoleManager)), "GET", "/v1/tasks/" + s.t1.ID + "/logs", vouch(adminOnM), 403, "this node is a worker: it serves only its own tasks"},
		// The manager's node port: a worker may not read another's logs.
		{"w1's certificate on the manager's node port", s.m.PeerHandler(as("wrk1", pki.RoleWorker)), "GET", logs2, nil, 403, "a worker certificate may not call"},
		{"w1's certificate on the manager, its own task", s.m.PeerHandler(as("wrk1", pki.RoleWorker)), "GET", "/v1/tasks/" + s.t1.ID + "/logs", nil, 403, "a worker certificate may not call"},
		{"w1's certificate for a service's logs", s.m.PeerHandler(as("wrk1", pki.RoleWorker)), "GET", "/v1/services/web/logs", nil, 403, "a worker certificate may not call"},
		// The read-only socket may read logs, not exec.
		{"the read-only socket's exec", s.m.ReadOnlyHandler(), "POST", exec2, nil, 403, "needs the operator or admin role"},
		{"the read-only socket's logs", s.m.ReadOnlyHandler(), "GET", logs2, nil, 200, "hello from wrk2"},
		// The worker's own local socket serves its own tasks, not others'.
		{"w1's socket, w2's task", s.w1.Handler(), "GET", logs2, nil, 403, "this node is a worker"},
		{"w2's socket, its own task", s.w2.Handler(), "GET", logs2, nil, 200, "hello from wrk2"},
		// An image's blobs are for nodes asking for themselves and the
		// local admin; prestaging is for people who may write.
		{"the read-only socket's blob", s.m.ReadOnlyHandler(), "GET", blob2, nil, 403, "may not call"},
		{"a manager passing on an admin's blob to w2", s.w2.PeerHandler(as("mgr1", pki.RoleManager)), "GET", blob2, vouch(adminOnM), 403, "serves only the task routes"},
		{"an anonymous blob on the manager's node port", s.m.PeerHandler(anonymous), "GET", blob2, nil, 403, "needs a node certificate"},
		{"w1's certificate prestaging on w2", s.m.PeerHandler(as("wrk1", pki.RoleWorker)), "POST", prestage2, nil, 403, "a worker certificate may not call"},
		{"the read-only socket prestaging", s.m.ReadOnlyHandler(), "POST", prestage2, nil, 403, "may not call"},
		{"a manager passing on an admin's prestage to w2", s.w2.PeerHandler(as("mgr1", pki.RoleManager)), "POST", prestage2, vouch(adminOnM), 403, "serves only the task routes"},
	} {
		var body io.Reader
		if tc.method == "POST" {
			body = strings.NewReader(execBody)
		}
		r := httptest.NewRequest(tc.method, tc.path, body)
		for k, vs := range tc.hdr {
			r.Header[k] = vs
		}
		rec := httptest.NewRecorder()
		tc.h.ServeHTTP(rec, r)
		if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.says) {
			t.Errorf("%s: %s %s = %d %s; want %d saying %q", tc.name, tc.method, tc.path, rec.Code, strings.TrimSpace(rec.Body.String()), tc.want, tc.says)
		}
	}
}

// operatorCSR is a certificate request for an operator's key.
func operatorCSR(t *testing.T) []byte {
	key, _, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(key, "vera")
	if err != nil {
		t.Fatal(err)
	}
	return csr
}
