package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/agent"
	"github.com/warren-edge/warren/daemons/agent/runtime/fake"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

// runAgent runs an agent for the node whose local manager c is.
func runAgent(t *testing.T, ctx context.Context, c *client.Client, net agent.Network, hostname string) {
	t.Helper()
	rt := fake.New()
	rt.AddImage("localhost/busybox:latest")
	a, err := agent.New(agent.Config{API: c, Runtime: rt, Network: net, DataDir: t.TempDir(), Hostname: hostname,
		HeartbeatEvery: 100 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("agent", hostname)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestIngressPortOnEveryNode: a cluster of a manager and a worker, each
// with an agent. A service whose one task runs on the manager's node
// publishes its ingress port on the worker's node too, to that task (as
// the worker's manager's replica tells of it); its host-mode port stays on
// the manager's node.
func TestIngressPortOnEveryNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := managertest.StartCluster(t, 1, managertest.Options{})
	mgr := cl.Managers[0]
	w := cl.AddWorker("w1")
	mnet, wnet := &agent.FakeNetwork{}, &agent.FakeNetwork{}
	runAgent(t, ctx, mgr.Client, mnet, "mgr1")
	runAgent(t, ctx, w.Client, wnet, "w1")

	s := svc("web", 1)
	s.Placement.Constraints = []string{"node.id==" + mgr.ID}
	s.Ports = []api.PortConfig{{Target: 80, Published: 8080}, {Target: 9100, Mode: api.PortModeHost}}
	if _, err := mgr.Client.CreateService(ctx, s); err != nil {
		t.Fatal(err)
	}

	var task api.Task
	for ctx.Err() == nil {
		ts, err := mgr.Client.Tasks(ctx, client.TaskQuery{Service: "web"})
		if err == nil && len(running(ts)) == 1 {
			task = running(ts)[0]
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if task.NodeID != mgr.ID || task.Status.Addr == "" {
		t.Fatalf("the task of web runs on %q at %q; want it on %s with an address", task.NodeID, task.Status.Addr, mgr.ID)
	}
	addr := netip.MustParseAddr(task.Status.Addr)
	wantMgr := fmt.Sprint([]agent.Published{
		{Proto: "tcp", Port: 8080, Backends: []netip.AddrPort{netip.AddrPortFrom(addr, 80)}, Ingress: true},
		{Proto: "tcp", Port: 9100, Backends: []netip.AddrPort{netip.AddrPortFrom(addr, 9100)}},
	})
	wantWorker := fmt.Sprint([]agent.Published{
		{Proto: "tcp", Port: 8080, Backends: []netip.AddrPort{netip.AddrPortFrom(addr, 80)}, Ingress: true},
	})
	for ctx.Err() == nil && (mnet.Ports() != wantMgr || wnet.Ports() != wantWorker) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := mnet.Ports(); got != wantMgr {
		t.Errorf("the manager's node publishes %s, want %s", got, wantMgr)
	}
	if got := wnet.Ports(); got != wantWorker {
		t.Errorf("the worker's node publishes %s, want %s", got, wantWorker)
	}

	// The service goes: the worker's node stops publishing its port.
	if err := mgr.Client.RemoveService(ctx, "web", 0); err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil && wnet.Ports() != "[]" {
		time.Sleep(20 * time.Millisecond)
	}
	if got := wnet.Ports(); got != "[]" {
		t.Errorf("after service rm the worker's node publishes %s, want nothing", got)
	}

	// A worker's manager does not tell the cluster range yet (its replica
	// holds no cluster record): its agent then admits its subnet alone.
	for _, n := range []struct {
		name string
		net  *agent.FakeNetwork
	}{{"manager", mnet}, {"worker", wnet}} {
		t.Logf("the %s's agent set up %+v", n.name, n.net.NodeNet())
	}
	if nn := mnet.NodeNet(); nn.Cluster != netip.MustParsePrefix("10.240.0.0/12") || !nn.Cluster.Contains(nn.Subnet.Addr()) {
		t.Errorf("the manager's agent set up %+v; want the cluster range 10.240.0.0/12, which holds its subnet", nn)
	}
}
