package hostaddr

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/warren-edge/warren/netcfg/link"
)

const (
	up      = net.FlagUp | net.FlagBroadcast | net.FlagMulticast
	running = up | net.FlagRunning
	lo      = net.FlagUp | net.FlagLoopback | net.FlagRunning
)

func ifc(name string, index int, flags net.Flags, addrs ...string) Interface {
	i := Interface{Name: name, Index: index, Flags: flags}
	for _, a := range addrs {
		i.Addrs = append(i.Addrs, netip.MustParsePrefix(a))
	}
	return i
}

var (
	loopback   = ifc("lo", 1, lo, "127.0.0.1/8", "::1/128")
	clusterNet = netip.MustParsePrefix("10.240.0.0/12")
	bridge     = ifc("warren0", 9, running, "10.240.3.1/24")
	veth       = ifc(link.VethName("task-1"), 10, running, "169.254.7.7/16")
)

func TestChoose(t *testing.T) {
	cases := []struct {
		name    string
		ifs     []Interface
		o       Options
		want    string   // "" = an error
		errHas  []string // parts of the error
		reorder bool     // also try the interfaces in reverse order
	}{
		{name: "a LAN address beside loopback", ifs: []Interface{loopback, ifc("eth0", 2, running, "192.168.1.20/24")}, want: "192.168.1.20"},
		{name: "an nspawn host: the veth eth0, Warren's bridge and a veth beside it",
			ifs:  []Interface{loopback, ifc("eth0", 2, running, "10.77.0.11/24", "fe80::1/64"), bridge, veth},
			o:    Options{Exclude: []netip.Prefix{clusterNet}},
			want: "10.77.0.11", reorder: true},
		{name: "IPv4 before IPv6 (global and ULA)",
			ifs:  []Interface{ifc("eth0", 2, running, "2001:db8::5/64", "fd00::5/64", "192.168.1.20/24")},
			want: "192.168.1.20", reorder: true},
		{name: "IPv6 global when there is no IPv4", ifs: []Interface{loopback, ifc("eth0", 2, running, "fe80::1/64", "2001:db8::5/64")}, want: "2001:db8::5"},
		{name: "IPv4 only for a 0.0.0.0 listener", ifs: []Interface{ifc("eth0", 2, running, "2001:db8::5/64")}, o: Options{Family: 4},
			errHas: []string{"eth0 2001:db8::5: IPv6, and the listener takes IPv4 only"}},
		{name: "IPv6 only for an IPv6-only listener", ifs: []Interface{ifc("eth0", 2, running, "192.168.1.20/24", "2001:db8::5/64")}, o: Options{Family: 6}, want: "2001:db8::5"},
		{name: "an interface with a carrier before one without",
			ifs:  []Interface{ifc("eth0", 2, up, "192.168.1.20/24"), ifc("wlan0", 3, running, "192.168.7.9/24")},
			want: "192.168.7.9", reorder: true},
		{name: "a running interface's IPv6 before a dead one's IPv4",
			ifs:  []Interface{ifc("eth0", 2, up, "192.168.1.20/24"), ifc("wlan0", 3, running, "2001:db8::9/64")},
			want: "2001:db8::9", reorder: true},
		{name: "the lowest interface index, whatever the listing order",
			ifs:  []Interface{ifc("eth1", 3, running, "192.168.2.1/24"), ifc("eth0", 2, running, "192.168.9.1/24")},
			want: "192.168.9.1", reorder: true},
		{name: "the lowest address of one interface",
			ifs:  []Interface{ifc("eth0", 2, running, "192.168.1.30/24", "192.168.1.20/24")},
			want: "192.168.1.20", reorder: true},
		{name: "a down interface is skipped", ifs: []Interface{ifc("eth0", 2, net.FlagBroadcast, "192.168.1.20/24"), ifc("eth1", 3, running, "10.1.1.1/24")}, want: "10.1.1.1"},
		{name: "the cluster's container range is skipped on any interface",
			ifs:  []Interface{ifc("br-lan", 2, running, "10.240.8.1/24"), ifc("eth1", 5, running, "172.16.0.4/16")},
			o:    Options{Exclude: []netip.Prefix{clusterNet}},
			want: "172.16.0.4"},
		{name: "the mesh is Warren's", ifs: []Interface{ifc("warren-wg", 2, running, "100.64.0.1/10"), ifc("eth0", 3, running, "192.168.1.20/24")}, want: "192.168.1.20"},

		{name: "only loopback: an error, never 127.0.0.1", ifs: []Interface{loopback},
			errHas: []string{"no address to advertise", "lo: loopback", "advertise_addr", "/etc/warren/warren.conf", "--advertise-addr"}},
		{name: "no interface at all", ifs: nil, errHas: []string{"no network interface", "advertise_addr"}},
		{name: "only link-local", ifs: []Interface{loopback, ifc("eth0", 2, running, "169.254.3.3/16", "fe80::1/64")},
			errHas: []string{"eth0 169.254.3.3: link-local", "eth0 fe80::1: link-local"}},
		{name: "only Warren's own and the container range",
			ifs:    []Interface{loopback, bridge, veth, ifc("eth0", 2, running, "10.240.1.7/24")},
			o:      Options{Exclude: []netip.Prefix{clusterNet}},
			errHas: []string{"warren0: Warren's own interface", veth.Name + ": Warren's own interface", "eth0 10.240.1.7: inside 10.240.0.0/12"}},
		{name: "an up interface without addresses", ifs: []Interface{ifc("eth0", 2, running)}, errHas: []string{"eth0: no address"}},
		{name: "a loopback address on another interface", ifs: []Interface{ifc("dummy0", 4, running, "127.0.0.2/8")}, errHas: []string{"dummy0 127.0.0.2: loopback"}},
	}
	for _, tc := range cases {
		orders := [][]Interface{tc.ifs}
		if tc.reorder {
			rev := make([]Interface, len(tc.ifs))
			for i, x := range tc.ifs {
				y := x
				y.Addrs = append([]netip.Prefix(nil), x.Addrs...)
				for a, b := 0, len(y.Addrs)-1; a < b; a, b = a+1, b-1 {
					y.Addrs[a], y.Addrs[b] = y.Addrs[b], y.Addrs[a]
				}
				rev[len(tc.ifs)-1-i] = y
			}
			orders = append(orders, rev)
		}
		for _, ifs := range orders {
			got, err := Choose(ifs, tc.o)
			if tc.want != "" {
				if err != nil || got.String() != tc.want {
					t.Errorf("%s: Choose(%v, %+v) = %v, %v; want %s", tc.name, ifs, tc.o, got, err, tc.want)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s: Choose(%v, %+v) = %v; want an error", tc.name, ifs, tc.o, got)
				continue
			}
			if !errors.Is(err, ErrNoAddress) {
				t.Errorf("%s: Choose(%v) error %v is not ErrNoAddress", tc.name, ifs, err)
			}
			if got.IsValid() {
				t.Errorf("%s: Choose(%v) returned %v with its error", tc.name, ifs, got)
			}
			for _, h := range tc.errHas {
				if !strings.Contains(err.Error(), h) {
					t.Errorf("%s: Choose(%v) error\n%v\nwant it to say %q", tc.name, ifs, err, h)
				}
			}
		}
	}
}

func TestIsWarrenInterface(t *testing.T) {
	for _, name := range []string{"warren0", "warren-wg", link.VethName("a"), link.VethName("web.1")} {
		if !IsWarrenInterface(name) {
			t.Errorf("IsWarrenInterface(%q) = false, want true", name)
		}
	}
	for _, name := range []string{"eth0", "wlan0", "wvlan0", "wv12345", "wv0123456789abg", "enp3s0", "br0", "wg0"} {
		if IsWarrenInterface(name) {
			t.Errorf("IsWarrenInterface(%q) = true, want false", name)
		}
	}
}

// TestAdvertise: a specified listen address is advertised as it is
// (loopback too: the caller chose it); an unspecified one gets a host
// address with the listener's port, or the error, never loopback.
func TestAdvertise(t *testing.T) {
	for _, s := range []string{"127.0.0.1:4242", "192.168.1.5:4242", "[2001:db8::1]:4242"} {
		ap := netip.MustParseAddrPort(s)
		if got, err := Advertise(ap); err != nil || got != ap {
			t.Errorf("Advertise(%s) = %v, %v; want it unchanged", s, got, err)
		}
	}
	// This machine's own interfaces: whatever the answer, it is not
	// loopback, and it keeps the port.
	for _, s := range []string{"0.0.0.0:4242", "[::]:4242"} {
		got, err := Advertise(netip.MustParseAddrPort(s))
		if err != nil {
			if !errors.Is(err, ErrNoAddress) {
				t.Errorf("Advertise(%s): %v, want ErrNoAddress when nothing fits", s, err)
			}
			continue
		}
		if got.Addr().IsLoopback() || got.Port() != 4242 || (s == "0.0.0.0:4242" && !got.Addr().Is4()) {
			t.Errorf("Advertise(%s) = %v, want a non-loopback address on port 4242 (IPv4 for 0.0.0.0)", s, got)
		}
	}
}

func TestInterfaces(t *testing.T) {
	ifs, err := Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	sawLoopback := false
	for _, i := range ifs {
		for _, p := range i.Addrs {
			if !p.IsValid() || p.Addr().Is4In6() {
				t.Errorf("Interfaces(): %s has address %v, want a valid unmapped prefix", i.Name, p)
			}
			if p == netip.MustParsePrefix("127.0.0.1/8") {
				sawLoopback = true
			}
		}
	}
	if !sawLoopback {
		t.Errorf("Interfaces() = %+v, want lo with 127.0.0.1/8 among them", ifs)
	}
}
