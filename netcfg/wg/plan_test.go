package wg

import (
	"net"
	"net/netip"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

func key(t *testing.T, b byte) wgtypes.Key {
	t.Helper()
	var k wgtypes.Key
	k[0] = b
	return k
}

func devPeer(k wgtypes.Key, ep string, subnet string) wgtypes.Peer {
	p := wgtypes.Peer{PublicKey: k, PersistentKeepaliveInterval: Keepalive}
	if ep != "" {
		p.Endpoint = net.UDPAddrFromAddrPort(netip.MustParseAddrPort(ep))
	}
	pr := netip.MustParsePrefix(subnet)
	p.AllowedIPs = []net.IPNet{{IP: pr.Addr().AsSlice(), Mask: net.CIDRMask(pr.Bits(), 32)}}
	return p
}

func TestPlan(t *testing.T) {
	a, b := key(t, 1), key(t, 2)
	peerA := Peer{NodeID: "a", PublicKey: a, Endpoint: netip.MustParseAddrPort("192.0.2.1:51820"), Subnet: netip.MustParsePrefix("10.240.1.0/24")}
	moved := peerA
	moved.Endpoint = netip.MustParseAddrPort("192.0.2.9:51820")
	cases := []struct {
		name    string
		cur     []wgtypes.Peer
		want    []Peer
		applied map[wgtypes.Key]netip.AddrPort
		// what the config must do to peer a, or "" for untouched
		expect     string
		removeB    bool
		endpointTo string
	}{
		{name: "new peer", want: []Peer{peerA}, applied: map[wgtypes.Key]netip.AddrPort{}, expect: "add", endpointTo: "192.0.2.1:51820"},
		{name: "unchanged", cur: []wgtypes.Peer{devPeer(a, "192.0.2.1:51820", "10.240.1.0/24")}, want: []Peer{peerA},
			applied: map[wgtypes.Key]netip.AddrPort{a: peerA.Endpoint}},
		{name: "after an agent restart, a peer on the device is left alone", cur: []wgtypes.Peer{devPeer(a, "192.0.2.1:51820", "10.240.1.0/24")}, want: []Peer{peerA},
			applied: map[wgtypes.Key]netip.AddrPort{}},
		{name: "a roamed endpoint is kept", cur: []wgtypes.Peer{devPeer(a, "198.51.100.7:40000", "10.240.1.0/24")}, want: []Peer{peerA},
			applied: map[wgtypes.Key]netip.AddrPort{a: peerA.Endpoint}},
		{name: "a roamed endpoint is kept across a restart", cur: []wgtypes.Peer{devPeer(a, "198.51.100.7:40000", "10.240.1.0/24")}, want: []Peer{peerA},
			applied: map[wgtypes.Key]netip.AddrPort{}},
		{name: "the record's endpoint changed", cur: []wgtypes.Peer{devPeer(a, "192.0.2.1:51820", "10.240.1.0/24")}, want: []Peer{moved},
			applied: map[wgtypes.Key]netip.AddrPort{a: peerA.Endpoint}, expect: "update", endpointTo: "192.0.2.9:51820"},
		{name: "the subnet changed", cur: []wgtypes.Peer{devPeer(a, "192.0.2.1:51820", "10.240.7.0/24")}, want: []Peer{peerA},
			applied: map[wgtypes.Key]netip.AddrPort{a: peerA.Endpoint}, expect: "update"},
		{name: "a peer with no endpoint gets one", cur: []wgtypes.Peer{devPeer(a, "", "10.240.1.0/24")}, want: []Peer{peerA},
			applied: map[wgtypes.Key]netip.AddrPort{}, expect: "update", endpointTo: "192.0.2.1:51820"},
		{name: "a node that left is removed", cur: []wgtypes.Peer{devPeer(a, "192.0.2.1:51820", "10.240.1.0/24"), devPeer(b, "192.0.2.2:51820", "10.240.2.0/24")},
			want: []Peer{peerA}, applied: map[wgtypes.Key]netip.AddrPort{a: peerA.Endpoint, b: netip.MustParseAddrPort("192.0.2.2:51820")}, removeB: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, change := Plan(c.cur, c.want, c.applied)
			var pa *wgtypes.PeerConfig
			removed := false
			for i := range cfg.Peers {
				switch p := &cfg.Peers[i]; {
				case p.PublicKey == a:
					pa = p
				case p.PublicKey == b && p.Remove:
					removed = true
				}
			}
			if change != (len(cfg.Peers) > 0) {
				t.Errorf("Plan says change=%v with %d peer configs", change, len(cfg.Peers))
			}
			if removed != c.removeB {
				t.Errorf("Plan removed b = %v, want %v", removed, c.removeB)
			}
			if c.removeB {
				if _, ok := c.applied[b]; ok {
					t.Errorf("Plan kept the removed peer in applied")
				}
			}
			switch {
			case c.expect == "" && pa != nil:
				t.Fatalf("Plan touched peer a: %+v", *pa)
			case c.expect != "" && pa == nil:
				t.Fatalf("Plan left peer a alone, want %s", c.expect)
			case pa == nil:
				return
			}
			if got := pa.UpdateOnly; got != (c.expect == "update") {
				t.Errorf("UpdateOnly = %v for %s", got, c.expect)
			}
			got := ""
			if pa.Endpoint != nil {
				got = pa.Endpoint.String()
			}
			if got != c.endpointTo {
				t.Errorf("endpoint set to %q, want %q", got, c.endpointTo)
			}
			if c.endpointTo != "" && c.applied[a].String() != c.endpointTo {
				t.Errorf("applied[a] = %s, want %s", c.applied[a], c.endpointTo)
			}
		})
	}
}
