package nft

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
	"github.com/warren-edge/warren/netcfg/link"
)

// node is a whole Warren node inside test namespaces: a "host" namespace
// with the bridge warren0 (10.88.3.1/24) and table inet warren, sandboxes on
// the bridge, and a "client" namespace on a veth to the host, which has the
// addresses 192.0.2.1 and 192.0.2.2 on that link (the client is
// 192.0.2.100).
type node struct {
	host   *link.Host
	hostNS *nstest.NS
	client *nstest.NS // nil for a node made by newMeshedNode
	table  *Table
	bridge netip.Prefix // the bridge's address, in the subnet
	// cluster and mesh go into every Config apply makes.
	cluster netip.Prefix
	mesh    string
}

const (
	nodeAddr1 = "192.0.2.1"
	nodeAddr2 = "192.0.2.2"
	clientIP  = "192.0.2.100"
)

func newNode(t *testing.T) *node {
	t.Helper()
	n := newBareNode(t, "10.88.3.1/24")
	n.client = nstest.New(t)
	nstest.Connect(t,
		n.hostNS, "cl0", []netip.Prefix{netip.MustParsePrefix(nodeAddr1 + "/24"), netip.MustParsePrefix(nodeAddr2 + "/24")},
		n.client, "eth0", []netip.Prefix{netip.MustParsePrefix(clientIP + "/24")})
	return n
}

// newBareNode makes a node whose bridge has address bridge (such as
// 10.88.3.1/24), and no client.
func newBareNode(t *testing.T, bridge string) *node {
	t.Helper()
	hostNS := nstest.New(t)
	h, err := link.Open(link.Config{NetNSPath: hostNS.Path, NetnsDir: nstest.NetnsDir(t)})
	if err != nil {
		t.Fatalf("link.Open: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	br := netip.MustParsePrefix(bridge)
	if err := h.EnsureBridge("warren0", br); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	return &node{host: h, hostNS: hostNS, table: NewTable(InNetNS(int(h.NetNS()))), bridge: br}
}

// sandbox makes a container sandbox with address addr (10.88.3.x).
func (n *node) sandbox(t *testing.T, id, addr string) *nstest.NS {
	t.Helper()
	path, err := n.host.CreateSandbox(id, "warren0", netip.PrefixFrom(netip.MustParseAddr(addr), n.bridge.Bits()), n.bridge.Addr())
	if err != nil {
		t.Fatalf("CreateSandbox(%s): %v", id, err)
	}
	return nstest.Open(t, path)
}

func (n *node) apply(t *testing.T, ports ...PublishedPort) {
	t.Helper()
	cfg := Config{Bridge: "warren0", Subnet: n.bridge.Masked(), Cluster: n.cluster, Mesh: n.mesh, Ports: ports}
	if err := n.table.Apply(cfg); err != nil {
		t.Fatalf("Apply(%v): %v", ports, err)
	}
}

func tcpPort(port uint16, backends ...string) PublishedPort {
	p := PublishedPort{Proto: TCP, Port: port}
	for _, b := range backends {
		p.Backends = append(p.Backends, mustAP(b))
	}
	return p
}

func expectLine(t *testing.T, from *nstest.NS, who, addr, want string) {
	t.Helper()
	got, err := from.ReadLine(addr)
	if err != nil || got != want {
		t.Errorf("from %s, connect to %s: got %q, %v; want %q", who, addr, got, err, want)
	}
}

func expectRefused(t *testing.T, from *nstest.NS, who, addr string) {
	t.Helper()
	start := time.Now()
	got, err := from.ReadLine(addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("from %s, connect to %s: got %q, %v after %v; want connection refused", who, addr, got, err, time.Since(start).Round(time.Millisecond))
	}
}

func TestPublishedPortFromAnotherHost(t *testing.T) {
	n := newNode(t)
	web := n.sandbox(t, "web", "10.88.3.2")
	web.ServeTCP(t, "10.88.3.2:80", "web")
	n.apply(t, tcpPort(8080, "10.88.3.2:80"))

	expectLine(t, n.client, "client", nodeAddr1+":8080", "web")
	expectLine(t, n.client, "client", nodeAddr2+":8080", "web")
	expectRefused(t, n.client, "client", nodeAddr1+":8081")
}

func TestPublishedPortFromTheNodeItself(t *testing.T) {
	n := newNode(t)
	web := n.sandbox(t, "web", "10.88.3.2")
	web.ServeTCP(t, "10.88.3.2:80", "web")
	n.apply(t, tcpPort(8080, "10.88.3.2:80"))

	for _, addr := range []string{"127.0.0.1:8080", nodeAddr1 + ":8080", "10.88.3.1:8080"} {
		expectLine(t, n.hostNS, "the node", addr, "web")
	}
}

func TestPortBoundToOneHostAddress(t *testing.T) {
	n := newNode(t)
	web := n.sandbox(t, "web", "10.88.3.2")
	web.ServeTCP(t, "10.88.3.2:80", "web")
	p := tcpPort(8080, "10.88.3.2:80")
	p.HostAddr = netip.MustParseAddr(nodeAddr1)
	n.apply(t, p)

	expectLine(t, n.client, "client", nodeAddr1+":8080", "web")
	expectRefused(t, n.client, "client", nodeAddr2+":8080")
	expectLine(t, n.hostNS, "the node", nodeAddr1+":8080", "web")
	expectRefused(t, n.hostNS, "the node", "127.0.0.1:8080")
}

func TestPublishedUDPPort(t *testing.T) {
	n := newNode(t)
	dns := n.sandbox(t, "dns", "10.88.3.7")
	dns.ServeUDP(t, "10.88.3.7:53", "answer")
	n.apply(t, PublishedPort{Proto: UDP, Port: 5353, Backends: []netip.AddrPort{mustAP("10.88.3.7:53")}})

	if got, err := n.client.AskUDP(nodeAddr1 + ":5353"); err != nil || got != "answer" {
		t.Errorf("from client, udp to %s:5353: %q, %v; want %q", nodeAddr1, got, err, "answer")
	}
	if got, err := n.hostNS.AskUDP("127.0.0.1:5353"); err != nil || got != "answer" {
		t.Errorf("from the node, udp to 127.0.0.1:5353: %q, %v; want %q", got, err, "answer")
	}
}

func TestSeveralBackendsShareTheLoad(t *testing.T) {
	n := newNode(t)
	want := map[string]bool{}
	var backends []string
	for i, addr := range []string{"10.88.3.2", "10.88.3.3", "10.88.3.4"} {
		name := string(rune('a' + i))
		n.sandbox(t, name, addr).ServeTCP(t, addr+":80", name)
		want[name] = true
		backends = append(backends, addr+":80")
	}
	n.apply(t, tcpPort(8080, backends...))

	seen := map[string]int{}
	for range 60 { // P(some backend never seen) = 3 * (2/3)^60 < 1e-10
		got, err := n.client.ReadLine(nodeAddr1 + ":8080")
		if err != nil {
			t.Fatalf("connect to the published port: %v", err)
		}
		if !want[got] {
			t.Fatalf("published port answered %q, want one of the backends", got)
		}
		seen[got]++
	}
	if len(seen) != len(want) {
		t.Errorf("60 connections reached backends %v, want all of a, b, c", seen)
	}
}

func TestEmptyConfigRemovesTheDNAT(t *testing.T) {
	n := newNode(t)
	web := n.sandbox(t, "web", "10.88.3.2")
	web.ServeTCP(t, "10.88.3.2:80", "web")
	n.apply(t, tcpPort(8080, "10.88.3.2:80"))
	expectLine(t, n.client, "client", nodeAddr1+":8080", "web")

	n.apply(t)
	expectRefused(t, n.client, "client", nodeAddr1+":8080")

	if err := n.table.Remove(); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if names := tableNames(t, n.hostNS); len(names) != 0 {
		t.Errorf("after Remove, the host namespace has tables %v, want none", names)
	}
}

func TestPortWithoutBackendsIsRefused(t *testing.T) {
	n := newNode(t)
	n.apply(t, tcpPort(8080))
	expectRefused(t, n.client, "client", nodeAddr1+":8080")
	expectRefused(t, n.hostNS, "the node", "127.0.0.1:8080")
}

func TestContainersReachOutWithTheNodeAddress(t *testing.T) {
	n := newNode(t)
	web := n.sandbox(t, "web", "10.88.3.2")
	n.client.ServeTCPPeer(t, clientIP+":9000")
	n.apply(t)

	got, err := web.ReadLine(clientIP + ":9000")
	if err != nil {
		t.Fatalf("from the container, connect to the client: %v", err)
	}
	if !strings.HasPrefix(got, nodeAddr1+":") {
		t.Errorf("the client saw the container's connection come from %s, want the node address %s", got, nodeAddr1)
	}
}

func TestHairpin(t *testing.T) {
	n := newNode(t)
	web := n.sandbox(t, "web", "10.88.3.2")
	other := n.sandbox(t, "other", "10.88.3.3")
	web.ServeTCP(t, "10.88.3.2:80", "web")
	n.apply(t, tcpPort(8080, "10.88.3.2:80"))

	expectLine(t, other, "another container", nodeAddr1+":8080", "web")
	expectLine(t, web, "the backend itself", nodeAddr1+":8080", "web")
}

// TestContainersCannotReachNodeLoopback: route_localnet on the bridge (for
// localhost:PORT) makes the node accept packets for 127.0.0.0/8 that arrive
// on the bridge, so a container could send to services that listen on the
// node's loopback only (CVE-2020-8558 in kube-proxy). The table drops them.
// UDP shows it best: one datagram is all an attacker needs.
func TestContainersCannotReachNodeLoopback(t *testing.T) {
	n := newNode(t)
	evil := n.sandbox(t, "evil", "10.88.3.66")
	n.apply(t)
	expectNoLoopbackFrom(t, n.hostNS, evil, "the container", "eth0", "10.88.3.1", "10.88.3.66")
}

// expectNoLoopbackFrom sends datagrams for 127.0.0.1:9999 from evil to the
// node through evil's interface dev, to the node's address via, from src,
// and checks that a service on the node's loopback gets none of them but
// gets the node's own, sent after them.
func expectNoLoopbackFrom(t *testing.T, node, evil *nstest.NS, who, dev, via, src string) {
	t.Helper()
	got := make(chan string, 10)
	var pc net.PacketConn
	if err := node.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:9999")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 100)
		for {
			k, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			got <- string(buf[:k])
		}
	}()

	// In evil's namespace, send 127.0.0.1 to the node instead of lo.
	for _, args := range [][]string{
		{"ip", "route", "del", "local", "127.0.0.1", "table", "local"},
		{"ip", "route", "del", "local", "127.0.0.0/8", "table", "local"},
		{"ip", "route", "add", "127.0.0.1/32", "via", via, "dev", dev, "src", src},
	} {
		if out, err := evil.Run(args...); err != nil {
			t.Fatalf("in %s's namespace: %v\n%s", who, err, out)
		}
	}

	send := func(from *nstest.NS, msg string) {
		t.Helper()
		c, err := from.Dial("udp", "127.0.0.1:9999", time.Second)
		if err != nil {
			t.Fatalf("dial udp 127.0.0.1:9999: %v", err)
		}
		defer c.Close()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatalf("send to udp 127.0.0.1:9999: %v", err)
		}
	}
	for range 3 {
		send(evil, "from "+who)
	}
	send(node, "from the node")
	for {
		select {
		case msg := <-got:
			if msg == "from "+who {
				t.Fatalf("a datagram from %s reached a service on the node's loopback", who)
			}
			if msg == "from the node" {
				return // the node's own datagram came after the others
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("the node's own datagram to 127.0.0.1:9999 did not arrive")
		}
	}
}
