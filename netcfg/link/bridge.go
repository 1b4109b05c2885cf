package link

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// EnsureBridge makes sure the bridge name exists in the host namespace with
// exactly the IPv4 address gw (the gateway of the container subnet, such as
// 10.88.3.1/24) and is up. It also turns on IPv4 forwarding and
// route_localnet on the bridge, so that published ports answer on
// 127.0.0.1 (nft DNATs localhost connections to containers behind the
// bridge). Calling it again changes nothing that is already right.
func (h *Host) EnsureBridge(name string, gw netip.Prefix) error {
	if err := CheckIfname(name); err != nil {
		return fmt.Errorf("link: bridge: %w", err)
	}
	if !gw.IsValid() || !gw.Addr().Is4() || gw.Bits() > 30 || gw.Addr() == gw.Masked().Addr() {
		return fmt.Errorf("link: bridge %s: gateway %s: want the subnet's gateway address with its prefix length, such as 10.88.3.1/24", name, gw)
	}
	h.mu.Lock()
	defer h.mu.Unlock()

	br, err := h.ensureBridgeLink(name)
	if err != nil {
		return fmt.Errorf("link: bridge %s: %w", name, err)
	}
	if err := h.setOnlyIPv4(br, gw); err != nil {
		return fmt.Errorf("link: bridge %s: %w", name, err)
	}
	if err := h.nl.LinkSetUp(br); err != nil {
		return fmt.Errorf("link: bridge %s: set up: %w", name, err)
	}
	if err := h.setSysctls(
		[2]string{"net/ipv4/ip_forward", "1"},
		[2]string{"net/ipv4/conf/" + name + "/route_localnet", "1"},
	); err != nil {
		return fmt.Errorf("link: bridge %s: %w", name, err)
	}
	return nil
}

func (h *Host) ensureBridgeLink(name string) (netlink.Link, error) {
	l, err := h.nl.LinkByName(name)
	if err == nil {
		if l.Type() != "bridge" {
			return nil, fmt.Errorf("a %s link with that name exists: delete it or choose another bridge name", l.Type())
		}
		return l, nil
	}
	if !isNotFound(err) {
		return nil, err
	}
	// A fixed MAC address: a bridge with none takes the lowest of its
	// ports', so it would change as containers come and go and the
	// containers' ARP caches would point at a stale gateway.
	mac, err := randomMAC()
	if err != nil {
		return nil, err
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}}
	if err := h.nl.LinkAdd(br); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	return h.nl.LinkByName(name)
}

// setOnlyIPv4 gives l the IPv4 address addr and removes its other IPv4
// addresses (a subnet that changed leaves an old gateway behind).
func (h *Host) setOnlyIPv4(l netlink.Link, addr netip.Prefix) error {
	addrs, err := h.nl.AddrList(l, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("list addresses: %w", err)
	}
	want := IPNet(addr)
	found := false
	for _, a := range addrs {
		if a.IPNet.String() == want.String() {
			found = true
			continue
		}
		if err := h.nl.AddrDel(l, &a); err != nil {
			return fmt.Errorf("remove old address %s: %w", a.IPNet, err)
		}
	}
	if found {
		return nil
	}
	if err := h.nl.AddrAdd(l, &netlink.Addr{IPNet: want}); err != nil {
		return fmt.Errorf("add address %s: %w", addr, err)
	}
	return nil
}

// DeleteBridge deletes the bridge name. A missing bridge is not an error.
// Sandboxes attached to it lose their connectivity until the bridge is
// made again and they are created again.
func (h *Host) DeleteBridge(name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	l, err := h.nl.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("link: delete bridge %s: %w", name, err)
	}
	if l.Type() != "bridge" {
		return fmt.Errorf("link: delete bridge %s: it is a %s link, not a bridge; not deleting it", name, l.Type())
	}
	if err := h.nl.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("link: delete bridge %s: %w", name, err)
	}
	return nil
}

// ipNet converts a prefix that keeps its host bits (10.88.3.1/24).
// IPNet converts a prefix to the net.IPNet netlink takes.
func IPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// randomMAC returns a random locally administered unicast MAC address.
func randomMAC() (net.HardwareAddr, error) {
	mac := make(net.HardwareAddr, 6)
	if _, err := rand.Read(mac); err != nil {
		return nil, err
	}
	mac[0] = mac[0]&^0x01 | 0x02
	return mac, nil
}
