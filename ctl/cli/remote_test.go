package cli_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/ctl/cli"
	"github.com/warren-edge/warren/daemons/manager"
)

// nodePortManager is a real manager in the test's process with its local
// socket and a node port on loopback (mutual TLS, the cluster's CA).
type nodePortManager struct {
	socket string // unix:///...
	port   string // https://127.0.0.1:PORT
	addr   string // 127.0.0.1:PORT
}

func startNodePortManager(t *testing.T, ctx context.Context) *nodePortManager {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "warrenctl-np-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelInfo
	}
	m, err := manager.New(manager.Config{DataDir: t.TempDir(), Hostname: "node-1", NodePort: l, RaftLogLevel: "error",
		AgentSocket: filepath.Join(sockDir, "agent.sock"),
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		l.Close()
		t.Fatalf("start a manager with a node port: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	sock := filepath.Join(sockDir, "api.sock")
	ul, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go m.Serve(ul)
	if err := m.WaitReady(ctx); err != nil {
		t.Fatalf("manager not ready: %v", err)
	}
	return &nodePortManager{socket: "unix://" + sock, port: "https://" + l.Addr().String(), addr: l.Addr().String()}
}

// TestRemoteOperators: an admin on a manager makes an operator certificate
// of each role over the local socket; warrenctl then speaks mutual TLS to
// the node port with each, and the manager lets each role do what it may.
func TestRemoteOperators(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m := startNodePortManager(t, ctx)
	local := runOpts{env: map[string]string{cli.EnvHost: m.socket}}
	dirs := map[string]string{}
	for name, role := range map[string]string{"ada": "admin", "oli": "operator", "vic": "viewer"} {
		dirs[name] = filepath.Join(t.TempDir(), name)
		r := local.run(ctx, "operator", "add", name, "--role", role, "--out", dirs[name])
		if r.code != 0 {
			t.Fatalf("operator add %s --role %s on the local socket: exit %d, stderr %q", name, role, r.code, r.stderr)
		}
		if want := "WARREN_HOST=https://" + m.addr + " WARREN_TLS_DIR=" + dirs[name] + " warrenctl node ls"; !strings.Contains(r.stdout, want) {
			t.Errorf("operator add %s printed:\n%s\nwant the line %q", name, r.stdout, want)
		}
	}
	as := func(name string, args ...string) result {
		return runOpts{env: map[string]string{cli.EnvHost: m.port, cli.EnvTLSDir: dirs[name]}}.run(ctx, args...)
	}
	steps := []struct {
		who  string
		args []string
		code int
		want string // in stdout when code is 0, in stderr otherwise
	}{
		{"vic", []string{"service", "ls"}, 0, "ID   NAME   MODE   REPLICAS   IMAGE   PORTS\n"},
		{"vic", []string{"service", "create", "-d", "--name", "v", "localhost/busybox"}, 1,
			"warrenctl: operator vic (viewer) may not call POST /v1/services: it needs the operator or admin role\n"},
		{"vic", []string{"join-token", "ls"}, 1, "operator vic (viewer) may not call GET /v1/join-tokens: it needs the admin role"},
		{"oli", []string{"service", "create", "-d", "--name", "web", "localhost/busybox"}, 0, ""},
		{"vic", []string{"service", "ls"}, 0, " web "},
		{"oli", []string{"service", "rm", "web"}, 0, "web\n"},
		{"oli", []string{"join-token", "worker"}, 1,
			"warrenctl: operator oli (operator) may not call POST /v1/join-tokens/worker: it needs the admin role\n"},
		{"oli", []string{"operator", "add", "eve", "--role", "admin", "--out", filepath.Join(t.TempDir(), "eve")}, 1,
			"warrenctl: operator oli (operator) may not call POST /v1/operators: it needs the admin role\n"},
		{"oli", []string{"node", "promote", "node-1"}, 1, "may not call POST /v1/nodes/node-1/promote: it needs the admin role"},
		{"ada", []string{"service", "create", "-d", "--name", "api", "localhost/busybox"}, 0, ""},
		{"ada", []string{"service", "rm", "api"}, 0, "api\n"},
		{"ada", []string{"join-token", "worker", "-q"}, 0, "WRN-1-w-"},
		{"ada", []string{"join-token", "ls"}, 0, " worker "},
		{"ada", []string{"operator", "add", "eve", "--role", "viewer", "--out", filepath.Join(t.TempDir(), "eve")}, 0, "Operator eve (viewer) added"},
		{"ada", []string{"operator", "ls", "-q"}, 0, "ada\neve\noli\nvic\n"},
		{"ada", []string{"node", "ls"}, 0, " *   node-1 "},
		{"vic", []string{"service", "ls", "-q"}, 0, ""},
		{"ada", []string{"operator", "rm", "vic"}, 0, "vic\n"},
		{"vic", []string{"service", "ls"}, 1,
			"warrenctl: operator \"vic\" is not known to the cluster (it was removed): ask an admin for a new certificate (warrenctl operator add)\n"},
		{"oli", []string{"service", "ls", "-q"}, 0, ""},
	}
	for i, s := range steps {
		r := as(s.who, s.args...)
		got := r.stdout
		if s.code != 0 {
			got = r.stderr
		}
		if r.code != s.code || !strings.Contains(got, s.want) {
			t.Errorf("step %d: %s runs warrenctl %s over %s: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d and %q", i, s.who,
				strings.Join(s.args, " "), m.port, r.code, r.stdout, r.stderr, s.code, s.want)
		}
	}
	// What the refused calls would have made was not made.
	if r := local.run(ctx, "service", "ls", "-q"); r.code != 0 || r.stdout != "" {
		t.Errorf("service ls -q on the local socket after the tests: exit %d, stdout %q; want no services (the viewer's create refused, the others removed)", r.code, r.stdout)
	}
}

// TestNodePortNeedsCertificate: the node port, reached without
// credentials or over plain HTTP, gives an error that says what to do.
func TestNodePortNeedsCertificate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m := startNodePortManager(t, ctx)
	tests := []struct {
		host string
		code int
		want string
	}{
		{m.port, 2, "warrenctl: " + m.port + " is a manager's node port: it speaks mutual TLS only and needs an operator certificate: " +
			"make one on a manager (warrenctl operator add NAME --role viewer|operator|admin --out DIR), copy DIR here, and give --tls-dir DIR (or $WARREN_TLS_DIR)\n"},
		{"http://" + m.addr, 1, "speaks mutual TLS only: use https:// with an operator's certificate (warrenctl --tls-dir DIR)"},
	}
	for _, tt := range tests {
		r := runOpts{env: map[string]string{cli.EnvHost: tt.host}, retry: -1}.run(ctx, "node", "ls")
		if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("WARREN_HOST=%s warrenctl node ls: exit %d, stderr %q; want exit %d and %q", tt.host, r.code, r.stderr, tt.code, tt.want)
		}
	}
}
