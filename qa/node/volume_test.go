package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// TestVolumesAndMounts runs a service with a volume, an allowed host
// folder and a tmpfs through the API, the real agent and containerd: the
// volume's data outlives a task's replacement, the tmpfs is a tmpfs with
// its size and mode, and binds outside --allow-bind are rejected with a
// message that names the setting.
func TestVolumesAndMounts(t *testing.T) {
	allowed := t.TempDir()
	if err := os.WriteFile(filepath.Join(allowed, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(allowed, "etc")); err != nil {
		t.Fatal(err)
	}
	n := startNodeWith(t, "--allow-bind", allowed)
	if _, err := n.c.CreateVolume(n.ctx, api.VolumeSpec{Name: "data"}); err != nil {
		t.Fatalf("volume create data: %v", err)
	}
	spec := api.ServiceSpec{Name: "vol", Image: "localhost/busybox", Replicas: 1,
		Command: []string{"sh", "-c", "hostname >> /data/log; trap 'exit 0' TERM; sleep 1000 & wait"},
		Mounts: []api.Mount{
			{Type: api.MountVolume, Source: "data", Target: "/data"},
			{Type: api.MountBind, Source: allowed, Target: "/host", ReadOnly: true},
			{Type: api.MountTmpfs, Target: "/scratch", Size: 8 << 20, Mode: "1770"},
		},
		StopGracePeriod: api.Duration(2 * time.Second)}
	if _, err := n.c.CreateService(n.ctx, spec); err != nil {
		t.Fatalf("service create: %v", err)
	}
	first := running(n.waitTasks("vol", "a running task", countRunning(1)))[0]

	vol, err := n.c.Volume(n.ctx, "data")
	if err != nil || vol.NodeID != n.m.NodeID() {
		t.Errorf("volume data after its first task ran: %+v, %v; want it bound to node %s", vol, err, n.m.NodeID())
	}
	logFile := filepath.Join(n.dataDir, "volumes", "data", "log")
	eventually(t, "the first task writes to the volume", 10*time.Second, func() error {
		_, err := os.Stat(logFile)
		return err
	})
	mounts := n.exec(first.ID, "cat", "/proc/mounts")
	var scratch string
	for line := range strings.Lines(mounts) {
		if f := strings.Fields(line); len(f) >= 4 && f[1] == "/scratch" {
			scratch = line
		}
	}
	if !strings.HasPrefix(scratch, "tmpfs /scratch tmpfs ") || !strings.Contains(scratch, "size=8192k") || !strings.Contains(scratch, "mode=1770") {
		t.Errorf("/scratch in the container's /proc/mounts: %q, want a tmpfs with size=8192k and mode=1770; all:\n%s", scratch, mounts)
	}
	if got := n.exec(first.ID, "cat", "/host/hello"); got != "from the host\n" {
		t.Errorf("cat /host/hello in the container = %q, want the host file", got)
	}
	if got := n.exec(first.ID, "sh", "-c", "touch /host/x 2>&1 || echo refused"); !strings.Contains(got, "refused") {
		t.Errorf("writing to the read-only bind: %q, want it refused", got)
	}

	// rm is refused while the task uses the volume, naming the service.
	if err := n.c.RemoveVolume(n.ctx, "data"); err == nil || !strings.Contains(err.Error(), "in use by service vol") {
		t.Errorf("volume rm data while vol runs = %v, want refused naming vol", err)
	}

	// Replace the task: the new one finds the first one's data.
	cur, err := n.c.Service(n.ctx, "vol", client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec.Env = []string{"ROUND=2"}
	if _, err := n.c.UpdateService(n.ctx, "vol", cur.Spec, cur.Version); err != nil {
		t.Fatalf("service update: %v", err)
	}
	second := running(n.waitTasks("vol", "a new running task", func(ts []api.Task) bool {
		r := running(ts)
		return len(r) == 1 && r[0].ID != first.ID
	}))[0]
	eventually(t, "the new task reads the first task's data", 10*time.Second, func() error {
		got := n.exec(second.ID, "cat", "/data/log")
		if lines := strings.Count(got, "\n"); lines != 2 {
			return fmt.Errorf("cat /data/log in the new task = %q, want two lines (one per task)", got)
		}
		return nil
	})

	// Binds outside --allow-bind: rejected, the task says why.
	for _, c := range []struct{ src, want string }{
		{"/etc", "bind source /etc is not under a path this node allows: add it with warren agent --allow-bind (allowed: " + allowed + ")"},
		{filepath.Join(allowed, "etc"), "leads to /etc, which is not under a path this node allows"},
	} {
		name := "bad" + randName("")
		bad := api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: 1, Command: []string{"sleep", "100"},
			Mounts:        []api.Mount{{Type: api.MountBind, Source: c.src, Target: "/x"}},
			RestartPolicy: api.RestartPolicy{Condition: api.RestartNone}}
		if _, err := n.c.CreateService(n.ctx, bad); err != nil {
			t.Fatalf("service create %s: %v", name, err)
		}
		ts := n.waitTasks(name, "a rejected task", func(ts []api.Task) bool {
			return len(ts) > 0 && ts[0].Status.State == api.TaskRejected
		})
		if !strings.Contains(ts[0].Status.Err, c.want) {
			t.Errorf("task with a bind of %s: error %q, want it to say %q", c.src, ts[0].Status.Err, c.want)
		}
	}

	// Once the service is gone, rm goes through, and the node's agent
	// deletes the data.
	if err := n.c.RemoveService(n.ctx, "vol", 0); err != nil {
		t.Fatalf("service rm vol: %v", err)
	}
	eventually(t, "volume rm data once vol's tasks have stopped", 30*time.Second, func() error {
		return n.c.RemoveVolume(n.ctx, "data")
	})
	eventually(t, "the agent deletes the removed volume's data", 30*time.Second, func() error {
		if _, err := os.Stat(filepath.Dir(logFile)); !os.IsNotExist(err) {
			return fmt.Errorf("stat %s: %v, want it gone", filepath.Dir(logFile), err)
		}
		return nil
	})
}
