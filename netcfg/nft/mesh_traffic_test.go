package nft

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
)

// meshName plays the WireGuard mesh's interface in these tests: a veth
// pair between two nodes' namespaces (the table only cares about the name).
const meshName = "wvmesh0"

func run(t *testing.T, ns *nstest.NS, args ...string) {
	t.Helper()
	if out, err := ns.Run(args...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// expectBlocked checks that a connection from `from` to addr gets no
// answer at all: the packets were dropped (not refused).
func expectBlocked(t *testing.T, from *nstest.NS, who, addr string) {
	t.Helper()
	start := time.Now()
	got, err := from.ReadLine(addr)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("from %s, connect to %s: got %q, %v after %v; want no answer (dropped)", who, addr, got, err, time.Since(start).Round(time.Millisecond))
	}
}

// expectPeer checks that the server at addr (ServeTCPPeer) saw the
// connection from `from` come from the address want.
func expectPeer(t *testing.T, from *nstest.NS, who, addr, want string) {
	t.Helper()
	got, err := from.ReadLine(addr)
	if err != nil || !strings.HasPrefix(got, want+":") {
		t.Errorf("from %s, connect to %s: the server saw %q, %v; want a connection from %s", who, addr, got, err, want)
	}
}

// TestLANHostCannotReachContainers: a host on the node's LAN that routes
// the container range through the node reaches containers and the
// bridge's address as long as nothing stops it; with the table, only
// published ports answer it, while containers, the node itself and the
// published port keep working.
func TestLANHostCannotReachContainers(t *testing.T) {
	n := newNode(t)
	n.cluster = testCluster
	web := n.sandbox(t, "web", "10.88.3.2")
	web.ServeTCP(t, "10.88.3.2:80", "web")
	other := n.sandbox(t, "other", "10.88.3.3")
	n.hostNS.ServeTCP(t, "10.88.3.1:53", "dns") // as warren-dns on the bridge address
	run(t, n.client, "ip", "route", "add", testCluster.String(), "via", nodeAddr1)

	// Without Warren's table the route is all it takes.
	expectLine(t, n.client, "a LAN host", "10.88.3.2:80", "web")
	expectLine(t, n.client, "a LAN host", "10.88.3.1:53", "dns")

	n.apply(t, tcpPort(8080, "10.88.3.2:80"))
	expectBlocked(t, n.client, "a LAN host", "10.88.3.2:80")
	expectBlocked(t, n.client, "a LAN host", "10.88.3.1:53")
	expectLine(t, n.client, "a LAN host", nodeAddr1+":8080", "web")
	expectLine(t, n.client, "a LAN host", "10.88.3.1:8080", "web") // a published port answers on every node address

	expectLine(t, other, "another container", "10.88.3.2:80", "web")
	expectLine(t, other, "a container", "10.88.3.1:53", "dns")
	expectLine(t, n.hostNS, "the node", "10.88.3.1:53", "dns")
	expectLine(t, n.hostNS, "the node", "10.88.3.2:80", "web")
}

// meshedPair makes two nodes joined by a mesh: a (10.88.3.0/24, with a
// LAN client) and b (10.88.4.0/24), their namespaces linked by a veth pair
// named meshName (10.99.0.1 and .2) with routes to each other's container
// subnet through it, as the WireGuard mesh will have. Both tables are
// applied without ports.
func meshedPair(t *testing.T) (a, b *node) {
	t.Helper()
	a, b = newNode(t), newBareNode(t, "10.88.4.1/24")
	nstest.Connect(t,
		a.hostNS, meshName, []netip.Prefix{netip.MustParsePrefix("10.99.0.1/30")},
		b.hostNS, meshName, []netip.Prefix{netip.MustParsePrefix("10.99.0.2/30")})
	run(t, a.hostNS, "ip", "route", "add", "10.88.4.0/24", "via", "10.99.0.2", "dev", meshName)
	run(t, b.hostNS, "ip", "route", "add", "10.88.3.0/24", "via", "10.99.0.1", "dev", meshName)
	for _, n := range []*node{a, b} {
		// As the agent does once the mesh is up (HostNetwork.SetMesh).
		if err := n.host.RouteLocalnet(meshName); err != nil {
			t.Fatal(err)
		}
		n.cluster, n.mesh = testCluster, meshName
		n.apply(t)
	}
	return a, b
}

// TestIngressToARemoteBackend: a published port of node a whose only
// backend runs on node b answers a's LAN client through the mesh. The
// backend sees a's bridge address (the answer must come back through a),
// while a local backend sees the client's own address.
func TestIngressToARemoteBackend(t *testing.T) {
	a, b := meshedPair(t)
	local := a.sandbox(t, "local", "10.88.3.2")
	local.ServeTCPPeer(t, "10.88.3.2:80")
	remote := b.sandbox(t, "remote", "10.88.4.2")
	remote.ServeTCPPeer(t, "10.88.4.2:80")

	a.apply(t, tcpPort(8080, "10.88.4.2:80"))
	expectPeer(t, a.client, "a's LAN client", nodeAddr1+":8080", "10.88.3.1")
	expectPeer(t, a.hostNS, "node a", nodeAddr1+":8080", "10.88.3.1")
	expectPeer(t, a.hostNS, "node a", "127.0.0.1:8080", "10.88.3.1") // route_localnet on the mesh
	expectPeer(t, local, "a container on a", nodeAddr1+":8080", "10.88.3.1")

	a.apply(t, tcpPort(8080, "10.88.3.2:80"))
	expectPeer(t, a.client, "a's LAN client", nodeAddr1+":8080", clientIP)

	// Without a mesh a remote backend is unreachable: the port is not
	// forwarded, and refused.
	a.mesh = ""
	a.apply(t, tcpPort(8080, "10.88.4.2:80"))
	expectRefused(t, a.client, "a's LAN client", nodeAddr1+":8080")
}

// TestIngressBalancesOverBothNodes: one port, a backend on each node, both
// used.
func TestIngressBalancesOverBothNodes(t *testing.T) {
	a, b := meshedPair(t)
	a.sandbox(t, "local", "10.88.3.2").ServeTCP(t, "10.88.3.2:80", "a")
	b.sandbox(t, "remote", "10.88.4.2").ServeTCP(t, "10.88.4.2:80", "b")
	a.apply(t, tcpPort(8080, "10.88.3.2:80", "10.88.4.2:80"))
	seen := map[string]int{}
	for range 40 { // P(one never seen) = 2 * 2^-40
		got, err := a.client.ReadLine(nodeAddr1 + ":8080")
		if err != nil {
			t.Fatalf("connect to the published port: %v", err)
		}
		seen[got]++
	}
	if seen["a"] == 0 || seen["b"] == 0 || len(seen) != 2 {
		t.Errorf("40 connections reached %v, want both backends a and b", seen)
	}
}

// TestMeshKeepsContainerAddresses: containers of two nodes reach each
// other through the mesh with their own addresses (no masquerade), and a
// LAN host routing the cluster range through a node reaches neither.
func TestMeshKeepsContainerAddresses(t *testing.T) {
	a, b := meshedPair(t)
	ca := a.sandbox(t, "ca", "10.88.3.2")
	ca.ServeTCPPeer(t, "10.88.3.2:80")
	cb := b.sandbox(t, "cb", "10.88.4.2")
	cb.ServeTCPPeer(t, "10.88.4.2:80")

	expectPeer(t, ca, "a container on a", "10.88.4.2:80", "10.88.3.2")
	expectPeer(t, cb, "a container on b", "10.88.3.2:80", "10.88.4.2")

	run(t, a.client, "ip", "route", "add", testCluster.String(), "via", nodeAddr1)
	expectBlocked(t, a.client, "a's LAN client", "10.88.4.2:80")
	expectBlocked(t, a.client, "a's LAN client", "10.88.3.2:80")
}

// TestMeshPeerCannotReachNodeLoopback: route_localnet on the mesh (for
// localhost:PORT to a remote backend) would let another node send to the
// services on this node's loopback; the table drops such packets.
func TestMeshPeerCannotReachNodeLoopback(t *testing.T) {
	a, b := meshedPair(t)
	expectNoLoopbackFrom(t, a.hostNS, b.hostNS, "the other node", meshName, "10.99.0.1", "10.99.0.2")
}

// TestMeshClampsMSS: containers have MTU 1500, the mesh less (1400 here);
// a TCP connection between containers of the two nodes gets an MSS that
// fits the mesh in both directions: the SYN is clamped by the node it
// leaves (a) and the SYN-ACK by the other (b), which sees it as an answer
// (ct state established) and must clamp it before accepting it.
func TestMeshClampsMSS(t *testing.T) {
	a, b := meshedPair(t)
	for _, n := range []*node{a, b} {
		run(t, n.hostNS, "ip", "link", "set", meshName, "mtu", "1400")
	}
	ca := a.sandbox(t, "ca", "10.88.3.2")
	cb := b.sandbox(t, "cb", "10.88.4.2")
	const most = 1400 - 40 // IPv4 and TCP headers

	// Without the table, both ends advertise 1460 (their veth's 1500).
	for _, n := range []*node{a, b} {
		if err := n.table.Remove(); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := handshakeMSS(t, ca, cb, "10.88.4.2:80")
	t.Logf("without the table: MSS %d", got)
	if got <= most {
		t.Fatalf("without the table, the server's MSS is %d; want above %d, or this test proves nothing", got, most)
	}

	a.apply(t)
	b.apply(t)
	server, client := handshakeMSS(t, ca, cb, "10.88.4.2:80")
	t.Logf("with the table: MSS %d on b's side, %d on a's", server, client)
	if server > most {
		t.Errorf("a container on b accepted a connection from a's with MSS %d, want at most %d (the SYN is clamped on its way into the mesh)", server, most)
	}
	if client > most {
		t.Errorf("a container on a connected to b's with MSS %d, want at most %d (the SYN-ACK is clamped on its way into the mesh)", client, most)
	}
}

// handshakeMSS connects from `from` to a listener on addr in `to` and
// returns TCP_MAXSEG of the accepted and of the connecting socket, right
// after the handshake: each is at most the MSS its peer advertised.
func handshakeMSS(t *testing.T, from, to *nstest.NS, addr string) (server, client int) {
	t.Helper()
	var ln net.Listener
	if err := to.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on tcp %s: %v", addr, err)
	}
	defer ln.Close()
	c, err := from.Dial("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	defer c.Close()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(3 * time.Second))
	s, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept on %s: %v", addr, err)
	}
	defer s.Close()
	return maxSeg(t, s), maxSeg(t, c)
}

func maxSeg(t *testing.T, c net.Conn) int {
	t.Helper()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var mss int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		mss, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG)
	}); err != nil || serr != nil {
		t.Fatalf("getsockopt TCP_MAXSEG: %v %v", err, serr)
	}
	return mss
}
