package link

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// MeshLink is the state the node wants on its mesh interface.
type MeshLink struct {
	// Name is the interface (warren-wg); it must exist.
	Name string
	// Addr is the interface's one IPv4 address, the node's gateway as a
	// /32: the source of packets the node itself sends through the mesh
	// (masqueraded published ports, its own connections to containers).
	Addr netip.Addr
	// MTU is the interface's MTU.
	MTU int
	// Routes are the other nodes' container subnets, routed through it.
	Routes []netip.Prefix
}

// EnsureMesh makes the mesh interface match m: its MTU, its address, up,
// and exactly m.Routes through it (routes it holds that m does not list
// are removed; routes that are right are not touched, so traffic on them
// never stops).
func (h *Host) EnsureMesh(m MeshLink) error {
	if err := CheckIfname(m.Name); err != nil {
		return fmt.Errorf("link: mesh: %w", err)
	}
	if !m.Addr.Is4() {
		return fmt.Errorf("link: mesh %s: address %s: want the node's IPv4 gateway address", m.Name, m.Addr)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.nl.LinkByName(m.Name)
	if err != nil {
		if isNotFound(err) {
			return fmt.Errorf("link: mesh interface %s does not exist: is warren-mesh running?", m.Name)
		}
		return fmt.Errorf("link: mesh %s: %w", m.Name, err)
	}
	if m.MTU > 0 && l.Attrs().MTU != m.MTU {
		if err := h.nl.LinkSetMTU(l, m.MTU); err != nil {
			return fmt.Errorf("link: mesh %s: set MTU %d: %w", m.Name, m.MTU, err)
		}
	}
	if err := h.setOnlyIPv4(l, netip.PrefixFrom(m.Addr, 32)); err != nil {
		return fmt.Errorf("link: mesh %s: %w", m.Name, err)
	}
	if l.Attrs().Flags&unix.IFF_UP == 0 {
		if err := h.nl.LinkSetUp(l); err != nil {
			return fmt.Errorf("link: mesh %s: set up: %w", m.Name, err)
		}
	}
	have, err := h.nl.RouteList(l, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("link: mesh %s: list routes: %w", m.Name, err)
	}
	want := map[netip.Prefix]bool{}
	for _, p := range m.Routes {
		want[p.Masked()] = true
	}
	src := m.Addr.AsSlice()
	for _, r := range have {
		if r.Dst == nil {
			continue
		}
		p, ok := PrefixOf(*r.Dst)
		if ok && want[p] && r.Src.Equal(src) && r.Scope == netlink.SCOPE_LINK {
			delete(want, p) // right already
			continue
		}
		if err := h.nl.RouteDel(&r); err != nil && !isNotFound(err) && err != unix.ESRCH {
			return fmt.Errorf("link: mesh %s: remove route %s: %w", m.Name, r.Dst, err)
		}
	}
	for p := range want {
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: IPNet(p), Src: src, Scope: netlink.SCOPE_LINK}
		if err := h.nl.RouteReplace(r); err != nil {
			return fmt.Errorf("link: mesh %s: route %s: %w", m.Name, p, err)
		}
	}
	return h.setSysctls([2]string{"net/ipv4/ip_forward", "1"})
}

// UnderlayMTU is the MTU of the interface that holds addr (the node's
// address on its LAN), or 1500 if no interface does.
func (h *Host) UnderlayMTU(addr netip.Addr) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	addrs, err := h.nl.AddrList(nil, unix.AF_UNSPEC)
	if err != nil {
		return 1500
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr.Unmap() {
			if l, err := h.nl.LinkByIndex(a.LinkIndex); err == nil && l.Attrs().MTU > 0 {
				return l.Attrs().MTU
			}
		}
	}
	return 1500
}

// PrefixOf converts a net.IPNet to a masked netip.Prefix (IPv4-mapped
// addresses unmapped).
func PrefixOf(n net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	if a.Is4() && bits == 128 {
		ones -= 96
	}
	return netip.PrefixFrom(a, ones).Masked(), true
}
