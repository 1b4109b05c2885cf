package agent

import (
	"context"
	"net/netip"

	"github.com/warren-edge/warren/daemons/api"
)

// Network is the node's container networking as the agent needs it. The
// real one (netcfg.go) builds a bridge, a veth and a network namespace per
// task and publishes ports with nftables; tests of the agent's logic run
// without one (containers then get an empty network namespace).
type Network interface {
	// Setup prepares the node: the bridge on the node's subnet, and the
	// base ruleset (no ports) for its subnet, cluster range and mesh.
	Setup(ctx context.Context, nn NodeNet) error
	// SetMesh changes the mesh interface ("" for none) and applies the
	// ruleset again, for a mesh that comes up (or goes) after Setup.
	SetMesh(ctx context.Context, name string) error
	// Attach gives a task its network namespace and address; attaching an
	// attached task returns what it has.
	Attach(ctx context.Context, taskID string) (nsPath string, addr netip.Addr, err error)
	// Detach releases a task's namespace and address; detaching a detached
	// task is not an error.
	Detach(ctx context.Context, taskID string) error
	// Attached lists the tasks that hold a sandbox, to clean up leftovers.
	Attached(ctx context.Context) ([]string, error)
	// Publish makes the node's published ports exactly ports.
	Publish(ctx context.Context, ports []Published) error
	// CheckPort says whether a port Warren does not publish yet is free on
	// the node: an error names what holds it.
	CheckPort(ctx context.Context, p Published) error
	// Close releases what Setup opened; the bridge and rules stay.
	Close() error
}

// NodeNet is what the node's container network is made from.
type NodeNet struct {
	// Subnet is the node's container subnet (its node record's).
	Subnet netip.Prefix
	// Cluster is the range every node's subnet comes from
	// (api.Info.ClusterCIDR); the zero Prefix means Subnet alone.
	Cluster netip.Prefix
	// Mesh is the interface that leads to the other nodes' subnets (the
	// WireGuard mesh), or "" when the node has none. Published ports use
	// backends on other nodes only through it.
	Mesh string
}

// Published is one published port of the node and where it leads.
type Published struct {
	Proto    string
	HostAddr netip.Addr // invalid: every address
	Port     uint16
	// Backends are container addresses of this node and, for an ingress
	// port, of other nodes; those are reached through the mesh, and left
	// out while the node has none (netcfg/nft).
	Backends []netip.AddrPort
	// Ingress says the port is published on every node (mode ingress)
	// rather than for this node's tasks only.
	Ingress bool
}

// clusterRange parses the cluster range the local manager reports; the
// zero Prefix (Subnet alone) if it reports none or one that does not hold
// the subnet.
func (a *Agent) clusterRange(info *api.Info) netip.Prefix {
	p, err := netip.ParsePrefix(info.ClusterCIDR)
	if err != nil || !p.Contains(a.subnet.Addr()) || p.Bits() > a.subnet.Bits() {
		a.log.Warn("no usable cluster range from the manager: container addresses admit only this node's subnet's traffic from the bridge, and backends on other nodes are not used",
			"clusterCIDR", info.ClusterCIDR, "subnet", a.subnet)
		return netip.Prefix{}
	}
	return p.Masked()
}
