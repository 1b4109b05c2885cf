package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/netcfg/link"
	"github.com/warren-edge/warren/netcfg/wg"
	"github.com/warren-edge/warren/qa/testimage"
)

// webServer serves /www/index.html, which holds text, on port 8080.
func webServer(name, text string, constraint string) api.ServiceSpec {
	return api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: 1,
		Args:            []string{"sh", "-c", "mkdir -p /www && echo " + text + " > /www/index.html && exec httpd -f -p 8080 -h /www"},
		Placement:       api.Placement{Constraints: []string{constraint}},
		StopGracePeriod: api.Duration(2 * time.Second)}
}

// runningTask waits for the service's one running task and returns it.
func runningTask(t *testing.T, ctx context.Context, m *Host, service string) api.Task {
	t.Helper()
	var task api.Task
	eventually(t, time.Minute, service+" running with an address", func() error {
		ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: service})
		if err != nil {
			return err
		}
		for _, tk := range ts {
			if tk.Status.State == api.TaskRunning && tk.Status.Addr != "" {
				task = tk
				return nil
			}
		}
		return fmt.Errorf("tasks: %s", describeTasks(ts))
	})
	return task
}

// fetchFrom fetches url from inside a task's network namespace on h, with
// the host's busybox: what a container on h would see.
func fetchFrom(ctx context.Context, h *Host, taskID, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "nsenter", "--net="+filepath.Join(h.Dir, "netns", taskID), "--",
		"busybox", "wget", "-q", "-O-", url).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("wget %s from task %s on %s: %w: %s", url, taskID, h.Name, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// TestMeshJoinsTheNodesContainers: a container on w1 fetches from a
// service whose only task runs on w2, by the task's address, through the
// WireGuard mesh (userspace here); each node's record shows its mesh.
func TestMeshJoinsTheNodesContainers(t *testing.T) {
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 3*time.Minute)
	m, w1, w2 := c.Host("m1"), c.Host("w1"), c.Host("w2")
	for _, h := range []*Host{w1, w2} {
		eventually(t, 30*time.Second, h.Name+"'s mesh in its node record", func() error {
			n, err := m.Client.Node(ctx, h.NodeID())
			if err != nil {
				return err
			}
			if n.Description.Mesh == nil || n.Description.Mesh.PublicKey == "" {
				return fmt.Errorf("no mesh yet")
			}
			if n.Description.Mesh.Mode != api.MeshUserspace {
				return fmt.Errorf("mesh mode %q, want %q on this kernel", n.Description.Mesh.Mode, api.MeshUserspace)
			}
			return nil
		})
	}
	if _, err := m.Client.CreateService(ctx, webServer("far", "hello-from-w2", "node.hostname==w2")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Client.CreateService(ctx, api.ServiceSpec{Name: "near", Image: "localhost/busybox", Replicas: 1, Args: sleeper,
		Placement: api.Placement{Constraints: []string{"node.hostname==w1"}}, StopGracePeriod: api.Duration(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	far, near := runningTask(t, ctx, m, "far"), runningTask(t, ctx, m, "near")
	url := "http://" + far.Status.Addr + ":8080/"
	if out, err := exec.Command("ip", "-n", w1.NS, "route", "get", far.Status.Addr).CombinedOutput(); err != nil || !strings.Contains(string(out), "dev "+w1.MeshIface) {
		t.Fatalf("w1's route to %s is not through its mesh interface %s: %s %v", far.Status.Addr, w1.MeshIface, out, err)
	}
	eventually(t, 30*time.Second, "w1's container reaches w2's task through the mesh", func() error {
		got, err := fetchFrom(ctx, w1, near.ID, url)
		if err != nil {
			return err
		}
		if got != "hello-from-w2" {
			return fmt.Errorf("got %q", got)
		}
		return nil
	})

	// The agent restarts: the mesh and the path stay.
	if err := w1.Agent.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got, err := fetchFrom(ctx, w1, near.ID, url); err != nil || got != "hello-from-w2" {
		t.Errorf("with w1's agent stopped, the mesh no longer carries traffic: %q, %v", got, err)
	}
	if err := w1.StartAgent(); err != nil {
		t.Fatal(err)
	}
	if got, err := fetchFrom(ctx, w1, near.ID, url); err != nil || got != "hello-from-w2" {
		t.Errorf("after w1's agent restarted: %q, %v", got, err)
	}
}

// TestMeshNoticesADarkNode: w2 goes dark (cut off the LAN); within
// wg.HeardFresh and a sync, w1's agent names it in the mesh status that
// warren-dns reads, so DNS stops answering with w2's tasks; when w2 is
// back, it is taken out again.
func TestMeshNoticesADarkNode(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a peer to go silent (about 40 s)")
	}
	c := startCluster(t, 1, 2)
	w1, w2 := c.Host("w1"), c.Host("w2")
	status := func() (api.MeshReach, error) {
		b, err := os.ReadFile(filepath.Join(w1.Dir, "mesh-status.json"))
		if err != nil {
			return api.MeshReach{}, err
		}
		return api.ParseMeshReach(b)
	}
	eventually(t, 30*time.Second, "w1 and w2 have shaken hands, and w1 reaches w2", func() error {
		hs, err := meshHandshakes(w1.MeshIface)
		if err != nil {
			return err
		}
		if len(hs) != 1 || hs[0].IsZero() {
			return fmt.Errorf("w1's peers' handshakes: %v", hs)
		}
		r, err := status()
		if err == nil && len(r.Unreachable) > 0 {
			err = fmt.Errorf("unreachable: %v", r.Unreachable)
		}
		return err
	})
	if err := w2.Cut(); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	eventually(t, wg.HeardFresh+20*time.Second, "w1 names w2 out of reach", func() error {
		r, err := status()
		if err == nil && !slices.Contains(r.Unreachable, w2.NodeID()) {
			err = fmt.Errorf("unreachable: %v", r.Unreachable)
		}
		return err
	})
	t.Logf("w2 dark → out of w1's reach in %.1f s", time.Since(cut).Seconds())
	if err := w2.Heal(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	eventually(t, 30*time.Second, "w2 back in w1's reach", func() error {
		r, err := status()
		if err == nil && len(r.Unreachable) > 0 {
			err = fmt.Errorf("unreachable: %v", r.Unreachable)
		}
		return err
	})
	t.Logf("w2 back → in reach again in %.1f s", time.Since(healed).Seconds())
}

// httpGet fetches url from inside h's namespace, in at most d.
func httpGet(ctx context.Context, h *Host, url string, d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", h.NS, "busybox", "wget", "-q", "-O-", url).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("wget %s from %s: %w: %s", url, h.Name, err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// TestPublishedPortsAcrossTheFleet: an ingress port answers on every node,
// also on w1 where no task runs (forwarded over the mesh); a host-mode port
// only where its task runs; and a host on the LAN that routes a container
// subnet through a node reaches no container.
func TestPublishedPortsAcrossTheFleet(t *testing.T) {
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 3*time.Minute)
	m, w1, w2 := c.Host("m1"), c.Host("w1"), c.Host("w2")
	lan, err := c.AddHost("lan1")
	if err != nil {
		t.Fatal(err)
	}
	web := webServer("web", "hello-from-w2", "node.hostname==w2")
	web.Ports = []api.PortConfig{{Target: 8080, Published: 8080}}
	if _, err := m.Client.CreateService(ctx, web); err != nil {
		t.Fatal(err)
	}
	hostWeb := webServer("hostweb", "host-mode-on-w2", "node.hostname==w2")
	hostWeb.Ports = []api.PortConfig{{Target: 8080, Published: 9090, Mode: api.PortModeHost}}
	if _, err := m.Client.CreateService(ctx, hostWeb); err != nil {
		t.Fatal(err)
	}
	task := runningTask(t, ctx, m, "web")
	runningTask(t, ctx, m, "hostweb")
	for _, h := range []*Host{w1, w2} {
		url := fmt.Sprintf("http://%s:8080/", h.IP)
		eventually(t, 30*time.Second, "the ingress port on "+h.Name, func() error {
			got, err := httpGet(ctx, lan, url, 3*time.Second)
			if err == nil && got != "hello-from-w2" {
				err = fmt.Errorf("got %q", got)
			}
			return err
		})
	}
	eventually(t, 30*time.Second, "the host-mode port on w2", func() error {
		_, err := httpGet(ctx, lan, fmt.Sprintf("http://%s:9090/", w2.IP), 3*time.Second)
		return err
	})
	if got, err := httpGet(ctx, lan, fmt.Sprintf("http://%s:9090/", w1.IP), 3*time.Second); err == nil {
		t.Errorf("the host-mode port answers on w1, where its task does not run: %q", got)
	}

	// A rogue host on the LAN routes w2's container subnet through w2,
	// then through w1: no container answers it.
	n2, err := m.Client.Node(ctx, w2.NodeID())
	if err != nil {
		t.Fatal(err)
	}
	direct := fmt.Sprintf("http://%s:8080/", task.Status.Addr)
	for _, via := range []*Host{w2, w1} {
		if out, err := exec.Command("ip", "-n", lan.NS, "route", "replace", n2.Subnet, "via", via.IP.String()).CombinedOutput(); err != nil {
			t.Fatalf("route %s via %s: %v %s", n2.Subnet, via.Name, err, out)
		}
		if got, err := httpGet(ctx, lan, direct, 3*time.Second); err == nil {
			t.Errorf("a LAN host that routes %s via %s reaches the container at %s: %q", n2.Subnet, via.Name, task.Status.Addr, got)
		}
	}
}

// TestAgentRestartKeepsCrossNodeTransfers: a long transfer between
// containers on w1 and w2 keeps flowing while both agents restart (the
// mesh, its routes and the rules stay; the agents take them over).
func TestAgentRestartKeepsCrossNodeTransfers(t *testing.T) {
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 3*time.Minute)
	m, w1, w2 := c.Host("m1"), c.Host("w1"), c.Host("w2")
	src := api.ServiceSpec{Name: "source", Image: "localhost/busybox", Replicas: 1,
		Args:            []string{"sh", "-c", "cat /dev/zero | nc -l -p 9000"},
		Placement:       api.Placement{Constraints: []string{"node.hostname==w2"}},
		StopGracePeriod: api.Duration(time.Second)}
	if _, err := m.Client.CreateService(ctx, src); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Client.CreateService(ctx, api.ServiceSpec{Name: "sink", Image: "localhost/busybox", Replicas: 1, Args: sleeper,
		Placement: api.Placement{Constraints: []string{"node.hostname==w1"}}, StopGracePeriod: api.Duration(time.Second)}); err != nil {
		t.Fatal(err)
	}
	source, sink := runningTask(t, ctx, m, "source"), runningTask(t, ctx, m, "sink")
	ns, err := netns.GetFromPath(filepath.Join(w1.Dir, "netns", sink.ID))
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var conn net.Conn
	eventually(t, 30*time.Second, "a connection from w1's container to w2's", func() error {
		return link.Do(ns, func() (err error) {
			conn, err = net.DialTimeout("tcp", net.JoinHostPort(source.Status.Addr, "9000"), 2*time.Second)
			return err
		})
	})
	defer conn.Close()
	var got atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := conn.Read(buf)
			got.Add(int64(n))
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	flowing := func(what string) {
		t.Helper()
		before := got.Load()
		time.Sleep(time.Second)
		select {
		case err := <-readErr:
			t.Fatalf("%s: the transfer broke: %v", what, err)
		default:
		}
		if got.Load() == before {
			t.Fatalf("%s: no byte in a second", what)
		}
	}
	flowing("before the restarts")
	for _, h := range []*Host{w1, w2} {
		if err := h.Agent.Stop(5 * time.Second); err != nil {
			t.Fatal(err)
		}
		flowing(h.Name + "'s agent stopped")
		if err := h.StartAgent(); err != nil {
			t.Fatal(err)
		}
		flowing(h.Name + "'s agent started again")
	}
	time.Sleep(6 * time.Second) // past a mesh sync of each agent
	flowing("after both agents synced the mesh again")
	t.Logf("%d MB through the mesh across two agent restarts", got.Load()>>20)
}

// TestImageLoadedOnOneNodeRunsOnAll: an image loaded on w1 only runs on w2
// too, with no registry: w2's agent fetches its blobs from w1's through
// the managers' node ports; then both nodes' records list it, and image ls
// shows both.
func TestImageLoadedOnOneNodeRunsOnAll(t *testing.T) {
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 3*time.Minute)
	m, w1, w2 := c.Host("m1"), c.Host("w1"), c.Host("w2")
	var img bytes.Buffer
	if err := testimage.Build(&img, testimage.Options{Name: "localhost/fleetonly:1", Padding: 20 << 20}); err != nil {
		t.Fatal(err)
	}
	if _, err := w1.Client.LoadImage(ctx, &img); err != nil {
		t.Fatal(err)
	}
	for _, h := range []*Host{w1, w2} {
		if _, err := m.Client.CreateService(ctx, api.ServiceSpec{Name: "on-" + h.Name, Image: "localhost/fleetonly:1", Replicas: 1, Args: sleeper,
			Placement: api.Placement{Constraints: []string{"node.hostname==" + h.Name}}, StopGracePeriod: api.Duration(time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	runningTask(t, ctx, m, "on-w1")
	start := time.Now()
	runningTask(t, ctx, m, "on-w2")
	t.Logf("the task on w2 ran %.1f s after w1's was running (its image fetched from w1)", time.Since(start).Seconds())
	eventually(t, 30*time.Second, "both nodes' records list the image", func() error {
		nodes, err := m.Client.Nodes(ctx, client.ReadOptions{})
		if err != nil {
			return err
		}
		var holders []string
		for _, n := range nodes {
			for _, i := range n.Description.Images {
				if i.Ref == "localhost/fleetonly:1" {
					holders = append(holders, n.Description.Hostname)
				}
			}
		}
		slices.Sort(holders)
		if !slices.Equal(holders, []string{"w1", "w2"}) {
			return fmt.Errorf("holders %v", holders)
		}
		return nil
	})

	// Prestage: a second image, loaded on w1, copied to w2 through m1
	// before any task needs it; then again (present); then one no node has.
	img.Reset()
	if err := testimage.Build(&img, testimage.Options{Name: "localhost/fleetonly:2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w1.Client.LoadImage(ctx, &img); err != nil {
		t.Fatal(err)
	}
	var res *api.PrestageResult
	eventually(t, 20*time.Second, "prestage on w2", func() (err error) {
		res, err = m.Client.PrestageImage(ctx, "w2", "localhost/fleetonly:2")
		return err
	})
	if res.Already || res.Image.Ref != "localhost/fleetonly:2" {
		t.Errorf("first prestage on w2: %+v, want it fetched", res)
	}
	if res, err := m.Client.PrestageImage(ctx, "w2", "localhost/fleetonly:2"); err != nil || !res.Already {
		t.Errorf("second prestage on w2: %+v, %v; want it present already", res, err)
	}
	if _, err := m.Client.PrestageImage(ctx, "w2", "localhost/nowhere:1"); err == nil || !strings.Contains(err.Error(), "no ready node holds image") {
		t.Errorf("prestage of an image no node holds: %v", err)
	}
}
