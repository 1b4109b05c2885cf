// Package managertest starts a real warren-manager in the test's process,
// serving its API on a unix socket in a temp dir, for the tests of the
// manager, the agent and warrenctl.
package managertest

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager"
)

// Manager is a running manager and a client for it.
type Manager struct {
	*manager.Manager
	DataDir string
	Socket  string
	Client  *client.Client
	t       testing.TB
	closed  bool
}

// Options tune the manager; zero values take test-friendly defaults.
type Options struct {
	DataDir string // reuse a data dir (restart tests)
	// DataDirs are a Cluster's members' data dirs, by member ID (default:
	// a temp dir each).
	DataDirs        map[string]string
	RescheduleGrace time.Duration
	NodeTimeout     time.Duration
	// AgentSocket is the agent's local socket the manager passes image,
	// log and exec calls to; AgentSockets, by member ID, those of a
	// Cluster's members (managers and workers).
	AgentSocket  string
	AgentSockets map[string]string
	// Logger receives a Cluster's members' logs (default: stderr, warnings
	// only unless -v).
	Logger *slog.Logger
	// HeartbeatTimeout and CommitTimeout are Raft's (default: the
	// manager's).
	HeartbeatTimeout time.Duration
	CommitTimeout    time.Duration
	// RaftLogStore is the managers' --raft-log-store (default: theirs).
	RaftLogStore string
	// RaftTrailingLogs and RaftWALSegmentBytes are the managers'
	// (manager.Config).
	RaftTrailingLogs    uint64
	RaftWALSegmentBytes int
}

// Start runs a manager until the test ends.
func Start(t testing.TB, o Options) *Manager {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	sockDir, err := os.MkdirTemp("", "warren-api-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "api.sock")
	logLevel := slog.LevelWarn
	if testing.Verbose() {
		logLevel = slog.LevelInfo
	}
	m, err := manager.New(manager.Config{
		DataDir: o.DataDir, Hostname: "node-1", RaftLogStore: o.RaftLogStore,
		RescheduleGrace: o.RescheduleGrace, NodeTimeout: o.NodeTimeout, RaftLogLevel: "error",
		AgentSocket: o.AgentSocket,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel})),
	})
	if err != nil {
		t.Fatalf("start manager: %v", err)
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	go m.Serve(l)
	c, err := client.New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	tm := &Manager{Manager: m, DataDir: o.DataDir, Socket: sock, Client: c, t: t}
	t.Cleanup(tm.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		t.Fatalf("manager not ready: %v", err)
	}
	return tm
}

// Stop stops the manager (as a clean shutdown); Cleanup calls it too.
func (m *Manager) Stop() {
	if m.closed {
		return
	}
	m.closed = true
	m.Client.Close()
	if err := m.Manager.Close(); err != nil {
		m.t.Errorf("close manager: %v", err)
	}
}
