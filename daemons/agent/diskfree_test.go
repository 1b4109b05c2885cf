package agent_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-edge/warren/daemons/agent/runtime/fake"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

// TestLowDiskTakesNoNewTasks: the heartbeat reports the space of the
// agent's data partition. Once it is low, the node takes no new task (the
// task's error says why) and keeps the one it runs; once space is back,
// it takes the new one.
func TestLowDiskTakesNoNewTasks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1g"); err != nil {
		t.Skipf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	// resize changes the partition's size (an empty tmpfs takes no memory).
	resize := func(size string) {
		t.Helper()
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_REMOUNT, "size="+size); err != nil {
			t.Fatalf("resize the tmpfs on %s to %s: %v", dir, size, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	n := &node{t: t, m: managertest.Start(t, managertest.Options{}), rt: fake.New(), ctx: ctx, dataDir: dir}
	n.rt.AddImage("localhost/busybox:latest")
	n.startAgent(n.rt)

	waitDisk := func(low bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		var d *api.NodeDisk
		for time.Now().Before(deadline) {
			if nd, err := n.m.Client.Node(ctx, "node-1"); err == nil {
				if d = nd.Description.Disk; d != nil && d.Path == dir && d.Low() == low {
					return
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("node-1's disk = %+v, want %s reported, low %v", d, dir, low)
	}
	waitDisk(false)
	if _, err := n.m.Client.CreateService(ctx, svc("keep", 1)); err != nil {
		t.Fatal(err)
	}
	kept := n.waitTasks("keep", "one running", countRunning(1))[0]

	resize("64m") // under the 256MiB a node keeps free
	waitDisk(true)
	if _, err := n.m.Client.CreateService(ctx, svc("new", 1)); err != nil {
		t.Fatal(err)
	}
	n.waitTasks("new", "one pending for lack of disk", func(ts []api.Task) bool {
		return len(ts) == 1 && ts[0].Status.State == api.TaskPending && strings.Contains(ts[0].Status.Err, "low on disk")
	})
	if ts := running(n.waitTasks("keep", "one running", countRunning(1))); ts[0].ID != kept.ID {
		t.Errorf("the task running before the disk got low was replaced by %s, want %s kept", ts[0].ID, kept.ID)
	}

	resize("1g")
	waitDisk(false)
	n.waitTasks("new", "one running once space is back", countRunning(1))
}
