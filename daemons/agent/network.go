package agent

import (
	"context"
	"net/netip"
)

// Network is the node's container networking as the agent needs it. The
// real one (netcfg.go) builds a bridge, a veth and a network namespace per
// task and publishes ports with nftables; tests of the agent's logic run
// without one (containers then get an empty network namespace).
type Network interface {
	// Setup prepares the node: the bridge on the node's subnet.
	Setup(ctx context.Context, subnet netip.Prefix) error
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

// Published is one published port of the node and where it leads.
type Published struct {
	Proto    string
	HostAddr netip.Addr // invalid: every address
	Port     uint16
	Backends []netip.AddrPort
}
