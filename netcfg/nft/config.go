package nft

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/warren-edge/warren/netcfg/link"
)

// Proto is a transport protocol a port can be published for.
type Proto string

// The protocols a port can be published for.
const (
	TCP Proto = "tcp"
	UDP Proto = "udp"
)

// number is the IP protocol number of p.
func (p Proto) number() byte {
	if p == UDP {
		return 17
	}
	return 6
}

// Config is the desired state of the node's table.
type Config struct {
	// Bridge is the name of the container bridge, e.g. "warren0". It has
	// the subnet's first address (ipam.Pool.Gateway), e.g. 10.88.3.1.
	Bridge string
	// Subnet is the node's container subnet, e.g. 10.88.3.0/24.
	Subnet netip.Prefix
	// Cluster is the range every node's container subnet comes from, e.g.
	// 10.88.0.0/16; it must hold Subnet. The zero Prefix means Subnet
	// alone (a node that does not know the range).
	Cluster netip.Prefix
	// Mesh is the interface through which the other nodes' container
	// subnets are reached (the WireGuard mesh), or "" if this node has
	// none (a single node, or the mesh is off).
	Mesh string
	// Ports are the published ports.
	Ports []PublishedPort
}

// PublishedPort is one port of the node forwarded to containers.
type PublishedPort struct {
	Proto Proto
	// HostAddr, if valid and not 0.0.0.0, is the one node address the port
	// answers on. Otherwise the port answers on every local address of the
	// node, including 127.0.0.1.
	HostAddr netip.Addr
	// Port is the port on the node.
	Port uint16
	// Backends are the container addresses and ports that new connections
	// are spread over at random: this node's containers (in Subnet) and
	// other nodes' (in Cluster), which are reached through the Mesh and
	// left out when there is none. A port with no backends is not
	// forwarded at all (see README.md).
	Backends []netip.AddrPort
}

// allAddrs reports whether the port answers on every local address.
func (p PublishedPort) allAddrs() bool {
	return !p.HostAddr.IsValid() || p.HostAddr.IsUnspecified()
}

// String names the port as a user wrote it: "tcp 8080" or "tcp 192.0.2.1:8080".
func (p PublishedPort) String() string {
	if p.allAddrs() {
		return fmt.Sprintf("%s %d", p.Proto, p.Port)
	}
	return fmt.Sprintf("%s %s", p.Proto, netip.AddrPortFrom(p.HostAddr, p.Port))
}

// normalize returns c with IPv4-mapped IPv6 addresses unmapped, 0.0.0.0 host
// addresses cleared and the ports sorted, after checking that c can be
// turned into a ruleset.
func (c Config) normalize() (Config, error) {
	if err := link.CheckIfname(c.Bridge); err != nil {
		return Config{}, fmt.Errorf("nft: bridge: %w", err)
	}
	if !c.Subnet.IsValid() || !c.Subnet.Addr().Is4() {
		return Config{}, fmt.Errorf("nft: subnet %q: want the node's IPv4 container subnet, such as 10.88.3.0/24", c.Subnet)
	}
	if c.Subnet.Masked() != c.Subnet {
		return Config{}, fmt.Errorf("nft: subnet %s has host bits set: use %s", c.Subnet, c.Subnet.Masked())
	}
	cluster := c.Cluster
	if !cluster.IsValid() {
		cluster = c.Subnet
	}
	if !cluster.Addr().Is4() || cluster.Masked() != cluster {
		return Config{}, fmt.Errorf("nft: cluster range %s: want the IPv4 range of the nodes' container subnets, such as 10.240.0.0/12", cluster)
	}
	if cluster.Bits() > c.Subnet.Bits() || !cluster.Contains(c.Subnet.Addr()) {
		return Config{}, fmt.Errorf("nft: cluster range %s does not hold the node's subnet %s", cluster, c.Subnet)
	}
	if c.Mesh != "" {
		if err := link.CheckIfname(c.Mesh); err != nil {
			return Config{}, fmt.Errorf("nft: mesh: %w", err)
		}
		if c.Mesh == c.Bridge || c.Mesh == "lo" {
			return Config{}, fmt.Errorf("nft: mesh interface %q: it must be the mesh's own interface, not the bridge or lo", c.Mesh)
		}
	}
	out := Config{Bridge: c.Bridge, Subnet: c.Subnet, Cluster: cluster, Mesh: c.Mesh, Ports: make([]PublishedPort, 0, len(c.Ports))}
	for _, p := range c.Ports {
		n, err := p.normalize()
		if err != nil {
			return Config{}, err
		}
		n.Backends = out.reachable(n.Backends)
		out.Ports = append(out.Ports, n)
	}
	slices.SortStableFunc(out.Ports, comparePorts)
	// Same protocol and port: a port on all addresses conflicts with any
	// other, and a host address can be bound once.
	for i := 1; i < len(out.Ports); i++ {
		a, b := out.Ports[i-1], out.Ports[i]
		if a.Proto != b.Proto || a.Port != b.Port {
			continue
		}
		if a.allAddrs() || b.allAddrs() || a.HostAddr == b.HostAddr {
			return Config{}, fmt.Errorf("nft: ports %q and %q conflict: both take %s port %d on the same address; publish a port once per host address", a, b, a.Proto, a.Port)
		}
	}
	return out, nil
}

// reachable returns the backends the node can forward to: its own
// containers (in Subnet, behind the bridge) and, through the mesh only,
// other nodes' containers (in Cluster). Without a mesh there is no route
// to another node's container, so a port whose backends all run
// elsewhere gets none: it is refused here rather than black-holed.
func (c Config) reachable(backends []netip.AddrPort) []netip.AddrPort {
	out := make([]netip.AddrPort, 0, len(backends))
	for _, b := range backends {
		local := c.Subnet.Contains(b.Addr())
		if local || c.Mesh != "" && c.Cluster.Contains(b.Addr()) {
			out = append(out, b)
		}
	}
	return out
}

// gateway is the bridge's address: the subnet's first (ipam.Pool.Gateway).
func (c Config) gateway() netip.Addr { return c.Subnet.Addr().Next() }

func (p PublishedPort) normalize() (PublishedPort, error) {
	if p.Proto != TCP && p.Proto != UDP {
		return PublishedPort{}, fmt.Errorf("nft: port %d: protocol %q: want \"tcp\" or \"udp\"", p.Port, p.Proto)
	}
	if p.Port == 0 {
		return PublishedPort{}, fmt.Errorf("nft: port %q: port 0 cannot be published: give a port from 1 to 65535", p)
	}
	if p.HostAddr.IsValid() {
		p.HostAddr = p.HostAddr.Unmap()
		if !p.HostAddr.Is4() {
			return PublishedPort{}, fmt.Errorf("nft: port %s %d on %s: IPv6 host addresses are not supported (containers have IPv4 addresses only): bind to an IPv4 address or to all addresses", p.Proto, p.Port, p.HostAddr)
		}
		if p.HostAddr.IsUnspecified() {
			p.HostAddr = netip.Addr{}
		}
	}
	backends := make([]netip.AddrPort, 0, len(p.Backends))
	for _, b := range p.Backends {
		b = netip.AddrPortFrom(b.Addr().Unmap(), b.Port())
		if !b.Addr().Is4() || b.Addr().IsUnspecified() {
			return PublishedPort{}, fmt.Errorf("nft: port %q: backend %s: want a container's IPv4 address and port", p, b)
		}
		if b.Port() == 0 {
			return PublishedPort{}, fmt.Errorf("nft: port %q: backend %s: port 0: give the container's target port", p, b)
		}
		backends = append(backends, b)
	}
	p.Backends = backends
	return p, nil
}

// comparePorts orders ports by protocol, port and host address (all
// addresses first).
func comparePorts(a, b PublishedPort) int {
	if c := strings.Compare(string(a.Proto), string(b.Proto)); c != 0 {
		return c
	}
	if a.Port != b.Port {
		return int(a.Port) - int(b.Port)
	}
	return a.HostAddr.Compare(b.HostAddr)
}
