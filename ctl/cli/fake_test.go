package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/ctl/cli"
	"github.com/warren-edge/warren/daemons/api"
)

// fakeManager serves the few endpoints a test needs, over HTTP, and
// records what it was asked. Another writer can be simulated: when
// raceOnPut is set, the next PUT finds the object changed by someone else.
type fakeManager struct {
	mu        sync.Mutex
	svc       api.Service
	node      api.Node
	puts      []string // the version= of each PUT
	raceOnPut int      // how many PUTs meet a concurrent change
	clash     bool     // PUTs fail with a non-version conflict
	noLogs    bool     // no logs endpoint, as managers before it
	logsQuery string
	logs      []string // what the logs endpoint writes, in writes; three lines if nil
	execs     []api.ExecRequest
	// steps, when set, script a rolling update: a GET of the service
	// shows the current step's service, a GET of its tasks the step's
	// tasks and moves on to the next (the last one stays). A PUT or a
	// rollback answers with the first step's service.
	steps []fakeStep
	step  int
}

// fakeStep is where a service stands at one look.
type fakeStep struct {
	svc   api.Service
	tasks []api.Task
}

func (f *fakeManager) current() fakeStep { return f.steps[min(f.step, len(f.steps)-1)] }

// The fake's tasks of web: one running, one that ended.
var (
	fakeRunning = api.Task{Meta: api.Meta{ID: "task00000000000000000001"}, ServiceID: "svc0000000000000000000001", ServiceName: "web", Slot: 1,
		NodeID: "node000000000000000000001", DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskRunning}}
	fakeEnded = api.Task{Meta: api.Meta{ID: "task00000000000000000002"}, ServiceID: "svc0000000000000000000001", ServiceName: "web", Slot: 2,
		NodeID: "node000000000000000000001", DesiredState: api.TaskShutdown, Status: api.TaskStatus{State: api.TaskComplete}}
)

func newFake(t *testing.T) (*fakeManager, string) {
	f := &fakeManager{
		svc: api.Service{Meta: api.Meta{ID: "svc0000000000000000000001", Version: 1}, SpecVersion: 1,
			Spec: api.ServiceSpec{Name: "web", Image: "busybox", Mode: api.ModeReplicated, Replicas: 1}},
		node: api.Node{Meta: api.Meta{ID: "node000000000000000000001", Version: 1},
			Spec:        api.NodeSpec{Role: api.RoleWorker, Availability: api.AvailabilityActive},
			Description: api.NodeDescription{Hostname: "pi-1"}},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path, q := r.URL.Path, r.URL.Query()
	svcPath := path == "/v1/services/web" || path == "/v1/services/"+f.svc.ID
	nodePath := path == "/v1/nodes/pi-1" || path == "/v1/nodes/"+f.node.ID
	switch {
	case r.Method == "GET" && svcPath && f.steps != nil && len(f.puts) > 0:
		writeJSON(w, 200, f.current().svc)
	case r.Method == "GET" && svcPath:
		writeJSON(w, 200, f.svc)
	case r.Method == "POST" && path == "/v1/services/"+f.svc.ID+"/rollback" && f.steps != nil:
		f.puts = append(f.puts, "rollback")
		writeJSON(w, 200, f.steps[0].svc)
	case r.Method == "GET" && nodePath:
		writeJSON(w, 200, f.node)
	case r.Method == "GET" && path == "/v1/services/"+f.svc.ID+"/logs" && !f.noLogs:
		f.logsQuery = r.URL.RawQuery
		w.Header().Set("Content-Type", "text/plain")
		logs := f.logs
		if logs == nil {
			for i := 1; i <= 3; i++ {
				logs = append(logs, "web.1 | line "+strconv.Itoa(i)+"\n")
			}
		}
		for _, l := range logs {
			w.Write([]byte(l))
			w.(http.Flusher).Flush()
		}
	case r.Method == "GET" && path == "/v1/tasks" && (q.Get("service") == "web" || q.Get("service") == f.svc.ID) && f.steps != nil:
		writeJSON(w, 200, f.current().tasks)
		f.step++
	case r.Method == "GET" && path == "/v1/tasks" && (q.Get("service") == "web" || q.Get("service") == f.svc.ID):
		writeJSON(w, 200, []api.Task{fakeRunning, fakeEnded})
	case r.Method == "GET" && strings.HasPrefix(path, "/v1/tasks/"):
		ref := strings.TrimPrefix(path, "/v1/tasks/")
		for _, t := range []api.Task{fakeRunning, fakeEnded} {
			if strings.HasPrefix(t.ID, ref) && len(ref) >= 10 {
				writeJSON(w, 200, t)
				return
			}
		}
		writeJSON(w, 404, api.Errorf(api.CodeNotFound, "no task %q: list them with warrenctl task ls", ref))
	case r.Method == "POST" && strings.HasSuffix(path, "/exec"):
		f.exec(w, r, strings.TrimSuffix(strings.TrimPrefix(path, "/v1/tasks/"), "/exec"))
	case r.Method == "PUT" && (svcPath || path == "/v1/nodes/"+f.node.ID+"/spec"):
		f.puts = append(f.puts, q.Get("version"))
		meta := &f.svc.Meta
		if !svcPath {
			meta = &f.node.Meta
		}
		if f.clash {
			writeJSON(w, 409, api.Errorf(api.CodeConflict, "port 80/tcp is already published by service \"other\""))
			return
		}
		if f.raceOnPut > 0 {
			// Someone else writes first.
			f.raceOnPut--
			meta.Version++
			if svcPath {
				f.svc.Spec.Labels = map[string]string{"by": "someone-else"}
			} else {
				f.node.Spec.Labels = map[string]string{"by": "someone-else"}
			}
		}
		if v, _ := strconv.ParseUint(q.Get("version"), 10, 64); v != meta.Version {
			writeJSON(w, 409, api.Errorf(api.CodeConflict, "changed since version %d (now %d): read it again and retry", v, meta.Version))
			return
		}
		meta.Version++
		if svcPath {
			f.svc.Spec = api.ServiceSpec{}
			json.NewDecoder(r.Body).Decode(&f.svc.Spec)
			if f.steps != nil {
				writeJSON(w, 200, f.steps[0].svc)
				return
			}
			writeJSON(w, 200, f.svc)
		} else {
			f.node.Spec = api.NodeSpec{}
			json.NewDecoder(r.Body).Decode(&f.node.Spec)
			writeJSON(w, 200, f.node)
		}
	case r.Method == "GET" && path == "/v1/nodes":
		writeJSON(w, 200, []api.Node{f.node})
	case r.Method == "GET" && path == "/v1/info":
		writeJSON(w, 200, api.Info{NodeID: "manager00000000000000001", Role: api.RoleManager})
	case r.Method == "GET" && path == "/v1/ca":
		writeJSON(w, 200, api.CAInfo{CertGrace: api.Duration(30 * 24 * time.Hour)})
	default:
		writeJSON(w, 404, api.Errorf(api.CodeNotFound, "no endpoint %s %s", r.Method, path))
	}
}

// node ls tells a worker cut off past its certificate's expiry, which
// renews once it is back, from one that must join again: by the grace
// the managers give (GET /v1/ca).
func TestNodeLsSaysWhenACertificateExpired(t *testing.T) {
	f, url := newFake(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ls := func() string {
		t.Helper()
		r := runOpts{env: map[string]string{cli.EnvHost: url}, now: now}.run(context.Background(), "node", "ls")
		if r.code != 0 {
			t.Fatalf("node ls: exit %d, stderr %q", r.code, r.stderr)
		}
		return r.stdout
	}
	for _, c := range []struct {
		expired time.Duration
		want    string
	}{
		{-time.Hour, ""},
		{10 * 24 * time.Hour, "certificate expired on 2026-05-22: it renews once the node is back, until 2026-06-21"},
		{40 * 24 * time.Hour, "certificate expired on 2026-04-22, beyond the 30-day grace: re-join with a token (warren rejoin on the node)"},
	} {
		f.mu.Lock()
		f.node.Description.Certificate = &api.NodeCertificate{NotAfter: now.Add(-c.expired)}
		f.mu.Unlock()
		rows := tableRows(ls())
		if len(rows) != 1 {
			t.Fatalf("node ls rows %q, want one", rows)
		}
		if got := rows[0][len(rows[0])-1]; c.want != "" && got != c.want {
			t.Errorf("node ls of a worker whose certificate expired %v ago says %q, want %q", c.expired, got, c.want)
		}
		if c.want == "" && strings.Contains(strings.Join(rows[0], " "), "certificate") {
			t.Errorf("node ls of a worker whose certificate is valid: %q, want no message", rows[0])
		}
	}
}

// exec runs a session as a node's agent would: echo, exit N, cat (stdin
// back), and an error for anything else.
func (f *fakeManager) exec(w http.ResponseWriter, r *http.Request, id string) {
	var req api.ExecRequest
	json.NewDecoder(r.Body).Decode(&req)
	f.execs = append(f.execs, req)
	if id == fakeEnded.ID {
		writeJSON(w, 409, api.Errorf(api.CodeConflict, "task web.2.task00000000 is not running (state complete): exec needs a running container"))
		return
	}
	if id != fakeRunning.ID || r.Header.Get("Upgrade") != api.ExecProtocol {
		writeJSON(w, 400, api.Errorf(api.CodeInvalid, "exec of %q without an upgrade", id))
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
		api.WriteFrame(conn, api.FrameStdout, []byte(strings.Join(req.Cmd[1:], " ")+"\n"))
		api.WriteFrame(conn, api.FrameStderr, []byte("to stderr\n"))
	case "exit":
		exit.Code, _ = strconv.Atoi(req.Cmd[1])
	case "cat":
		for {
			kind, p, err := api.ReadFrame(brw)
			if err != nil || kind == api.FrameStdinEOF {
				break
			}
			api.WriteFrame(conn, api.FrameStdout, p)
		}
	default:
		exit = api.ExecExit{Code: -1, Error: fmt.Sprintf("%q: command not found in the container", req.Cmd[0]), NotFound: true}
	}
	b, _ := json.Marshal(exit)
	api.WriteFrame(conn, api.FrameExit, b)
}

func TestExecPassesTheExitCodeOn(t *testing.T) {
	f, url := newFake(t)
	for _, tc := range []struct {
		stdin  string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"", []string{"web.1", "--", "echo", "hi"}, 0, "hi\n", "to stderr\n"},
		{"", []string{"task0000000000000000", "echo", "-n", "hi"}, 0, "-n hi\n", "to stderr\n"}, // flags after the task are the command's
		{"", []string{"web.1", "--", "exit", "3"}, 3, "", ""},
		{"piped in\n", []string{"-i", "web.1", "--", "cat"}, 0, "piped in\n", ""},
		{"", []string{"web.1", "--", "nope"}, 127, "", "command not found"},
		{"", []string{"web.2", "--", "echo", "hi"}, 1, "", "is not running (state complete): exec needs a running container"},
		{"", []string{"web.9", "--", "echo", "hi"}, 1, "", `no task "web.9"`},
		{"", []string{"web.1"}, 2, "", "no command"},
		{"", []string{"web.1", "--"}, 2, "", "no command"},
		{"", []string{}, 2, "", "give the task and the command"},
		{"", []string{"-t", "web.1", "--", "sh"}, 2, "", "stdin is not one"},
	} {
		r := runWith(context.Background(), url, tc.stdin, append([]string{"service", "exec"}, tc.args...)...)
		if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("warrenctl service exec %s: exit %d, stdout %q, stderr %q; want %d, %q and stderr with %q",
				strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
	if len(f.execs) == 0 || f.execs[0].TTY || f.execs[0].Stdin {
		t.Errorf("the first exec asked %+v; want no TTY and no stdin", f.execs)
	}
}

// TestLogsNameTheMissingNode: a notice in the stream is a warning on
// stderr, not a line of stdout, and the command fails after showing
// every line it got.
func TestLogsNameTheMissingNode(t *testing.T) {
	f, url := newFake(t)
	notice := api.LogNotice{Node: "n2abcdefghijklmnopqrstuvw", Hostname: "w2", Task: "web.2.abcdefghijkl", Message: "cannot be reached (dial tcp: i/o timeout): its lines are missing"}
	f.logs = []string{"web.1 | line 1\n", string(notice.Line()), "web.1 | line 2\n"}
	r := runWith(context.Background(), url, "", "service", "logs", "web")
	if r.code != 1 || r.stdout != "web.1 | line 1\nweb.1 | line 2\n" {
		t.Errorf("service logs with a node missing: exit %d, stdout %q; want 1 and both lines of web.1", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "warning: node w2 (n2abcdefghij), task web.2.abcdefghijkl: cannot be reached") ||
		!strings.Contains(r.stderr, "incomplete: lines of node w2 are missing") {
		t.Errorf("service logs with a node missing: stderr %q; want a warning naming w2 and the failure", r.stderr)
	}
	// A task: the service's logs of that task only.
	r = runWith(context.Background(), url, "", "service", "logs", "web.1")
	if f.logsQuery != "task="+fakeRunning.ID {
		t.Errorf("service logs web.1 asked with query %q, want task=%s", f.logsQuery, fakeRunning.ID)
	}
}

func TestUpdateRetriesOnConflict(t *testing.T) {
	f, url := newFake(t)
	f.raceOnPut = 2
	r := runWith(context.Background(), url, "", "service", "update", "-d", "--env-add", "B=2", "web")
	if r.code != 0 {
		t.Fatalf("service update with two concurrent writers: exit %d, stderr %q", r.code, r.stderr)
	}
	if want := []string{"1", "2", "3"}; !slices.Equal(f.puts, want) {
		t.Errorf("service update sent PUTs with versions %q, want %q (read again after each conflict)", f.puts, want)
	}
	if !slices.Equal(f.svc.Spec.Env, []string{"B=2"}) || f.svc.Spec.Labels["by"] != "someone-else" {
		t.Errorf("after the retries the spec is %+v; want env B=2 and the other writer's label kept", f.svc.Spec)
	}

	f, url = newFake(t)
	f.raceOnPut = 10
	r = runWith(context.Background(), url, "", "service", "update", "-d", "--env-add", "B=2", "web")
	if r.code != 1 || len(f.puts) != 5 || !strings.Contains(r.stderr, "changed since version") {
		t.Errorf("service update against a writer that always wins: exit %d after %d PUTs, stderr %q; want 1 after 5", r.code, len(f.puts), r.stderr)
	}

	f, url = newFake(t)
	f.clash = true
	r = runWith(context.Background(), url, "", "service", "update", "-d", "--publish-add", "80", "web")
	if r.code != 1 || len(f.puts) != 1 || !strings.Contains(r.stderr, `already published by service "other"`) {
		t.Errorf("service update meeting a port clash: exit %d after %d PUTs, stderr %q; want 1 after 1, with the API's message", r.code, len(f.puts), r.stderr)
	}
}

func TestNodeUpdateRetriesOnConflict(t *testing.T) {
	f, url := newFake(t)
	f.raceOnPut = 1
	r := runWith(context.Background(), url, "", "node", "update", "--availability", "drain", "--label-add", "zone=east", "pi-1")
	if r.code != 0 || r.stdout != "pi-1\n" {
		t.Fatalf("node update with a concurrent writer: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if want := []string{"1", "2"}; !slices.Equal(f.puts, want) {
		t.Errorf("node update sent PUTs with versions %q, want %q", f.puts, want)
	}
	if s := f.node.Spec; s.Availability != api.AvailabilityDrain || s.Labels["zone"] != "east" || s.Labels["by"] != "someone-else" {
		t.Errorf("after node update the spec is %+v; want drain, zone=east and the other writer's label", s)
	}
	r = runWith(context.Background(), url, "", "node", "update", "--label-rm", "by", "pi-1")
	if r.code != 0 || f.node.Spec.Labels["by"] != "" || f.node.Spec.Labels["zone"] != "east" {
		t.Errorf("node update --label-rm by: exit %d, labels %v; want only zone=east", r.code, f.node.Spec.Labels)
	}
}

func TestLogsStream(t *testing.T) {
	f, url := newFake(t)
	r := runWith(context.Background(), url, "", "service", "logs", "-f", "--tail", "5", "web")
	if r.code != 0 || r.stdout != "web.1 | line 1\nweb.1 | line 2\nweb.1 | line 3\n" {
		t.Errorf("service logs: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if f.logsQuery != "follow=1&tail=5" {
		t.Errorf("service logs -f --tail 5 asked with query %q, want follow=1&tail=5", f.logsQuery)
	}
}

// TestLogsSince: --since sends one absolute time, a duration counted
// back from now; a bad value is a usage error naming the forms.
func TestLogsSince(t *testing.T) {
	f, url := newFake(t)
	r := runWith(context.Background(), url, "", "service", "logs", "--since", "2026-12-05T11:00:00+01:00", "web")
	if r.code != 0 || f.logsQuery != "since=2026-12-05T10%3A00%3A00Z" {
		t.Errorf("service logs --since 2026-12-05T11:00:00+01:00: exit %d, query %q; want 0 and since=2026-12-05T10:00:00Z", r.code, f.logsQuery)
	}
	before := time.Now()
	r = runWith(context.Background(), url, "", "service", "logs", "--since", "10m", "--tail", "3", "web")
	q, _ := neturl.ParseQuery(f.logsQuery)
	got, err := time.Parse(time.RFC3339Nano, q.Get("since"))
	if r.code != 0 || err != nil || got.Before(before.Add(-10*time.Minute-time.Second)) || got.After(time.Now().Add(-10*time.Minute)) || q.Get("tail") != "3" {
		t.Errorf("service logs --since 10m --tail 3: exit %d, query %q; want tail=3 and since the time 10 minutes ago", r.code, f.logsQuery)
	}
	f.logsQuery = "untouched"
	r = runWith(context.Background(), url, "", "service", "logs", "--since", "yesterday", "web")
	if r.code != 2 || f.logsQuery != "untouched" || !strings.Contains(r.stderr, "10m") || !strings.Contains(r.stderr, "2026-12-05T10:00:00Z") {
		t.Errorf("service logs --since yesterday: exit %d, stderr %q, asked the manager: %v; want 2, the accepted forms named, no request", r.code, r.stderr, f.logsQuery != "untouched")
	}
}

// TestLogsOnATerminal: container output reaches a terminal with its
// control characters escaped, unless --raw; a pipe gets it byte for byte.
func TestLogsOnATerminal(t *testing.T) {
	f, url := newFake(t)
	// Written in pieces that split a UTF-8 character (é) and follow an
	// ESC sequence with a C1 CSI.
	f.logs = []string{"web.1 | caf\xc3", "\xa9 \x1b[2J\x1b]52;c;ZXZpbA==\a\n", "web.1 | 100%\rdone\t\u009b31m\xff\n"}
	raw := strings.Join(f.logs, "")
	escaped := "web.1 | café \\u001b[2J\\u001b]52;c;ZXZpbA==\\u0007\nweb.1 | 100%\\rdone\t\\u009b31m\\xff\n"
	for _, c := range []struct {
		terminal bool
		args     []string
		want     string
	}{
		{true, nil, escaped},
		{true, []string{"--raw"}, raw},
		{false, nil, raw},
		{false, []string{"--raw"}, raw},
	} {
		var out, errb bytes.Buffer
		app := &cli.App{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return map[string]string{cli.EnvHost: url}[k] },
			IsTerminal: func(w io.Writer) bool { return c.terminal && w == &out }}
		args := append([]string{"service", "logs"}, c.args...)
		if code := app.Run(context.Background(), append(args, "web")); code != 0 || out.String() != c.want {
			t.Errorf("warrenctl %s web (stdout a terminal: %v): exit %d, stdout %q, stderr %q; want %q",
				strings.Join(args, " "), c.terminal, code, out.String(), errb.String(), c.want)
		}
	}
}

func TestLogsEndpointMissing(t *testing.T) {
	f, url := newFake(t)
	f.noLogs = true
	r := runWith(context.Background(), url, "", "service", "logs", "web")
	if r.code != 1 || !strings.Contains(r.stderr, "does not serve service logs") || !strings.Contains(r.stderr, "404") {
		t.Errorf("service logs against a manager without the endpoint: exit %d, stderr %q; want 1 and a clear message", r.code, r.stderr)
	}
	r = runWith(context.Background(), url, "", "service", "logs", "nope")
	if r.code != 1 || strings.Contains(r.stderr, "does not serve service logs") {
		t.Errorf("service logs of a missing service: exit %d, stderr %q; want 1 and not the missing-endpoint message", r.code, r.stderr)
	}
}

// noRetry runs warrenctl against host, failing at once when no manager
// answers (TestRetry covers the wait).
func noRetry(host string, args ...string) result {
	return runOpts{env: map[string]string{cli.EnvHost: host}, retry: -1}.run(context.Background(), args...)
}

func TestUnreachable(t *testing.T) {
	want := "warrenctl: cannot reach the warren manager at unix:///nonexistent/b.sock (no such file or directory): " +
		"is warren-manager running, and may you use its socket (root or group warren)?\n"
	// --host wins over $WARREN_HOST.
	r := noRetry("unix:///nonexistent/a.sock", "--host", "unix:///nonexistent/b.sock", "service", "ls")
	if r.code != 1 || r.stderr != want {
		t.Errorf("service ls without a manager: exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
	}
	// A plain path works as well.
	r = noRetry("/nonexistent/b.sock", "node", "ls")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach the warren manager at /nonexistent/b.sock") {
		t.Errorf("node ls with WARREN_HOST=/nonexistent/b.sock: exit %d, stderr %q", r.code, r.stderr)
	}
	r = noRetry("unix:///nonexistent/b.sock", "version")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "Client: warrenctl ") {
		t.Errorf("version without a manager: exit %d, stdout %q; want 1 after the client's version", r.code, r.stdout)
	}
	r = noRetry("unix:///nonexistent/b.sock", "version", "--client")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Client: warrenctl ") {
		t.Errorf("version --client: exit %d, stdout %q", r.code, r.stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string // part of stderr
	}{
		{[]string{"bogus"}, 2, `unknown command "bogus" for "warrenctl"`},
		{[]string{"service", "bogus"}, 2, `unknown command "bogus" for "warrenctl service"`},
		{[]string{"service", "ls", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"service", "create"}, 2, `"warrenctl service create" requires at least 1 argument`},
		{[]string{"service", "create", "-p", "70000:80", "busybox"}, 2, `published port "70000" is not a number from 1 to 65535`},
		{[]string{"service", "create", "-p", "::1:80:80", "busybox"}, 2, "put an IPv6 host address in brackets"},
		{[]string{"service", "create", "--limit-memory", "lots", "busybox"}, 2, `--limit-memory: invalid size "lots"`},
		{[]string{"service", "create", "--limit-cpu", "half", "busybox"}, 2, `--limit-cpu: invalid CPU count "half"`},
		{[]string{"service", "create", "--constraint", "node.zone==east", "busybox"}, 2, `unknown attribute "node.zone"`},
		{[]string{"service", "create", "-e", "1X=y", "busybox"}, 2, `"1X" is not a variable name`},
		{[]string{"service", "create", "--mode", "global", "--replicas", "2", "busybox"}, 2, "--replicas does not go with --mode global"},
		{[]string{"service", "create", "--restart-delay", "5x", "busybox"}, 2, `invalid argument "5x" for "--restart-delay"`},
		{[]string{"service", "create", "--name", "Web_1", "busybox"}, 1, `name: "Web_1" is not DNS-safe`},
		{[]string{"service", "create", "--limit-memory", "1M", "busybox"}, 1, "below the minimum"},
		{[]string{"service", "create", "--restart-condition", "sometimes", "busybox"}, 1, `"sometimes" is not a condition`},
		{[]string{"service", "scale", "web"}, 2, `"web" is not SERVICE=REPLICAS`},
		{[]string{"service", "ls", "-o", "xml"}, 2, "-o xml: use table, json, yaml"},
		{[]string{"service", "ls", "-f", "color=red"}, 2, "the filters are name, id, mode and label"},
		{[]string{"service", "inspect", "--pretty", "-o", "yaml", "web"}, 2, "--pretty and -o do not go together"},
		{[]string{"service", "inspect", "-o", "table", "web"}, 2, "-o table: use json, yaml"},
		{[]string{"service", "update", "web", "api"}, 2, "requires exactly 1 argument"},
		{[]string{"service", "logs", "--tail", "many", "web"}, 2, `--tail "many"`},
		{[]string{"node", "update", "pi-1"}, 2, "nothing to change"},
		{[]string{"node", "update", "--availability", "gone", "pi-1"}, 2, `--availability "gone": use active, pause or drain`},
		{[]string{"node", "ls", "extra"}, 2, "accepts no arguments"},
		{[]string{"apply", "-f"}, 2, "flag needs an argument"},
		{[]string{"--host", "ftp://x", "service", "ls"}, 2, `--host "ftp://x"`},
		{[]string{"--host", "https://10.0.0.1:4242", "node", "ls"}, 2,
			"https://10.0.0.1:4242 is a manager's node port: it speaks mutual TLS only and needs an operator certificate: " +
				"make one on a manager (warrenctl operator add NAME --role viewer|operator|admin --out DIR), copy DIR here, and give --tls-dir DIR (or $WARREN_TLS_DIR)"},
		{[]string{"--tls-dir", "/tmp/creds", "node", "ls"}, 2, "--tls-dir goes with a manager's node port (--host https://HOST:4242); unix:///nonexistent/api.sock is not one"},
		{[]string{"operator", "add", "alice", "--out", "/nonexistent/alice"}, 2, "--role is required: give admin, operator, viewer"},
		{[]string{"operator", "add", "alice", "--role", "root", "--out", "/nonexistent/alice"}, 2, `--role "root": give admin, operator, viewer`},
		{[]string{"operator", "add", "alice", "--role", "viewer"}, 2, "--out is required"},
		{[]string{"operator", "add", "--role", "viewer", "--out", "/nonexistent/alice"}, 2, "requires exactly 1 argument"},
		{[]string{"operator", "rm"}, 2, "requires at least 1 argument"},
		{[]string{"operator", "ls", "-o", "xml"}, 2, "-o xml: use table, json, yaml"},
		{[]string{"join-token"}, 2, "requires exactly 1 argument"},
		{[]string{"join-token", "guest"}, 2, `"guest": ask for a worker or a manager token`},
		{[]string{"join-token", "worker", "--ttl", "soon"}, 2, `invalid argument "soon" for "--ttl"`},
		{[]string{"join-token", "ls", "-o", "yaml"}, 2, "-o yaml: use table, json"},
		{[]string{"join-token", "rm"}, 2, "requires at least 1 argument"},
	}
	for _, tt := range tests {
		r := noRetry("unix:///nonexistent/api.sock", tt.args...)
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) || !strings.HasPrefix(r.stderr, "warrenctl: ") {
			t.Errorf("warrenctl %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tt.args, " "), r.code, r.stderr, tt.code, tt.want)
		}
		if tt.code == 2 && !strings.Contains(r.stderr, "--help'.") {
			t.Errorf("warrenctl %s: a usage error that does not point to --help: %q", strings.Join(tt.args, " "), r.stderr)
		}
	}
}

func TestInterrupted(t *testing.T) {
	_, url := newFake(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	<-ctx.Done()
	r := runWith(ctx, url, "", "service", "ls")
	if r.code != 1 || !strings.Contains(r.stderr, "interrupted") {
		t.Errorf("a command run after its context ended: exit %d, stderr %q; want 1 and \"interrupted\"", r.code, r.stderr)
	}
}
