package node

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// procStatus reads the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read the status of task process %d: %v", pid, err)
	}
	st := map[string]string{}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok {
			st[k] = strings.TrimSpace(v)
		}
	}
	return st
}

// pidsMax reads pids.max of pid's cgroup, as the host sees its path.
func pidsMax(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) == 3 && (f[1] == "pids" || strings.Contains(f[1], ",pids")) {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", f[2], "pids.max"))
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(string(v))
		}
	}
	t.Fatalf("no pids cgroup for pid %d:\n%s", pid, b)
	return ""
}

// TestTasksAreConfinedByDefault runs services through the API, the real
// agent and containerd, and reads from the host what their processes run
// with: the defaults of a plain spec, and the spec's opt-outs.
func TestTasksAreConfinedByDefault(t *testing.T) {
	n := startNode(t)
	sleeper := []string{"sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"}
	plain := api.ServiceSpec{Name: "plain", Image: "localhost/busybox", Replicas: 1, Command: sleeper,
		StopGracePeriod: api.Duration(2 * time.Second)}
	open := plain
	open.Name, open.CapDrop, open.Seccomp, open.AllowNewPrivileges, open.PidsLimit, open.User =
		"open", []string{"ALL"}, api.SeccompUnconfined, true, api.PidsUnlimited, "65534"
	for _, s := range []api.ServiceSpec{plain, open} {
		if _, err := n.c.CreateService(n.ctx, s); err != nil {
			t.Fatalf("create %s: %v", s.Name, err)
		}
	}
	hostNS, err := os.Readlink("/proc/self/ns/cgroup")
	if err != nil {
		t.Fatal(err)
	}

	pid := running(n.waitTasks("plain", "1 running", countRunning(1)))[0].Status.PID
	st := procStatus(t, pid)
	if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" || st["CapEff"] != "00000000a80425fb" {
		t.Errorf("a task of a plain spec runs with Seccomp %q NoNewPrivs %q CapEff %q; want 2, 1 and Docker's default set 00000000a80425fb",
			st["Seccomp"], st["NoNewPrivs"], st["CapEff"])
	}
	if got := pidsMax(t, pid); got != strconv.Itoa(api.DefaultPidsLimit) {
		t.Errorf("a task of a plain spec has pids.max %q, want the default %d", got, api.DefaultPidsLimit)
	}
	if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/cgroup", pid)); err != nil || ns == hostNS {
		t.Errorf("a task of a plain spec is in cgroup namespace %q (%v), the host's is %q; want one of its own", ns, err, hostNS)
	}

	pid = running(n.waitTasks("open", "1 running", countRunning(1)))[0].Status.PID
	st = procStatus(t, pid)
	if st["Seccomp"] != "0" || st["NoNewPrivs"] != "0" || st["CapEff"] != "0000000000000000" || strings.Fields(st["Uid"])[0] != "65534" {
		t.Errorf("a task with every opt-out runs with Seccomp %q NoNewPrivs %q CapEff %q Uid %q; want 0, 0, 0000000000000000 and 65534",
			st["Seccomp"], st["NoNewPrivs"], st["CapEff"], st["Uid"])
	}
	if got := pidsMax(t, pid); got != "max" {
		t.Errorf("a task with pidsLimit -1 has pids.max %q, want max", got)
	}
}
