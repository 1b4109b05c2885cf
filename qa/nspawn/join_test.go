package nspawn

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/qa/testimage"
)

// TestJoinFromImage: three hosts flashed with the image form one cluster
// the way a fleet does. The first manager boots from a NoCloud seed
// (cluster = init); the test asks it for a worker token through its API
// socket; two workers boot at once from seeds whose warren.conf names the
// token and the manager. Then:
//
//   - the manager hands out its LAN address to join through;
//   - `node ls` shows three ready nodes, each at its host's LAN address
//     (not loopback: a manager that advertises 127.0.0.1 sends joiners and
//     Raft back to themselves);
//   - a global service runs a task on each of the three nodes;
//   - no join token is on any command line (ps as root and as nobody), in
//     the daemons' environment or /run/warren/config.env; warren.conf and
//     the token file are 0600 root.
func TestJoinFromImage(t *testing.T) {
	if why := Enabled("nspawn"); why != "" {
		t.Skip(why)
	}
	ctx := ctxFor(t, 6*time.Minute)
	c, m1, cl := bootFirstManager(ctx, t)
	tok, err := cl.JoinToken(ctx, api.RoleWorker, false, 0)
	if err != nil {
		t.Fatalf("worker join token from m1's API socket: %v", err)
	}
	join := netip.AddrPortFrom(m1.Addr, 4242).String()
	if !slices.Equal(tok.Managers, []string{join}) {
		t.Errorf("m1's join token names the managers %v to join through, want [%s] (its LAN address)", tok.Managers, join)
	}

	// The workers boot together, from seeds as an operator would write them.
	var specs []HostSpec
	for _, name := range []string{"w1", "w2"} {
		conf := fmt.Sprintf("role = worker\njoin_token = %s\nmanagers = %s\nhostname = %s\n", tok.Token, join, name)
		specs = append(specs, HostSpec{Name: name, Seed: exampleSeed(t, name, conf)})
	}
	start := time.Now()
	if _, err := c.Add(ctx, specs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("booted the 2 workers in %.1f s", time.Since(start).Seconds())

	// No secret where a local user (or a log) sees it, on every host.
	for _, h := range c.Hosts {
		checkNoToken(ctx, t, h, h != m1)
	}

	nodes, ready := waitNodes(ctx, cl, 3, 90*time.Second)
	var figures []string
	for _, n := range nodes {
		h := c.Host(n.Description.Hostname)
		if h == nil {
			t.Errorf("node %s has hostname %q, which is no host of this test", n.ID, n.Description.Hostname)
			continue
		}
		want := netip.AddrPortFrom(h.Addr, 4242).String()
		if ap, err := netip.ParseAddrPort(n.Description.Addr); err != nil || ap.Addr().IsLoopback() || ap.String() != want {
			t.Errorf("node %s (%s) advertises %q, want %s (the host's LAN address, never loopback)", n.ID, h.Name(), n.Description.Addr, want)
		}
		launched := launchedWall(h)
		fig := fmt.Sprintf("%s: registered %.1f s after its boot began", h.Name(), n.CreatedAt.Sub(launched).Seconds())
		if n.Status.State == api.NodeReady {
			fig += fmt.Sprintf(", ready at %.1f s", n.Status.Timestamp.Sub(launched).Seconds())
		} else {
			fig += ", " + n.Status.State + " (" + n.Status.Message + ")"
		}
		figures = append(figures, fig)
	}
	sort.Strings(figures)
	t.Logf("booted host → node joined:\n  %s", strings.Join(figures, "\n  "))
	if ls, err := m1.Exec(ctx, "warrenctl node ls"); err == nil {
		t.Logf("warrenctl node ls on m1:\n%s", ls)
	}
	if !ready {
		t.Fatalf("after 90 s m1 lists %d nodes, not 3 ready ones: %s", len(nodes), nodeSummary(nodes))
	}

	// A task on each node: the image loaded on each host (through its own
	// manager into its agent), then a global service.
	if !slices.Contains(c.Running(), "warren-agent") {
		t.Skip("this warren binary has no agent yet")
	}
	for _, h := range c.Hosts {
		loadBusybox(ctx, t, h)
	}
	start = time.Now()
	if _, err := cl.CreateService(ctx, api.ServiceSpec{Name: "everywhere", Image: "localhost/busybox:latest",
		Command: []string{"sleep", "100000"}, Mode: api.ModeGlobal}); err != nil {
		t.Fatalf("create a global service: %v", err)
	}
	on, err := waitRunningOn(ctx, cl, "everywhere", 3, 2*time.Minute)
	if err != nil {
		t.Fatalf("global service everywhere: %v", err)
	}
	names := make([]string, 0, len(on))
	for _, n := range nodes {
		if on[n.ID] {
			names = append(names, n.Description.Hostname)
		}
	}
	t.Logf("global service running on %v, %.1f s after its create", names, time.Since(start).Seconds())

	// One network: a container on w1 reaches a task that runs only on w2,
	// through the WireGuard mesh the shipped units set up (warren-mesh,
	// userspace here), and every node's record says which mode it runs.
	for deadline := time.Now().Add(30 * time.Second); ; {
		all, err := cl.Nodes(ctx, client.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var missing []string
		for _, n := range all {
			if m := n.Description.Mesh; m == nil || m.Mode != api.MeshUserspace {
				missing = append(missing, fmt.Sprintf("%s: %+v", n.Description.Hostname, m))
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, nodes whose record shows no userspace mesh end (this kernel has no WireGuard): %v", missing)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if _, err := cl.CreateService(ctx, api.ServiceSpec{Name: "far", Image: "localhost/busybox:latest", Replicas: 1,
		Ports:     []api.PortConfig{{Target: 8080, Published: 8080}},
		Args:      []string{"sh", "-c", "mkdir -p /www && echo hello-from-w2 > /www/index.html && exec httpd -f -p 8080 -h /www"},
		Placement: api.Placement{Constraints: []string{"node.hostname==w2"}}}); err != nil {
		t.Fatal(err)
	}
	far := runningTask(ctx, t, m1, "far")
	w1 := c.Host("w1")
	everywhereOn := func(host string) string {
		ts, err := cl.Tasks(ctx, client.TaskQuery{Service: "everywhere"})
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range ts {
			if tk.Status.State == api.TaskRunning && nodeName(nodes, tk.NodeID) == host {
				return tk.ID
			}
		}
		t.Fatalf("no running task of everywhere on %s: %v", host, ts)
		return ""
	}
	// fetchIn fetches url from inside a container of everywhere on h.
	fetchIn := func(h *Host, url, what string) {
		t.Helper()
		fetch := fmt.Sprintf("ctr -n warren task exec --exec-id probe-%d %s wget -q -O- %s", time.Now().UnixNano(), everywhereOn(h.Name()), url)
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, err := h.Exec(ctx, fetch)
			if err == nil && strings.TrimSpace(out) == "hello-from-w2" {
				t.Logf("%s", what)
				return
			}
			if time.Now().After(deadline) {
				mesh, _ := h.Exec(ctx, "ip route; ip addr show warren-wg; nft list table inet warren; journalctl --no-pager -n 30 -u warren-mesh -u warren-agent")
				t.Fatalf("%s: failed: %v %q\n%s", what, err, out, mesh)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	fetchIn(w1, fmt.Sprintf("http://%s:8080/", far.Status.Addr), "a container on w1 fetched from w2's task at "+far.Status.Addr+" through the mesh")
	fetchIn(w1, "http://far:8080/", "a container on w1 fetched from service far by its name (warren-dns on w1 answers w2's task)")
	// warren-dns, under its sandbox, reads the agent's mesh status.
	if out, _ := w1.Exec(ctx, "journalctl --no-pager -o cat -u warren-dns"); strings.Contains(out, "mesh status") {
		t.Errorf("warren-dns on w1 cannot read the mesh status the agent writes:\n%s", out)
	}
	// The published port answers on w1 too, where no task of far runs:
	// a container on m1 reaches it at w1's LAN address.
	fetchIn(m1, fmt.Sprintf("http://%s:8080/", w1.Addr), "port 8080 of w1, which runs no task of far, answered from w2's task (ingress over the mesh)")

	// Logs and exec of w2's task, from m1, as its operator would (warrenctl
	// on m1, through the shipped units' sandboxes on both hosts).
	if out, err := m1.Exec(ctx, "warrenctl service exec "+far.ID+" -- cat /www/index.html"); err != nil || strings.TrimSpace(out) != "hello-from-w2" {
		t.Errorf("warrenctl service exec on m1 for far's task on w2: %v %q", err, out)
	}
	if out, err := m1.Exec(ctx, "warrenctl service exec "+far.ID+" -- sh -c 'exit 3'; echo code=$?"); !strings.Contains(out, "code=3") {
		t.Errorf("exec's exit code through warrenctl: %v %q, want code=3", err, out)
	}
	// An image loaded on m1 only runs on w1 and w2: they fetch it from m1.
	var img bytes.Buffer
	if err := testimage.Build(&img, testimage.Options{Name: "localhost/onlym1:1"}); err != nil {
		t.Fatal(err)
	}
	if err := m1.CopyIn("/root/onlym1.tar", img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := m1.Exec(ctx, "warrenctl image load -i /root/onlym1.tar"); err != nil {
		t.Fatalf("warrenctl image load on m1: %v\n%s", err, out)
	}
	start = time.Now()
	if _, err := cl.CreateService(ctx, api.ServiceSpec{Name: "fromm1", Image: "localhost/onlym1:1",
		Command: []string{"sleep", "100000"}, Mode: api.ModeGlobal}); err != nil {
		t.Fatal(err)
	}
	if _, err := waitRunningOn(ctx, cl, "fromm1", 3, 2*time.Minute); err != nil {
		out, _ := w1.Exec(ctx, "journalctl --no-pager -n 30 -u warren-agent -u warren-manager")
		t.Fatalf("an image loaded on m1 only does not run on all three: %v\n%s", err, out)
	}
	t.Logf("an image loaded on m1 only runs on all three nodes %.1f s after the create", time.Since(start).Seconds())
	for deadline := time.Now().Add(15 * time.Second); ; {
		out, err := m1.Exec(ctx, "warrenctl image ls")
		if err == nil && strings.Contains(out, "localhost/onlym1:1") && strings.Contains(out, "m1,w1,w2") {
			t.Logf("warrenctl image ls on m1:\n%s", out)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("warrenctl image ls on m1 does not show onlym1 on m1, w1 and w2: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func nodeName(nodes []api.Node, id string) string {
	for _, n := range nodes {
		if n.ID == id {
			return n.Description.Hostname
		}
	}
	return ""
}

// exampleSeed is image/cloud-init's example seed with this host's name and
// the given warren.conf in it: the users, SSH settings and the file
// permissions stay the example's, so the test checks what ships.
func exampleSeed(t *testing.T, name, conf string) *Seed {
	t.Helper()
	seed, err := ExampleSeed(name, conf)
	if err != nil {
		t.Fatal(err)
	}
	return seed
}

// checkNoToken fails the test where a join token shows: the command lines
// of all processes (as root and as nobody), the environment of the
// Warren daemons, /run/warren/config.env and the Warren units' journal.
// warren.conf, which holds it, must be 0600 root; so must the token file
// a joining host has.
func checkNoToken(ctx context.Context, t *testing.T, h *Host, joining bool) {
	t.Helper()
	if out, err := h.Exec(ctx, "cloud-init status --wait"); err != nil {
		t.Errorf("%s: cloud-init status: %v\n%s", h.Name(), err, out)
	}
	checks := []struct{ what, cmd string }{
		{"ps -eo args (root)", "ps -eo args"},
		{"ps -eo args (as nobody)", "runuser -u nobody -- ps -eo args"},
		{"/run/warren/config.env", "cat /run/warren/config.env"},
		{"the Warren daemons' environment", `for u in warren-manager warren-agent warren-dns; do p=$(systemctl show -P MainPID $u.service); [ "$p" = 0 ] || tr '\0' '\n' </proc/$p/environ; done`},
		{"the Warren units' journal", "journalctl --no-pager -o cat -u 'warren-*'"},
	}
	for _, c := range checks {
		out, err := h.Exec(ctx, c.cmd)
		if err != nil {
			t.Errorf("%s: %s: %v", h.Name(), c.what, err)
			continue
		}
		if strings.Contains(out, "WRN-") {
			var hits []string
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "WRN-") {
					hits = append(hits, l)
				}
			}
			t.Errorf("%s: a join token is in %s:\n%s", h.Name(), c.what, strings.Join(hits, "\n"))
		}
	}
	files := "/etc/warren/warren.conf"
	want := "600 root:root /etc/warren/warren.conf\n"
	if joining {
		files += " /run/warren/join-token"
		want += "600 root:root /run/warren/join-token\n"
	}
	if out, _ := h.Exec(ctx, "stat -c '%a %U:%G %n' "+files); out != want {
		t.Errorf("%s: stat of the files that hold the token:\n%swant\n%s", h.Name(), out, want)
	}
}

func nodeSummary(nodes []api.Node) string {
	var parts []string
	for _, n := range nodes {
		parts = append(parts, fmt.Sprintf("%s at %s %s (%s)", n.Description.Hostname, n.Description.Addr, n.Status.State, n.Status.Message))
	}
	return strings.Join(parts, "; ")
}

// waitRunningOn waits until service has a running task on n different
// nodes and returns those nodes.
func waitRunningOn(ctx context.Context, cl *client.Client, service string, n int, d time.Duration) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last []api.Task
	for {
		ts, err := cl.Tasks(ctx, tasksOf(service))
		if err == nil {
			last = ts
			on := map[string]bool{}
			for _, tk := range ts {
				if tk.Status.State == api.TaskRunning {
					on[tk.NodeID] = true
				}
			}
			if len(on) == n {
				return on, nil
			}
		}
		select {
		case <-ctx.Done():
			var b strings.Builder
			for _, tk := range last {
				fmt.Fprintf(&b, "\n  task %s on node %s: %s (%s)", tk.ID, tk.NodeID, tk.Status.State, tk.Status.Message)
			}
			return nil, fmt.Errorf("no running task on %d nodes after %s:%s", n, d, b.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// bootFirstManager boots host m1, which makes a new cluster (cloud-init
// seed role = manager, cluster = init), and waits for its manager; the
// client is m1's API socket, closed at the test's end.
func bootFirstManager(ctx context.Context, t *testing.T) (*Cluster, *Host, *client.Client) {
	t.Helper()
	c := NewCluster(t, HostSpec{Name: "m1", Seed: exampleSeed(t, "m1", "role = manager\ncluster = init\nhostname = m1\n")})
	m1 := c.Hosts[0]
	if _, err := m1.WaitActive(ctx, "warren-manager.service"); err != nil {
		t.Fatal(err)
	}
	cl, err := m1.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return c, m1, cl
}
