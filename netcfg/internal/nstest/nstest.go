// Package nstest builds throwaway network namespaces for the root tests of
// netcfg: a namespace that plays the node, others that play containers or
// clients, veth pairs between them, and servers and clients inside them.
//
// Namespaces made here are anonymous: they are held by an open file
// descriptor and vanish, with every link in them, when the test's cleanup
// closes it or when the test process dies. Nothing is created in the real
// host's namespace.
package nstest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/warren-edge/warren/netcfg/link"
)

// RequireRoot skips the test unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root to create network namespaces (run go test as root)")
	}
}

// NS is a network namespace of a test.
type NS struct {
	Handle netns.NsHandle
	// Path opens the namespace from another process, e.g.
	// nsenter --net=PATH.
	Path string
	// NL is a netlink handle in the namespace.
	NL *netlink.Handle
}

// New creates a network namespace with lo up. It is destroyed at the end of
// the test.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	h, err := link.NewNetNS()
	if err != nil {
		t.Fatalf("create network namespace: %v", err)
	}
	n := &NS{Handle: h, Path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(h))}
	t.Cleanup(func() { n.Handle.Close() })
	err = link.Do(h, func() error {
		var err error
		n.NL, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		t.Fatalf("netlink handle in the test namespace: %v", err)
	}
	t.Cleanup(n.NL.Close)
	lo, err := n.NL.LinkByName("lo")
	if err == nil {
		err = n.NL.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("set lo up in the test namespace: %v", err)
	}
	return n
}

// Open opens the network namespace mounted at path (a sandbox's) for the
// test; the handle is closed at the end of the test.
func Open(t testing.TB, path string) *NS {
	t.Helper()
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatalf("open network namespace %s: %v", path, err)
	}
	n := &NS{Handle: h, Path: path}
	t.Cleanup(func() { n.Handle.Close() })
	err = link.Do(h, func() error {
		var err error
		n.NL, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		t.Fatalf("netlink handle in %s: %v", path, err)
	}
	t.Cleanup(n.NL.Close)
	return n
}

// Do runs fn inside the namespace.
func (n *NS) Do(fn func() error) error { return link.Do(n.Handle, fn) }

// Connect makes a veth pair between a (named aName, with addresses aAddrs)
// and b (bName, bAddrs), both ends up.
func Connect(t testing.TB, a *NS, aName string, aAddrs []netip.Prefix, b *NS, bName string, bAddrs []netip.Prefix) {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(b.Handle),
	}
	if err := a.NL.LinkAdd(veth); err != nil {
		t.Fatalf("create veth %s/%s: %v", aName, bName, err)
	}
	for _, side := range []struct {
		ns    *NS
		name  string
		addrs []netip.Prefix
	}{{a, aName, aAddrs}, {b, bName, bAddrs}} {
		l, err := side.ns.NL.LinkByName(side.name)
		if err != nil {
			t.Fatalf("find %s: %v", side.name, err)
		}
		for _, p := range side.addrs {
			ipn := &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
			if err := side.ns.NL.AddrAdd(l, &netlink.Addr{IPNet: ipn}); err != nil {
				t.Fatalf("add %s to %s: %v", p, side.name, err)
			}
		}
		if err := side.ns.NL.LinkSetUp(l); err != nil {
			t.Fatalf("set %s up: %v", side.name, err)
		}
	}
}

// Run runs a command inside the namespace (through nsenter) and returns its
// combined output.
func (n *NS) Run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.Path, "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// RunStdin is Run with stdin.
func (n *NS) RunStdin(stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + n.Path, "--"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Dial connects from inside the namespace.
func (n *NS) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}

// ServeTCP listens on addr inside the namespace and answers every connection
// with reply followed by a newline, then closes it. The listener is closed
// at the end of the test.
func (n *NS) ServeTCP(t testing.TB, addr, reply string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on tcp %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", reply)
			c.Close()
		}
	}()
	return ln
}

// ServeTCPPeer listens on addr inside the namespace and answers every
// connection with the address it came from.
func (n *NS) ServeTCPPeer(t testing.TB, addr string) {
	t.Helper()
	var ln net.Listener
	if err := n.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on tcp %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr())
			c.Close()
		}
	}()
}

// ServeUDP listens on addr inside the namespace and answers every datagram
// with reply.
func (n *NS) ServeUDP(t testing.TB, addr, reply string) {
	t.Helper()
	var pc net.PacketConn
	if err := n.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on udp %s: %v", addr, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(reply), from)
		}
	}()
}

// ReadLine connects to addr (tcp) from inside the namespace and returns the
// first line the server sends.
func (n *NS) ReadLine(addr string) (string, error) {
	c, err := n.Dial("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read from %s: %w", addr, err)
	}
	return strings.TrimSpace(line), nil
}

// AskUDP sends a datagram to addr from inside the namespace and returns the
// answer.
func (n *NS) AskUDP(addr string) (string, error) {
	c, err := n.Dial("udp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		return "", err
	}
	buf := make([]byte, 1500)
	k, err := c.Read(buf)
	if err != nil {
		return "", fmt.Errorf("read from udp %s: %w", addr, err)
	}
	return string(buf[:k]), nil
}

// NetnsDir returns a temporary directory for sandbox namespace files.
// link.Host makes it a mount point and mounts namespaces in it; the test's
// cleanup unmounts all of that before the directory is removed.
func NetnsDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	netnsDirs.Lock()
	netnsDirs.list = append(netnsDirs.list, dir)
	netnsDirs.Unlock()
	t.Cleanup(func() {
		for _, m := range MountsUnder(dir) {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				t.Errorf("cleanup: unmount %s: %v", m, err)
			}
		}
	})
	return dir
}

// MountsUnder returns the mount points at or below dir, deepest first.
func MountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	// Deepest first; a path mounted twice appears twice and is unmounted twice.
	slices.SortStableFunc(mounts, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return mounts
}

func unescapeMountinfo(s string) string {
	r := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	return r.Replace(s)
}
