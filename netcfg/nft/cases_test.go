package nft

import (
	"fmt"
	"net/netip"
)

var (
	testSubnet  = netip.MustParsePrefix("10.88.3.0/24")
	testCluster = netip.MustParsePrefix("10.88.0.0/16")
	mustAddr    = netip.MustParseAddr
	mustAP      = netip.MustParseAddrPort
)

// goldenCase is a Config with the golden file its rendering must match.
type goldenCase struct {
	name string // testdata/<name>.golden
	cfg  Config
}

func goldenCases() []goldenCase {
	base := func(ports ...PublishedPort) Config {
		return Config{Bridge: "warren0", Subnet: testSubnet, Cluster: testCluster, Ports: ports}
	}
	many := make([]PublishedPort, 500)
	for i := range many {
		many[i] = PublishedPort{
			Proto:    TCP,
			Port:     uint16(20000 + i),
			Backends: []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 88, 3, byte(2 + i%250)}), 8080)},
		}
	}
	return []goldenCase{
		{name: "no-ports", cfg: base()},
		{name: "one-port", cfg: base(PublishedPort{Proto: TCP, Port: 8080, Backends: []netip.AddrPort{mustAP("10.88.3.2:80")}})},
		{name: "host-address", cfg: base(
			PublishedPort{Proto: TCP, HostAddr: mustAddr("192.0.2.1"), Port: 8080, Backends: []netip.AddrPort{mustAP("10.88.3.2:80")}},
		)},
		{name: "udp", cfg: base(PublishedPort{Proto: UDP, Port: 5353, Backends: []netip.AddrPort{mustAP("10.88.3.7:53")}})},
		{name: "several-backends", cfg: base(PublishedPort{Proto: TCP, Port: 443, Backends: []netip.AddrPort{
			mustAP("10.88.3.2:8443"), mustAP("10.88.3.3:8443"), mustAP("10.88.3.4:9443"),
		}})},
		{name: "mixed", cfg: base(
			PublishedPort{Proto: UDP, Port: 53, Backends: []netip.AddrPort{mustAP("10.88.3.9:53"), mustAP("10.88.3.10:53")}},
			PublishedPort{Proto: TCP, Port: 80, HostAddr: mustAddr("192.0.2.1"), Backends: []netip.AddrPort{mustAP("10.88.3.2:80")}},
			PublishedPort{Proto: TCP, Port: 80, HostAddr: mustAddr("192.0.2.2"), Backends: []netip.AddrPort{mustAP("10.88.3.3:80")}},
			PublishedPort{Proto: TCP, Port: 9000}, // no backends: no rule
			PublishedPort{Proto: TCP, Port: 22, HostAddr: mustAddr("0.0.0.0"), Backends: []netip.AddrPort{mustAP("10.88.3.4:22")}},
		)},
		{name: "500-ports", cfg: base(many...)},
		// A node of a meshed cluster: an ingress port balanced over a
		// local and two remote backends (the remote ones SNAT to the
		// bridge's address on the mesh), a host-mode port (local only),
		// and a backend outside the cluster range, left out.
		{name: "mesh", cfg: Config{Bridge: "warren0", Subnet: testSubnet, Cluster: testCluster, Mesh: "warren-wg", Ports: []PublishedPort{
			{Proto: TCP, Port: 8080, Backends: []netip.AddrPort{mustAP("10.88.3.2:80"), mustAP("10.88.4.2:80"), mustAP("10.88.7.9:80")}},
			{Proto: UDP, Port: 9100, Backends: []netip.AddrPort{mustAP("10.88.3.5:9100")}},
			{Proto: TCP, Port: 8443, Backends: []netip.AddrPort{mustAP("10.89.0.2:443"), mustAP("10.88.5.3:443")}},
		}}},
		// The same without a mesh: remote backends are unreachable, a
		// port with only remote ones gets no DNAT, and only the bridge
		// (and lo) may reach container addresses.
		{name: "no-mesh", cfg: Config{Bridge: "warren0", Subnet: testSubnet, Cluster: testCluster, Ports: []PublishedPort{
			{Proto: TCP, Port: 8080, Backends: []netip.AddrPort{mustAP("10.88.3.2:80"), mustAP("10.88.4.2:80"), mustAP("10.88.7.9:80")}},
			{Proto: TCP, Port: 8443, Backends: []netip.AddrPort{mustAP("10.88.5.3:443")}},
		}}},
	}
}

// portsN returns n published tcp ports from 20000 with two backends each.
func portsN(n int) []PublishedPort {
	ports := make([]PublishedPort, n)
	for i := range ports {
		ports[i] = PublishedPort{
			Proto: TCP,
			Port:  uint16(20000 + i),
			Backends: []netip.AddrPort{
				mustAP(fmt.Sprintf("10.88.3.%d:8080", 2+i%250)),
				mustAP(fmt.Sprintf("10.88.3.%d:8080", 2+(i+1)%250)),
			},
		}
	}
	return ports
}
