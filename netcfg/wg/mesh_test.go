package wg

import (
	"bufio"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
	"github.com/warren-edge/warren/netcfg/link"
)

// node is one side of a two-node mesh test: a namespace with an underlay
// address, a "container subnet" on a dummy link, the interface served by a
// child process, and the agent's Mesh.
type node struct {
	ns      *nstest.NS
	iface   string
	under   netip.Addr
	subnet  netip.Prefix
	keyFile string
	mesh    *Mesh
	serve   *exec.Cmd
}

func (n *node) gateway() netip.Addr { return n.subnet.Addr().Next() }

func (n *node) peer() Peer {
	return Peer{NodeID: n.iface, PublicKey: n.mesh.PublicKey(), Endpoint: netip.AddrPortFrom(n.under, 51820), Subnet: n.subnet}
}

// startServe runs the interface in a child process inside the namespace,
// as warren mesh does under systemd.
func (n *node) startServe(t *testing.T) {
	t.Helper()
	cmd := exec.Command("nsenter", "--net="+n.ns.Path, "--", os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+n.iface)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.serve = cmd
	t.Cleanup(func() { n.stopServe() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		t.Fatalf("warren mesh for %s did not start: %q %v", n.iface, line, err)
	}
	go io.Copy(io.Discard, out)
	if !strings.Contains(line, ModeUserspace) && !strings.Contains(line, ModeKernel) {
		t.Fatalf("mode line %q", line)
	}
}

func (n *node) stopServe() {
	if n.serve == nil {
		return
	}
	n.serve.Process.Signal(syscall.SIGTERM)
	n.serve.Wait()
	n.serve = nil
}

func newNode(t *testing.T, ns *nstest.NS, iface string, under netip.Addr, subnet string) *node {
	t.Helper()
	n := &node{ns: ns, iface: iface, under: under, subnet: netip.MustParsePrefix(subnet), keyFile: filepath.Join(t.TempDir(), "mesh.key")}
	// The node's bridge, holding the gateway.
	dum := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "wvdum"}}
	if err := ns.NL.LinkAdd(dum); err != nil {
		t.Fatal(err)
	}
	l, _ := ns.NL.LinkByName("wvdum")
	if err := ns.NL.AddrAdd(l, &netlink.Addr{IPNet: link.IPNet(netip.PrefixFrom(n.gateway(), n.subnet.Bits()))}); err != nil {
		t.Fatal(err)
	}
	ns.NL.LinkSetUp(l)
	n.startServe(t)
	n.openMesh(t)
	return n
}

func (n *node) openMesh(t *testing.T) {
	t.Helper()
	m, err := NewMesh(MeshConfig{Iface: n.iface, KeyFile: n.keyFile, NetNSPath: n.ns.Path})
	if err != nil {
		t.Fatal(err)
	}
	n.mesh = m
	t.Cleanup(func() { m.Close() })
}

func (n *node) sync(t *testing.T, peers ...Peer) Status {
	t.Helper()
	st, err := n.mesh.Sync(Self{Gateway: n.gateway(), Underlay: n.under}, peers, time.Now())
	if err != nil {
		t.Fatalf("%s: Sync: %v", n.iface, err)
	}
	return st
}

func twoNodes(t *testing.T) (*node, *node) {
	nsA, nsB := nstest.New(t), nstest.New(t)
	ua, ub := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	nstest.Connect(t, nsA, "wvua", []netip.Prefix{netip.PrefixFrom(ua, 24)}, nsB, "wvub", []netip.Prefix{netip.PrefixFrom(ub, 24)})
	a := newNode(t, nsA, "wvmesha", ua, "10.240.1.0/24")
	b := newNode(t, nsB, "wvmeshb", ub, "10.240.2.0/24")
	return a, b
}

// TestMeshCarriesTrafficBetweenSubnets: two nodes with nothing but their
// underlay between them reach each other's container subnet through the
// mesh, the source address kept, and the status says so.
func TestMeshCarriesTrafficBetweenSubnets(t *testing.T) {
	a, b := twoNodes(t)
	a.sync(t, b.peer())
	st := b.sync(t, a.peer())
	if st.MTU != 1500-Overhead4 {
		t.Errorf("MTU = %d, want %d (1500 less WireGuard over IPv4)", st.MTU, 1500-Overhead4)
	}
	b.ns.ServeTCPPeer(t, netip.AddrPortFrom(b.gateway(), 8080).String())
	c, err := a.ns.Dial("tcp", netip.AddrPortFrom(b.gateway(), 8080).String(), 5*time.Second)
	if err != nil {
		t.Fatalf("a cannot reach b's subnet through the mesh: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if src := strings.TrimSpace(got); !strings.HasPrefix(src, a.gateway().String()+":") {
		t.Errorf("b saw the connection come from %s, want a's gateway %s (no NAT on the mesh)", src, a.gateway())
	}
	st = a.sync(t, b.peer())
	if len(st.Peers) != 1 || !st.Peers[0].Reachable || st.Peers[0].LastHandshake.IsZero() {
		t.Errorf("a's status after traffic: %+v, want b reachable with a handshake", st.Peers)
	}
	if st.Mode != ModeUserspace && st.Mode != ModeKernel {
		t.Errorf("mode %q", st.Mode)
	}

	// b leaves the fleet: a's next sync removes the peer and its route.
	st = a.sync(t)
	if len(st.Peers) != 0 {
		t.Errorf("a still has peers after b left: %+v", st.Peers)
	}
	if _, err := a.ns.Dial("tcp", netip.AddrPortFrom(b.gateway(), 8080).String(), 500*time.Millisecond); err == nil {
		t.Errorf("a still reaches b's subnet after b left")
	}
}

// TestAgentRestartKeepsSessions: a new Mesh (the agent restarted) over the
// same interface changes nothing, and a connection open across the mesh
// keeps working.
func TestAgentRestartKeepsSessions(t *testing.T) {
	a, b := twoNodes(t)
	a.sync(t, b.peer())
	b.sync(t, a.peer())
	serveEcho(t, b.ns, netip.AddrPortFrom(b.gateway(), 8080).String())
	c, err := a.ns.Dial("tcp", netip.AddrPortFrom(b.gateway(), 8080).String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello\n"))
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	before, _ := a.mesh.wg.Device(a.iface)

	a.mesh.Close()
	a.openMesh(t)
	if a.mesh.PublicKey() != before.PublicKey {
		t.Fatalf("the restarted agent has another key")
	}
	dev, _ := a.mesh.wg.Device(a.iface)
	if cfg, change := Plan(dev.Peers, []Peer{b.peer()}, map[wgtypes.Key]netip.AddrPort{}); change {
		t.Errorf("after a restart Plan wants to change the device: %+v", cfg)
	}
	a.sync(t, b.peer())
	if _, err := c.Write([]byte("still there?\n")); err != nil {
		t.Fatalf("the connection broke across the agent restart: %v", err)
	}
	if got, err := r.ReadString('\n'); err != nil || got != "still there?\n" {
		t.Fatalf("echo across the agent restart: %q, %v", got, err)
	}
}

// TestMeshServeRestartIsRepaired: warren mesh restarts (userspace: a new,
// empty interface); the agent's next sync puts everything back.
func TestMeshServeRestartIsRepaired(t *testing.T) {
	a, b := twoNodes(t)
	a.sync(t, b.peer())
	b.sync(t, a.peer())
	a.stopServe()
	if _, err := a.mesh.Sync(Self{Gateway: a.gateway(), Underlay: a.under}, []Peer{b.peer()}, time.Now()); err == nil {
		t.Fatalf("Sync with no interface did not fail")
	}
	a.startServe(t)
	a.sync(t, b.peer())
	b.ns.ServeTCPPeer(t, netip.AddrPortFrom(b.gateway(), 8080).String())
	c, err := a.ns.Dial("tcp", netip.AddrPortFrom(b.gateway(), 8080).String(), 5*time.Second)
	if err != nil {
		t.Fatalf("after warren mesh restarted, a cannot reach b: %v", err)
	}
	c.Close()
}

func TestKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k")
	k1, err := LoadOrCreateKey(p)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(p)
	if err != nil || k1 != k2 {
		t.Fatalf("LoadOrCreateKey again: %v, same key %v", err, k1 == k2)
	}
	os.Chmod(p, 0o644)
	if _, err := LoadOrCreateKey(p); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Errorf("a key readable by others: %v", err)
	}
	os.Chmod(p, 0o600)
	os.WriteFile(p, []byte("not a key\n"), 0o600)
	if _, err := LoadOrCreateKey(p); err == nil || !strings.Contains(err.Error(), "does not hold a WireGuard key") {
		t.Errorf("a garbled key: %v", err)
	}
}

// serveEcho echoes lines back on addr inside ns, one connection at a time
// kept open.
func serveEcho(t *testing.T, ns *nstest.NS, addr string) {
	t.Helper()
	var ln net.Listener
	if err := ns.Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
}

// TestEndpointRoaming: b's underlay address changes (a DHCP lease, a new
// uplink) while its record still names the old one. b's next packet
// tells a where it is now; a's syncs from the stale record do not undo
// that, and traffic keeps flowing.
func TestEndpointRoaming(t *testing.T) {
	a, b := twoNodes(t)
	a.sync(t, b.peer())
	b.sync(t, a.peer())
	serveEcho(t, b.ns, netip.AddrPortFrom(b.gateway(), 8080).String())
	echo := func() error {
		c, err := a.ns.Dial("tcp", netip.AddrPortFrom(b.gateway(), 8080).String(), 3*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write([]byte("ping\n"))
		_, err = bufio.NewReader(c).ReadString('\n')
		return err
	}
	if err := echo(); err != nil {
		t.Fatal(err)
	}
	stale := b.peer()
	// b moves to .22 on the same LAN.
	l, err := b.ns.NL.LinkByName("wvub")
	if err != nil {
		t.Fatal(err)
	}
	moved := netip.MustParseAddr("192.0.2.22")
	// (Removing the primary address first: a secondary goes with it.)
	if err := b.ns.NL.AddrDel(l, &netlink.Addr{IPNet: link.IPNet(netip.PrefixFrom(b.under, 24))}); err != nil {
		t.Fatal(err)
	}
	if err := b.ns.NL.AddrAdd(l, &netlink.Addr{IPNet: link.IPNet(netip.PrefixFrom(moved, 24))}); err != nil {
		t.Fatal(err)
	}
	b.under = moved
	// b speaks first (it knows where a is): its keepalive or traffic
	// comes from the new address.
	deadline := time.Now().Add(20 * time.Second)
	for {
		b.ns.Dial("tcp", netip.AddrPortFrom(a.gateway(), 9).String(), 300*time.Millisecond)
		a.sync(t, stale) // the record still says .2
		dev, _ := a.mesh.wg.Device(a.iface)
		if len(dev.Peers) == 1 && dev.Peers[0].Endpoint != nil && dev.Peers[0].Endpoint.IP.Equal(moved.AsSlice()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a did not find b at its new address: peers %+v", dev.Peers)
		}
		time.Sleep(200 * time.Millisecond)
	}
	a.sync(t, stale)
	if err := echo(); err != nil {
		t.Fatalf("after b roamed, with a's record stale: %v", err)
	}
}
