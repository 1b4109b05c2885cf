package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netns"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/netcfg/nft"
	"github.com/warren-edge/warren/qa/containerdtest"
	"github.com/warren-edge/warren/qa/testimage"
)

// sleeper runs until it is told to stop. (A plain sleep as PID 1 ignores
// SIGTERM and would cost every stop its full grace period.)
var sleeper = []string{"sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"}

// benchNode measures issue 3's figures on a real node: a private
// containerd, the manager and agent binaries, the node's network inside a
// namespace made for the bench.
func benchNode(r *report) error {
	n, err := startBenchNode()
	if err != nil {
		return err
	}
	defer n.close()
	c, agent, ctx := n.c, n.agent, context.Background()
	time.Sleep(time.Second)
	r.add("agent resident memory, idle", fmt.Sprintf("%.1f MB", rssMB(agent.Process.Pid)), "< 32 MB", "")

	// service create → container running, one at a time.
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		name := fmt.Sprintf("lat-%d", i)
		d, err := timeToRunning(ctx, c, api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: 1, Args: sleeper})
		if err != nil {
			return err
		}
		lat = append(lat, d)
		if err := c.RemoveService(ctx, name, 0); err != nil {
			return err
		}
		if err := waitNoContainers(ctx, c); err != nil {
			return err
		}
	}
	p50, p99 := percentiles(lat)
	r.add("service create → container running (image present)", "p50 "+ms(p50)+", p99 "+ms(p99), "p50 < 300 ms", "containerd+runc alone ≈ 190 ms")
	if err := waitNoContainers(ctx, c); err != nil {
		return err
	}

	// One service scaled 0 → 100.
	if _, err := c.CreateService(ctx, api.ServiceSpec{Name: "scale", Image: "localhost/busybox", Replicas: 0, Args: sleeper}); err != nil {
		return err
	}
	start := time.Now()
	if _, err := c.ScaleService(ctx, "scale", 100); err != nil {
		return err
	}
	if err := waitRunning(ctx, c, "scale", 100, 2*time.Minute); err != nil {
		return err
	}
	scale := time.Since(start)
	_, used := agentOCI()
	r.add("one service scaled 0 → 100 replicas, all running", scale.Round(10*time.Millisecond).String()+" (agent's OCI runtime: "+used+")", "< 4 s", "Swarm 14.8 s; Nomad 13.7 s")
	time.Sleep(2 * time.Second)
	agentRSS := rssMB(agent.Process.Pid)
	r.add("agent resident memory, 100 containers", fmt.Sprintf("%.1f MB", agentRSS), "", "dockerd 242 MB with 300 tasks")
	shims, shimPSS, agentPSS := n.memory()
	per := float64(shimPSS+agentPSS) / 100 / (1 << 20)
	r.add("memory per running task, Warren's share (agent + shim PSS / 100)", fmt.Sprintf("%.2f MB (%d shim(s) %.1f MB, agent %.1f MB)", per, shims, float64(shimPSS)/(1<<20), float64(agentPSS)/(1<<20)), "< 1.5 MB", "Swarm ≈ 2.4 MB per task in shims")
	c.RemoveService(ctx, "scale", 0)
	waitNoContainers(ctx, c)
	// The kernel frees the 100 network namespaces in the background, a
	// few seconds of work on 2 cores: let it, or it lands in the next figure.
	time.Sleep(5 * time.Second)
	// The floor under the scale-up: containerd and the OCI runtime alone,
	// as many containers, as many at a time (the agent starts 8 at once),
	// in as many shims.
	for _, oci := range floorRuntimes() {
		f, err := newFloor(n.ctrd.Socket, n.dir, oci.bin)
		if err != nil {
			return err
		}
		took, err := f.start("floor", 100, 8, shims)
		f.close()
		if err != nil {
			return fmt.Errorf("containerd floor with %s: %w", oci.name, err)
		}
		ratio := ""
		if used == oci.name {
			ratio = fmt.Sprintf("; Warren's 0 → 100 is %.2f× this", scale.Seconds()/took.Seconds())
		}
		r.add(fmt.Sprintf("containerd + %s alone: 100 containers started, 8 at a time, %d shims", oci.name, shims),
			took.Round(10*time.Millisecond).String()+ratio, "Warren ≤ 1.1× it", "")
		time.Sleep(5 * time.Second)
	}
	return benchNFT(r, n.ns)
}

// benchNodeEnv is one real node for a bench: a network namespace made for
// it, a private containerd, bin/warren's manager and agent (the node's
// network inside the namespace), the busybox test image loaded.
type benchNodeEnv struct {
	dir, ns, agentSock string
	ctrd               *containerdtest.Daemon
	mgr                *proc
	c                  *client.Client
	agent              *exec.Cmd
	undo               []func()
	done               func() // undoAll, once
}

// startBenchNode starts a node; extra are more flags of the manager.
func startBenchNode(extra ...string) (n *benchNodeEnv, err error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("needs root")
	}
	if err := containerdtest.Available(); err != nil {
		return nil, err
	}
	n = &benchNodeEnv{}
	n.done = stopOnInterrupt(n.undoAll)
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if n.dir, err = os.MkdirTemp("", "wb"); err != nil {
		return nil, err
	}
	n.undo = append(n.undo, func() { os.RemoveAll(n.dir) })
	n.ns = fmt.Sprintf("warren-bench-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", n.ns).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	n.undo = append(n.undo, func() { exec.Command("ip", "netns", "del", n.ns).Run() })
	exec.Command("ip", "-n", n.ns, "link", "set", "lo", "up").Run()

	if n.ctrd, err = containerdtest.StartDaemon(filepath.Join(n.dir, "c")); err != nil {
		return nil, err
	}
	n.undo = append(n.undo, func() { n.ctrd.Stop() })
	n.agentSock = filepath.Join(n.dir, "agent.sock")
	if n.mgr, n.c, err = startManager(append([]string{"--agent-socket", n.agentSock}, extra...)...); err != nil {
		return nil, err
	}
	n.undo = append(n.undo, n.mgr.stop)
	netnsDir := filepath.Join(n.dir, "netns") // waitClean reads it
	n.agent = exec.Command(binPath("warren"), "agent", "--api-socket", strings.TrimPrefix(n.c.Host(), "unix://"),
		"--containerd-socket", n.ctrd.Socket, "--data-dir", filepath.Join(n.dir, "agent"), "--agent-socket", n.agentSock,
		"--netns-dir", netnsDir, "--host-netns", "/run/netns/"+n.ns, "--mesh=false", "--log-level", "warn")
	n.agent.Stderr = daemonLog("agent")
	if err := n.agent.Start(); err != nil {
		return nil, err
	}
	n.undo = append(n.undo, func() {
		n.agent.Process.Signal(syscall.SIGTERM)
		n.agent.Wait()
		entries, _ := os.ReadDir(netnsDir)
		for _, e := range entries {
			syscall.Unmount(filepath.Join(netnsDir, e.Name()), syscall.MNT_DETACH)
		}
		syscall.Unmount(netnsDir, syscall.MNT_DETACH)
	})
	ctx := context.Background()
	if err := waitReady(ctx, n.c, n.agentSock); err != nil {
		return nil, err
	}
	var img bytes.Buffer
	if err := testimage.Build(&img, testimage.Options{Name: "localhost/busybox:latest"}); err != nil {
		return nil, err
	}
	if _, err := n.c.LoadImage(ctx, &img); err != nil {
		return nil, err
	}
	return n, nil
}

// waitClean waits until the node's tasks are gone from the store and the
// agent has deleted their containers and network namespaces (it removes a
// task's namespace file last).
func (n *benchNodeEnv) waitClean(ctx context.Context) error {
	if err := waitNoContainers(ctx, n.c); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if entries, err := os.ReadDir(filepath.Join(n.dir, "netns")); err == nil && len(entries) == 0 {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("task network namespaces remain on the node 2 minutes after their tasks went")
}

// memory is what the node's shims and agent hold: the number of shims,
// their PSS together and the agent's, in bytes.
func (n *benchNodeEnv) memory() (shims int, shimPSS, agentPSS int64) {
	pids, _ := containerdtest.ShimPIDs(n.ctrd.TTRPCSocket)
	if len(pids) == 0 {
		pids, _ = containerdtest.ShimPIDs(n.ctrd.Socket)
	}
	for _, pid := range pids {
		if v, err := containerdtest.PSS(pid); err == nil {
			shimPSS += v
		}
	}
	agentPSS, _ = containerdtest.PSS(n.agent.Process.Pid)
	return len(pids), shimPSS, agentPSS
}

// close undoes what startBenchNode did, last first (once; or when the
// bench is interrupted).
func (n *benchNodeEnv) close() { n.done() }

func (n *benchNodeEnv) undoAll() {
	for i := len(n.undo) - 1; i >= 0; i-- {
		n.undo[i]()
	}
	n.undo = nil
}

func waitReady(ctx context.Context, c *client.Client, agentSock string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		info, err := c.Info(ctx)
		if err == nil {
			if n, err := c.Node(ctx, info.NodeID); err == nil && n.Status.State == api.NodeReady {
				if _, err := os.Stat(agentSock); err == nil {
					return nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the agent did not get ready")
}

// timeToRunning creates a service and times until its task runs, seen
// through a watch.
func timeToRunning(ctx context.Context, c *client.Client, spec api.ServiceSpec) (time.Duration, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	w, err := c.Watch(ctx, client.WatchQuery{Index: info.Index, Kinds: []string{api.KindTask}})
	if err != nil {
		return 0, err
	}
	defer w.Close()
	start := time.Now()
	s, err := c.CreateService(ctx, spec)
	if err != nil {
		return 0, err
	}
	for {
		ev, err := w.Next()
		if err != nil {
			return 0, err
		}
		var t api.Task
		if json.Unmarshal(ev.Object, &t) == nil && t.ServiceID == s.ID && t.Status.State == api.TaskRunning {
			return time.Since(start), nil
		}
		if time.Since(start) > time.Minute {
			return 0, fmt.Errorf("service %s did not run within a minute", spec.Name)
		}
	}
}

// waitRunning follows the service's tasks through a watch (polling the
// task list would load the node it measures) until n of them run.
func waitRunning(ctx context.Context, c *client.Client, svc string, n int, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	w, err := c.Watch(ctx, client.WatchQuery{Kinds: []string{api.KindTask}, Service: svc})
	if err != nil {
		return err
	}
	defer w.Close()
	running := map[string]bool{}
	for {
		ev, err := w.Next()
		if err != nil {
			return fmt.Errorf("%s: %d of %d tasks running after %s: %w", svc, len(running), n, limit, err)
		}
		switch ev.Op {
		case api.OpReset:
			clear(running)
		case api.OpDelete:
			delete(running, ev.ID)
		case api.OpCreate, api.OpUpdate:
			var t api.Task
			if err := json.Unmarshal(ev.Object, &t); err != nil {
				return err
			}
			if t.DesiredState == api.TaskRunning && t.Status.State == api.TaskRunning {
				running[t.ID] = true
			} else {
				delete(running, t.ID)
			}
		}
		if len(running) >= n {
			return nil
		}
	}
}

func waitNoContainers(ctx context.Context, c *client.Client) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		ts, err := c.Tasks(ctx, client.TaskQuery{})
		if err == nil && len(ts) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("tasks remain after removing their services")
}

// benchNFT times applying 500 published ports in the bench's namespace.
func benchNFT(r *report, ns string) error {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	t := nft.NewTable(nft.InNetNS(int(h)))
	cfg := nft.Config{Bridge: "wb0", Subnet: netip.MustParsePrefix("10.99.0.0/24")}
	for i := 0; i < 500; i++ {
		cfg.Ports = append(cfg.Ports, nft.PublishedPort{Proto: nft.TCP, Port: uint16(20000 + i),
			Backends: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("10.99.0.2"), 80), netip.AddrPortFrom(netip.MustParseAddr("10.99.0.3"), 80)}})
	}
	var ds []time.Duration
	for i := 0; i < 5; i++ {
		start := time.Now()
		if err := t.Apply(cfg); err != nil {
			return err
		}
		ds = append(ds, time.Since(start))
	}
	t.Remove()
	p50, _ := percentiles(ds)
	r.add("nftables apply, 500 published ports (one transaction)", ms(p50), "", "")
	return nil
}
