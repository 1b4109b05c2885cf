package dns

import (
	"net"
	"net/netip"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// Socket is where one of this server's sockets listens.
type Socket struct {
	// Addr is the bound address; an unspecified address takes any.
	Addr netip.AddrPort
	// Device is the interface the socket is bound to (SO_BINDTODEVICE, as
	// warren-dns.socket's BindToDevice=warren0 does), or "".
	Device string
}

// String is ADDR:PORT, with %DEVICE when bound to one.
func (s Socket) String() string {
	if s.Device != "" {
		return s.Addr.String() + "%" + s.Device
	}
	return s.Addr.String()
}

// SocketOf describes a socket: its address, and the device it is bound to.
func SocketOf(addr net.Addr, c syscall.Conn) Socket {
	s := Socket{}
	if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
		s.Addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if rc, err := c.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			s.Device, _ = unix.GetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
		})
	}
	return s
}

// Reach returns the addresses a packet from this host can be sent to to
// reach the socket (on its port): its own address; for an unspecified one
// bound to a device, that device's addresses (loopback does not reach it);
// unbound, every local address and the loopback ranges.
func (s Socket) Reach() []netip.Prefix {
	a := s.Addr.Addr()
	if !a.IsUnspecified() {
		return []netip.Prefix{netip.PrefixFrom(a, a.BitLen())}
	}
	var addrs []net.Addr
	if s.Device != "" {
		if ifc, err := net.InterfaceByName(s.Device); err == nil {
			addrs, _ = ifc.Addrs()
		}
	} else {
		addrs, _ = net.InterfaceAddrs()
	}
	var out []netip.Prefix
	for _, ad := range addrs {
		p, err := netip.ParsePrefix(ad.String())
		if err != nil {
			continue
		}
		pa := p.Addr().Unmap().WithZone("")
		if pa.IsLoopback() {
			out = append(out, netip.PrefixFrom(pa, p.Bits()).Masked())
		} else {
			out = append(out, netip.PrefixFrom(pa, pa.BitLen()))
		}
	}
	if s.Device == "" {
		out = append(out, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	}
	return out
}

// ProbeAddr is where this host can query the socket: its address, an
// address of its device, or loopback; ok is false while the device has
// no address yet.
func (s Socket) ProbeAddr() (ap netip.AddrPort, ok bool) {
	a := s.Addr.Addr()
	if !a.IsUnspecified() {
		return s.Addr, true
	}
	for _, p := range s.Reach() {
		pa := p.Addr()
		if pa.Is4() == a.Is4() && !pa.IsLinkLocalUnicast() {
			if pa.IsLoopback() && pa.Is4() {
				pa = netip.AddrFrom4([4]byte{127, 0, 0, 1})
			}
			return netip.AddrPortFrom(pa, s.Addr.Port()), true
		}
	}
	return netip.AddrPort{}, false
}

// SelfFilter drops the upstreams that would send queries back to one of
// this server's sockets (a loop): those on a socket's port at an address
// that reaches it (see Socket.Reach; reach gives them per socket). A
// loopback resolver that is not us, such as systemd-resolved's 127.0.0.53
// when warren-dns is bound to the bridge, is kept: warren-dns runs in the
// host's network namespace and reaches it, though containers could not.
func SelfFilter(ups []netip.AddrPort, socks []Socket, reach map[Socket][]netip.Prefix) (kept, dropped []netip.AddrPort) {
	self := func(up netip.AddrPort) bool {
		ua := up.Addr().Unmap().WithZone("")
		for _, s := range socks {
			if s.Addr.Port() != up.Port() {
				continue
			}
			if slices.ContainsFunc(reach[s], func(p netip.Prefix) bool { return p.Contains(ua) }) {
				return true
			}
		}
		return false
	}
	for _, up := range ups {
		if self(up) {
			dropped = append(dropped, up)
		} else {
			kept = append(kept, up)
		}
	}
	return kept, dropped
}

// SelfFilterOf is SelfFilter with each socket's Reach as of now, in the
// form ResolvConf.Filter takes.
func SelfFilterOf(socks ...Socket) func([]netip.AddrPort) (kept, dropped []netip.AddrPort) {
	return func(ups []netip.AddrPort) ([]netip.AddrPort, []netip.AddrPort) {
		reach := map[Socket][]netip.Prefix{}
		for _, s := range socks {
			reach[s] = s.Reach()
		}
		return SelfFilter(ups, socks, reach)
	}
}
