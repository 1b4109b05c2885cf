package agent

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/netcfg/ipam"
	"github.com/warren-edge/warren/netcfg/link"
	"github.com/warren-edge/warren/netcfg/nft"
)

// HostNetwork is the real Network: a bridge on the node's subnet, a network
// namespace and veth per task (netcfg/link), addresses from a persisted
// pool (netcfg/ipam), and published ports in table inet warren
// (netcfg/nft).
type HostNetwork struct {
	// Bridge is the bridge's name (default warren0).
	Bridge string
	// NetNSPath is the namespace that plays the node; "" is the agent's
	// own. Tests run a whole node inside a namespace they made.
	NetNSPath string
	// NetnsDir is where task namespaces are mounted (default
	// /run/warren/netns).
	NetnsDir string
	// StateDir holds the address pool (ipam.json).
	StateDir string

	mu      sync.Mutex
	host    *link.Host
	pool    *ipam.Pool
	table   *nft.Table
	subnet  netip.Prefix
	cluster netip.Prefix
	mesh    string
	ports   []Published // as last published, for SetMesh

	// taskMu keeps Attach and Detach of one task one at a time: a Detach
	// between an Attach's address and its namespace would leave a
	// namespace whose address the pool gives out again. The agent keeps a
	// task's actions apart already (busy tasks), but HostNetwork is safe
	// for concurrent use on its own. Tasks are spread over the locks by
	// their ID, so that different tasks do not wait for each other (they
	// share the pool's saves, which n.mu would queue).
	taskMu [16]sync.Mutex
}

var _ Network = (*HostNetwork)(nil)

func (n *HostNetwork) poolPath() string { return filepath.Join(n.StateDir, "ipam.json") }

// Setup builds the bridge and the base ruleset (masquerade and admission,
// no ports).
func (n *HostNetwork) Setup(ctx context.Context, nn NodeNet) error {
	subnet := nn.Subnet
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Bridge == "" {
		n.Bridge = "warren0"
	}
	if n.NetnsDir == "" {
		n.NetnsDir = link.DefaultNetnsDir
	}
	if n.StateDir == "" {
		return errors.New("agent: network: no state directory")
	}
	host, err := link.Open(link.Config{NetNSPath: n.NetNSPath, NetnsDir: n.NetnsDir})
	if err != nil {
		return err
	}
	pool, err := ipam.Load(n.poolPath(), subnet)
	if err != nil {
		host.Close()
		return fmt.Errorf("%w (if the node's subnet changed, remove the file and restart the agent)", err)
	}
	gw := netip.PrefixFrom(pool.Gateway(), subnet.Bits())
	if err := host.EnsureBridge(n.Bridge, gw); err != nil {
		host.Close()
		return err
	}
	var opts []nft.Option
	if n.NetNSPath != "" {
		opts = append(opts, nft.InNetNS(int(host.NetNS())))
	}
	n.host, n.pool, n.subnet, n.table = host, pool, subnet, nft.NewTable(opts...)
	n.cluster, n.mesh, n.ports = nn.Cluster, nn.Mesh, nil
	if err := n.apply(); err != nil {
		return err
	}
	return n.meshLocalnet()
}

// SetMesh makes name the mesh interface ("" for none) and applies the
// ruleset again with the ports last published: backends on other nodes
// are used through it from now on. The interface should exist: it gets
// route_localnet, so that localhost:PORT reaches backends behind it (call
// SetMesh again if the interface is made anew). The ruleset is applied
// even if that fails.
func (n *HostNetwork) SetMesh(ctx context.Context, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.table == nil {
		return errors.New("agent: network: SetMesh before Setup")
	}
	prev := n.mesh
	n.mesh = name
	if err := n.apply(); err != nil {
		n.mesh = prev
		return err
	}
	return n.meshLocalnet()
}

// apply loads the ruleset of the current state. Callers hold n.mu.
func (n *HostNetwork) apply() error {
	cfg := nft.Config{Bridge: n.Bridge, Subnet: n.subnet, Cluster: n.cluster, Mesh: n.mesh}
	for _, p := range n.ports {
		cfg.Ports = append(cfg.Ports, nft.PublishedPort{Proto: nft.Proto(p.Proto), HostAddr: p.HostAddr, Port: p.Port, Backends: p.Backends})
	}
	return n.table.Apply(cfg)
}

// meshLocalnet lets localhost:PORT reach backends behind the mesh, if
// there is one. The ruleset is in place whatever it says. Callers hold
// n.mu.
func (n *HostNetwork) meshLocalnet() error {
	if n.mesh == "" {
		return nil
	}
	if err := n.host.RouteLocalnet(n.mesh); err != nil {
		return fmt.Errorf("agent: network: published ports use mesh %s, but localhost:PORT on this node cannot reach other nodes' tasks: %w", n.mesh, err)
	}
	return nil
}

// Attach gives the task an address and a namespace on the bridge. The
// address is saved before the namespace gets it, so that a crash never hands
// it out twice; tasks attached at once share the save (ipam.Pool.Save).
func (n *HostNetwork) Attach(ctx context.Context, id string) (string, netip.Addr, error) {
	// The namespace's file is named by the ID: only an ID Warren makes.
	if err := api.ValidateID(id); err != nil {
		return "", netip.Addr{}, fmt.Errorf("agent: network namespace: %w", err)
	}
	host, pool, err := n.parts()
	if err != nil {
		return "", netip.Addr{}, err
	}
	defer n.lockTask(id)()
	addr, err := pool.Allocate(id)
	if err != nil {
		return "", netip.Addr{}, err
	}
	if err := pool.Save(n.poolPath()); err != nil {
		pool.Release(id)
		return "", netip.Addr{}, err
	}
	ns, err := host.CreateSandbox(id, n.Bridge, netip.PrefixFrom(addr, pool.Subnet().Bits()), pool.Gateway())
	if err != nil {
		return "", netip.Addr{}, err
	}
	return ns, addr, nil
}

// Detach removes the task's namespace and frees its address.
func (n *HostNetwork) Detach(ctx context.Context, id string) error {
	if err := api.ValidateID(id); err != nil {
		return fmt.Errorf("agent: network namespace: %w", err)
	}
	host, pool, err := n.parts()
	if err != nil {
		return err
	}
	defer n.lockTask(id)()
	if err := host.DeleteSandbox(id); err != nil {
		return err
	}
	if _, ok := pool.Lookup(id); ok {
		pool.Release(id)
		return pool.Save(n.poolPath())
	}
	return nil
}

// lockTask locks task id's lock and returns its unlock.
func (n *HostNetwork) lockTask(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	mu := &n.taskMu[h.Sum32()%uint32(len(n.taskMu))]
	mu.Lock()
	return mu.Unlock
}

// parts returns the links and the address pool Setup made. Each is safe
// for concurrent use, so tasks attach and detach without n.mu, which
// would queue them behind each other's fsyncs (see taskMu).
func (n *HostNetwork) parts() (*link.Host, *ipam.Pool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.host == nil {
		return nil, nil, errors.New("agent: network: used before Setup")
	}
	return n.host, n.pool, nil
}

// Attached lists tasks holding a namespace or an address.
func (n *HostNetwork) Attached(ctx context.Context) ([]string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ids, err := n.host.ListSandboxes()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	for _, id := range n.pool.Owners() {
		seen[id] = true
	}
	out := make([]string, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	sort.Strings(out)
	return out, nil
}

// Publish applies the node's published ports in one transaction.
func (n *HostNetwork) Publish(ctx context.Context, ports []Published) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	prev := n.ports
	n.ports = ports
	if err := n.apply(); err != nil {
		n.ports = prev
		return err
	}
	return nil
}

// CheckPort tries to bind the port in the node's namespace.
func (n *HostNetwork) CheckPort(ctx context.Context, p Published) error {
	addr := ""
	if p.HostAddr.IsValid() {
		addr = p.HostAddr.String()
	}
	hostport := net.JoinHostPort(addr, fmt.Sprint(p.Port))
	return n.host.Do(func() error {
		var err error
		if p.Proto == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp4", hostport); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp4", hostport); err == nil {
				l.Close()
			}
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return errors.New("another program listens on it")
		}
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			return fmt.Errorf("%s is not an address of this node", addr)
		}
		return err
	})
}

// Close releases the netlink handles; the bridge, namespaces and rules stay
// for the next agent.
func (n *HostNetwork) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.host != nil {
		return n.host.Close()
	}
	return nil
}
