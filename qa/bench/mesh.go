package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/warren-edge/warren/netcfg/link"
	"github.com/warren-edge/warren/netcfg/wg"
)

// The mesh bench's two nodes: namespaces joined by a veth underlay, each
// with a container subnet on a bridge and its mesh interface run by
// bin/warren mesh. Names start with "wb": /run/wireguard is shared with
// other tests on the machine.
const (
	meshPort      = 5201 // the bench's TCP server in B
	meshRunFor    = 3 * time.Second
	meshRuns      = 2
	meshRoundTrip = 2000
	meshFakePeers = 10
)

// meshNode is one node of the mesh bench.
type meshNode struct {
	ns     netns.NsHandle
	path   string // for nsenter --net=
	nl     *netlink.Handle
	iface  string
	under  netip.Addr
	subnet netip.Prefix
	key    string
	serve  *exec.Cmd
	exited chan struct{} // closed when serve has exited
	mesh   *wg.Mesh
}

func (n *meshNode) gateway() netip.Addr { return n.subnet.Addr().Next() }

func (n *meshNode) self() wg.Self { return wg.Self{Gateway: n.gateway(), Underlay: n.under} }

func (n *meshNode) peer() wg.Peer {
	return wg.Peer{NodeID: n.iface, PublicKey: n.mesh.PublicKey(), Endpoint: netip.AddrPortFrom(n.under, 51820), Subnet: n.subnet}
}

func (n *meshNode) sync(peers ...wg.Peer) error {
	_, err := n.mesh.Sync(n.self(), peers, time.Now())
	return err
}

// close stops warren mesh (its TUN goes with it) and releases the
// namespace; the veth and the bridge vanish with the namespace.
func (n *meshNode) close() {
	if n.mesh != nil {
		n.mesh.Close()
	}
	if n.serve != nil {
		n.serve.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(10 * time.Second):
			n.serve.Process.Kill()
			<-n.exited
		}
	}
	if n.nl != nil {
		n.nl.Close()
	}
	n.ns.Close()
}

// newMeshNode makes the namespace, its bridge with the gateway address,
// and starts bin/warren mesh in it. The underlay is added by the caller.
func newMeshNode(dir, iface string, under netip.Addr, subnet string) (*meshNode, error) {
	h, err := link.NewNetNS()
	if err != nil {
		return nil, err
	}
	n := &meshNode{ns: h, path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(h)), iface: iface, under: under,
		subnet: netip.MustParsePrefix(subnet), key: filepath.Join(dir, iface+".key")}
	if err := link.Do(h, func() (err error) { n.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE); return err }); err != nil {
		n.close()
		return nil, err
	}
	lo, err := n.nl.LinkByName("lo")
	if err == nil {
		err = n.nl.LinkSetUp(lo)
	}
	if err == nil {
		err = n.nl.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "wbbr"}})
	}
	if err == nil {
		var br netlink.Link
		if br, err = n.nl.LinkByName("wbbr"); err == nil {
			if err = n.nl.AddrAdd(br, &netlink.Addr{IPNet: link.IPNet(netip.PrefixFrom(n.gateway(), n.subnet.Bits()))}); err == nil {
				err = n.nl.LinkSetUp(br)
			}
		}
	}
	if err != nil {
		n.close()
		return nil, fmt.Errorf("mesh node %s: %w", iface, err)
	}
	return n, nil
}

// startServe runs bin/warren mesh inside the namespace, as the node's
// warren-mesh.service does, and waits for its control socket.
func (n *meshNode) startServe() error {
	sock := "/run/wireguard/" + n.iface + ".sock"
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		return fmt.Errorf("%s is served by another process: is another mesh bench running?", sock)
	}
	cmd := exec.Command("nsenter", "--net="+n.path, "--", binPath("warren"), "mesh", "--iface", n.iface, "--log-level", "warn")
	cmd.Stderr = daemonLog("mesh")
	// If the bench dies, so does its warren mesh (nsenter execs it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s mesh: %w (run make build first)", binPath("warren"), err)
	}
	n.serve, n.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(n.exited) }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("%s mesh --iface %s exited: %s (run make build first?)", binPath("warren"), n.iface, cmd.ProcessState)
		default:
		}
	}
	return fmt.Errorf("warren mesh --iface %s: no control socket after 10 s", n.iface)
}

// dial connects from inside the node's namespace.
func (n *meshNode) dial(addr netip.AddrPort, timeout time.Duration) (*net.TCPConn, error) {
	var c net.Conn
	err := link.Do(n.ns, func() (err error) { c, err = net.DialTimeout("tcp", addr.String(), timeout); return err })
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// benchMesh measures issue 10's figures: two nodes' namespaces joined by a
// veth underlay (MTU 1500), the real warren mesh running each interface
// (userspace WireGuard here: the kernel has no module) and wg.Mesh
// configuring them, as the agent does.
func benchMesh(r *report) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root")
	}
	load := loadAvg() // the machine is shared: say how busy it was
	dir, err := os.MkdirTemp("", "warren-bench-mesh-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ua, ub := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	a, err := newMeshNode(dir, "wbmesha", ua, "10.240.1.0/24")
	if err != nil {
		return err
	}
	defer a.close()
	b, err := newMeshNode(dir, "wbmeshb", ub, "10.240.2.0/24")
	if err != nil {
		return err
	}
	defer b.close()
	if err := connectUnderlay(a, b); err != nil {
		return err
	}
	for _, n := range []*meshNode{a, b} {
		if err := n.startServe(); err != nil {
			return err
		}
		if n.mesh, err = wg.NewMesh(wg.MeshConfig{Iface: n.iface, KeyFile: n.key, NetNSPath: n.path}); err != nil {
			return err
		}
	}
	var ln net.Listener
	if err := link.Do(b.ns, func() (err error) { ln, err = net.Listen("tcp", fmt.Sprintf(":%d", meshPort)); return err }); err != nil {
		return err
	}
	defer ln.Close()
	go serveMeshBench(ln)
	overMesh := netip.AddrPortFrom(b.gateway(), meshPort)
	overUnder := netip.AddrPortFrom(b.under, meshPort)

	// Node join: both agents' first Sync (the peers are known), then
	// A connects to B's subnet until it succeeds.
	start := time.Now()
	if err := a.sync(b.peer()); err != nil {
		return err
	}
	if err := b.sync(a.peer()); err != nil {
		return err
	}
	synced := time.Now()
	for {
		c, err := a.dial(overMesh, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Since(start) > 30*time.Second {
			return fmt.Errorf("mesh: A did not reach B's subnet within 30 s: %w", err)
		}
		time.Sleep(time.Millisecond)
	}
	joined := time.Now()
	mode := a.mesh.Status().Mode
	mtu := a.mesh.Status().MTU

	// Memory: A's warren mesh with B and 10 peers that never answer.
	rss1 := rssMB(a.serve.Process.Pid)
	peers := []wg.Peer{b.peer()}
	for i := range meshFakePeers {
		k, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			return err
		}
		peers = append(peers, wg.Peer{NodeID: fmt.Sprintf("fake-%d", i), PublicKey: k.PublicKey(),
			Endpoint: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)}), 51820),
			Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 240, byte(10 + i), 0}), 24)})
	}
	if err := a.sync(peers...); err != nil {
		return err
	}
	time.Sleep(2 * time.Second) // handshake attempts to the silent peers go out
	rss11 := rssMB(a.serve.Process.Pid)
	heap, err := meshHeap(a, peers)
	if err != nil {
		return err
	}
	if err := a.sync(b.peer()); err != nil {
		return err
	}

	// Throughput A → B over the veth as it is (memory speed, no NIC), then
	// shaped to 1 Gbit/s as a GbE edge link would be.
	fast, err := throughput(a, b, overUnder, overMesh)
	if err != nil {
		return err
	}
	unshape, err := shapeUnderlay(a, "1gbit")
	if err != nil {
		return err
	}
	gbe, err := throughput(a, b, overUnder, overMesh)
	unshape()
	if err != nil {
		return err
	}
	peak := [2]float64{statusMB(a.serve.Process.Pid, "VmHWM"), statusMB(b.serve.Process.Pid, "VmHWM")}

	// Round trips of small messages.
	var rtt [2][]time.Duration
	for i, to := range []netip.AddrPort{overUnder, overMesh} {
		if rtt[i], err = roundTrips(a, to, meshRoundTrip); err != nil {
			return fmt.Errorf("round trips to %s: %w", to, err)
		}
	}

	r.add(fmt.Sprintf("mesh throughput, TCP A's subnet → B's subnet (%s WireGuard, MTU %d) vs the veth underlay", mode, mtu),
		fast.String(), "≥ 70 % of underlay", "both ends share 2 cores: CPU-bound; load at start "+load)
	r.add("mesh throughput, same, underlay shaped to 1 Gbit/s (tbf on A's veth: a GbE edge link)",
		gbe.String(), "≥ 70 % of underlay", "WireGuard's 60 B per 1,500 B packet: at most 96 %")
	up50, up99 := percentiles(rtt[0])
	mp50, mp99 := percentiles(rtt[1])
	r.add(fmt.Sprintf("mesh round trip, 64 B request/response (%s), added over the underlay", thousands(meshRoundTrip)),
		fmt.Sprintf("p50 %s, p99 %s (mesh p50 %s, p99 %s; underlay p50 %s, p99 %s)", ms(mp50-up50), ms(mp99-up99), ms(mp50), ms(mp99), ms(up50), ms(up99)), "", "")
	perGbit := fast.meshCPU.Seconds() / (float64(fast.meshBytes) * 8 / 1e9)
	r.add("mesh CPU per Gbit, both warren mesh processes (A encrypts, B decrypts)",
		fmt.Sprintf("%.2f CPU-s per Gbit (%.0f %% of a core per Gbit/s)", perGbit, 100*perGbit), "", "")
	r.add("node join → mesh reachable (ms), first Sync on both sides to first TCP connect A → B's subnet",
		fmt.Sprintf("%s (Syncs %s, then connect %s)", ms(joined.Sub(start)), ms(synced.Sub(start)), ms(joined.Sub(synced))), "", "")
	r.add(fmt.Sprintf("warren mesh resident memory, %d peers (B + %d that never answer)", meshFakePeers+1, meshFakePeers),
		fmt.Sprintf("%.1f MB (B only %.1f MB; peak during the throughput runs A %.0f MB, B %.0f MB)", rss11, rss1, peak[0], peak[1]), "",
		fmt.Sprintf("agent's share: the wgctrl client and small maps, heap +%.0f KB per wg.Mesh with %d peers", float64(heap)/1024, meshFakePeers+1))
	return nil
}

// connectUnderlay joins a and b with a veth pair (MTU 1500) holding their
// underlay addresses.
func connectUnderlay(a, b *meshNode) error {
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "wbua", MTU: 1500}, PeerName: "wbub", PeerNamespace: netlink.NsFd(b.ns)}
	if err := a.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("underlay veth: %w", err)
	}
	for _, side := range []struct {
		n    *meshNode
		name string
	}{{a, "wbua"}, {b, "wbub"}} {
		l, err := side.n.nl.LinkByName(side.name)
		if err == nil {
			err = side.n.nl.AddrAdd(l, &netlink.Addr{IPNet: link.IPNet(netip.PrefixFrom(side.n.under, 24))})
		}
		if err == nil {
			err = side.n.nl.LinkSetUp(l)
		}
		if err != nil {
			return fmt.Errorf("underlay %s: %w", side.name, err)
		}
	}
	return nil
}

// rates is the better of meshRuns transfers A → B over the underlay and
// over the mesh, and the CPU the two warren mesh processes spent on the
// mesh transfers.
type rates struct {
	under, mesh float64 // Gbit/s
	meshBytes   int64
	meshCPU     time.Duration
}

func (r rates) String() string {
	return fmt.Sprintf("%.2f vs %.2f Gbit/s = %.0f %% (better of %d × %.0f s)", r.mesh, r.under, 100*r.mesh/r.under, meshRuns, meshRunFor.Seconds())
}

// throughput sends from a to b over the underlay and the mesh in turn,
// meshRuns times each.
func throughput(a, b *meshNode, overUnder, overMesh netip.AddrPort) (rates, error) {
	var r rates
	cpu := func() time.Duration { return cpuTime(a.serve.Process.Pid) + cpuTime(b.serve.Process.Pid) }
	for range meshRuns {
		n, el, err := sendFor(a, overUnder, meshRunFor)
		if err != nil {
			return r, fmt.Errorf("send over the underlay: %w", err)
		}
		r.under = max(r.under, float64(n)*8/el.Seconds()/1e9)
		cpu0 := cpu()
		n, el, err = sendFor(a, overMesh, meshRunFor)
		if err != nil {
			return r, fmt.Errorf("send over the mesh: %w", err)
		}
		r.meshCPU += cpu() - cpu0
		r.meshBytes += n
		r.mesh = max(r.mesh, float64(n)*8/el.Seconds()/1e9)
	}
	return r, nil
}

// shapeUnderlay limits what A sends on its underlay veth to rate (tc's
// syntax) with a token bucket; the burst holds a 64 KB GSO packet. undo
// removes it.
func shapeUnderlay(a *meshNode, rate string) (undo func(), err error) {
	tc := func(args ...string) error {
		out, err := exec.Command("nsenter", append([]string{"--net=" + a.path, "--", "tc", "qdisc"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("tc qdisc %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := tc("add", "dev", "wbua", "root", "tbf", "rate", rate, "burst", "256kb", "latency", "20ms"); err != nil {
		return nil, err
	}
	return func() { tc("del", "dev", "wbua", "root") }, nil
}

// meshHeap is the heap one more wg.Mesh on a's interface holds once it has
// synced peers: the agent's own share of the mesh.
func meshHeap(a *meshNode, peers []wg.Peer) (uint64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC() // and what sync.Pools kept through the first
	runtime.ReadMemStats(&before)
	m, err := wg.NewMesh(wg.MeshConfig{Iface: a.iface, KeyFile: a.key, NetNSPath: a.path})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	if _, err := m.Sync(a.self(), peers, time.Now()); err != nil {
		return 0, err
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(m)
	if after.HeapAlloc < before.HeapAlloc {
		return 0, nil
	}
	return after.HeapAlloc - before.HeapAlloc, nil
}

// The bench server's modes, the first byte a client sends.
const (
	modeSink = 'S' // read to EOF, answer the byte count
	modeEcho = 'E' // echo everything
)

func serveMeshBench(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			var mode [1]byte
			if _, err := io.ReadFull(c, mode[:]); err != nil {
				return
			}
			switch mode[0] {
			case modeSink:
				n, _ := io.CopyBuffer(io.Discard, c, make([]byte, 256<<10))
				binary.Write(c, binary.BigEndian, n)
			case modeEcho:
				io.Copy(c, c)
			}
		}()
	}
}

// sendFor sends as fast as it can from a to addr for d and returns the
// bytes the server received and the time until it said so.
func sendFor(a *meshNode, addr netip.AddrPort, d time.Duration) (int64, time.Duration, error) {
	c, err := a.dial(addr, 5*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	if _, err := c.Write([]byte{modeSink}); err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 128<<10)
	start := time.Now()
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			return 0, 0, err
		}
	}
	if err := c.CloseWrite(); err != nil {
		return 0, 0, err
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var n int64
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		return 0, 0, fmt.Errorf("read the received count: %w", err)
	}
	return n, time.Since(start), nil
}

// roundTrips times n exchanges of a 64 B message with the echo server, on
// one connection, after a short warm-up.
func roundTrips(a *meshNode, addr netip.AddrPort, n int) ([]time.Duration, error) {
	c, err := a.dial(addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := c.Write([]byte{modeEcho}); err != nil {
		return nil, err
	}
	msg, got := make([]byte, 64), make([]byte, 64)
	r := bufio.NewReader(c)
	var ds []time.Duration
	for i := range n + 100 {
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(r, got); err != nil {
			return nil, err
		}
		if i >= 100 {
			ds = append(ds, time.Since(start))
		}
	}
	return ds, nil
}

// cpuTime is the user and system time a process has used, from
// /proc/PID/stat (in USER_HZ ticks, 100 a second on Linux).
func cpuTime(pid int) time.Duration {
	f := procStat(pid)
	if len(f) < 13 {
		return 0
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// procStat is the fields of /proc/PID/stat after the command name (which
// may hold spaces), from the state on; nil if pid is gone.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// loadAvg is the 1-minute load average.
func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
