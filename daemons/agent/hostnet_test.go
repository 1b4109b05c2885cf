package agent

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warren-edge/warren/netcfg/link"
)

// TestHostNetworkMesh runs HostNetwork in a network namespace of its own
// (root only): Setup with the cluster range and no mesh publishes only
// this node's backends; SetMesh applies the ruleset again with the ports
// last published, now with the other nodes' backends, and lets
// localhost:PORT through the mesh; SetMesh("") undoes it.
func TestHostNetworkMesh(t *testing.T) {
	path := nodeNetNS(t)
	inNS := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("nsenter", append([]string{"--net=" + path, "--"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ruleset := func() string { t.Helper(); return inNS("nft", "list", "table", "inet", "warren") }

	ctx := context.Background()
	n := &HostNetwork{NetNSPath: path, NetnsDir: t.TempDir(), StateDir: t.TempDir()}
	t.Cleanup(func() { n.Close() })
	if err := n.SetMesh(ctx, "wvmesh0"); err == nil {
		t.Errorf("SetMesh before Setup succeeded")
	}
	if err := n.Setup(ctx, NodeNet{Subnet: netip.MustParsePrefix("10.88.3.0/24"), Cluster: netip.MustParsePrefix("10.88.0.0/16")}); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	web := Published{Proto: "tcp", Port: 8080, Ingress: true,
		Backends: []netip.AddrPort{netip.MustParseAddrPort("10.88.3.2:80"), netip.MustParseAddrPort("10.88.4.2:80")}}
	if err := n.Publish(ctx, []Published{web}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	local, remote, snat := "dnat ip to 10.88.3.2:80", "dnat ip to 10.88.4.2:80", `oifname "wvmesh0" ct status dnat snat ip to 10.88.3.1`
	if rs := ruleset(); !strings.Contains(rs, local) || strings.Contains(rs, remote) || !strings.Contains(rs, "ip daddr 10.88.0.0/16 drop") {
		t.Errorf("without a mesh the ruleset must DNAT to the local backend only and admit the cluster range from the bridge only:\n%s", rs)
	}

	inNS("ip", "link", "add", "wvmesh0", "type", "veth", "peer", "name", "wvmesh1")
	if err := n.SetMesh(ctx, "wvmesh0"); err != nil {
		t.Fatalf("SetMesh(wvmesh0): %v", err)
	}
	if rs := ruleset(); !strings.Contains(rs, local) || !strings.Contains(rs, remote) || !strings.Contains(rs, snat) || !strings.Contains(rs, `iifname "wvmesh0" accept`) {
		t.Errorf("after SetMesh(wvmesh0) the ruleset must DNAT to both backends, SNAT on the mesh and admit it:\n%s", rs)
	}
	if v, err := n.host.Sysctl("net/ipv4/conf/wvmesh0/route_localnet"); err != nil || v != "1" {
		t.Errorf("after SetMesh(wvmesh0), route_localnet on it = %q, %v; want 1", v, err)
	}

	if err := n.SetMesh(ctx, ""); err != nil {
		t.Fatalf("SetMesh(\"\"): %v", err)
	}
	if rs := ruleset(); strings.Contains(rs, remote) || strings.Contains(rs, "wvmesh0") {
		t.Errorf("after SetMesh(\"\") the ruleset still uses the mesh:\n%s", rs)
	}

	// A mesh whose interface is not there yet: the ruleset is applied,
	// and the error says what does not work.
	err := n.SetMesh(ctx, "wvlater0")
	if err == nil || !strings.Contains(err.Error(), "localhost:PORT") {
		t.Errorf("SetMesh(wvlater0), no such interface = %v; want an error about localhost:PORT", err)
	}
	if rs := ruleset(); !strings.Contains(rs, `iifname "wvlater0" accept`) {
		t.Errorf("after SetMesh(wvlater0) the ruleset does not admit it:\n%s", rs)
	}
}

// BenchmarkHostNetworkAttachDetach attaches 100 tasks, 8 at a time as the
// agent starts them (Config.MaxParallelStarts), then detaches them all,
// 8 at a time, in a namespace of its own, with the address pool on disk
// as on a node. It reports the wall time per task of each (root only).
func BenchmarkHostNetworkAttachDetach(b *testing.B) {
	ctx := context.Background()
	n := taskNetwork(b)
	const tasks, par = 100, 8
	each := func(fn func(id string) error) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, par)
		for i := range tasks {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				if err := fn(fmt.Sprintf("%025d", i)); err != nil {
					b.Error(err)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	var attach, detach time.Duration
	for b.Loop() {
		attach += each(func(id string) error { _, _, err := n.Attach(ctx, id); return err })
		detach += each(func(id string) error { return n.Detach(ctx, id) })
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N*tasks) }
	b.ReportMetric(per(attach), "ms/attach")
	b.ReportMetric(per(detach), "ms/detach")
	b.ReportMetric(0, "ns/op")
}

// nodeNetNS makes a network namespace to play the node, gone when the test
// ends with all in it, and returns its path (root only: it skips
// otherwise).
func nodeNetNS(tb testing.TB) string {
	if os.Geteuid() != 0 {
		tb.Skip("skipping: needs root to make a network namespace")
	}
	ns, err := link.NewNetNS()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ns.Close() })
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(ns))
}

// TestHostNetworkAttachDetachSameTask races an Attach and a Detach of one
// task, again and again (the agent keeps a task's actions apart, but
// HostNetwork is safe for concurrent use on its own): whichever wins, the
// task ends with both a namespace and its address, or with neither. A
// namespace whose address the pool gave back would get that address
// handed out again.
func TestHostNetworkAttachDetachSameTask(t *testing.T) {
	ctx := context.Background()
	n := taskNetwork(t)
	const id = "0000000000000000000000001"
	for round := range 100 {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); n.Attach(ctx, id) }()
		go func() { defer wg.Done(); n.Detach(ctx, id) }()
		wg.Wait()
		sandboxes, err := n.host.ListSandboxes()
		if err != nil {
			t.Fatal(err)
		}
		_, addressed := n.pool.Lookup(id)
		if hasNS := len(sandboxes) == 1; hasNS != addressed {
			t.Fatalf("round %d: after an Attach and a Detach at once, the task has a namespace: %v, an address: %v; want both or neither", round, hasNS, addressed)
		}
		if err := n.Detach(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

// taskNetwork is a HostNetwork set up in a namespace of nodeNetNS, on
// 10.88.3.0/24, with its task namespaces and address pool in temporary
// directories, ready for Attach.
func taskNetwork(tb testing.TB) *HostNetwork {
	path := nodeNetNS(tb)
	nsDir := tb.TempDir()
	tb.Cleanup(func() { syscall.Unmount(nsDir, syscall.MNT_DETACH) }) // Attach makes it a mount point
	n := &HostNetwork{NetNSPath: path, NetnsDir: nsDir, StateDir: tb.TempDir()}
	tb.Cleanup(func() { n.Close() })
	if err := n.Setup(context.Background(), NodeNet{Subnet: netip.MustParsePrefix("10.88.3.0/24")}); err != nil {
		tb.Fatal(err)
	}
	return n
}
