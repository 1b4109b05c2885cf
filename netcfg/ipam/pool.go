package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/warren-edge/warren/netcfg/nodesubnet"
)

// Pool allocates the addresses of one IPv4 subnet. It is safe for concurrent
// use.
type Pool struct {
	subnet  netip.Prefix
	gateway netip.Addr
	first   netip.Addr // first address that may be handed out (gateway + 1)
	lastOK  netip.Addr // last address that may be handed out (broadcast - 1)
	size    int        // number of addresses that may be handed out

	mu      sync.Mutex
	byOwner map[string]netip.Addr
	byAddr  map[netip.Addr]string
	last    netip.Addr // the address handed out most recently; invalid if none

	// Group commit (Save): gen counts changes; savedGen is the change
	// the file at savedPath holds; saving is closed when the save under
	// way ends (nil if none is).
	gen       uint64
	savedGen  uint64
	savedPath string
	saving    chan struct{}
}

// GatewayOf is a container subnet's gateway, the node's bridge address: its
// first address.
func GatewayOf(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }

// New returns an empty pool for subnet, which must be an IPv4 prefix without
// host bits and with room for at least one container (/30 or larger): it
// hands out nodesubnet.Capacity(subnet) addresses.
func New(subnet netip.Prefix) (*Pool, error) {
	if !subnet.IsValid() {
		return nil, fmt.Errorf("ipam: invalid subnet: give an IPv4 prefix such as 10.88.3.0/24")
	}
	if !subnet.Addr().Is4() {
		return nil, fmt.Errorf("ipam: subnet %s is not IPv4: container subnets are IPv4 prefixes such as 10.88.3.0/24", subnet)
	}
	if subnet.Masked() != subnet {
		return nil, fmt.Errorf("ipam: subnet %s has host bits set: use %s", subnet, subnet.Masked())
	}
	if nodesubnet.Capacity(subnet) < 1 {
		return nil, fmt.Errorf("ipam: subnet %s is too small: it needs room for network, gateway, broadcast and at least one container (/%d or larger)", subnet, nodesubnet.MaxBits)
	}
	network := subnet.Addr()
	hostBits := 32 - subnet.Bits()
	broadcast := fromUint(toUint(network) | (1<<hostBits - 1))
	gateway := GatewayOf(subnet)
	return &Pool{
		subnet:  subnet,
		gateway: gateway,
		first:   gateway.Next(),
		lastOK:  broadcast.Prev(),
		size:    nodesubnet.Capacity(subnet),
		byOwner: make(map[string]netip.Addr),
		byAddr:  make(map[netip.Addr]string),
	}, nil
}

// Subnet returns the pool's subnet.
func (p *Pool) Subnet() netip.Prefix { return p.subnet }

// Gateway returns the subnet's gateway address (the first host address). It
// is reserved for the node's bridge and never handed out.
func (p *Pool) Gateway() netip.Addr { return p.gateway }

// Size returns how many addresses the pool can hand out in total.
func (p *Pool) Size() int { return p.size }

// Allocate returns owner's address, handing out a free one if owner holds
// none yet. It fails with an error matching ErrFull when every address is in
// use.
func (p *Pool) Allocate(owner string) (netip.Addr, error) {
	if owner == "" {
		return netip.Addr{}, fmt.Errorf("ipam: allocate: empty owner: give the sandbox id the address is for")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.byOwner[owner]; ok {
		return a, nil
	}
	if len(p.byOwner) >= p.size {
		return netip.Addr{}, &FullError{Subnet: p.subnet, InUse: len(p.byOwner)}
	}
	// Round robin: start after the address handed out most recently.
	a := p.first
	if p.last.IsValid() {
		a = p.next(p.last)
	}
	for {
		if _, taken := p.byAddr[a]; !taken {
			break
		}
		a = p.next(a)
	}
	p.byOwner[owner] = a
	p.byAddr[a] = owner
	p.last = a
	p.gen++
	return a, nil
}

// next returns the address after a in the allocatable range, wrapping around.
func (p *Pool) next(a netip.Addr) netip.Addr {
	if a == p.lastOK {
		return p.first
	}
	return a.Next()
}

// Release gives owner's address back. Releasing an owner that holds no
// address does nothing.
func (p *Pool) Release(owner string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a, ok := p.byOwner[owner]; ok {
		delete(p.byOwner, owner)
		delete(p.byAddr, a)
		p.gen++
	}
}

// Lookup returns owner's address and whether owner holds one.
func (p *Pool) Lookup(owner string) (netip.Addr, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.byOwner[owner]
	return a, ok
}

// Owners returns the owners that hold an address, sorted.
func (p *Pool) Owners() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	owners := make([]string, 0, len(p.byOwner))
	for o := range p.byOwner {
		owners = append(owners, o)
	}
	slices.Sort(owners)
	return owners
}

// InUse returns how many addresses are held.
func (p *Pool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.byOwner)
}

// contains reports whether a may be handed out by p (inside the subnet and not
// the network, gateway or broadcast address).
func (p *Pool) contains(a netip.Addr) bool {
	return a.Is4() && p.subnet.Contains(a) && toUint(a) >= toUint(p.first) && toUint(a) <= toUint(p.lastOK)
}

func toUint(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromUint(u uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}
