package nft

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestBuildRejectsBadConfigs(t *testing.T) {
	web := []netip.AddrPort{mustAP("10.88.3.2:80")}
	ok := PublishedPort{Proto: TCP, Port: 8080, Backends: web}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no bridge", Config{Subnet: testSubnet}, "nft: bridge: empty interface name"},
		{"long bridge", Config{Bridge: "a-very-long-bridge", Subnet: testSubnet}, "longer than 15 bytes"},
		{"quote in bridge", Config{Bridge: `war"ren`, Subnet: testSubnet}, `contains '"'`},
		{"no subnet", Config{Bridge: "warren0"}, "want the node's IPv4 container subnet"},
		{"IPv6 subnet", Config{Bridge: "warren0", Subnet: netip.MustParsePrefix("fd00::/64")}, "want the node's IPv4 container subnet"},
		{"host bits", Config{Bridge: "warren0", Subnet: netip.MustParsePrefix("10.88.3.1/24")}, "has host bits set: use 10.88.3.0/24"},
		{"sctp", Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{{Proto: "sctp", Port: 9, Backends: web}}}, `protocol "sctp": want "tcp" or "udp"`},
		{"port 0", Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{{Proto: TCP, Backends: web}}}, "port 0 cannot be published"},
		{"IPv6 host address", Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{{Proto: TCP, Port: 80, HostAddr: mustAddr("2001:db8::1"), Backends: web}}}, "IPv6 host addresses are not supported"},
		{"IPv6 backend", Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{{Proto: TCP, Port: 80, Backends: []netip.AddrPort{mustAP("[fd00::2]:80")}}}}, "backend [fd00::2]:80: want a container's IPv4 address and port"},
		{"backend port 0", Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{{Proto: TCP, Port: 80, Backends: []netip.AddrPort{mustAP("10.88.3.2:0")}}}}, "port 0: give the container's target port"},
		{"same port twice", Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{ok, ok}}, `ports "tcp 8080" and "tcp 8080" conflict`},
		{"all addresses and one address", Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{
			{Proto: TCP, Port: 8080, HostAddr: mustAddr("192.0.2.1"), Backends: web}, ok,
		}}, `ports "tcp 8080" and "tcp 192.0.2.1:8080" conflict`},
		{"0.0.0.0 is all addresses", Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{
			{Proto: TCP, Port: 8080, HostAddr: mustAddr("0.0.0.0"), Backends: web}, {Proto: TCP, Port: 8080, HostAddr: mustAddr("192.0.2.1")},
		}}, `conflict`},
		{"IPv6 cluster", Config{Bridge: "warren0", Subnet: testSubnet, Cluster: netip.MustParsePrefix("fd00::/48")}, "want the IPv4 range of the nodes' container subnets"},
		{"cluster host bits", Config{Bridge: "warren0", Subnet: testSubnet, Cluster: netip.MustParsePrefix("10.88.0.1/16")}, "cluster range 10.88.0.1/16"},
		{"cluster without the subnet", Config{Bridge: "warren0", Subnet: testSubnet, Cluster: netip.MustParsePrefix("10.240.0.0/12")}, "cluster range 10.240.0.0/12 does not hold the node's subnet 10.88.3.0/24"},
		{"cluster smaller than the subnet", Config{Bridge: "warren0", Subnet: testSubnet, Cluster: netip.MustParsePrefix("10.88.3.0/25")}, "does not hold"},
		{"mesh is the bridge", Config{Bridge: "warren0", Subnet: testSubnet, Mesh: "warren0"}, `mesh interface "warren0"`},
		{"mesh is lo", Config{Bridge: "warren0", Subnet: testSubnet, Mesh: "lo"}, `mesh interface "lo"`},
		{"long mesh", Config{Bridge: "warren0", Subnet: testSubnet, Mesh: "a-very-long-mesh-name"}, "nft: mesh: interface name"},
		{"one address twice", Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{
			{Proto: UDP, Port: 53, HostAddr: mustAddr("192.0.2.1"), Backends: web}, {Proto: UDP, Port: 53, HostAddr: mustAddr("::ffff:192.0.2.1")},
		}}, `ports "udp 192.0.2.1:53" and "udp 192.0.2.1:53" conflict`},
	}
	for _, tt := range tests {
		_, err := Build(tt.cfg)
		if err == nil {
			t.Errorf("Build(%s) succeeded, want an error containing %q", tt.name, tt.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), "nft: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Build(%s) error %q, want one starting with \"nft: \" and containing %q", tt.name, err, tt.want)
		}
	}
}

func TestBuildAcceptsDistinctBindings(t *testing.T) {
	web := []netip.AddrPort{mustAP("10.88.3.2:80")}
	cfg := Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{
		{Proto: TCP, Port: 80, HostAddr: mustAddr("192.0.2.1"), Backends: web},
		{Proto: TCP, Port: 80, HostAddr: mustAddr("192.0.2.2"), Backends: web},
		{Proto: UDP, Port: 80, Backends: web}, // another protocol: no conflict
	}}
	rs, err := Build(cfg)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if n := len(rs.Map(MapPortsAddr).Elements); n != 2 {
		t.Errorf("map %s has %d elements, want 2", MapPortsAddr, n)
	}
	if n := len(rs.Map(MapPortsAny).Elements); n != 1 {
		t.Errorf("map %s has %d elements, want 1", MapPortsAny, n)
	}
}

func TestBuildIgnoresPortOrder(t *testing.T) {
	cfg := goldenCases()[5].cfg // mixed
	want, err := Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rev := cfg
	rev.Ports = slices.Clone(cfg.Ports)
	slices.Reverse(rev.Ports)
	got, err := Build(rev)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("Build with the ports reversed differs:\n%s", lineDiff(want.String(), got.String()))
	}
	if !slices.Equal(rev.Ports[0].Backends, cfg.Ports[len(cfg.Ports)-1].Backends) {
		t.Errorf("Build modified its input")
	}
}

func TestBuildPortWithoutBackends(t *testing.T) {
	rs, err := Build(Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{{Proto: TCP, Port: 9000}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rs.Map(MapPortsAny).Elements); n != 0 {
		t.Errorf("a port with no backends has %d map elements, want none", n)
	}
	if c := rs.Chain("tcp-9000"); c != nil {
		t.Errorf("a port with no backends has chain %s, want none", c.Name)
	}
}

// TestBuildSpreadsEvenly checks the DNAT cascade: the probability of each
// backend, computed from the rules' moduli, is 1/n.
func TestBuildSpreadsEvenly(t *testing.T) {
	for n := 1; n <= 7; n++ {
		var backends []netip.AddrPort
		for i := range n {
			backends = append(backends, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 88, 3, byte(2 + i)}), 80))
		}
		rs, err := Build(Config{Bridge: "warren0", Subnet: testSubnet, Ports: []PublishedPort{{Proto: TCP, Port: 80, Backends: backends}}})
		if err != nil {
			t.Fatal(err)
		}
		rules := rs.Chain("tcp-80").Rules
		if len(rules) != n {
			t.Fatalf("%d backends: %d rules, want %d", n, len(rules), n)
		}
		reach := 1.0 // probability that a new connection reaches rule i
		for i, r := range rules {
			p := 1.0
			for _, m := range r.Match {
				if rnd, ok := m.(MatchRandom); ok {
					p = 1 / float64(rnd.Mod)
				}
			}
			if got := reach * p; got < 1/float64(n)-1e-9 || got > 1/float64(n)+1e-9 {
				t.Errorf("%d backends: backend %d gets %.4f of connections, want %.4f", n, i, got, 1/float64(n))
			}
			if to := r.Action.(ActionDNAT).To; to != backends[i] {
				t.Errorf("%d backends: rule %d goes to %s, want %s", n, i, to, backends[i])
			}
			reach *= 1 - p
		}
	}
}

// TestBuildBackendsByPlace: a node forwards to its own containers always,
// to other nodes' only through the mesh, and never outside the cluster.
func TestBuildBackendsByPlace(t *testing.T) {
	local, remote, outside := mustAP("10.88.3.2:80"), mustAP("10.88.4.2:80"), mustAP("10.99.0.2:80")
	tests := []struct {
		name     string
		mesh     string
		cluster  netip.Prefix
		backends []netip.AddrPort
		want     []netip.AddrPort
	}{
		{"mesh: local and remote", "warren-wg", testCluster, []netip.AddrPort{local, remote, outside}, []netip.AddrPort{local, remote}},
		{"no mesh: local only", "", testCluster, []netip.AddrPort{local, remote, outside}, []netip.AddrPort{local}},
		{"no mesh, remote only: no DNAT", "", testCluster, []netip.AddrPort{remote}, nil},
		{"mesh, no cluster range: the subnet only", "warren-wg", netip.Prefix{}, []netip.AddrPort{local, remote}, []netip.AddrPort{local}},
	}
	for _, tt := range tests {
		rs, err := Build(Config{Bridge: "warren0", Subnet: testSubnet, Cluster: tt.cluster, Mesh: tt.mesh,
			Ports: []PublishedPort{{Proto: TCP, Port: 8080, Backends: tt.backends}}})
		if err != nil {
			t.Fatalf("%s: Build: %v", tt.name, err)
		}
		var got []netip.AddrPort
		if c := rs.Chain("tcp-8080"); c != nil {
			for _, r := range c.Rules {
				got = append(got, r.Action.(ActionDNAT).To)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Build(backends %v) DNATs to %v, want %v", tt.name, tt.backends, got, tt.want)
		}
		if n := len(rs.Map(MapPortsAny).Elements); (n == 1) != (len(tt.want) > 0) {
			t.Errorf("%s: map %s has %d elements; want one only if some backend is reachable", tt.name, MapPortsAny, n)
		}
	}
}

// TestBuildAdmission checks the rules that keep container addresses to
// the bridge, the mesh and published ports, and that the cluster range
// defaults to the node's subnet.
func TestBuildAdmission(t *testing.T) {
	render := func(cfg Config) string {
		t.Helper()
		rs, err := Build(cfg)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		return rs.String()
	}
	withMesh := render(Config{Bridge: "warren0", Subnet: testSubnet, Cluster: testCluster, Mesh: "warren-wg"})
	for _, want := range []string{
		"\t\tiifname \"warren-wg\" accept\n\t\tip daddr 10.88.0.0/16 drop\n",
		`ip daddr 10.88.0.0/16 iifname != "lo" iifname != "warren0" iifname != "warren-wg" ct state ! established,related drop`,
		`oifname "warren-wg" ct status dnat snat ip to 10.88.3.1`,
		`ip saddr 10.88.3.0/24 ip daddr != 10.88.0.0/16 oifname != "warren0" masquerade`,
	} {
		if !strings.Contains(withMesh, want) {
			t.Errorf("Build with mesh warren-wg has no %q:\n%s", want, withMesh)
		}
	}
	noCluster := render(Config{Bridge: "warren0", Subnet: testSubnet})
	for _, want := range []string{
		"ip daddr 10.88.3.0/24 drop",
		`ip daddr 10.88.3.0/24 iifname != "lo" iifname != "warren0" ct state ! established,related drop`,
	} {
		if !strings.Contains(noCluster, want) {
			t.Errorf("Build without a cluster range or mesh has no %q:\n%s", want, noCluster)
		}
	}
	if strings.Contains(noCluster, "snat") || strings.Contains(noCluster, "warren-wg") {
		t.Errorf("Build without a mesh names one or SNATs:\n%s", noCluster)
	}
}
