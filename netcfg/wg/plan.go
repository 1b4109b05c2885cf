package wg

import (
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/warren-edge/warren/netcfg/link"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Keepalive is every peer's persistent keepalive: peers behind NAT stay
// reachable (NAT mappings last 30 s or more), and an idle but live peer is
// heard from at least this often, which bounds how soon a dead one is
// noticed (HeardFresh).
const Keepalive = 15 * time.Second

// Peer is another node as the mesh needs it, from its node record.
type Peer struct {
	NodeID    string
	PublicKey wgtypes.Key
	// Endpoint is the node's underlay address and mesh port.
	Endpoint netip.AddrPort
	// Subnet is the node's container subnet: the peer's allowed IPs and
	// the route through the mesh.
	Subnet netip.Prefix
}

// Plan returns the configuration that makes the device's peers equal to
// want, touching only what differs, and whether there is anything to do.
//
// applied holds, per public key, the endpoint last taken from the peer's
// record. A peer's endpoint is set when the peer is new to the device or its
// record's endpoint is not the one last applied; otherwise the device's
// endpoint (possibly roamed) is kept. Plan records in applied what it sets,
// and forgets removed peers; a peer already on the device that applied does
// not know (after an agent restart) counts as applied with its record's
// endpoint.
func Plan(cur []wgtypes.Peer, want []Peer, applied map[wgtypes.Key]netip.AddrPort) (wgtypes.Config, bool) {
	have := make(map[wgtypes.Key]*wgtypes.Peer, len(cur))
	for i := range cur {
		have[cur[i].PublicKey] = &cur[i]
	}
	keep := time.Duration(Keepalive)
	var cfg wgtypes.Config
	wanted := make(map[wgtypes.Key]bool, len(want))
	for _, p := range want {
		wanted[p.PublicKey] = true
		pc := wgtypes.PeerConfig{PublicKey: p.PublicKey}
		change := false
		h := have[p.PublicKey]
		if h == nil {
			change = true
			pc.Endpoint = udpAddr(p.Endpoint)
			pc.PersistentKeepaliveInterval = &keep
			pc.ReplaceAllowedIPs = true
			pc.AllowedIPs = []net.IPNet{*link.IPNet(p.Subnet.Masked())}
			applied[p.PublicKey] = p.Endpoint
			cfg.Peers = append(cfg.Peers, pc)
			continue
		}
		last, known := applied[p.PublicKey]
		if !known {
			last = p.Endpoint
			applied[p.PublicKey] = last
			if h.Endpoint == nil {
				last = netip.AddrPort{} // never had one: set it
			}
		}
		if last != p.Endpoint && p.Endpoint.IsValid() {
			pc.Endpoint = udpAddr(p.Endpoint)
			applied[p.PublicKey] = p.Endpoint
			change = true
		}
		if h.PersistentKeepaliveInterval != keep {
			pc.PersistentKeepaliveInterval = &keep
			change = true
		}
		if !sameAllowed(h.AllowedIPs, p.Subnet) {
			pc.ReplaceAllowedIPs = true
			pc.AllowedIPs = []net.IPNet{*link.IPNet(p.Subnet.Masked())}
			change = true
		}
		if change {
			pc.UpdateOnly = true
			cfg.Peers = append(cfg.Peers, pc)
		}
	}
	for _, h := range cur {
		if !wanted[h.PublicKey] {
			cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: h.PublicKey, Remove: true})
			delete(applied, h.PublicKey)
		}
	}
	slices.SortFunc(cfg.Peers, func(a, b wgtypes.PeerConfig) int { return slices.Compare(a.PublicKey[:], b.PublicKey[:]) })
	return cfg, len(cfg.Peers) > 0
}

func sameAllowed(have []net.IPNet, want netip.Prefix) bool {
	if len(have) != 1 {
		return false
	}
	p, ok := link.PrefixOf(have[0])
	return ok && p == want
}

func udpAddr(ap netip.AddrPort) *net.UDPAddr {
	if !ap.IsValid() {
		return nil
	}
	return net.UDPAddrFromAddrPort(ap)
}

// HandshakeFresh is how long after its last handshake a peer still counts as
// reachable: WireGuard's own session lifetime (REJECT_AFTER_TIME, 180 s).
// With the keepalive, a live peer shakes hands anew every two minutes.
const HandshakeFresh = 180 * time.Second

// Reachable says whether a peer that last shook hands at last is reachable
// at now.
func Reachable(last, now time.Time) bool {
	return !last.IsZero() && now.Sub(last) < HandshakeFresh
}
