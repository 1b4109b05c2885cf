package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/wake"
	"github.com/warren-edge/warren/qa/containerdtest"
	"github.com/warren-edge/warren/qa/testimage"
)

// DefaultSubnet is the LAN's range when Config.Subnet is not set.
var DefaultSubnet = netip.MustParsePrefix("10.78.0.0/24")

// NodePort is the port every host's manager listens on (each host has
// its own address).
const NodePort = 4243

// MeshPort is the UDP port of every host's end of the mesh (the agent's
// default).
const MeshPort = 51820

// Config describes a cluster before any host exists.
type Config struct {
	// Bin is the warren binary every process runs.
	Bin string
	// Subnet is the LAN's range (DefaultSubnet if zero); the i-th host
	// added gets .10+i.
	Subnet netip.Prefix
	// ManagerArgs are added to every `warren manager` command line, e.g.
	// --node-timeout 2s --reschedule-grace 8s --raft-heartbeat-timeout 200ms.
	ManagerArgs []string
	// AgentArgs are added to every `warren agent` command line.
	AgentArgs []string
	// Logf receives the harness's progress lines (nil: none).
	Logf func(format string, args ...any)
}

// Available says why clusters cannot run here, or nil.
func Available(withContainers bool) error {
	if os.Geteuid() != 0 {
		return errors.New("cluster: needs root (network namespaces, nftables, containerd)")
	}
	for _, b := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("cluster: %s not found on PATH: apt-get install iproute2 nftables", b)
		}
	}
	if withContainers {
		if err := containerdtest.Available(); err != nil {
			return err
		}
		if err := testimage.Available(); err != nil {
			return err
		}
	}
	return nil
}

// Cluster is a LAN and the hosts on it.
type Cluster struct {
	ID  string // random, in every namespace name
	Dir string // everything on disk: one directory per host
	LAN string // the LAN namespace's name
	cfg Config

	mu     sync.Mutex
	hosts  []*Host
	closed bool
	image  []byte // the busybox test image, built once
}

// New makes the LAN: a namespace holding a bridge and the nftables table
// that Cut uses. Close removes it with everything else.
func New(cfg Config) (c *Cluster, err error) {
	if err := Available(false); err != nil {
		return nil, err
	}
	if cfg.Bin == "" {
		return nil, errors.New("cluster: Config.Bin (the warren binary) is required")
	}
	if _, err := os.Stat(cfg.Bin); err != nil {
		return nil, fmt.Errorf("cluster: warren binary: %w", err)
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = DefaultSubnet
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	id := randHex(2)
	// Short: unix socket paths under it must stay below 108 bytes.
	dir, err := os.MkdirTemp("", "wc"+id+"-")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o755)
	c = &Cluster{ID: id, Dir: dir, LAN: "wc" + id + "-lan", cfg: cfg}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if err := ipRun("netns", "add", c.LAN); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"-n", c.LAN, "link", "set", "lo", "up"},
		{"-n", c.LAN, "link", "add", "br0", "type", "bridge"},
		{"-n", c.LAN, "link", "set", "br0", "up"},
	} {
		if err := ipRun(args...); err != nil {
			return nil, err
		}
	}
	// A frame to or from a port in @cut is dropped: that host is cut off.
	// (nft 1.0.6: no rule may end on the line of a closing brace.)
	// A TCP segment to or from a manager's node port on a port in @hold is
	// dropped: that host hears nothing from the managers (TCP sends it
	// again once released), its other traffic flows. A WireGuard datagram
	// to or from a port in @nomesh is dropped: that host's mesh is cut, its
	// link to the managers is not.
	ruleset := `table bridge wcut {
	set cut {
		type ifname
	}
	set hold {
		type ifname
	}
	set nomesh {
		type ifname
	}
	chain cutfwd {
		type filter hook forward priority 0; policy accept;
		iifname @cut drop
		oifname @cut drop
		iifname @hold tcp dport ` + strconv.Itoa(NodePort) + ` drop
		oifname @hold tcp sport ` + strconv.Itoa(NodePort) + ` drop
		iifname @nomesh udp dport ` + strconv.Itoa(MeshPort) + ` drop
		oifname @nomesh udp dport ` + strconv.Itoa(MeshPort) + ` drop
	}
}
`
	if err := c.nft(ruleset, "-f", "-"); err != nil {
		return nil, err
	}
	cfg.Logf("cluster %s: LAN %s on %s, files in %s", id, c.LAN, cfg.Subnet, dir)
	return c, nil
}

func (c *Cluster) logf(format string, args ...any) { c.cfg.Logf(format, args...) }

// nft runs nft inside the LAN namespace.
func (c *Cluster) nft(stdin string, args ...string) error {
	cmd := exec.Command("ip", append([]string{"netns", "exec", c.LAN, "nft"}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cluster: nft %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func ipRun(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("cluster: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// AddHost makes a host: a namespace on the LAN with the next address. It
// runs nothing yet.
func (c *Cluster) AddHost(name string) (*Host, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errors.New("cluster: closed")
	}
	for _, h := range c.hosts {
		if h.Name == name {
			c.mu.Unlock()
			return nil, fmt.Errorf("cluster: host %s exists", name)
		}
	}
	n := len(c.hosts) + 1
	ip := c.cfg.Subnet.Addr()
	for range 10 + n {
		ip = ip.Next()
	}
	h := &Host{Name: name, NS: "wc" + c.ID + "-" + name, IP: ip, Addr: netip.AddrPortFrom(ip, NodePort).String(),
		Dir: filepath.Join(c.Dir, name), link: "v" + name, MeshIface: "wg" + c.ID + name, c: c}
	c.hosts = append(c.hosts, h)
	c.mu.Unlock()
	if len(h.MeshIface) > 15 {
		return nil, fmt.Errorf("cluster: host name %q is too long for an interface name", name)
	}
	h.Socket = filepath.Join(h.Dir, "api.sock")
	h.AgentSocket = filepath.Join(h.Dir, "agent.sock")
	h.IngressSocket = filepath.Join(h.Dir, "ingress.sock")
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := ipRun("netns", "add", h.NS); err != nil {
		return nil, err
	}
	prefix := netip.PrefixFrom(ip, c.cfg.Subnet.Bits()).String()
	for _, args := range [][]string{
		{"link", "add", "eth0", "netns", h.NS, "type", "veth", "peer", "name", h.link, "netns", c.LAN},
		{"-n", c.LAN, "link", "set", h.link, "master", "br0"},
		{"-n", c.LAN, "link", "set", h.link, "up"},
		{"-n", h.NS, "link", "set", "lo", "up"},
		{"-n", h.NS, "addr", "add", prefix, "dev", "eth0"},
		{"-n", h.NS, "link", "set", "eth0", "up"},
	} {
		if err := ipRun(args...); err != nil {
			return nil, err
		}
	}
	var err error
	if h.Client, err = client.New("unix://" + h.Socket); err != nil {
		return nil, err
	}
	return h, nil
}

// Hosts lists the hosts in the order they were added.
func (c *Cluster) Hosts() []*Host {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Host(nil), c.hosts...)
}

// Host finds a host by name (nil if there is none).
func (c *Cluster) Host(name string) *Host {
	for _, h := range c.Hosts() {
		if h.Name == name {
			return h
		}
	}
	return nil
}

// Managers lists the hosts started as managers.
func (c *Cluster) Managers() []*Host { return c.withRole(api.RoleManager) }

// Workers lists the hosts started as workers.
func (c *Cluster) Workers() []*Host { return c.withRole(api.RoleWorker) }

func (c *Cluster) withRole(role string) []*Host {
	var out []*Host
	for _, h := range c.Hosts() {
		if h.Role == role {
			out = append(out, h)
		}
	}
	return out
}

// Start brings up a cluster: m1 starts it, m2..mN join as managers (each
// a voter before the next joins), then w1..wK join as workers, each with
// its own containerd and agent and the busybox image loaded. It returns
// once every node is ready.
func (c *Cluster) Start(ctx context.Context, managers, workers int) error {
	start := time.Now()
	ms := make([]*Host, managers)
	for i := range ms {
		h, err := c.AddHost(fmt.Sprintf("m%d", i+1))
		if err != nil {
			return err
		}
		ms[i] = h
	}
	// The workers' containerds start meanwhile: they take a second or two.
	ws := make([]*Host, workers)
	ctrdErr := make(chan error, workers)
	for i := range ws {
		h, err := c.AddHost(fmt.Sprintf("w%d", i+1))
		if err != nil {
			return err
		}
		ws[i] = h
		go func() { ctrdErr <- h.StartContainerd() }()
	}
	for i, h := range ms {
		var err error
		if i == 0 {
			err = c.Bootstrap(ctx, h)
		} else {
			err = c.JoinManager(ctx, h)
		}
		if err != nil {
			return err
		}
	}
	var errs []error
	for range workers {
		errs = append(errs, <-ctrdErr)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if workers == 0 {
		c.logf("cluster %s: %d managers ready in %.1fs", c.ID, managers, time.Since(start).Seconds())
		return nil
	}
	// One token for all: concurrent first requests for a token of a kind
	// each make one, and all but the last are lost (see the report of
	// TestConcurrentTokenRequests).
	tok, err := c.Token(ctx, api.RoleWorker)
	if err != nil {
		return err
	}
	done := make(chan error, workers)
	for _, h := range ws {
		go func() { done <- c.JoinWorkerWith(ctx, h, tok) }()
	}
	errs = errs[:0]
	for range workers {
		errs = append(errs, <-done)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	c.logf("cluster %s: %d managers and %d workers ready in %.1fs", c.ID, managers, workers, time.Since(start).Seconds())
	return nil
}

// Bootstrap starts a new cluster on h.
func (c *Cluster) Bootstrap(ctx context.Context, h *Host) error {
	h.Role = api.RoleManager
	if err := h.StartManager(); err != nil {
		return err
	}
	if err := h.WaitHealthy(ctx); err != nil {
		return err
	}
	c.logf("%s: started the cluster (node %s)", h.Name, h.NodeID())
	return nil
}

// Token returns the current join token of a kind, from the first
// manager that answers.
func (c *Cluster) Token(ctx context.Context, kind string) (string, error) {
	var errs []error
	for _, m := range c.Managers() {
		if !m.ManagerRunning() {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		t, err := m.Client.JoinToken(cctx, kind, false, 0)
		cancel()
		if err == nil {
			return t.Token, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m.Name, err))
	}
	return "", fmt.Errorf("cluster: no manager gave a %s token: %w", kind, errors.Join(errs...))
}

// joinVia picks a running manager to join through.
func (c *Cluster) joinVia() (*Host, error) {
	for _, m := range c.Managers() {
		if m.ManagerRunning() && !m.IsCut() {
			return m, nil
		}
	}
	return nil, errors.New("cluster: no running manager to join through")
}

// JoinManager joins h as a manager and waits until it votes.
func (c *Cluster) JoinManager(ctx context.Context, h *Host) error {
	tok, err := c.Token(ctx, api.RoleManager)
	if err != nil {
		return err
	}
	via, err := c.joinVia()
	if err != nil {
		return err
	}
	h.Role = api.RoleManager
	if err := h.StartManager("--join", via.Addr, "--token", tok); err != nil {
		return err
	}
	if err := h.WaitVoter(ctx); err != nil {
		return err
	}
	c.logf("%s: joined as a manager through %s (node %s)", h.Name, via.Name, h.NodeID())
	return nil
}

// JoinWorker joins h as a worker (its containerd must run), starts its
// agent, waits until the managers see the node ready and loads the
// busybox image into its containerd through its own manager.
func (c *Cluster) JoinWorker(ctx context.Context, h *Host) error {
	tok, err := c.Token(ctx, api.RoleWorker)
	if err != nil {
		return err
	}
	return c.JoinWorkerWith(ctx, h, tok)
}

// JoinWorkerWith is JoinWorker with a given token.
func (c *Cluster) JoinWorkerWith(ctx context.Context, h *Host, tok string) error {
	via, err := c.joinVia()
	if err != nil {
		return err
	}
	h.Role = api.RoleWorker
	if err := h.StartManager("--join", via.Addr, "--token", tok); err != nil {
		return err
	}
	if err := h.WaitHealthy(ctx); err != nil {
		return err
	}
	if h.Containerd == nil {
		if err := h.StartContainerd(); err != nil {
			return err
		}
	}
	if err := h.StartAgent(); err != nil {
		return err
	}
	if err := c.WaitNodeReady(ctx, h); err != nil {
		return err
	}
	if err := h.LoadImage(ctx); err != nil {
		return err
	}
	c.logf("%s: joined as a worker through %s (node %s)", h.Name, via.Name, h.NodeID())
	return nil
}

// WaitNodeReady waits until a manager reports h's node ready.
func (c *Cluster) WaitNodeReady(ctx context.Context, h *Host) error {
	id := h.NodeID()
	var last string
	for {
		for _, m := range c.Managers() {
			if !m.ManagerRunning() || m.IsCut() {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			n, err := m.Client.Node(cctx, id)
			cancel()
			if err != nil {
				last = err.Error()
				continue
			}
			if n.Status.State == api.NodeReady {
				return nil
			}
			last = fmt.Sprintf("%s says %s: %s", m.Name, n.Status.State, n.Status.Message)
			break
		}
		if err := wake.For(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("cluster: node %s (%s) not ready: %s", h.Name, id, last)
		}
	}
}

// testImage builds the busybox image once.
func (c *Cluster) testImage() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.image == nil {
		var buf bytes.Buffer
		if err := testimage.Build(&buf, testimage.Options{Name: "localhost/busybox:latest"}); err != nil {
			return nil, err
		}
		c.image = buf.Bytes()
	}
	return c.image, nil
}

// LeaderInfo is what the managers say about the leader.
type LeaderInfo struct {
	Host  *Host
	ID    string
	Votes int // managers that named it
}

// Leader returns the manager that the running, connected managers name
// as leader and that says it leads; it waits (up to ctx) for one,
// skipping the hosts in not.
func (c *Cluster) Leader(ctx context.Context, not ...*Host) (*Host, error) {
	var last error
	for {
		h, err := c.leaderOnce(ctx, not)
		if err == nil {
			return h, nil
		}
		last = err
		if wake.For(ctx, 20*time.Millisecond) != nil {
			return nil, fmt.Errorf("cluster: no leader: %w", last)
		}
	}
}

func (c *Cluster) leaderOnce(ctx context.Context, not []*Host) (*Host, error) {
	votes := map[string]int{}
	byID := map[string]*Host{}
	live := 0
	for _, m := range c.Managers() {
		if !m.ManagerRunning() {
			continue
		}
		byID[m.NodeID()] = m
		if m.IsCut() {
			continue
		}
		live++
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		info, err := m.Client.Info(cctx)
		cancel()
		if err == nil && info.Leader != "" {
			votes[info.Leader]++
		}
	}
	ids := make([]string, 0, len(votes))
	for id := range votes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return votes[ids[i]] > votes[ids[j]] })
	if len(ids) == 0 || votes[ids[0]]*2 <= live {
		return nil, fmt.Errorf("no leader named by a majority of the %d reachable managers (%v)", live, votes)
	}
	h := byID[ids[0]]
	if h == nil {
		return nil, fmt.Errorf("the leader %s is not a running host", ids[0])
	}
	for _, x := range not {
		if x == h {
			return nil, fmt.Errorf("the leader is still %s", h.Name)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	info, err := h.Client.Info(cctx)
	cancel()
	if err != nil || info.RaftState != "Leader" {
		return nil, fmt.Errorf("%s is named leader but says %v (%v)", h.Name, info, err)
	}
	return h, nil
}

// Dump writes what a failed test needs through logf: first the mesh as
// every host's WireGuard device has it (short, so that it survives a
// shortened output), then the tail of every process's log.
func (c *Cluster) Dump(logf func(string, ...any), lines int) {
	hosts := c.Hosts()
	if s := meshState(hosts, time.Now()); s != "" {
		logf("--- the mesh, as each host's device has it:\n%s", s)
	}
	for _, h := range hosts {
		for _, p := range []*Proc{h.Manager, h.Agent, h.Mesh, h.Ingress} {
			if p != nil {
				logf("--- %s %s (pid %d), last %d lines of %s:\n%s", h.Name, p.Name, p.PID(), lines, p.LogPath, p.LogTail(lines))
			}
		}
		if h.Containerd != nil {
			logf("--- %s containerd, last lines of %s:\n%s", h.Name, h.Containerd.Log, h.Containerd.LogTail(lines/3))
		}
	}
}

// Close stops every process, removes the containers, mounts, namespaces
// and files. It is safe to call more than once.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	hosts := append([]*Host(nil), c.hosts...)
	c.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.close(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, mp := range mountsUnder(c.Dir) {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			errs = append(errs, fmt.Errorf("cluster: unmount %s: %w", mp, err))
		}
	}
	for _, h := range hosts {
		if err := ipRun("netns", "del", h.NS); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	if err := ipRun("netns", "del", c.LAN); err != nil && !strings.Contains(err.Error(), "No such file") {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// mountsUnder lists the mount points under dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mps []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		if s, err := strconv.Unquote(`"` + strings.ReplaceAll(mp, `"`, `\"`) + `"`); err == nil {
			mp = s // octal escapes such as \040
		}
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	return mps
}
