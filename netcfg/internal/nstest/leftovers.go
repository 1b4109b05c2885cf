package nstest

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
)

// Main runs the tests of a package and then, when run as root, fails the
// run if the real host changed in a way these tests could have caused: a
// link or nftables table with a name they use, a mount left in a directory
// of NetnsDir, or a changed IPv4 forwarding or route_localnet setting. Only
// what the netcfg tests could make is compared, so that other packages'
// tests running at the same time (go test runs packages in parallel) do not
// make this fail.
func Main(m *testing.M) {
	if os.Geteuid() != 0 {
		os.Exit(m.Run())
	}
	before := takeSnapshot()
	code := m.Run()
	after := takeSnapshot()
	if diff := before.diff(after); len(diff) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests left changes on the real host:\n  %s\n", strings.Join(diff, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

type snapshot struct {
	links  []string
	tables []string
	mounts []string
	sysctl []string
}

// oursLink and oursTable report whether a link or table name is one the
// netcfg tests use.
func oursLink(name string) bool {
	return strings.HasPrefix(name, "wv") || slices.Contains([]string{"warren0", "cl0", "taken0", "taken1", "notbr0", "notbr1"}, name)
}

func oursTable(name string) bool {
	return slices.Contains([]string{"table inet warren", "table inet other", "table ip warren"}, name)
}

// oursMount reports whether a mount point is in a directory NetnsDir made.
func oursMount(mp string) bool {
	netnsDirs.Lock()
	defer netnsDirs.Unlock()
	for _, d := range netnsDirs.list {
		if mp == d || strings.HasPrefix(mp, d+"/") {
			return true
		}
	}
	return false
}

// netnsDirs are the directories NetnsDir handed out in this process.
var netnsDirs struct {
	sync.Mutex
	list []string
}

func takeSnapshot() snapshot {
	var s snapshot
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			s.links = append(s.links, l.Attrs().Name)
		}
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil {
		s.tables = strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 4 {
				s.mounts = append(s.mounts, unescapeMountinfo(f[4]))
			}
		}
	}
	for _, k := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet"} {
		v, _ := os.ReadFile("/proc/sys/" + k)
		s.sysctl = append(s.sysctl, k+"="+strings.TrimSpace(string(v)))
	}
	return s
}

func (s snapshot) diff(after snapshot) []string {
	var d []string
	added := func(kind string, before, after []string, ours func(string) bool) {
		for _, x := range after {
			if x != "" && !slices.Contains(before, x) && ours(x) {
				d = append(d, fmt.Sprintf("new %s: %s", kind, x))
			}
		}
	}
	all := func(string) bool { return true }
	added("link", s.links, after.links, oursLink)
	added("nftables table", s.tables, after.tables, oursTable)
	added("mount", s.mounts, after.mounts, oursMount)
	added("sysctl value", s.sysctl, after.sysctl, all)
	return d
}
