package cli_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/ctl/cli"
	"github.com/warren-edge/warren/daemons/api"
)

// TestRetryUntilManagerListens: the first command after a manager starts
// waits for its socket instead of failing at once, and says so.
func TestRetryUntilManagerListens(t *testing.T) {
	dir, err := os.MkdirTemp("", "warrenctl-retry-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "api.sock")
	host := "unix://" + sock
	f, _ := newAccessFake(t)
	go func() {
		time.Sleep(300 * time.Millisecond)
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Error(err)
			return
		}
		srv := &http.Server{Handler: f}
		t.Cleanup(func() { srv.Close() })
		srv.Serve(l)
	}()
	r := runOpts{env: map[string]string{cli.EnvHost: host}}.run(context.Background(), "join-token", "worker", "-q")
	if r.code != 0 || r.stdout != "WRN-1-w-cadigest-n3wt0k3n-s3cr3t\n" {
		t.Fatalf("join-token worker against a manager that starts 300ms later: exit %d, stdout %q, stderr %q; want it to wait and print the token", r.code, r.stdout, r.stderr)
	}
	want := "warrenctl: no manager answers at " + host + " yet: waiting up to 15s for one to start\n"
	if r.stderr != want {
		t.Errorf("join-token worker waiting for a manager said %q, want %q once", r.stderr, want)
	}

	// The wait ends: the error says what failed.
	r = runOpts{env: map[string]string{cli.EnvHost: "unix:///nonexistent/api.sock"}, retry: 300 * time.Millisecond}.run(context.Background(), "node", "ls")
	want = "warrenctl: no manager answers at unix:///nonexistent/api.sock yet: waiting up to 300ms for one to start\n" +
		"warrenctl: cannot reach the warren manager at unix:///nonexistent/api.sock (no such file or directory): " +
		"is warren-manager running, and may you use its socket (root or group warren)?\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("node ls with no manager and a 300ms wait: exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
	}
}

// TestRetryDuringElection: a write that finds no leader is sent again
// (with the same request ID) until one is elected.
func TestRetryDuringElection(t *testing.T) {
	f, _ := newAccessFake(t)
	var mu sync.Mutex
	var ids []string
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		ids = append(ids, r.Header.Get(api.RequestIDHeader))
		n := len(ids)
		mu.Unlock()
		if n <= 2 {
			writeJSON(w, 503, api.Errorf(api.CodeNotLeader, "the managers have no leader now (an election is on, or no quorum is reachable): retry in a moment"))
			return
		}
		f.ServeHTTP(w, r)
	}))
	r := runOpts{env: map[string]string{cli.EnvHost: srv}}.run(context.Background(), "join-token", "worker", "-q")
	if r.code != 0 || r.stdout != "WRN-1-w-cadigest-n3wt0k3n-s3cr3t\n" {
		t.Fatalf("join-token worker during an election: exit %d, stdout %q, stderr %q; want the token once a leader answers", r.code, r.stdout, r.stderr)
	}
	if len(ids) != 3 || ids[0] == "" || ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("join-token worker sent %d requests with IDs %q; want 3 with one ID", len(ids), ids)
	}
	if want := "warrenctl: the managers have no leader (an election?): waiting up to 15s for one\n"; r.stderr != want {
		t.Errorf("join-token worker during an election said %q, want %q", r.stderr, want)
	}
}

func newServer(t *testing.T, h http.Handler) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// TestTLSDir: an https host takes its credentials from --tls-dir or
// $WARREN_TLS_DIR ("~/" is the home directory); missing ones say how to
// make them.
func TestTLSDir(t *testing.T) {
	home := t.TempDir()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		dir  string // where warrenctl looked
	}{
		{"--tls-dir", map[string]string{cli.EnvHost: "https://127.0.0.1:1"}, []string{"--tls-dir", home + "/a"}, home + "/a"},
		{"--tls-dir=~/", map[string]string{cli.EnvHost: "https://127.0.0.1:1", "HOME": home}, []string{"--tls-dir=~/b"}, home + "/b"},
		{"$WARREN_TLS_DIR", map[string]string{cli.EnvHost: "https://127.0.0.1:1", cli.EnvTLSDir: "~/c", "HOME": home}, nil, home + "/c"},
		{"--tls-dir wins", map[string]string{cli.EnvTLSDir: home + "/env"}, []string{"-H", "https://127.0.0.1:1", "--tls-dir", home + "/d"}, home + "/d"},
	}
	for _, tt := range tests {
		args := append(tt.args, "node", "ls")
		r := runOpts{env: tt.env, retry: -1}.run(context.Background(), args...)
		want := "warrenctl: operator credentials: open " + tt.dir + "/operator.key: no such file or directory (make them with warrenctl operator add NAME --out " + tt.dir + " on a manager)\n"
		if r.code != 1 || r.stderr != want {
			t.Errorf("%s: warrenctl %s: exit %d, stderr %q; want 1 and %q", tt.name, strings.Join(args, " "), r.code, r.stderr, want)
		}
	}
	// $WARREN_TLS_DIR set for node ports does not stop the local socket.
	r := runOpts{env: map[string]string{cli.EnvTLSDir: home + "/env"}, retry: -1}.run(context.Background(), "-H", "unix:///nonexistent/api.sock", "node", "ls")
	if r.code != 1 || !strings.Contains(r.stderr, "cannot reach the warren manager at unix:///nonexistent/api.sock") {
		t.Errorf("node ls on a local socket with $WARREN_TLS_DIR set: exit %d, stderr %q; want it to try the socket", r.code, r.stderr)
	}
}
