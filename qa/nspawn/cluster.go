package nspawn

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
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// HostSpec describes one host before it boots.
type HostSpec struct {
	// Name is the host's name: its hostname and its machine name.
	Name string
	// Seed, when set, is a cloud-init NoCloud seed written to
	// /var/lib/cloud/seed/nocloud; without one cloud-init is disabled on
	// the host (it costs seconds per boot).
	Seed *Seed
	// AuthorizedKeys are installed as root's SSH keys before boot.
	AuthorizedKeys []string
	// Files are written into the host's root before it boots (path → content).
	Files map[string]string
	// ContainerdSize is the size of the ext4 file at /var/lib/containerd
	// (default 2 GiB, sparse).
	ContainerdSize int64
}

// Seed is a cloud-init NoCloud seed.
type Seed struct {
	MetaData string
	UserData string
}

// Subnet is the test network: the lan namespace has .1, host i has .10+i.
var Subnet = netip.MustParsePrefix("10.77.0.0/24")

// LanAddr is the test side's address on the bridge.
var LanAddr = netip.MustParseAddr("10.77.0.1")

// Cluster is a set of booted hosts on one bridge.
type Cluster struct {
	Paths Paths
	ID    string // short random id in every name (netns, links, cgroups)
	Hosts []*Host

	lanNS   string
	dir     string
	masked  []string
	closeMu sync.Mutex
	closed  bool
}

// Boot starts the hosts and waits until each one's systemd has settled
// (`systemctl is-system-running` says running or degraded). On error
// everything made so far is torn down.
func Boot(ctx context.Context, p Paths, specs ...HostSpec) (c *Cluster, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("nspawn: hosts need root")
	}
	if len(specs) == 0 || len(specs) > 200 {
		return nil, fmt.Errorf("nspawn: %d hosts: boot 1 to 200", len(specs))
	}
	if _, err := os.Stat(filepath.Join(p.Tree, "usr/lib/systemd/systemd")); err != nil {
		return nil, fmt.Errorf("nspawn: no image tree at %s (make image-tree): %w", p.Tree, err)
	}
	id := randomHex(3)
	c = &Cluster{Paths: p, ID: id, lanNS: "wq" + id + "-lan", dir: filepath.Join(p.Work, "c-"+id)}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for _, d := range []string{"agent", "dns", "ingress"} {
		if !HasCommand(p.Bin, d) {
			c.masked = append(c.masked, d)
		}
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	if err := c.setupLan(ctx); err != nil {
		return nil, err
	}
	if _, err := c.Add(ctx, specs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Add boots more hosts on the cluster's bridge, all at once, and waits
// until each one's systemd has settled; host i of the cluster (counting
// those booted before) gets the address .10+i. A host that fails to start
// stays in c.Hosts, so Close (or NewCluster's cleanup) tears it down too.
func (c *Cluster) Add(ctx context.Context, specs ...HostSpec) ([]*Host, error) {
	if n := len(c.Hosts) + len(specs); n > 200 {
		return nil, fmt.Errorf("nspawn: %d hosts: a cluster has 1 to 200", n)
	}
	var hosts []*Host
	for _, s := range specs {
		i := len(c.Hosts)
		if s.Name == "" {
			s.Name = fmt.Sprintf("host%d", i)
		}
		if c.Host(s.Name) != nil {
			return nil, fmt.Errorf("nspawn: two hosts named %s", s.Name)
		}
		h := &Host{c: c, Spec: s, Index: i, Addr: addrOf(i)}
		c.Hosts = append(c.Hosts, h)
		hosts = append(hosts, h)
		if err := h.prepare(ctx); err != nil {
			return nil, err
		}
	}
	errs := make(chan error, len(hosts))
	for _, h := range hosts {
		go func() { errs <- h.start(ctx) }()
	}
	var first error
	for range hosts {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return nil, first
	}
	return hosts, nil
}

// Masked lists the daemons this warren binary does not have yet; their
// units are masked on the hosts.
func (c *Cluster) Masked() []string { return c.masked }

// Host returns the host named name, or nil.
func (c *Cluster) Host(name string) *Host {
	for _, h := range c.Hosts {
		if h.Spec.Name == name {
			return h
		}
	}
	return nil
}

func addrOf(i int) netip.Addr {
	a := Subnet.Addr().As4()
	a[3] = byte(10 + i)
	return netip.AddrFrom4(a)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ip runs the ip command.
func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func (c *Cluster) setupLan(ctx context.Context) error {
	steps := [][]string{
		{"netns", "add", c.lanNS},
		{"-n", c.lanNS, "link", "set", "lo", "up"},
		{"-n", c.lanNS, "link", "add", "br0", "type", "bridge"},
		{"-n", c.lanNS, "addr", "add", LanAddr.String() + "/24", "dev", "br0"},
		{"-n", c.lanNS, "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return fmt.Errorf("nspawn: lan: %w", err)
		}
	}
	return nil
}

// LanNetNS is the path of the test side's network namespace.
func (c *Cluster) LanNetNS() string { return "/run/netns/" + c.lanNS }

// LanExec runs argv in the test side's network namespace (only the network
// namespace: files and processes are the test's own), e.g. ssh to a host.
func (c *Cluster) LanExec(ctx context.Context, argv ...string) (string, error) {
	args := append([]string{"--net=" + c.LanNetNS(), "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// Close stops every host and removes everything the cluster made. It can be
// called more than once.
func (c *Cluster) Close() error {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, h := range c.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.teardown(); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := os.Stat(c.LanNetNS()); err == nil {
		if err := ip(ctx, "netns", "del", c.lanNS); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// WriteJournals writes each host's journal to dir/HOST.journal and returns
// the last lines of each, for a failing test's log.
func (c *Cluster) WriteJournals(dir string, tail int) string {
	var b strings.Builder
	os.MkdirAll(dir, 0o755)
	for _, h := range c.Hosts {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		j, err := h.Journal(ctx)
		cancel()
		path := filepath.Join(dir, h.Spec.Name+".journal")
		if err != nil {
			j += "\n(journal: " + err.Error() + ")\n"
		}
		os.WriteFile(path, []byte(j), 0o644)
		if boot, err := os.ReadFile(h.consoleLog()); err == nil {
			os.WriteFile(filepath.Join(dir, h.Spec.Name+".console"), boot, 0o644)
		}
		lines := strings.Split(strings.TrimRight(j, "\n"), "\n")
		if len(lines) > tail {
			lines = lines[len(lines)-tail:]
		}
		fmt.Fprintf(&b, "=== %s: journal in %s; last %d lines:\n%s\n", h.Spec.Name, path, len(lines), strings.Join(lines, "\n"))
	}
	return b.String()
}

// monotonicNow is CLOCK_MONOTONIC, which the machines share with the host:
// systemd's *TimestampMonotonic properties compare with it directly.
func monotonicNow() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}
