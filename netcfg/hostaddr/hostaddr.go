// Package hostaddr picks the address a node tells the rest of the cluster
// to reach it at when it listens on every address (0.0.0.0 or [::]): the
// node port's advertised address, and any other "my own address" a daemon
// needs.
//
// Choose is pure: it takes the host's interfaces as plain data (name,
// index, flags, addresses) and returns one address or an error; Interfaces
// reads them from the kernel (netlink: a systemd unit needs AF_NETLINK in
// RestrictAddressFamilies=). Pick is the two together, Advertise the same
// for a listener's address and port.
//
// The rules, in order:
//
//  1. only interfaces that are up and not loopback;
//  2. never Warren's own interfaces: names starting with "warren" (the
//     container bridge warren0, the mesh warren-wg) and the host ends of
//     the containers' veths ("wv" and 13 hex digits, see
//     netcfg/link.VethName);
//  3. only global unicast addresses (private ranges and IPv6 ULAs count):
//     no loopback, link-local, multicast or unspecified address, and none
//     inside an excluded range (the cluster's container range), nor of a
//     family the listener does not take (0.0.0.0 takes IPv4 only);
//  4. of what is left: an interface with a carrier (running) first, then
//     IPv4 before IPv6, then the lowest interface index, then the lowest
//     address. The same interfaces always give the same answer.
//
// With nothing left it returns an error (errors.Is ErrNoAddress) that
// lists what it skipped and why, and says what to set: advertise_addr in
// /etc/warren/warren.conf or --advertise-addr. It never falls back to
// loopback: a node that advertises 127.0.0.1 sends every peer to itself.
package hostaddr

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
)

// Interface is one network interface of the host, as plain data.
type Interface struct {
	Name  string
	Index int
	Flags net.Flags
	// Addrs are the interface's addresses with their prefix lengths.
	Addrs []netip.Prefix
}

// Options narrow the choice.
type Options struct {
	// Family is 4 or 6 for a listener that takes only IPv4 (0.0.0.0) or
	// only IPv6; 0 takes either ([::] is dual-stack).
	Family int
	// Exclude are ranges whose addresses are never chosen, such as the
	// cluster's container range (a node's bridge address is in it).
	Exclude []netip.Prefix
}

// ErrNoAddress is matched (errors.Is) by the error of Choose, Pick and
// Advertise when no address fits.
var ErrNoAddress = errors.New("hostaddr: no address to advertise")

// Skipped is an interface or address Choose passed over, and why.
type Skipped struct {
	Interface string
	Addr      netip.Addr // invalid when the whole interface was skipped
	Why       string
}

func (s Skipped) String() string {
	if s.Addr.IsValid() {
		return s.Interface + " " + s.Addr.String() + ": " + s.Why
	}
	return s.Interface + ": " + s.Why
}

// NoAddressError is ErrNoAddress with what was skipped.
type NoAddressError struct {
	Skipped []Skipped
}

// Hint is what the error tells an operator to do.
const Hint = "set advertise_addr = HOST:PORT in /etc/warren/warren.conf (or pass warren manager --advertise-addr HOST:PORT) to the address other nodes reach this one at"

func (e *NoAddressError) Error() string {
	seen := "the host has no network interface"
	if len(e.Skipped) > 0 {
		parts := make([]string, len(e.Skipped))
		for i, s := range e.Skipped {
			parts[i] = s.String()
		}
		seen = "skipped " + strings.Join(parts, "; ")
	}
	return fmt.Sprintf("%v (%s): %s", ErrNoAddress, seen, Hint)
}

// Is makes errors.Is(err, ErrNoAddress) true for a *NoAddressError.
func (e *NoAddressError) Is(target error) bool { return target == ErrNoAddress }

// IsWarrenInterface says whether name is one of the interfaces Warren
// makes: the container bridge (warren0), the mesh (warren-wg), anything
// else named warren*, and the veths' host ends ("wv" + 13 hex digits).
func IsWarrenInterface(name string) bool {
	if strings.HasPrefix(name, "warren") {
		return true
	}
	if len(name) != 15 || !strings.HasPrefix(name, "wv") {
		return false
	}
	for _, r := range name[2:] {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

type candidate struct {
	addr    netip.Addr
	index   int
	running bool
}

// Choose returns the address to advertise among ifs (see the package
// comment for the rules), or a *NoAddressError.
func Choose(ifs []Interface, o Options) (netip.Addr, error) {
	var cands []candidate
	var skipped []Skipped
	for _, ifc := range ifs {
		switch {
		case ifc.Flags&net.FlagLoopback != 0:
			skipped = append(skipped, Skipped{Interface: ifc.Name, Why: "loopback"})
			continue
		case ifc.Flags&net.FlagUp == 0:
			skipped = append(skipped, Skipped{Interface: ifc.Name, Why: "down"})
			continue
		case IsWarrenInterface(ifc.Name):
			skipped = append(skipped, Skipped{Interface: ifc.Name, Why: "Warren's own interface"})
			continue
		case len(ifc.Addrs) == 0:
			skipped = append(skipped, Skipped{Interface: ifc.Name, Why: "no address"})
			continue
		}
		for _, p := range ifc.Addrs {
			a := p.Addr().Unmap()
			if why := skipAddr(a, o); why != "" {
				skipped = append(skipped, Skipped{Interface: ifc.Name, Addr: a, Why: why})
				continue
			}
			cands = append(cands, candidate{addr: a, index: ifc.Index, running: ifc.Flags&net.FlagRunning != 0})
		}
	}
	if len(cands) == 0 {
		return netip.Addr{}, &NoAddressError{Skipped: skipped}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.running != b.running {
			return a.running
		}
		if a.addr.Is4() != b.addr.Is4() {
			return a.addr.Is4()
		}
		if a.index != b.index {
			return a.index < b.index
		}
		return a.addr.Less(b.addr)
	})
	return cands[0].addr, nil
}

// skipAddr says why a is not advertised, or "".
func skipAddr(a netip.Addr, o Options) string {
	switch {
	case !a.IsValid():
		return "not an address"
	case o.Family == 4 && !a.Is4():
		return "IPv6, and the listener takes IPv4 only"
	case o.Family == 6 && !a.Is6():
		return "IPv4, and the listener takes IPv6 only"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case !a.IsGlobalUnicast():
		return "not unicast"
	}
	for _, p := range o.Exclude {
		if p.IsValid() && p.Contains(a) {
			return "inside " + p.Masked().String() + ", the cluster's container range"
		}
	}
	return ""
}

// Interfaces lists the host's interfaces with their addresses.
func Interfaces() ([]Interface, error) {
	nifs, err := net.Interfaces()
	if err != nil {
		return nil, listErr(err)
	}
	out := make([]Interface, 0, len(nifs))
	for _, n := range nifs {
		ifc := Interface{Name: n.Name, Index: n.Index, Flags: n.Flags}
		addrs, err := n.Addrs()
		if err != nil {
			return nil, listErr(fmt.Errorf("%s: %w", n.Name, err))
		}
		for _, a := range addrs {
			in, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(in.IP)
			if !ok {
				continue
			}
			bits, _ := in.Mask.Size()
			ip = ip.Unmap()
			if ip.Is4() && bits > 32 {
				bits -= 96
			}
			ifc.Addrs = append(ifc.Addrs, netip.PrefixFrom(ip, bits))
		}
		out = append(out, ifc)
	}
	return out, nil
}

func listErr(err error) error {
	return fmt.Errorf("hostaddr: listing the host's interfaces (a systemd unit needs AF_NETLINK in RestrictAddressFamilies=): %w; or %s", err, Hint)
}

// Pick chooses among the host's interfaces.
func Pick(o Options) (netip.Addr, error) {
	ifs, err := Interfaces()
	if err != nil {
		return netip.Addr{}, err
	}
	return Choose(ifs, o)
}

// Advertise returns the address and port other nodes reach a listener on
// listen at: listen itself when its address is specified, else the
// address Pick chooses (IPv4 only for 0.0.0.0) with listen's port, never
// excluded ones.
func Advertise(listen netip.AddrPort, exclude ...netip.Prefix) (netip.AddrPort, error) {
	a := listen.Addr()
	if !a.IsUnspecified() {
		return listen, nil
	}
	o := Options{Exclude: exclude}
	if a.Is4() || a.Is4In6() {
		o.Family = 4
	}
	ip, err := Pick(o)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ip, listen.Port()), nil
}
