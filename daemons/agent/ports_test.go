package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/agent/step"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/netcfg/wg"
)

// Ports of the tests' services.
var (
	webPort  = api.PortConfig{Target: 80, Published: 8080}                               // ingress by default
	monPort  = api.PortConfig{Target: 9100, Published: 9100, Mode: api.PortModeHost}     // host
	dnsPort  = api.PortConfig{Target: 53, Protocol: api.ProtoUDP, HostAddr: "192.0.2.1"} // host by its address
	apiPort  = api.PortConfig{Target: 81, Published: 8081, Mode: api.PortModeIngress}    // ingress
	webCheck = &api.HealthCheck{Type: api.HealthTCP, Port: 80}
)

// testAgent is an agent of node n1 (subnet 10.240.1.0/24) with no loops
// running, its log in buf.
func testAgent(t *testing.T) (*Agent, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	a := &Agent{log: slog.New(slog.NewTextHandler(&buf, nil)), nodeID: "n1", subnet: netip.MustParsePrefix("10.240.1.0/24"),
		tasks: map[string]*api.Task{}, containers: map[string]rt.Container{}, addrs: map[string]netip.Addr{},
		healthNow: map[string]string{}, health: map[string]context.CancelFunc{},
		busy: map[string]bool{}, reported: map[string]api.TaskState{}, local: map[string]*step.Local{},
		pendingExits: map[string]rt.Exit{}, netns: map[string]string{}, kick: make(chan struct{}, 1)}
	return a, &buf
}

// runLocal gives agent a a running task of service svc with address addr.
func runLocal(a *Agent, id, svc, addr string, ports ...api.PortConfig) {
	a.tasks[id] = &api.Task{Meta: api.Meta{ID: id}, ServiceID: svc, NodeID: a.nodeID, DesiredState: api.TaskRunning,
		Spec: api.ServiceSpec{Ports: ports}}
	a.containers[id] = rt.Container{ID: id, State: rt.StateRunning}
	a.addrs[id] = netip.MustParseAddr(addr)
}

// remote is a task of another node as the watch sends it.
func remote(id, svc, node string, state api.TaskState, addr, health string, check *api.HealthCheck, ports ...api.PortConfig) *api.Task {
	return &api.Task{Meta: api.Meta{ID: id}, ServiceID: svc, NodeID: node, DesiredState: api.TaskRunning,
		Spec:   api.ServiceSpec{Ports: ports, HealthCheck: check},
		Status: api.TaskStatus{State: state, Addr: addr, Health: health}}
}

func events(t *testing.T, ts ...*api.Task) []api.Event {
	t.Helper()
	var evs []api.Event
	for _, tk := range ts {
		raw, err := json.Marshal(tk)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, api.Event{Op: api.OpUpdate, Kind: api.KindTask, ID: tk.ID, Object: raw})
	}
	return evs
}

func deleted(id string) api.Event { return api.Event{Op: api.OpDelete, Kind: api.KindTask, ID: id} }

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func describePorts(ps []Published) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\n  %s ingress=%v %v", portKey(p), p.Ingress, p.Backends)
	}
	return b.String()
}

// TestDesiredPorts: host-mode ports have this node's running tasks as
// backends; ingress ports also the serving tasks of other nodes.
func TestDesiredPorts(t *testing.T) {
	a, _ := testAgent(t)
	runLocal(a, "web1", "web", "10.240.1.2", webPort)
	runLocal(a, "mon1", "mon", "10.240.1.3", monPort)
	runLocal(a, "dns1", "dns", "10.240.1.4", dnsPort)
	runLocal(a, "gone", "web", "10.240.1.9", webPort)
	a.tasks["gone"].DesiredState = api.TaskShutdown // stopping: no backend
	runLocal(a, "dead", "web", "10.240.1.8", webPort)
	a.containers["dead"] = rt.Container{ID: "dead", State: rt.StateStopped}

	a.applyFleet(api.WatchBatch{Reset: true, Events: events(t,
		remote("web2", "web", "n2", api.TaskRunning, "10.240.2.5", "", nil, webPort),
		remote("web3", "web", "n3", api.TaskRunning, "10.240.3.7/24", api.HealthHealthy, webCheck, webPort),
		remote("web4", "web", "n3", api.TaskRunning, "10.240.3.8", api.HealthStarting, webCheck, webPort), // not healthy yet
		remote("web5", "web", "n2", api.TaskStarting, "10.240.2.6", "", nil, webPort),                     // not running
		remote("web6", "web", "n2", api.TaskRunning, "10.240.2.7", api.HealthUnhealthy, nil, webPort),
		remote("mon2", "mon", "n2", api.TaskRunning, "10.240.2.9", "", nil, monPort), // host mode: n2's only
		remote("api2", "api", "n2", api.TaskRunning, "10.240.2.10", "", nil, apiPort, monPort),
		remote("web1", "web", "n1", api.TaskRunning, "10.240.1.2", "", nil, webPort), // this node's: from its own view
	)})
	a.synced = true

	got, dropped := a.desiredPorts()
	want := []Published{
		{Proto: "udp", HostAddr: netip.MustParseAddr("192.0.2.1"), Port: 53, Backends: []netip.AddrPort{ap("10.240.1.4:53")}},
		{Proto: "tcp", Port: 8080, Ingress: true, Backends: []netip.AddrPort{ap("10.240.1.2:80"), ap("10.240.2.5:80"), ap("10.240.3.7:80")}},
		{Proto: "tcp", Port: 8081, Ingress: true, Backends: []netip.AddrPort{ap("10.240.2.10:81")}},
		{Proto: "tcp", Port: 9100, Backends: []netip.AddrPort{ap("10.240.1.3:9100")}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || len(dropped) != 0 {
		t.Errorf("desiredPorts() =%s\ndropped%s\nwant%s", describePorts(got), describePorts(dropped), describePorts(want))
	}
}

// TestDesiredPortsLeavesOutClashes: while a service moves a port from
// every address to one, tasks of both specs run; the nft table cannot hold
// both, so the later one waits.
func TestDesiredPortsLeavesOutClashes(t *testing.T) {
	a, _ := testAgent(t)
	bound := api.PortConfig{Target: 80, Published: 8080, HostAddr: "192.0.2.1"}
	runLocal(a, "new1", "web", "10.240.1.2", bound)
	a.applyFleet(api.WatchBatch{Reset: true, Events: events(t, remote("old2", "web", "n2", api.TaskRunning, "10.240.2.5", "", nil, webPort))})
	got, dropped := a.desiredPorts()
	if len(got) != 1 || got[0].HostAddr.IsValid() || len(dropped) != 1 || dropped[0].HostAddr != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("desiredPorts() =%s\ndropped%s\nwant 8080/tcp on every address, and 192.0.2.1:8080/tcp dropped", describePorts(got), describePorts(dropped))
	}
}

// TestApplyFleet: the ingress watch keeps only other nodes' serving tasks
// with ingress ports, and says when that changes.
func TestApplyFleet(t *testing.T) {
	a, _ := testAgent(t)
	web2 := remote("web2", "web", "n2", api.TaskRunning, "10.240.2.5", "", nil, webPort)
	if a.applyFleet(api.WatchBatch{Events: events(t, web2)}) || a.ports.fleet != nil {
		t.Fatalf("a batch of changes before the first full resend was taken: fleet %v", a.ports.fleet)
	}
	steps := []struct {
		name    string
		batch   api.WatchBatch
		changed bool
		want    []string // task IDs in the fleet
	}{
		{"full resend", api.WatchBatch{Reset: true, Events: events(t, web2,
			remote("web3", "web", "n3", api.TaskRunning, "10.240.3.7", "", nil, webPort),
			remote("mine", "web", "n1", api.TaskRunning, "10.240.1.7", "", nil, webPort),
			remote("stale", "web", "n3", api.TaskRunning, "10.240.1.9", "", nil, webPort), // claims an address of this node
			remote("mon2", "mon", "n2", api.TaskRunning, "10.240.2.9", "", nil, monPort),
		)}, true, []string{"web2", "web3"}},
		{"a status that changes nothing ports need", api.WatchBatch{Events: func() []api.Event {
			tk := *web2
			tk.Status.Message, tk.Status.PID = "running", 42
			return events(t, &tk)
		}()}, false, []string{"web2", "web3"}},
		{"unhealthy", api.WatchBatch{Events: events(t, remote("web3", "web", "n3", api.TaskRunning, "10.240.3.7", api.HealthUnhealthy, nil, webPort))}, true, []string{"web2"}},
		{"an unknown task deleted", api.WatchBatch{Events: []api.Event{deleted("nope")}}, false, []string{"web2"}},
		{"a new address", api.WatchBatch{Events: events(t, remote("web2", "web", "n2", api.TaskRunning, "10.240.2.6", "", nil, webPort))}, true, []string{"web2"}},
		{"deleted", api.WatchBatch{Events: []api.Event{deleted("web2")}}, true, nil},
		{"an empty full resend", api.WatchBatch{Reset: true}, true, nil},
	}
	for _, s := range steps {
		if changed := a.applyFleet(s.batch); changed != s.changed {
			t.Errorf("%s: applyFleet said changed=%v, want %v", s.name, changed, s.changed)
		}
		ids := slices.Sorted(maps.Keys(a.ports.fleet))
		if !slices.Equal(ids, s.want) {
			t.Errorf("%s: fleet holds %v, want %v", s.name, ids, s.want)
		}
	}
	if f := a.ports.fleet; f == nil {
		t.Errorf("after a full resend the fleet is nil (not synced)")
	}
}

// TestIngressPortHeldByAnotherProgram: a task whose ingress port another
// program holds on its node still starts (it may run anywhere: every node
// publishes the port); the agent checks the port when it first publishes
// it, and logs what it found. A host-mode port held is still refused.
func TestIngressPortHeldByAnotherProgram(t *testing.T) {
	a, log := testAgent(t)
	net := &FakeNetwork{Held: map[api.PortKey]bool{webPort.Key(): true, monPort.Key(): true}}
	a.net = net
	ctx := context.Background()

	web := &api.Task{Meta: api.Meta{ID: "web1"}, Spec: api.ServiceSpec{Ports: []api.PortConfig{webPort}}}
	if err := a.checkPorts(ctx, web); err != nil {
		t.Errorf("checkPorts(a task with ingress port 8080 held by another program) = %v, want nil", err)
	}
	mon := &api.Task{Meta: api.Meta{ID: "mon1"}, Spec: api.ServiceSpec{Ports: []api.PortConfig{monPort}}}
	if err := a.checkPorts(ctx, mon); err == nil || !strings.Contains(err.Error(), "9100/tcp is in use on this node") {
		t.Errorf("checkPorts(a task with host port 9100 held by another program) = %v, want it refused", err)
	}

	// Not synced yet: nothing is published.
	a.publishPorts(ctx)
	if len(net.publishes) != 0 {
		t.Fatalf("publishPorts before the watches synced published %v", net.publishes)
	}
	a.synced = true
	a.applyFleet(api.WatchBatch{Reset: true, Events: events(t, remote("web2", "web", "n2", api.TaskRunning, "10.240.2.5", "", nil, webPort))})
	net.checks = nil
	a.publishPorts(ctx)
	if len(net.publishes) != 1 || len(net.publishes[0]) != 1 || !net.publishes[0][0].Ingress {
		t.Fatalf("publishPorts published %v, want once, the ingress port 8080 to n2's task", net.publishes)
	}
	if fmt.Sprint(net.checks) != fmt.Sprint([]api.PortKey{webPort.Key()}) {
		t.Errorf("publishPorts checked %v, want the new ingress port 8080/tcp", net.checks)
	}
	if !strings.Contains(log.String(), "an ingress port is held by another program on this node") || !strings.Contains(log.String(), "port=8080/tcp") {
		t.Errorf("the log does not tell of port 8080 held by another program:\n%s", log)
	}

	// A new backend: published again, the port not checked again.
	runLocal(a, "web1", "web", "10.240.1.2", webPort)
	net.checks = nil
	a.publishPorts(ctx)
	if len(net.publishes) != 2 || len(net.checks) != 0 {
		t.Errorf("after a new backend: %d publishes (want 2), ports checked %v (want none)", len(net.publishes), net.checks)
	}
}

// fakeMesh is a MeshNet whose syncs the tests make up (setMesh).
type fakeMesh struct{}

func (fakeMesh) PublicKey() wgtypes.Key { return wgtypes.Key{1} }
func (fakeMesh) Port() int              { return 51820 }
func (fakeMesh) Iface() string          { return "wg-test" }
func (fakeMesh) Sync(wg.Self, []wg.Peer, time.Time) (wg.Status, error) {
	return wg.Status{}, errors.New("fakeMesh: not synced by tests")
}

// TestFleetBackendsNeedTheMesh: another node's task is a backend of this
// node's ingress ports only while the mesh reaches its node. One that has
// not shaken hands yet, that goes silent, or that is no peer at all is
// left out, and each change of the nodes in reach publishes once.
func TestFleetBackendsNeedTheMesh(t *testing.T) {
	a, _ := testAgent(t)
	net := &FakeNetwork{}
	a.net, a.cfg.Mesh, a.synced = net, fakeMesh{}, true
	ctx := context.Background()
	runLocal(a, "web1", "web", "10.240.1.2", webPort)
	a.applyFleet(api.WatchBatch{Reset: true, Events: events(t,
		remote("web2", "web", "n2", api.TaskRunning, "10.240.2.5", "", nil, webPort),
		remote("web3", "web", "n3", api.TaskRunning, "10.240.3.5", "", nil, webPort))})
	peer := func(node string, reachable bool) wg.PeerStatus {
		return wg.PeerStatus{NodeID: node, Reachable: reachable}
	}
	steps := []struct {
		name    string
		peers   []wg.PeerStatus // nil: no sync
		changed bool
		want    string
	}{
		{"before the first sync", nil, false, "[10.240.1.2:80]"},
		{"n2 in reach, n3 not yet", []wg.PeerStatus{peer("n2", true), peer("n3", false)}, true, "[10.240.1.2:80 10.240.2.5:80]"},
		{"both in reach", []wg.PeerStatus{peer("n2", true), peer("n3", true)}, true, "[10.240.1.2:80 10.240.2.5:80 10.240.3.5:80]"},
		{"the same again", []wg.PeerStatus{peer("n2", true), peer("n3", true)}, false, "[10.240.1.2:80 10.240.2.5:80 10.240.3.5:80]"},
		{"n2 silent", []wg.PeerStatus{peer("n2", false), peer("n3", true)}, true, "[10.240.1.2:80 10.240.3.5:80]"},
		{"n3 no peer any more", []wg.PeerStatus{peer("n2", false)}, true, "[10.240.1.2:80]"},
	}
	for _, s := range steps {
		if s.peers != nil {
			if changed := a.setMesh(wg.Status{Peers: s.peers}, nil); changed != s.changed {
				t.Errorf("%s: setMesh said the nodes in reach changed=%v, want %v", s.name, changed, s.changed)
			}
		}
		a.publishPorts(ctx)
		last := net.publishes[len(net.publishes)-1]
		if len(last) != 1 || fmt.Sprint(last[0].Backends) != s.want {
			t.Errorf("%s: published %v, want port 8080 to %s", s.name, last, s.want)
		}
	}
	if n := len(net.publishes); n != 5 {
		t.Errorf("%d publishes, want 5 (one per change of the backends)", n)
	}
}

func TestNextMeshSync(t *testing.T) {
	in := wg.Status{Peers: []wg.PeerStatus{{NodeID: "n2", Reachable: true}}}
	out := wg.Status{Peers: []wg.PeerStatus{{NodeID: "n2", Reachable: true}, {NodeID: "n3"}}}
	for _, c := range []struct {
		st         wg.Status
		last, want time.Duration
	}{
		{in, meshSoon, meshEvery},
		{wg.Status{}, meshSoon, meshEvery},
		{out, 0, meshSoon},
		{out, meshSoon, 2 * meshSoon},
		{out, meshEvery, meshEvery},
		{out, 4 * time.Second, meshEvery},
	} {
		if got := nextMeshSync(c.st, c.last); got != c.want {
			t.Errorf("nextMeshSync(peers %+v, after %v) = %v, want %v", c.st.Peers, c.last, got, c.want)
		}
	}
}
