package nspawn

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// These run in `make test` (the last one as root only): warren manager's
// checks that run before it serves, on the binary itself.

var (
	warrenOnce sync.Once
	warrenBin  string
	warrenErr  error
)

// warrenBinary builds the current daemons/warren once per test process,
// into a directory of its own (not bin/, which a concurrent make may
// rewrite).
func warrenBinary(t *testing.T) string {
	t.Helper()
	warrenOnce.Do(func() {
		repo, err := RepoRoot()
		if err != nil {
			warrenErr = err
			return
		}
		dir, err := os.MkdirTemp("", "warren-qa-bin-")
		if err != nil {
			warrenErr = err
			return
		}
		warrenBin = filepath.Join(dir, "warren")
		// -trimpath as make build does, so its compiled packages are reused.
		warrenErr = run(context.Background(), repo, "go", "build", "-trimpath", "-o", warrenBin, "./daemons/warren")
	})
	if warrenErr != nil {
		t.Fatalf("building warren: %v", warrenErr)
	}
	return warrenBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if warrenBin != "" {
		os.RemoveAll(filepath.Dir(warrenBin))
	}
	os.Exit(code)
}

// runManagerFlags runs `warren manager` with args and env and returns its
// stderr; it must fail (every case here is refused before it serves).
func runManagerFlags(t *testing.T, env []string, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append([]string{"manager", "--data-dir", filepath.Join(dir, "data"), "--api-socket", filepath.Join(dir, "api.sock")}, args...)
	cmd := exec.CommandContext(ctx, warrenBinary(t), argv...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("warren %s (env %v) succeeded; want it refused:\n%s", strings.Join(argv, " "), env, out)
	}
	if ctx.Err() != nil {
		t.Fatalf("warren %s (env %v) did not exit within 30 s; want it refused at once:\n%s", strings.Join(argv, " "), env, out)
	}
	return string(out)
}

// TestManagerTokenFlags: the join token comes from --token-file, or from
// the systemd credential join-token; bad files and two sources are
// refused with a message that says why and never shows the token.
func TestManagerTokenFlags(t *testing.T) {
	const secret = "WRN-1-w-secret"
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := write("empty", "\n")
	full := write("token", secret+"\n")
	credsEmpty := filepath.Join(dir, "creds-empty")
	credsFull := filepath.Join(dir, "creds-full")
	for _, d := range []string{credsEmpty, credsFull} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write("creds-empty/join-token", "")
	write("creds-full/join-token", secret)

	join := "--join=192.0.2.1:4242"
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"--token and --token-file", nil, []string{join, "--token=" + secret, "--token-file=" + full}, "give the join token one way"},
		{"an empty --token-file", nil, []string{join, "--token-file=" + empty}, "is empty: put the token that warrenctl join-token"},
		{"a missing --token-file", nil, []string{join, "--token-file=" + filepath.Join(dir, "nope")}, "--token-file: open " + filepath.Join(dir, "nope") + ": no such file"},
		{"an unreadable --token-file (a directory)", nil, []string{join, "--token-file=" + dir}, "is a directory"},
		{"--join without a token", nil, []string{join}, "--join and a join token"},
		{"an empty credential is no token", []string{"CREDENTIALS_DIRECTORY=" + credsEmpty}, []string{join}, "--join and a join token"},
		{"a credential and --token-file", []string{"CREDENTIALS_DIRECTORY=" + credsFull}, []string{join, "--token-file=" + full}, "and in the systemd credential join-token: give it one way"},
		{"a credential and --token", []string{"CREDENTIALS_DIRECTORY=" + credsFull}, []string{join, "--token=" + secret}, "give it one way"},
		{"a token from the credential needs --join", []string{"CREDENTIALS_DIRECTORY=" + credsFull}, nil, "--join and a join token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := runManagerFlags(t, tc.env, tc.args...)
			if !strings.Contains(out, tc.want) {
				t.Errorf("warren manager %v (env %v) said\n%s\nwant %q", tc.args, tc.env, out, tc.want)
			}
			if strings.Contains(out, "secret") {
				t.Errorf("warren manager %v printed the token:\n%s", tc.args, out)
			}
		})
	}
}

// TestManagerNeverAdvertisesLoopback: a manager whose node port listens
// on 0.0.0.0 in a network namespace with no address but loopback stops
// with an error that says to set advertise_addr, instead of advertising
// 127.0.0.1 (which sends every peer back to itself).
func TestManagerNeverAdvertisesLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace of its own")
	}
	bin := warrenBinary(t)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--", bin, "manager",
		"--data-dir", filepath.Join(dir, "data"), "--api-socket", filepath.Join(dir, "api.sock"), "--listen-addr", "0.0.0.0:4242")
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("warren manager --listen-addr 0.0.0.0:4242 with only loopback: %v (timed out: %v); want it to stop with an error:\n%s", err, ctx.Err() != nil, out)
	}
	for _, want := range []string{"no address to advertise", "lo: loopback", "advertise_addr", "/etc/warren/warren.conf", "--advertise-addr"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("warren manager with only loopback said\n%s\nwant %q in it", out, want)
		}
	}
}
