package dns

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warren-edge/warren/daemons/agent"
	"github.com/warren-edge/warren/daemons/agent/runtime/fake"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

// waitDNS queries name over UDP until the sorted addresses answered are
// want, and returns how long that took.
func waitDNS(t *testing.T, addr netip.AddrPort, name string, want ...string) time.Duration {
	t.Helper()
	start := time.Now()
	var got []string
	for time.Since(start) < 10*time.Second {
		resp := exchange(t, "udp", addr, question(name, dns.TypeA))
		got = addrsOf(resp.Answer)
		slices.Sort(got)
		if resp.Rcode == dns.RcodeSuccess && slices.Equal(got, want) {
			return time.Since(start)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("%s A answered %v; want %v", name, got, want)
	return 0
}

// setStatus writes a task's status as its agent would, keeping its state.
func setStatus(t *testing.T, c *client.Client, tk api.Task, addr, health string) {
	t.Helper()
	st := tk.Status
	st.Addr, st.Health = addr, health
	res, err := c.ReportTaskStatus(context.Background(), tk.NodeID, []api.TaskStatusUpdate{{TaskID: tk.ID, Status: st}})
	if err != nil || len(res.Skipped) > 0 {
		t.Fatalf("ReportTaskStatus(%s, addr %s, health %q): %v %v", tk.Name(), addr, health, err, res.Skipped)
	}
}

func TestAnswersFromARealManager(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	m := managertest.Start(t, managertest.Options{DataDir: dataDir, NodeTimeout: time.Minute, RescheduleGrace: time.Hour})

	// The replica reaches the manager through a symlink, so that it finds
	// the restarted manager (on another socket) at the same path.
	linkDir, err := os.MkdirTemp("", "warren-dns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(linkDir) })
	link := filepath.Join(linkDir, "api.sock")
	if err := os.Symlink(m.Socket, link); err != nil {
		t.Fatal(err)
	}
	api1, err := client.New("unix://" + link)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReplica(ReplicaConfig{API: api1, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: quiet()})
	rctx, stopReplica := context.WithCancel(ctx)
	replicaDone := make(chan error, 1)
	go func() { replicaDone <- r.Run(rctx) }()
	t.Cleanup(func() { stopReplica(); <-replicaDone })
	up := startUpstream(t)
	_, addr := startServer(t, Guard(Zone(r, NewForwarder(ForwarderConfig{Upstreams: []netip.AddrPort{up.addr}, Logger: quiet()}))))

	// An agent over the fake runtime runs the tasks for real.
	rt := fake.New()
	rt.AddImage("localhost/busybox:latest")
	ag, err := agent.New(agent.Config{API: m.Client, Runtime: rt, DataDir: t.TempDir(), Hostname: "node-1",
		HeartbeatEvery: 100 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	actx, stopAgent := context.WithCancel(ctx)
	agentDone := make(chan error, 1)
	go func() { agentDone <- ag.Run(actx) }()
	if _, err := m.Client.CreateService(ctx, api.ServiceSpec{Name: "web", Image: "localhost/busybox", Replicas: 3,
		Args: []string{"sleep", "1000"}, Ports: []api.PortConfig{{Target: 80, Published: 8080}}}); err != nil {
		t.Fatal(err)
	}
	var tasks []api.Task
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: "web"})
		tasks = tasks[:0]
		for _, tk := range ts {
			if err == nil && tk.Status.State == api.TaskRunning && tk.DesiredState == api.TaskRunning {
				tasks = append(tasks, tk)
			}
		}
		if len(tasks) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web never had 3 running tasks; has %d", len(tasks))
		}
	}
	// From here the test writes statuses as the agent would (the fake
	// runtime has no network, so the agent reports no addresses).
	stopAgent()
	<-agentDone
	slices.SortFunc(tasks, func(a, b api.Task) int { return int(a.Slot) - int(b.Slot) })

	// Running without addresses: the service exists, with nothing to
	// answer (NODATA, not NXDOMAIN).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		resp := exchange(t, "udp", addr, question("web.warren.internal.", dns.TypeA))
		if resp.Rcode == dns.RcodeSuccess && len(resp.Answer) == 0 && len(resp.Ns) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web without addresses answered %v; want NODATA with the SOA", resp)
		}
	}

	addrOf := func(tk api.Task) string { return fmt.Sprintf("10.240.0.%d", 10+tk.Slot) }
	var all []string
	for _, tk := range tasks {
		setStatus(t, m.Client, tk, addrOf(tk), "healthy")
		all = append(all, addrOf(tk))
	}
	slices.Sort(all)
	t.Logf("3 tasks healthy → in DNS: %s", waitDNS(t, addr, "web.warren.internal.", all...))

	// Round robin: each address comes first in turn.
	firsts := map[string]bool{}
	for range 3 {
		firsts[addrsOf(exchange(t, "udp", addr, question("web.warren.internal.", dns.TypeA)).Answer)[0]] = true
	}
	if len(firsts) != 3 {
		t.Errorf("3 queries for web put %v first; want each of the 3 addresses once", firsts)
	}
	waitDNS(t, addr, "web.2.warren.internal.", addrOf(tasks[1]))
	waitDNS(t, addr, "web.2."+tasks[1].ID+".warren.internal.", addrOf(tasks[1]))
	srv := exchange(t, "udp", addr, withEDNS(question("_8080._tcp.web.warren.internal.", dns.TypeSRV), 1232))
	if len(srv.Answer) != 3 || srv.Answer[0].(*dns.SRV).Port != 80 || len(srv.Extra) != 4 {
		t.Errorf("SRV _8080._tcp.web: %v, extra %v; want 3 targets on port 80 with their addresses", srv.Answer, srv.Extra)
	}
	if resp := exchange(t, "udp", addr, question("nope.warren.internal.", dns.TypeA)); resp.Rcode != dns.RcodeNameError {
		t.Errorf("nope.warren.internal: %s, want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}
	if resp := exchange(t, "udp", addr, question("example.com.", dns.TypeA)); fmt.Sprint(addrsOf(resp.Answer)) != "[192.0.2.1]" {
		t.Errorf("example.com forwarded: %v, want 192.0.2.1 from the upstream", resp.Answer)
	}

	// A task that turns unhealthy leaves the answers.
	setStatus(t, m.Client, tasks[1], addrOf(tasks[1]), "unhealthy")
	t.Logf("unhealthy → out of DNS: %s", waitDNS(t, addr, "web.warren.internal.", addrOf(tasks[0]), addrOf(tasks[2])))
	waitDNS(t, addr, "web.2.warren.internal.")
	waitDNS(t, addr, "web.2."+tasks[1].ID+".warren.internal.", addrOf(tasks[1]))

	// The manager stops: answers go on from the last state.
	m.Stop()
	for deadline := time.Now().Add(5 * time.Second); r.Connected() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if r.Connected() {
		t.Fatal("the replica still says connected with the manager stopped")
	}
	time.Sleep(300 * time.Millisecond) // a few failed reconnects
	waitDNS(t, addr, "web.warren.internal.", addrOf(tasks[0]), addrOf(tasks[2]))
	waitDNS(t, addr, "web.1.warren.internal.", addrOf(tasks[0]))

	// It comes back (on another socket, which the link now names): the
	// replica reconnects and follows changes again.
	m2 := managertest.Start(t, managertest.Options{DataDir: dataDir, NodeTimeout: time.Minute, RescheduleGrace: time.Hour})
	os.Remove(link)
	if err := os.Symlink(m2.Socket, link); err != nil {
		t.Fatal(err)
	}
	tk, err := m2.Client.Task(ctx, tasks[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	setStatus(t, m2.Client, *tk, addrOf(*tk), "healthy")
	t.Logf("manager restarted, task healthy again → in DNS: %s", waitDNS(t, addr, "web.warren.internal.", all...))
}
