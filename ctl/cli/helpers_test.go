package cli_test

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/ctl/cli"
	"github.com/warren-edge/warren/daemons/agent"
	"github.com/warren-edge/warren/daemons/agent/runtime/fake"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// result is what one warrenctl run did.
type result struct {
	code           int
	stdout, stderr string
}

// cluster is a real manager in the test's process with an agent over the
// fake runtime: one node, "node-1".
type cluster struct {
	t    *testing.T
	m    *managertest.Manager
	rt   *fake.Runtime
	host string
	ctx  context.Context
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	// The agent serves its socket (logs, exec) to the manager.
	sockDir, err := os.MkdirTemp("", "warren-ag-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	agentSock := filepath.Join(sockDir, "agent.sock")
	c := &cluster{t: t, m: managertest.Start(t, managertest.Options{AgentSocket: agentSock}), rt: fake.New(), ctx: ctx}
	c.host = "unix://" + c.m.Socket
	c.rt.AddImage("localhost/busybox:latest")
	c.rt.AddImage("localhost/busybox:1.37")
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	a, err := agent.New(agent.Config{API: c.m.Client, Runtime: c.rt, DataDir: t.TempDir(), Hostname: "node-1",
		HeartbeatEvery: 100 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", agentSock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler()}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() { stop(); <-done })
	// Wait for the node to be ready, so that tasks can be placed.
	deadline := time.Now().Add(15 * time.Second)
	for {
		nodes, err := c.m.Client.Nodes(ctx, client.ReadOptions{})
		if err == nil && len(nodes) == 1 && nodes[0].Status.State == api.NodeReady {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node-1 never became ready: %v %v", nodes, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// run runs warrenctl against the cluster.
func (c *cluster) run(args ...string) result {
	c.t.Helper()
	return runWith(c.ctx, c.host, "", args...)
}

// runIn runs warrenctl with stdin.
func (c *cluster) runIn(stdin string, args ...string) result {
	c.t.Helper()
	return runWith(c.ctx, c.host, stdin, args...)
}

// must runs warrenctl and fails the test unless it exits 0.
func (c *cluster) must(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("warrenctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// far is the clock the tests give warrenctl: far enough ahead that every
// relative time reads "5 weeks ago", so tables are deterministic.
func far() time.Time { return time.Now().Add(1000 * time.Hour) }

func runWith(ctx context.Context, host, stdin string, args ...string) result {
	return runOpts{env: map[string]string{cli.EnvHost: host}, stdin: stdin}.run(ctx, args...)
}

// runOpts are warrenctl's surroundings as a test sets them.
type runOpts struct {
	env   map[string]string
	stdin string
	now   time.Time     // the clock; zero: far()
	retry time.Duration // App.Retry: zero for the default, negative for none
}

func (o runOpts) run(ctx context.Context, args ...string) result {
	var out, errb bytes.Buffer
	now := far
	if !o.now.IsZero() {
		now = func() time.Time { return o.now }
	}
	app := &cli.App{Stdin: strings.NewReader(o.stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return o.env[k] },
		Now:    now, PollEvery: 20 * time.Millisecond, Retry: o.retry}
	code := app.Run(ctx, args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// mask replaces each of ids (and its 12-character prefix) by x's of the
// same length, so that tables keep their alignment.
func mask(s string, ids ...string) string {
	for _, id := range ids {
		s = strings.ReplaceAll(s, id, strings.Repeat("x", len(id)))
		if len(id) > 12 {
			s = strings.ReplaceAll(s, id[:12], strings.Repeat("x", 12))
		}
	}
	return s
}

// maskColumn replaces the cells of a table's column (from its header to
// the next one's) with x's of the header's width: values that depend on
// the machine (a disk's free space), and the width they give the column.
func maskColumn(s, header, next string) string {
	lines := strings.Split(s, "\n")
	from, to := strings.Index(lines[0], header), strings.Index(lines[0], next)
	if from < 0 || to < from {
		return s
	}
	for i, l := range lines {
		if len(l) <= from {
			continue
		}
		end := min(to, len(l))
		cell, rest := strings.TrimSpace(l[from:end]), l[end:]
		switch {
		case i == 0:
			cell = header
		case cell != "":
			cell = strings.Repeat("x", len(header))
		default:
			cell = strings.Repeat(" ", len(header))
		}
		if rest != "" {
			cell += "   "
		}
		lines[i] = strings.TrimRight(l[:from]+cell+rest, " ")
	}
	return strings.Join(lines, "\n")
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// tableRows splits a table into its rows of fields (split on runs of 3+
// spaces, the column padding), without the header.
func tableRows(table string) [][]string {
	var rows [][]string
	lines := strings.Split(strings.TrimSpace(table), "\n")
	for _, l := range lines[1:] {
		var fields []string
		for _, f := range strings.Split(l, "   ") {
			if f = strings.TrimSpace(f); f != "" {
				fields = append(fields, f)
			}
		}
		rows = append(rows, fields)
	}
	return rows
}

func sleep() { time.Sleep(20 * time.Millisecond) }
