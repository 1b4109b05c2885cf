package containerdtest

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestSocketPathTooLong(t *testing.T) {
	dir := "/tmp/" + strings.Repeat("x", 110)
	if _, err := StartDaemon(dir); err == nil || !strings.Contains(err.Error(), "socket path") {
		t.Errorf("StartDaemon(%d-byte dir) = %v; want an error about the socket path", len(dir), err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("StartDaemon created %s before refusing it", dir)
	}
}

func TestStartKillRestartStop(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "wctd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d, err := StartDaemon(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Stop() })
	pid := d.cmd.Process.Pid
	if err := ping(d.Socket); err != nil {
		t.Fatalf("containerd does not answer on %s: %v", d.Socket, err)
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if d.Running() || syscall.Kill(pid, 0) == nil {
		t.Fatalf("containerd %d still runs after Kill", pid)
	}
	if err := d.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if err := ping(d.Socket); err != nil {
		t.Fatalf("no answer after Restart: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "root", "io.containerd.metadata.v1.bolt")); err != nil {
		t.Errorf("containerd's root is not under the given dir: %v", err)
	}
	pid = d.cmd.Process.Pid
	if err := d.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("containerd %d still runs after Stop", pid)
	}
	if m := d.Mounts(); len(m) != 0 {
		t.Errorf("mounts left under %s: %v", dir, m)
	}
	if err := d.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}
