package link_test

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
	"github.com/warren-edge/warren/netcfg/link"
)

func mustCreate(t *testing.T, h *link.Host, id, addr string) *nstest.NS {
	t.Helper()
	path, err := h.CreateSandbox(id, bridge, netip.MustParsePrefix(addr), gwAddr)
	if err != nil {
		t.Fatalf("CreateSandbox(%s, %s, %s, %s): %v", id, bridge, addr, gwAddr, err)
	}
	if want := filepath.Join(h.NetnsDir(), id); path != want {
		t.Errorf("CreateSandbox(%s) = %s, want %s", id, path, want)
	}
	return nstest.Open(t, path)
}

func TestSandboxesReachEachOther(t *testing.T) {
	h, hostNS := newNode(t)
	a := mustCreate(t, h, "a", "10.88.3.2/24")
	b := mustCreate(t, h, "b", "10.88.3.3/24")

	a.ServeTCP(t, "10.88.3.2:7000", "from a")
	b.ServeTCP(t, "10.88.3.3:7000", "from b")
	hostNS.ServeTCP(t, "10.88.3.1:7000", "from the host")
	for _, tc := range []struct {
		from *nstest.NS
		name string
		addr string
		want string
	}{
		{a, "a", "10.88.3.3:7000", "from b"},
		{b, "b", "10.88.3.2:7000", "from a"},
		{a, "a", "10.88.3.1:7000", "from the host"},
		{hostNS, "host", "10.88.3.3:7000", "from b"},
	} {
		got, err := tc.from.ReadLine(tc.addr)
		if err != nil || got != tc.want {
			t.Errorf("from %s, connect to %s: got %q, %v; want %q", tc.name, tc.addr, got, err, tc.want)
		}
	}
	if _, err := exec.LookPath("ping"); err == nil {
		if out, err := a.Run("ping", "-c", "1", "-W", "2", "10.88.3.3"); err != nil {
			t.Errorf("ping from a to b: %v\n%s", err, out)
		}
	} else {
		t.Log("ping is not installed: checked with TCP connections only")
	}

	// Inside: eth0 with the address, lo up, default route via the gateway.
	eth, err := a.NL.LinkByName(link.SandboxIfname)
	if err != nil {
		t.Fatalf("no %s in sandbox a: %v", link.SandboxIfname, err)
	}
	assertAddrs(t, a.NL, eth, "10.88.3.2/24")
	routes, err := a.NL.RouteGet(netipToIP("192.0.2.77"))
	if err != nil || len(routes) == 0 || !routes[0].Gw.Equal(netipToIP("10.88.3.1")) {
		t.Errorf("in sandbox a, route to 192.0.2.77 = %v, %v; want via 10.88.3.1", routes, err)
	}
	// Host end: named after the id, on the bridge.
	hv, err := hostNS.NL.LinkByName(link.VethName("a"))
	if err != nil {
		t.Fatalf("no host veth %s for sandbox a: %v", link.VethName("a"), err)
	}
	br, _ := hostNS.NL.LinkByName(bridge)
	if hv.Attrs().MasterIndex != br.Attrs().Index {
		t.Errorf("host veth %s is not attached to %s", hv.Attrs().Name, bridge)
	}
	if pi, err := hostNS.NL.LinkGetProtinfo(hv); err != nil || !pi.Hairpin {
		t.Errorf("host veth %s bridge port info = %v, %v; want hairpin mode on", hv.Attrs().Name, pi, err)
	}
	if hv.Attrs().Alias != "warren sandbox a" {
		t.Errorf("host veth alias = %q, want %q", hv.Attrs().Alias, "warren sandbox a")
	}
}

func TestCreateSandboxIsIdempotent(t *testing.T) {
	h, hostNS := newNode(t)
	s := mustCreate(t, h, "web.1", "10.88.3.2/24")
	first, _ := hostNS.NL.LinkByName(link.VethName("web.1"))

	// Same call again: same veth, still works.
	mustCreate(t, h, "web.1", "10.88.3.2/24")
	again, _ := hostNS.NL.LinkByName(link.VethName("web.1"))
	if again.Attrs().Index != first.Attrs().Index {
		t.Errorf("second CreateSandbox replaced the veth (index %d -> %d), want it reused", first.Attrs().Index, again.Attrs().Index)
	}

	// A new address replaces the old one.
	mustCreate(t, h, "web.1", "10.88.3.9/24")
	eth, _ := s.NL.LinkByName(link.SandboxIfname)
	assertAddrs(t, s.NL, eth, "10.88.3.9/24")

	// The host end was lost: the pair is made again and works.
	if err := hostNS.NL.LinkDel(again); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, h, "web.1", "10.88.3.9/24")
	s.ServeTCP(t, "10.88.3.9:7000", "repaired")
	if got, err := hostNS.ReadLine("10.88.3.9:7000"); err != nil || got != "repaired" {
		t.Errorf("after repairing the veth, connect to the sandbox: %q, %v", got, err)
	}
}

func TestCreateSandboxRecoversHalfMadeNamespace(t *testing.T) {
	h, hostNS := newNode(t)
	// A crash between creating the file and mounting leaves an empty file.
	if err := os.MkdirAll(h.NetnsDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.NetnsDir(), "x"), nil, 0o444); err != nil {
		t.Fatal(err)
	}
	s := mustCreate(t, h, "x", "10.88.3.4/24")
	s.ServeTCP(t, "10.88.3.4:7000", "ok")
	if got, err := hostNS.ReadLine("10.88.3.4:7000"); err != nil || got != "ok" {
		t.Errorf("connect to the recovered sandbox: %q, %v", got, err)
	}
}

func TestCreateSandboxErrors(t *testing.T) {
	h, _ := newHost(t)
	addr := netip.MustParsePrefix("10.88.3.2/24")
	if _, err := h.CreateSandbox("a", bridge, addr, gwAddr); err == nil || !strings.Contains(err.Error(), "call EnsureBridge first") {
		t.Errorf("CreateSandbox without a bridge: error %v, want one saying to call EnsureBridge first", err)
	}
	if err := h.EnsureBridge(bridge, gw); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, addr, gw string
	}{
		{"../etc", "10.88.3.2/24", "10.88.3.1"},
		{"a", "10.88.3.0/24", "10.88.3.1"},
		{"a", "10.88.3.2/24", "10.88.4.1"},
		{"a", "10.88.3.2/24", "10.88.3.2"},
		{"a", "fd00::2/64", "10.88.3.1"},
	} {
		if _, err := h.CreateSandbox(tc.id, bridge, netip.MustParsePrefix(tc.addr), netip.MustParseAddr(tc.gw)); err == nil {
			t.Errorf("CreateSandbox(%q, %s, %s, %s) succeeded, want an error", tc.id, bridge, tc.addr, tc.gw)
		}
	}
	if ids, _ := h.ListSandboxes(); len(ids) != 0 {
		t.Errorf("failed CreateSandbox calls left sandboxes %v", ids)
	}
}

func TestDeleteSandboxLeavesNothing(t *testing.T) {
	h, hostNS := newNode(t)
	linksBefore := linkNames(t, hostNS.NL)
	mountsBefore := nstest.MountsUnder(h.NetnsDir())

	// The test's handles into each namespace hold it, as a process in it
	// would: its pair stays, down, until they are closed.
	held := []*nstest.NS{mustCreate(t, h, "a", "10.88.3.2/24"), mustCreate(t, h, "b", "10.88.3.3/24")}
	if ids, err := h.ListSandboxes(); err != nil || !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("ListSandboxes() = %v, %v; want [a b]", ids, err)
	}
	for _, id := range []string{"a", "b"} {
		if err := h.DeleteSandbox(id); err != nil {
			t.Errorf("DeleteSandbox(%s): %v", id, err)
		}
		if l, err := hostNS.NL.LinkByName(link.VethName(id)); err != nil {
			t.Errorf("after DeleteSandbox(%s) of a namespace still held, its host end: %v, want it there, down", id, err)
		} else if l.Attrs().Flags&net.FlagUp != 0 || l.Attrs().MasterIndex != 0 {
			t.Errorf("after DeleteSandbox(%s), its host end %s is up (%v) or on the bridge (master %d), want down and off it: the bridge still sends it frames, or keeps a port for it",
				id, l.Attrs().Name, l.Attrs().Flags&net.FlagUp != 0, l.Attrs().MasterIndex)
		}
		if err := h.DeleteSandbox(id); err != nil {
			t.Errorf("DeleteSandbox(%s) a second time: %v, want nil", id, err)
		}
		if _, err := os.Stat(filepath.Join(h.NetnsDir(), id)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after DeleteSandbox(%s), its namespace file: %v, want it gone", id, err)
		}
	}
	if ids, err := h.ListSandboxes(); err != nil || len(ids) != 0 {
		t.Errorf("after deleting all, ListSandboxes() = %v, %v; want none", ids, err)
	}
	// The pairs go with their namespaces, which the kernel deletes soon
	// after the last hold on them goes.
	for _, ns := range held {
		ns.NL.Close()
		ns.Handle.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	got := linkNames(t, hostNS.NL)
	for !slices.Equal(got, linksBefore) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		got = linkNames(t, hostNS.NL)
	}
	if !slices.Equal(got, linksBefore) {
		t.Errorf("host namespace links 20 s after deleting all sandboxes: %v, want %v", got, linksBefore)
	}
	// The directory is a mount point (shared, as iproute2 makes /run/netns);
	// nothing else may stay mounted.
	if got := nstest.MountsUnder(h.NetnsDir()); len(got) > 1 || (len(mountsBefore) == 0 && len(got) > 0 && got[0] != h.NetnsDir()) {
		t.Errorf("mounts under %s after deleting all sandboxes: %v", h.NetnsDir(), got)
	}
	if err := h.DeleteSandbox("never-made"); err != nil {
		t.Errorf("DeleteSandbox of an unknown id: %v, want nil", err)
	}
}

// A sandbox made again under the ID of one just deleted, whose namespace
// is still held (its process has not ended yet), gets a pair of its own:
// the old host end, down, is taken out of the way.
func TestCreateSandboxAgainWhileTheOldLingers(t *testing.T) {
	h, hostNS := newNode(t)
	old := mustCreate(t, h, "a", "10.88.3.2/24")
	if err := h.DeleteSandbox("a"); err != nil {
		t.Fatalf("DeleteSandbox(a): %v", err)
	}
	a := mustCreate(t, h, "a", "10.88.3.5/24")
	a.ServeTCP(t, "10.88.3.5:7000", "from the new a")
	if got, err := hostNS.ReadLine("10.88.3.5:7000"); err != nil || got != "from the new a" {
		t.Errorf("from the host to the new sandbox: got %q, %v", got, err)
	}
	if _, err := old.NL.LinkByName(link.SandboxIfname); err == nil {
		t.Errorf("the old sandbox, still held, still has its %s: its pair was not taken out of the way", link.SandboxIfname)
	}
}

// Only root may open a sandbox's namespace file: anyone who holds one open
// keeps a removed task's namespace, and its pair, alive. The directory is
// made root's alone even if it was not (an agent upgraded in place).
func TestSandboxNamespacesAreRootsAlone(t *testing.T) {
	h, _ := newNode(t)
	dir := h.NetnsDir()
	// Passable by all up to dir, as /run/warren is on a node, and dir
	// open to all as before: the mode must come from Host.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	probe := filepath.Join(filepath.Dir(dir), "probe")
	if err := os.WriteFile(probe, nil, 0o444); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "a")
	mustCreate(t, h, "a", "10.88.3.2/24")
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("%s after CreateSandbox: %v, %v; want mode 0700", dir, st.Mode(), err)
	}
	openAsNobody := func(file string) ([]byte, error) {
		cmd := exec.Command("sh", "-c", `exec 3<"$0"`, file)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		return cmd.CombinedOutput()
	}
	// The probe shows that nobody can pass the directories above and
	// open a file there: what stops it below is the mode of dir.
	if out, err := openAsNobody(probe); err != nil {
		t.Fatalf("nobody cannot open %s beside the namespace directory: %v\n%s", probe, err, out)
	}
	if out, err := openAsNobody(path); err == nil || !strings.Contains(string(out), "denied") {
		t.Errorf("nobody opening %s: %v\n%s; want permission denied", path, err, out)
	}
}

func TestListSandboxesMissingDir(t *testing.T) {
	ns := nstest.New(t)
	h, err := link.Open(link.Config{NetNSPath: ns.Path, NetnsDir: filepath.Join(t.TempDir(), "none")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if ids, err := h.ListSandboxes(); err != nil || len(ids) != 0 {
		t.Errorf("ListSandboxes() on a missing directory = %v, %v; want none, nil", ids, err)
	}
}

func linkNames(t *testing.T, nl *netlink.Handle) []string {
	t.Helper()
	links, err := nl.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}
