package nspawn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestBootSettles: a fresh host boots to running (no failed unit) with the
// Warren units up, the API socket 0660 root:warren and the daemons Ready.
func TestBootSettles(t *testing.T) {
	c := NewCluster(t, HostSpec{Name: "n1"})
	h := c.Hosts[0]
	ctx := ctxFor(t, 2*time.Minute)
	for _, d := range c.Running() {
		if _, err := h.WaitActive(ctx, d+".service"); err != nil {
			t.Fatalf("%s never became active: %v", d, err)
		}
	}
	state, err := h.WaitSettled(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if state != "running" {
		failed, _ := h.Exec(ctx, "systemctl --failed --no-pager")
		t.Errorf("is-system-running = %q after boot, want running; failed units:\n%s", state, failed)
	}
	out, err := h.Exec(ctx, "stat -c '%a %U:%G' /run/warren/api.sock /run/warren")
	if err != nil {
		t.Fatal(err)
	}
	if want := "660 root:warren\n751 root:warren\n"; out != want { // 751: anyone passes through, each socket decides who uses it
		t.Errorf("stat api.sock, /run/warren = %q, want %q", out, want)
	}
	info, err := managerInfo(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if info.ClusterID == "" || info.RaftState != "Leader" {
		t.Errorf("manager info after boot = %+v, want a cluster with this node leading", info)
	}

	// What each daemon does under its unit's user and sandbox, once it
	// serves:
	//   - The daemons that follow files wait for inotify, not for a clock
	//     (wake.Dir): the agent its containers' logs, warren-dns and
	//     warren-ingress the agent's mesh status. The watch must be
	//     allowed, or the daemon reads on a clock instead, which works but
	//     wakes an idle node for nothing.
	//   - Each daemon lets go of the binary's pages that only start-up
	//     used (procs.ReleaseStartupPages). How much of the code is
	//     resident after it depends on what the daemon has done since, so
	//     the test reads the daemon's word for it and shows the figure.
	for _, d := range c.Running() {
		pid, err := h.MainPID(ctx, d+".service")
		if err != nil {
			t.Fatal(err)
		}
		if d != "warren-manager" {
			out, err := h.Exec(ctx, fmt.Sprintf("cat /proc/%d/fdinfo/* | grep -c '^inotify wd:' || true", pid))
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(out) == "0" {
				t.Errorf("%s (pid %d) holds no inotify watch: it reads its files on a clock (its user cannot watch their directory?)", d, pid)
			}
		}
		out, err := h.Exec(ctx, fmt.Sprintf("journalctl -u %s.service -o cat | grep -E 'released the start-up pages|could not release' || true", d))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "released the start-up pages") || strings.Contains(out, "could not release") {
			t.Errorf("%s did not release the binary's start-up pages; its journal: %q", d, out)
		}
		// The code: the binary's executable mapping, its size and its
		// resident part, in kB.
		out, err = h.Exec(ctx, fmt.Sprintf(`awk '/^[0-9a-f]+-[0-9a-f]+ r-xp .*\/warren$/ {code=1; next} /^[0-9a-f]+-/ {code=0} code && /^(Size|Rss):/ {printf "%%s ", $2}' /proc/%d/smaps`, pid))
		if err != nil {
			t.Fatal(err)
		}
		var size, rss int
		if _, err := fmt.Sscan(out, &size, &rss); err != nil || size == 0 {
			t.Fatalf("%s (pid %d): the binary's code mapping in smaps: %q (%v)", d, pid, out, err)
		}
		t.Logf("%s: %d of the binary's %d kB of code resident (before the release, start-up left 80-85 %%)", d, rss, size)
	}
}

func managerInfo(ctx context.Context, h *Host) (*api.Info, error) {
	cl, err := h.Client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return cl.Info(ctx)
}

// TestSocketActivation: with warren-manager stopped, a connection to
// /run/warren/api.sock starts it, and the request that woke it is served.
func TestSocketActivation(t *testing.T) {
	c := NewCluster(t, HostSpec{Name: "n1"})
	h := c.Hosts[0]
	ctx := ctxFor(t, 2*time.Minute)
	if _, err := h.WaitActive(ctx, "warren-manager.service"); err != nil {
		t.Fatal(err)
	}
	// The node's other daemons hold connections to the API and would wake
	// the manager at once: stop them first (containers stay).
	clients := ""
	for _, d := range c.Running() {
		if d != "warren-manager" {
			clients += " " + d + ".service"
		}
	}
	if _, err := h.Exec(ctx, "systemctl stop"+clients+" warren-manager.service"); err != nil {
		t.Fatal(err)
	}
	m, err := h.Unit(ctx, "warren-manager.service", "ActiveState")
	if err != nil {
		t.Fatal(err)
	}
	if m["ActiveState"] != "inactive" {
		t.Fatalf("after systemctl stop, warren-manager is %q, want inactive", m["ActiveState"])
	}
	s, _ := h.Unit(ctx, "warren-manager.socket", "ActiveState", "SubState")
	if s["SubState"] != "listening" {
		t.Fatalf("warren-manager.socket is %v after the service stopped, want listening", s)
	}
	// The socket file must survive the daemon's stop: the unit owns it.
	if _, err := h.Exec(ctx, "test -S /run/warren/api.sock"); err != nil {
		t.Fatalf("api.sock is gone after warren-manager stopped: %v", err)
	}
	start := time.Now()
	info, err := managerInfo(ctx, h)
	if err != nil {
		t.Fatalf("GET /v1/info through the socket of a stopped manager: %v", err)
	}
	t.Logf("socket activation: manager answered %.2f s after the connect (cluster %s)", time.Since(start).Seconds(), info.ClusterID)
	if _, err := h.WaitActive(ctx, "warren-manager.service"); err != nil {
		t.Fatal(err)
	}
	if clients != "" {
		if _, err := h.Exec(ctx, "systemctl start"+clients); err != nil {
			t.Errorf("starting the other daemons again: %v", err)
		}
	}
}

// TestKillRestartsWithState: kill -9 of each daemon's main process;
// systemd restarts it and what it kept survives: the manager's cluster and
// services, the agent's node and containers.
func TestKillRestartsWithState(t *testing.T) {
	c := NewCluster(t, HostSpec{Name: "n1"})
	h := c.Hosts[0]
	ctx := ctxFor(t, 4*time.Minute)
	for _, d := range c.Running() {
		if _, err := h.WaitActive(ctx, d+".service"); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := h.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	before, err := cl.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateService(ctx, api.ServiceSpec{Name: "kept", Image: "localhost/busybox:latest", Replicas: 0}); err != nil {
		t.Fatal(err)
	}
	agentBefore := agentStatus(ctx, t, h)

	for _, d := range c.Running() {
		unit := d + ".service"
		m, err := h.Unit(ctx, unit, "MainPID", "NRestarts")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Exec(ctx, "kill -9 "+m["MainPID"]); err != nil {
			t.Fatal(err)
		}
		after, err := h.WaitUnit(ctx, unit, []string{"ActiveState", "MainPID", "NRestarts"}, func(n map[string]string) bool {
			return n["ActiveState"] == "active" && n["MainPID"] != m["MainPID"] && n["MainPID"] != "0" && n["NRestarts"] != m["NRestarts"]
		})
		if err != nil {
			t.Fatalf("kill -9 %s (pid %s): not restarted: %v", unit, m["MainPID"], err)
		}
		t.Logf("kill -9 %s: restarted as pid %s (NRestarts %s → %s)", unit, after["MainPID"], m["NRestarts"], after["NRestarts"])
	}

	after, err := cl.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.ClusterID != before.ClusterID || after.NodeID != before.NodeID {
		t.Errorf("after kill -9 the manager is cluster %s node %s, want cluster %s node %s", after.ClusterID, after.NodeID, before.ClusterID, before.NodeID)
	}
	if _, err := cl.Service(ctx, "kept", client.ReadOptions{}); err != nil {
		t.Errorf("service created before kill -9 of the manager: %v", err)
	}
	if agentBefore != nil {
		if a := agentStatus(ctx, t, h); a == nil || a.NodeID != agentBefore.NodeID {
			t.Errorf("agent after kill -9 = %+v, want node %s", a, agentBefore.NodeID)
		}
	}
}

// agentStatus reads GET /v1/status from the host's agent.sock; nil when
// the binary has no agent.
func agentStatus(ctx context.Context, t *testing.T, h *Host) *api.AgentStatus {
	t.Helper()
	if !slices.Contains(h.c.Running(), "warren-agent") {
		return nil
	}
	sock := fmt.Sprintf("/proc/%d/root/run/warren/agent.sock", h.Leader())
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	var st api.AgentStatus
	for i := 0; ; i++ {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://agent/v1/status", nil)
		resp, err := hc.Do(req)
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil {
				return &st
			}
		}
		if i > 50 || ctx.Err() != nil {
			t.Fatalf("agent status on %s: %v", h.Name(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestWatchdogRestartsStoppedManager: a manager that stops answering
// (SIGSTOP) stops feeding the watchdog; systemd records Result=watchdog and
// restarts it.
func TestWatchdogRestartsStoppedManager(t *testing.T) {
	c := NewCluster(t, HostSpec{Name: "n1"})
	h := c.Hosts[0]
	ctx := ctxFor(t, 3*time.Minute)
	m, err := h.WaitActive(ctx, "warren-manager.service")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := h.Exec(ctx, "kill -STOP "+m["MainPID"]); err != nil {
		t.Fatal(err)
	}
	// Result=watchdog shows while the restart is pending (RestartSec=);
	// the journal keeps it after.
	sawResult := false
	_, err = h.WaitUnit(ctx, "warren-manager.service", []string{"ActiveState", "MainPID", "Result"}, func(n map[string]string) bool {
		if n["Result"] == "watchdog" {
			sawResult = true
		}
		return n["ActiveState"] == "active" && n["MainPID"] != m["MainPID"] && n["MainPID"] != "0"
	})
	if err != nil {
		t.Fatalf("SIGSTOPped manager (pid %s) was not restarted: %v", m["MainPID"], err)
	}
	took := time.Since(start)
	j, _ := h.Exec(ctx, "journalctl -u warren-manager.service --no-pager -o cat")
	if !strings.Contains(j, "Watchdog timeout") || !strings.Contains(j, "Failed with result 'watchdog'") {
		t.Errorf("journal of warren-manager has no watchdog timeout / Result=watchdog:\n%s", lastLines(j, 30))
	}
	t.Logf("SIGSTOP → restarted in %.1f s (Result=watchdog seen in systemctl show: %v)", took.Seconds(), sawResult)
	if _, err := managerInfo(ctx, h); err != nil {
		t.Errorf("manager after the watchdog restart: %v", err)
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// loadBusybox is loadTestImage for a test, which it skips where the image
// cannot be made or loaded.
func loadBusybox(ctx context.Context, t *testing.T, h *Host) {
	t.Helper()
	if !fileExists(h.c.Paths.Bin + "/warrenctl") {
		t.Skip("no bin/warrenctl yet")
	}
	switch err := loadTestImage(ctx, h); {
	case errors.Is(err, errNoTestImage):
		t.Skip(err)
	case err != nil:
		t.Fatal(err)
	}
}

// runningTask waits until service has one running task and returns it.
func runningTask(ctx context.Context, t *testing.T, h *Host, service string) api.Task {
	t.Helper()
	cl, err := h.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var last []api.Task
	for ctx.Err() == nil {
		ts, err := cl.Tasks(ctx, tasksOf(service))
		if err == nil {
			last = ts
			for _, tk := range ts {
				if tk.Status.State == api.TaskRunning {
					return tk
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("service %s has no running task: %+v", service, last)
	return api.Task{}
}

// containerPIDs lists the PIDs of the processes containerd runs for
// Warren on the host (ctr tasks ls in namespace warren).
func containerPIDs(ctx context.Context, t *testing.T, h *Host) map[string]string {
	t.Helper()
	pids, err := runningPIDs(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// TestAgentStopLeavesContainers: `systemctl stop warren-agent` leaves the
// containers running (KillMode=process, the shims are containerd's), and
// the started agent adopts them instead of replacing them.
func TestAgentStopLeavesContainers(t *testing.T) {
	c := NewCluster(t, HostSpec{Name: "n1"})
	if !slices.Contains(c.Running(), "warren-agent") {
		t.Skip("this warren binary has no agent yet")
	}
	h := c.Hosts[0]
	ctx := ctxFor(t, 4*time.Minute)
	if _, err := h.WaitActive(ctx, "warren-agent.service"); err != nil {
		t.Fatal(err)
	}
	loadBusybox(ctx, t, h)
	if out, err := h.Exec(ctx, "warrenctl service create --name sleeper localhost/busybox:latest sleep 100000"); err != nil {
		t.Fatalf("warrenctl service create: %v\n%s", err, out)
	}
	task := runningTask(ctx, t, h, "sleeper")
	before := containerPIDs(ctx, t, h)
	if len(before) != 1 {
		t.Fatalf("containerd runs %v, want one container", before)
	}

	if _, err := h.Exec(ctx, "systemctl stop warren-agent.service"); err != nil {
		t.Fatal(err)
	}
	if got := containerPIDs(ctx, t, h); !mapsEqual(got, before) {
		t.Fatalf("after systemctl stop warren-agent, containerd runs %v, want %v still", got, before)
	}
	for _, pid := range before {
		if _, err := h.Exec(ctx, "kill -0 "+pid); err != nil {
			t.Errorf("container process %s died with the agent: %v", pid, err)
		}
	}

	if _, err := h.Exec(ctx, "systemctl start warren-agent.service"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.WaitActive(ctx, "warren-agent.service"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // let a wrong agent replace what it found
	if got := containerPIDs(ctx, t, h); !mapsEqual(got, before) {
		t.Errorf("after the agent started again, containerd runs %v, want the same %v (adopted, not replaced)", got, before)
	}
	after := runningTask(ctx, t, h, "sleeper")
	if after.ID != task.ID {
		t.Errorf("after the agent restart the running task is %s, want the adopted %s", after.ID, task.ID)
	}
	j, _ := h.Exec(ctx, "journalctl -u warren-agent.service --no-pager -o cat | grep -i adopt | tail -3")
	t.Logf("agent journal: %s", strings.TrimSpace(j))
	// The socket file belongs to warren-agent.socket, which stayed up: a
	// daemon that removes it on stop leaves a listening socket no one can
	// reach by path.
	if _, err := h.Exec(ctx, "test -S /run/warren/agent.sock"); err != nil {
		t.Errorf("/run/warren/agent.sock is gone after the agent's stop and start (the daemon removed the socket unit's file): %v", err)
	} else {
		t.Logf("agent status after start: %+v", agentStatus(ctx, t, h))
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestRebootComesBack: after `systemctl reboot` the host boots again on the
// same disk, the Warren services come back running and keep their state.
func TestRebootComesBack(t *testing.T) {
	c := NewCluster(t, HostSpec{Name: "n1"})
	h := c.Hosts[0]
	ctx := ctxFor(t, 4*time.Minute)
	for _, d := range c.Running() {
		if _, err := h.WaitActive(ctx, d+".service"); err != nil {
			t.Fatal(err)
		}
	}
	before, err := managerInfo(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := h.Client()
	if _, err := cl.CreateService(ctx, api.ServiceSpec{Name: "survivor", Image: "localhost/busybox:latest", Replicas: 0}); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	withContainer := slices.Contains(c.Running(), "warren-agent") && fileExists(c.Paths.Bin+"/warrenctl")
	if withContainer {
		loadBusybox(ctx, t, h)
		if out, err := h.Exec(ctx, "warrenctl service create --name sleeper localhost/busybox:latest sleep 100000"); err != nil {
			t.Fatalf("warrenctl service create: %v\n%s", err, out)
		}
		runningTask(ctx, t, h, "sleeper")
	}

	if err := h.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range c.Running() {
		if _, err := h.WaitActive(ctx, d+".service"); err != nil {
			t.Fatalf("after reboot: %v", err)
		}
	}
	if state, _ := h.WaitSettled(ctx); state != "running" {
		failed, _ := h.Exec(ctx, "systemctl --failed --no-pager")
		t.Errorf("after reboot is-system-running = %q, want running:\n%s", state, failed)
	}
	after, err := managerInfo(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if after.ClusterID != before.ClusterID || after.NodeID != before.NodeID {
		t.Errorf("after reboot the manager is cluster %s node %s, want %s %s", after.ClusterID, after.NodeID, before.ClusterID, before.NodeID)
	}
	cl, _ = h.Client()
	defer cl.Close()
	if _, err := cl.Service(ctx, "survivor", client.ReadOptions{}); err != nil {
		t.Errorf("service created before the reboot: %v", err)
	}
	if withContainer {
		runningTask(ctx, t, h, "sleeper")
	}
	journals, _ := h.Exec(ctx, "journalctl --list-boots --no-pager | wc -l")
	t.Logf("rebooted; boots in the journal: %s", strings.TrimSpace(journals))
}

// TestSSHWarrenctl: `ssh HOST warrenctl service ls` from the test's side of
// the network, as root with a key written before boot.
func TestSSHWarrenctl(t *testing.T) {
	if os.Geteuid() == 0 && !fileExistsInPath("ssh") {
		t.Skip("no ssh client (make image-deps installs openssh-client)")
	}
	key, pub, err := SSHKey(t.TempDir())
	if err != nil {
		t.Skip(err)
	}
	c := NewCluster(t, HostSpec{Name: "n1", AuthorizedKeys: []string{pub}})
	h := c.Hosts[0]
	ctx := ctxFor(t, 2*time.Minute)
	if !fileExists(c.Paths.Bin + "/warrenctl") {
		t.Skip("no bin/warrenctl yet")
	}
	if _, err := h.WaitActive(ctx, "ssh.service"); err != nil {
		t.Fatal(err)
	}
	cl, _ := h.Client()
	if _, err := cl.CreateService(ctx, api.ServiceSpec{Name: "over-ssh", Image: "localhost/busybox:latest", Replicas: 0}); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	out, err := c.SSH(ctx, key, "root", h, "warrenctl service ls")
	if err != nil {
		t.Fatalf("ssh root@%s warrenctl service ls: %v", h.Addr, err)
	}
	if !strings.Contains(out, "over-ssh") {
		t.Errorf("ssh root@%s warrenctl service ls printed\n%s\nwant the service over-ssh in it", h.Addr, out)
	}
	// No password logins, whatever the key.
	if _, err := c.LanExec(ctx, "ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "PreferredAuthentications=password", "-o", "ConnectTimeout=5", "root@"+h.Addr.String(), "true"); err == nil {
		t.Errorf("ssh with a password (none given) logged in")
	}
}

func fileExistsInPath(name string) bool {
	for _, d := range strings.Split(os.Getenv("PATH"), ":") {
		if fileExists(d + "/" + name) {
			return true
		}
	}
	return false
}

// TestCloudInitFirstManager: a host booted with a NoCloud seed (the example
// in image/cloud-init) comes up as an initialised manager with the node
// name and labels of its warren.conf, and the operator the seed made (in
// group warren, SSH key only) runs warrenctl over SSH without root.
func TestCloudInitFirstManager(t *testing.T) {
	key, pub, err := SSHKey(t.TempDir())
	if err != nil {
		t.Skip(err)
	}
	p, err := DefaultPaths()
	if err != nil {
		t.Fatal(err)
	}
	userData, err := os.ReadFile(p.Repo + "/image/cloud-init/user-data")
	if err != nil {
		t.Fatal(err)
	}
	metaData, err := os.ReadFile(p.Repo + "/image/cloud-init/meta-data")
	if err != nil {
		t.Fatal(err)
	}
	// The example's key placeholder becomes the test's key.
	ud := strings.ReplaceAll(string(userData), "ssh-ed25519 AAAA...REPLACE-ME operator@laptop", pub)
	if ud == string(userData) {
		t.Fatal("image/cloud-init/user-data has no key placeholder to replace")
	}
	c := NewCluster(t, HostSpec{Name: "edge-1", Seed: &Seed{MetaData: string(metaData), UserData: ud}})
	h := c.Hosts[0]
	ctx := ctxFor(t, 3*time.Minute)
	if out, err := h.Exec(ctx, "cloud-init status --wait --long"); err != nil {
		t.Fatalf("cloud-init status: %v\n%s", err, out)
	}
	conf, err := h.Exec(ctx, "cat /etc/warren/warren.conf")
	if err != nil {
		t.Fatalf("cloud-init wrote no /etc/warren/warren.conf: %v", err)
	}
	if _, err := h.WaitActive(ctx, "warren-manager.service"); err != nil {
		t.Fatal(err)
	}
	info, err := managerInfo(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if info.ClusterID == "" || info.RaftState != "Leader" || info.Nodes < 1 {
		t.Errorf("manager from the seed: %+v, want an initialised one-node cluster it leads", info)
	}
	cl, _ := h.Client()
	defer cl.Close()
	node, err := cl.Node(ctx, info.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	if node.Spec.Labels["zone"] != "lab" || node.Description.Hostname != "edge-1" {
		t.Errorf("node from warren.conf\n%s\n= labels %v hostname %q, want zone=lab and edge-1", conf, node.Spec.Labels, node.Description.Hostname)
	}
	if _, err := h.WaitActive(ctx, "ssh.service"); err != nil {
		t.Fatal(err)
	}
	if !fileExists(c.Paths.Bin + "/warrenctl") {
		t.Skip("no bin/warrenctl yet")
	}
	out, err := c.SSH(ctx, key, "ops", h, "id -nG; warrenctl service ls")
	if err != nil {
		t.Fatalf("ssh ops@%s warrenctl service ls: %v", h.Addr, err)
	}
	if !strings.Contains(out, "warren") {
		t.Errorf("user ops from the seed is not in group warren: %s", out)
	}
	t.Logf("ssh ops@edge-1: %s", strings.TrimSpace(out))
}

func tasksOf(service string) client.TaskQuery { return client.TaskQuery{Service: service} }
