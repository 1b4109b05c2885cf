package agent

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/agent/runtime/fake"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

const (
	runningTask = "r7exec0000000000000000run"
	stoppedTask = "s7exec0000000000000000stp"
)

// execAgent is an agent over the fake runtime with one running and one
// stopped container, its socket's API served over HTTP, and the API client
// pointed at it (the agent socket serves the same exec route).
func execAgent(t *testing.T) (*fake.Runtime, *client.Client) {
	t.Helper()
	dir := t.TempDir()
	c, _ := client.New("unix://" + filepath.Join(dir, "no-manager.sock"))
	f := fake.New()
	a, err := New(Config{API: c, Runtime: f, DataDir: filepath.Join(dir, "data"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f.AddImage("img")
	for _, id := range []string{runningTask, stoppedTask} {
		if err := f.Create(ctx, rt.ContainerSpec{ID: id, Image: "img"}); err != nil {
			t.Fatal(err)
		}
		if err := f.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Stop(ctx, stoppedTask, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{runningTask, stoppedTask} {
		c, err := f.Inspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		a.containers[id] = c
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	cl, err := client.NewHTTP(srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return f, cl
}

func TestExecSessionOnTheAgentSocket(t *testing.T) {
	f, c := execAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var out, errb bytes.Buffer
	code, err := c.Exec(ctx, runningTask, api.ExecRequest{Cmd: []string{"echo", "hi"}}, client.ExecStreams{Stdout: &out, Stderr: &errb})
	if err != nil || code != 0 || out.String() != "hi\n" {
		t.Errorf("exec echo hi = %d, %v, stdout %q; want 0 and hi", code, err, out.String())
	}
	if code, err := c.Exec(ctx, runningTask, api.ExecRequest{Cmd: []string{"exit", "3"}}, client.ExecStreams{}); err != nil || code != 3 {
		t.Errorf("exec exit 3 = %d, %v; want 3", code, err)
	}
	var ee *client.ExecError
	if _, err := c.Exec(ctx, runningTask, api.ExecRequest{Cmd: []string{"nope"}}, client.ExecStreams{}); !errors.As(err, &ee) || !ee.NotFound {
		t.Errorf("exec of a missing command = %v, want an ExecError saying not found", err)
	}

	// The streams: stdin in (and its end), stdout and stderr apart, the
	// terminal's size and its changes.
	got := make(chan rt.ExecIO, 1)
	f.SetExecStream(func(ctx context.Context, id string, x rt.ExecIO) (int, error) {
		got <- x
		in, _ := io.ReadAll(x.Stdin) // until the client's stdin ends
		io.WriteString(x.Stdout, strings.ToUpper(string(in)))
		io.WriteString(x.Stderr, "to stderr\n")
		select {
		case sz := <-x.Resize:
			if sz.Width != 100 || sz.Height != 30 {
				return 1, nil
			}
		case <-time.After(5 * time.Second):
			return 2, nil
		}
		return 7, nil
	})
	resize := make(chan api.TermSize, 1)
	resize <- api.TermSize{Width: 100, Height: 30}
	out.Reset()
	errb.Reset()
	code, err = c.Exec(ctx, runningTask, api.ExecRequest{Cmd: []string{"sh"}, Stdin: true, TTY: true, Width: 80, Height: 24},
		client.ExecStreams{Stdin: strings.NewReader("typed in\n"), Stdout: &out, Stderr: &errb, Resize: resize})
	if err != nil || code != 7 {
		t.Errorf("exec with stdin and a resize = %d, %v; want 7 (1: wrong size, 2: no resize)", code, err)
	}
	x := <-got
	if !x.TTY || x.Size != (rt.TermSize{Width: 80, Height: 24}) || strings.Join(x.Args, " ") != "sh" {
		t.Errorf("the runtime was asked %+v; want sh with a TTY of 80x24", x)
	}
	if out.String() != "TYPED IN\n" || errb.String() != "to stderr\n" {
		t.Errorf("stdout %q, stderr %q; want the input upper-cased and stderr apart", out.String(), errb.String())
	}

	// A client that goes away ends the process's context.
	ended := make(chan error, 1)
	f.SetExecStream(func(ctx context.Context, id string, x rt.ExecIO) (int, error) {
		io.WriteString(x.Stdout, "started\n")
		<-ctx.Done()
		ended <- ctx.Err()
		return -1, ctx.Err()
	})
	cctx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		c.Exec(cctx, runningTask, api.ExecRequest{Cmd: []string{"sleep"}}, client.ExecStreams{Stdout: pw})
		pw.Close()
	}()
	buf := make([]byte, 8)
	io.ReadFull(pr, buf)
	stop()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Error("the process went on after its client left")
	}
}

func TestExecRefusesBadSessions(t *testing.T) {
	_, c := execAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range []struct {
		task string
		req  api.ExecRequest
		code string
		says string
	}{
		{stoppedTask, api.ExecRequest{Cmd: []string{"echo"}}, api.CodeConflict, "not running"},
		{"u7exec0000000000000unknwn", api.ExecRequest{Cmd: []string{"echo"}}, api.CodeNotFound, "has no container"},
		{runningTask, api.ExecRequest{}, api.CodeInvalid, "no command"},
		{runningTask, api.ExecRequest{Cmd: []string{"a\x00b"}}, api.CodeInvalid, "NUL"},
	} {
		_, err := c.Exec(ctx, tc.task, tc.req, client.ExecStreams{})
		if !api.IsCode(err, tc.code) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("exec %q in %s = %v; want %s saying %q", tc.req.Cmd, tc.task, err, tc.code, tc.says)
		}
	}
	// Without the upgrade, no session.
	a := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/v1/tasks/"+runningTask+"/exec", strings.NewReader(`{"cmd":["echo"]}`))
	newExecHandler(t).ServeHTTP(a, r)
	if a.Code != http.StatusBadRequest || !strings.Contains(a.Body.String(), "Upgrade") {
		t.Errorf("exec without an upgrade = %d %s; want 400 saying to upgrade", a.Code, a.Body)
	}
}

// newExecHandler is the socket of an agent with a running container.
func newExecHandler(t *testing.T) http.Handler {
	dir := t.TempDir()
	c, _ := client.New("unix://" + filepath.Join(dir, "none.sock"))
	f := fake.New()
	a, err := New(Config{API: c, Runtime: f, DataDir: filepath.Join(dir, "data"), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a.containers[runningTask] = rt.Container{ID: runningTask, State: rt.StateRunning}
	return a.Handler()
}
