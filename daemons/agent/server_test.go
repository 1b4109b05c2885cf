package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/agent/runtime/fake"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// knownTask is the task whose log the test agent has (the fuzz seeds
// name it).
const knownTask = "k7fuzz0000000000000000log"

// sentinel is what the files outside the agent's directories hold: it
// must never come back from the agent socket.
const sentinel = "SENTINEL: this file is outside the agent's directories"

// socketAgent is an agent over the fake runtime whose data directory is
// DIR/data, with a task log in it and sentinel *.log files around it:
// DIR/secret.log, DIR/data/secret.log and DIR/data/files/secret.log.
type socketAgent struct {
	a      *Agent
	dir    string
	taskID string // a task whose log exists
}

func newSocketAgent(t testing.TB) *socketAgent {
	t.Helper()
	dir := t.TempDir()
	c, err := client.New("unix://" + filepath.Join(dir, "no-manager.sock"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{API: c, Runtime: fake.New(), DataDir: filepath.Join(dir, "data"),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s := &socketAgent{a: a, dir: dir, taskID: knownTask}
	for _, p := range []string{filepath.Join(dir, "secret.log"), filepath.Join(dir, "data", "secret.log"),
		filepath.Join(dir, "data", "files", "secret.log")} {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(sentinel+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "data", "logs", s.taskID+".log"), []byte("hello from the task\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAgentSocketRefusesIDsThatAreNotIDs is the regression test of the
// agent socket's path traversal: a member of group warren asked for the
// "log" of task ..%2F..%2Fsecret and the root agent served DIR/secret.log.
func TestAgentSocketRefusesIDsThatAreNotIDs(t *testing.T) {
	s := newSocketAgent(t)
	srv := httptest.NewServer(s.a.Handler())
	defer srv.Close()
	// A follow that got through would stream until the client leaves.
	hc := &http.Client{Timeout: 3 * time.Second}

	for _, path := range []string{
		"/v1/tasks/..%2F..%2Fsecret/logs",          // DIR/data/logs/../../secret.log
		"/v1/tasks/..%2Fsecret/logs",               // DIR/data/secret.log
		"/v1/tasks/..%2Ffiles%2Fsecret/logs",       // DIR/data/files/secret.log
		"/v1/tasks/%2E%2E%2F%2E%2E%2Fsecret/logs",  // dots escaped too
		"/v1/tasks/..%2F..%2Fsecret/logs?tail=1",   // with a query
		"/v1/tasks/..%2F..%2Fsecret/logs?follow=1", // a follow must not start either
		"/v1/tasks/" + strings.Repeat("..%2F", 40) + "etc%2Fpasswd/logs",
		"/v1/tasks/" + url.PathEscape(filepath.Join(s.dir, "secret")) + "/logs", // %2Ftmp%2F...
		"/v1/tasks/..%5C..%5Csecret/logs",                                       // backslashes
		"/v1/tasks/" + strings.ToUpper(s.taskID) + "/logs",
		"/v1/tasks/" + s.taskID[:24] + "/logs", // a prefix is not an ID here
	} {
		resp, err := hc.Get(srv.URL + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body) // a timeout ends a follow
		resp.Body.Close()
		if strings.Contains(string(body), "SENTINEL") {
			t.Errorf("GET %s served a file outside the agent's directories: %q", path, body)
		}
		var e api.Error
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Code != api.CodeInvalid ||
			!strings.Contains(e.Message, "not a Warren ID") {
			t.Errorf("GET %s = %d %q, want 400 with an invalid-request api.Error saying the ID is not a Warren ID", path, resp.StatusCode, body)
		}
	}

	// A real task ID still gets its log, and a missing one a 404.
	resp, err := hc.Get(srv.URL + "/v1/tasks/" + s.taskID + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "hello from the task\n" {
		t.Errorf("GET the log of task %s = %d %q, want 200 and its log", s.taskID, resp.StatusCode, body)
	}
	resp, err = hc.Get(srv.URL + "/v1/tasks/" + api.NewID() + "/logs")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET the log of a task with no log = %d, want 404", resp.StatusCode)
	}
}

// FuzzAgentRoutes sends the agent socket's handler requests made of a
// method, a path and a query, parsed by net/http's own request reader as
// the server parses them. Whatever the request: nothing panics, every file
// the handler opens is a task log (DATADIR/logs/ID.log with ID one
// api.ValidateID accepts), and no sentinel file from around the data
// directory comes back. The seed corpus is testdata/fuzz/FuzzAgentRoutes;
// it runs in every go test.
func FuzzAgentRoutes(f *testing.F) {
	s := newSocketAgent(f)
	logs := filepath.Join(s.dir, "data", logsDir)
	var mu sync.Mutex
	var opened []string
	s.a.openFile = func(name string) (*os.File, error) {
		mu.Lock()
		opened = append(opened, name)
		mu.Unlock()
		return os.Open(name)
	}
	h := s.a.Handler()
	f.Add("GET", "/v1/tasks/"+knownTask+"/logs", "tail=1")
	f.Add("GET", "/v1/tasks/..%2F..%2Fsecret/logs", "")
	f.Fuzz(func(t *testing.T, method, path, query string) {
		target := path
		if query != "" {
			target += "?" + query
		}
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(method + " " + target + " HTTP/1.1\r\nHost: agent\r\n\r\n")))
		if err != nil {
			return // the server answers 400 before any handler runs
		}
		// A follow streams until the client leaves.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		mu.Lock()
		opened = opened[:0]
		mu.Unlock()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))

		if strings.Contains(rec.Body.String(), "SENTINEL") {
			t.Fatalf("%s %q served a file outside the agent's directories: %q", method, target, rec.Body.String())
		}
		mu.Lock()
		defer mu.Unlock()
		for _, name := range opened {
			rel, err := filepath.Rel(logs, name)
			id, isLog := strings.CutSuffix(rel, ".log")
			if err != nil || !isLog || api.ValidateID(id) != nil {
				t.Fatalf("%s %q made the agent open %s, which is not a task log in %s", method, target, name, logs)
			}
		}
		if strings.HasPrefix(req.URL.Path, "/v1/tasks/") && rec.Code == http.StatusOK && len(opened) == 0 {
			t.Fatalf("%s %q = 200 without opening a log", method, target)
		}
	})
}

// TestTaskPathsRefuseIDsThatAreNotIDs checks the defence in depth behind
// the socket's routes: the helpers that make a path from a task ID, and
// the network's namespace files, refuse what is not an ID.
func TestTaskPathsRefuseIDsThatAreNotIDs(t *testing.T) {
	s := newSocketAgent(t)
	net := &HostNetwork{}
	for _, id := range []string{"", "..", "../../secret", "/etc/passwd", knownTask + "/..", strings.ToUpper(knownTask)} {
		if p, err := s.a.logPath(id); err == nil || !api.IsCode(err, api.CodeInvalid) {
			t.Errorf("logPath(%q) = %q, %v; want an invalid-ID error", id, p, err)
		}
		if p, err := s.a.netFilesDir(id); err == nil || !api.IsCode(err, api.CodeInvalid) {
			t.Errorf("netFilesDir(%q) = %q, %v; want an invalid-ID error", id, p, err)
		}
		if _, _, err := net.Attach(context.Background(), id); err == nil || !api.IsCode(err, api.CodeInvalid) {
			t.Errorf("HostNetwork.Attach(%q) = %v; want an invalid-ID error", id, err)
		}
		if err := net.Detach(context.Background(), id); err == nil || !api.IsCode(err, api.CodeInvalid) {
			t.Errorf("HostNetwork.Detach(%q) = %v; want an invalid-ID error", id, err)
		}
	}
	want := filepath.Join(s.dir, "data", "logs", knownTask+".log")
	if p, err := s.a.logPath(knownTask); p != want || err != nil {
		t.Errorf("logPath(%q) = %q, %v; want %q", knownTask, p, err, want)
	}
	want = filepath.Join(s.dir, "data", "files", knownTask)
	if p, err := s.a.netFilesDir(knownTask); p != want || err != nil {
		t.Errorf("netFilesDir(%q) = %q, %v; want %q", knownTask, p, err, want)
	}
}
