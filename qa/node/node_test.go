package node

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// memoryLimit reads the memory cgroup limit of a process.
func memoryLimit(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && (f[1] == "memory" || strings.Contains(f[1], ",memory")) {
			v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", f[2], "memory.limit_in_bytes"))
			if err != nil {
				return 0, err
			}
			return strconv.ParseInt(strings.TrimSpace(string(v)), 10, 64)
		}
	}
	return 0, fmt.Errorf("no memory cgroup for pid %d", pid)
}

func TestReplicasRunWithLimitsAndPublishedPort(t *testing.T) {
	n := startNode(t)
	if _, err := n.c.CreateService(n.ctx, web("web", 3, api.PortConfig{Target: 80, Published: 8080})); err != nil {
		t.Fatal(err)
	}
	ts := running(n.waitTasks("web", "3 running", countRunning(3)))
	addrs := map[string]bool{}
	for _, tk := range ts {
		if tk.Status.PID == 0 || tk.Status.Addr == "" {
			t.Errorf("running task %s has pid %d addr %q; want both", tk.Name(), tk.Status.PID, tk.Status.Addr)
			continue
		}
		addrs[tk.Status.Addr] = true
		lim, err := memoryLimit(tk.Status.PID)
		if err != nil || lim != 32<<20 {
			t.Errorf("task %s memory.limit_in_bytes = %d, %v; want %d", tk.Name(), lim, err, 32<<20)
		}
	}
	if len(addrs) != 3 {
		t.Errorf("3 tasks have %d distinct addresses: %v", len(addrs), addrs)
	}
	// The published port answers from another namespace, from every task.
	seen := map[string]bool{}
	eventually(t, "published port 8080 from the client namespace", 20*time.Second, func() error {
		body, err := httpGet(t, n.clientNS, nodeAddr+":8080", "/")
		if err != nil {
			return err
		}
		seen[body] = true
		if len(seen) < 3 {
			return fmt.Errorf("answers from %d of 3 tasks so far", len(seen))
		}
		return nil
	})
	// And on the node itself, on localhost.
	eventually(t, "published port on localhost inside the node", 10*time.Second, func() error {
		_, err := httpGet(t, n.hostNS, "127.0.0.1:8080", "/")
		return err
	})
}

func TestHostAddressBinding(t *testing.T) {
	n := startNode(t)
	if _, err := n.c.CreateService(n.ctx, web("bound", 1, api.PortConfig{Target: 80, Published: 9090, HostAddr: nodeAddr2})); err != nil {
		t.Fatal(err)
	}
	n.waitTasks("bound", "1 running", countRunning(1))
	eventually(t, "port 9090 on the bound address", 20*time.Second, func() error {
		_, err := httpGet(t, n.clientNS, nodeAddr2+":9090", "/")
		return err
	})
	if _, err := httpGet(t, n.clientNS, nodeAddr+":9090", "/"); err == nil {
		t.Errorf("port 9090 bound to %s also answers on %s", nodeAddr2, nodeAddr)
	}
}

func TestKilledContainerIsRestarted(t *testing.T) {
	n := startNode(t)
	n.c.CreateService(n.ctx, web("web", 1))
	first := running(n.waitTasks("web", "1 running", countRunning(1)))[0]
	if err := syscall.Kill(first.Status.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ts := n.waitTasks("web", "a replacement running", func(ts []api.Task) bool {
		r := running(ts)
		return len(r) == 1 && r[0].ID != first.ID
	})
	for _, tk := range ts {
		if tk.ID == first.ID && (tk.Status.State != api.TaskFailed || tk.Status.ExitCode == nil || *tk.Status.ExitCode != 137) {
			t.Errorf("killed task: state %s exit %v; want failed with exit 137", tk.Status.State, tk.Status.ExitCode)
		}
	}
}

func ipamOwners(t *testing.T, n *node) []string {
	b, err := os.ReadFile(filepath.Join(n.dataDir, "ipam.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Allocations map[string]string `json:"allocations"`
	}
	json.Unmarshal(b, &f)
	var out []string
	for k := range f.Allocations {
		out = append(out, k)
	}
	return out
}

func TestScaleDownAndRemoveLeaveNothing(t *testing.T) {
	n := startNode(t)
	n.c.CreateService(n.ctx, web("web", 3, api.PortConfig{Target: 80, Published: 8080}))
	n.waitTasks("web", "3 running", countRunning(3))
	if _, err := n.c.ScaleService(n.ctx, "web", 1); err != nil {
		t.Fatal(err)
	}
	n.waitTasks("web", "1 running", countRunning(1))
	eventually(t, "containers and addresses of the removed slots released", 20*time.Second, func() error {
		if got := n.containers(); len(got) != 1 {
			return fmt.Errorf("%d containers", len(got))
		}
		if o := ipamOwners(t, n); len(o) != 1 {
			return fmt.Errorf("%d addresses held: %v", len(o), o)
		}
		return nil
	})
	if err := n.c.RemoveService(n.ctx, "web", 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "service rm leaves nothing", 30*time.Second, func() error {
		if got := n.containers(); len(got) != 0 {
			return fmt.Errorf("containers left: %v", got)
		}
		if o := ipamOwners(t, n); len(o) != 0 {
			return fmt.Errorf("addresses held: %v", o)
		}
		if links := n.nsOutput("ip", "-o", "link", "show", "master", bridge); strings.TrimSpace(links) != "" {
			return fmt.Errorf("veths left on the bridge: %s", links)
		}
		if rules := n.nsOutput("nft", "list", "table", "inet", "warren"); strings.Contains(rules, "8080") {
			return fmt.Errorf("nft rules for 8080 left:\n%s", rules)
		}
		if entries, _ := os.ReadDir(n.netnsDir); len(entries) != 0 {
			return fmt.Errorf("%d task namespaces left", len(entries))
		}
		return nil
	})
}

// containers lists the IDs of the containers the runtime holds.
func (n *node) containers() []string {
	return strings.Fields(n.ctrdOutput("containers", "ls", "-q"))
}

func TestAgentKill9AdoptsContainers(t *testing.T) {
	n := startNode(t)
	n.c.CreateService(n.ctx, web("web", 3, api.PortConfig{Target: 80, Published: 8080}))
	before := running(n.waitTasks("web", "3 running", countRunning(3)))
	n.stopAgent(syscall.SIGKILL)
	for _, tk := range before {
		if err := syscall.Kill(tk.Status.PID, 0); err != nil {
			t.Errorf("container of %s died with the agent: %v", tk.Name(), err)
		}
	}
	n.startAgent()
	time.Sleep(time.Second)
	ts := n.waitTasks("web", "3 running", countRunning(3))
	if len(ts) != 3 {
		t.Errorf("after the agent's restart %d tasks, want the same 3:\n%s", len(ts), describe(ts))
	}
	for _, tk := range before {
		found := false
		for _, now := range running(ts) {
			if now.ID == tk.ID && now.Status.PID == tk.Status.PID {
				found = true
			}
		}
		if !found {
			t.Errorf("task %s (pid %d) was not adopted as it ran:\n%s", tk.Name(), tk.Status.PID, describe(ts))
		}
	}
	if got := n.containers(); len(got) != 3 {
		t.Errorf("%d containers after adoption, want 3 (no duplicates)", len(got))
	}
	// The adopted tasks still serve the published port.
	eventually(t, "published port after adoption", 20*time.Second, func() error {
		_, err := httpGet(t, n.clientNS, nodeAddr+":8080", "/")
		return err
	})
}

func TestBadInputsGetAClearStatus(t *testing.T) {
	n := startNode(t)
	cases := []struct {
		spec api.ServiceSpec
		want string
	}{
		{api.ServiceSpec{Name: "noimage", Image: "localhost/nothere:1", Replicas: 1}, "warrenctl image load"},
		{api.ServiceSpec{Name: "nocmd", Image: "localhost/busybox", Replicas: 1, Command: []string{"/no/such/binary"}}, "not found"},
	}
	// A port another program holds on the node.
	var held net.Listener
	inNS(t, n.hostNS, func() error {
		var err error
		held, err = net.Listen("tcp4", ":8181")
		return err
	})
	if held != nil {
		defer held.Close()
		cases = append(cases, struct {
			spec api.ServiceSpec
			want string
		}{web("porthog", 1, api.PortConfig{Target: 80, Published: 8181, Mode: api.PortModeHost}), "in use"})
	}
	for _, c := range cases {
		c.spec.RestartPolicy = api.RestartPolicy{Condition: api.RestartNone}
		if _, err := n.c.CreateService(n.ctx, c.spec); err != nil {
			t.Fatalf("create %s: %v", c.spec.Name, err)
		}
	}
	for _, c := range cases {
		n.waitTasks(c.spec.Name, "an end state saying "+c.want, func(ts []api.Task) bool {
			return len(ts) == 1 && ts[0].Status.State.Terminal() && strings.Contains(ts[0].Status.Err, c.want)
		})
	}
	// None of that crashed the agent.
	n.c.CreateService(n.ctx, web("good", 1))
	n.waitTasks("good", "running", countRunning(1))
}

func TestContainerdRestartUnderTheAgent(t *testing.T) {
	n := startNode(t)
	n.c.CreateService(n.ctx, web("web", 2))
	before := running(n.waitTasks("web", "2 running", countRunning(2)))
	if err := n.ctrd.Kill(); err != nil {
		t.Fatal(err)
	}
	// A container dies while containerd is away.
	syscall.Kill(before[0].Status.PID, syscall.SIGKILL)
	time.Sleep(500 * time.Millisecond)
	if err := n.ctrd.Restart(); err != nil {
		t.Fatal(err)
	}
	n.waitTasks("web", "the dead one reported and replaced", func(ts []api.Task) bool {
		r := running(ts)
		if len(r) != 2 {
			return false
		}
		for _, tk := range ts {
			if tk.ID == before[0].ID {
				return tk.Status.State.Terminal()
			}
		}
		return false
	})
}

func TestServiceLogs(t *testing.T) {
	n := startNode(t)
	spec := api.ServiceSpec{Name: "talker", Image: "localhost/busybox", Replicas: 1,
		Command: []string{"sh", "-c", "echo started; while true; do echo tick; sleep 0.2; done"}}
	n.c.CreateService(n.ctx, spec)
	n.waitTasks("talker", "running", countRunning(1))
	eventually(t, "service logs", 10*time.Second, func() error {
		rc, err := n.c.ServiceLogs(n.ctx, "talker", client.LogOptions{Tail: -1})
		if err != nil {
			return err
		}
		defer rc.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			k, err := rc.Read(buf)
			b.Write(buf[:k])
			if err != nil {
				break
			}
		}
		if !strings.Contains(b.String(), "talker.1.") || !strings.Contains(b.String(), "| started") {
			return fmt.Errorf("logs %q lack the task prefix and the first line", b.String())
		}
		return nil
	})
}

func TestHealthChecksAndDNSInRealContainers(t *testing.T) {
	n := startNode(t)
	n.startDNS()
	// An http check against a server that answers 500: never healthy.
	broken := web("broken", 1)
	broken.Command = []string{"sh", "-c", `mkdir -p /www/cgi-bin && printf '#!/bin/sh\necho "Status: 500 Internal Server Error"\necho\necho broken\n' > /www/cgi-bin/health && chmod +x /www/cgi-bin/health && exec httpd -f -p 80 -h /www`}
	broken.HealthCheck = &api.HealthCheck{Type: api.HealthHTTP, Port: 80, Path: "/cgi-bin/health", Interval: api.Duration(200 * time.Millisecond), Retries: 2}
	broken.RestartPolicy = api.RestartPolicy{Condition: api.RestartNone}
	// An exec check the test turns on and off.
	app := web("app", 2)
	app.HealthCheck = &api.HealthCheck{Type: api.HealthExec, Command: []string{"test", "-f", "/tmp/healthy"},
		Interval: api.Duration(300 * time.Millisecond), Retries: 2, StartPeriod: api.Duration(time.Minute)}
	for _, s := range []api.ServiceSpec{broken, app} {
		if _, err := n.c.CreateService(n.ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	n.waitTasks("broken", "unhealthy and failed", func(ts []api.Task) bool {
		return len(ts) == 1 && ts[0].Status.State == api.TaskFailed && strings.Contains(ts[0].Status.Err, "unhealthy") &&
			strings.Contains(ts[0].Status.Err, "500")
	})
	tasks := running(n.waitTasks("app", "2 running", countRunning(2)))
	for _, tk := range tasks {
		n.exec(tk.ID, "touch", "/tmp/healthy")
	}
	n.waitTasks("app", "2 healthy", func(ts []api.Task) bool {
		h := 0
		for _, tk := range running(ts) {
			if tk.Status.Health == api.HealthHealthy {
				h++
			}
		}
		return h == 2
	})
	// From inside a container, through its resolv.conf: the service, a
	// slot, and the search domain.
	lookup := func(name string) string { return n.exec(tasks[0].ID, "nslookup", name) }
	eventually(t, "app resolves to both tasks from inside a container", 10*time.Second, func() error {
		out := lookup("app")
		for _, tk := range tasks {
			if !strings.Contains(out, tk.Status.Addr) {
				return fmt.Errorf("nslookup app: %q lacks %s", out, tk.Status.Addr)
			}
		}
		return nil
	})
	slot := "app." + strconv.FormatUint(tasks[1].Slot, 10) + ".warren.internal"
	if out := lookup(slot); !strings.Contains(out, tasks[1].Status.Addr) || strings.Contains(out, tasks[0].Status.Addr) {
		t.Errorf("nslookup %s: %q, want only %s", slot, out, tasks[1].Status.Addr)
	}
	if out := n.exec(tasks[0].ID, "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 10.240.0.1") || !strings.Contains(out, "search warren.internal") {
		t.Errorf("container resolv.conf:\n%s\nwant warren-dns on the bridge and the cluster search domain", out)
	}
	// One task turns unhealthy: it leaves DNS, then it is replaced.
	sick := tasks[0]
	n.exec(sick.ID, "rm", "/tmp/healthy")
	eventually(t, "the unhealthy task leaves DNS", 5*time.Second, func() error {
		if out := n.exec(tasks[1].ID, "nslookup", "app"); strings.Contains(out, sick.Status.Addr) {
			return fmt.Errorf("still answered: %s", out)
		}
		return nil
	})
	n.waitTasks("app", "the unhealthy task replaced", func(ts []api.Task) bool {
		for _, tk := range ts {
			if tk.ID == sick.ID && tk.Status.State == api.TaskFailed {
				return len(running(ts)) == 2
			}
		}
		return false
	})
}
