package cluster

import (
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// meshState describes the WireGuard device of every host that runs one,
// with the routes through it, and a line per peer named by host: its
// endpoint, its last handshake, the bytes each way and the subnets it may
// send from. A failed test prints it
// first: a cross-node request that fails is most often a mesh that does
// not carry it, and the logs do not say which side.
func meshState(hosts []*Host, now time.Time) string {
	c, err := wgctrl.New()
	if err != nil {
		return fmt.Sprintf("  (wgctrl: %v)\n", err)
	}
	defer c.Close()
	devs := map[string]*wgtypes.Device{}
	names := map[wgtypes.Key]string{}
	for _, h := range hosts {
		if h.Mesh == nil {
			continue
		}
		d, err := c.Device(h.MeshIface)
		if err != nil {
			devs[h.Name] = nil
			continue
		}
		devs[h.Name] = d
		names[d.PublicKey] = h.Name
	}
	var b strings.Builder
	for _, h := range hosts {
		d, ok := devs[h.Name]
		switch {
		case !ok:
			continue
		case d == nil:
			fmt.Fprintf(&b, "  %s: no device %s\n", h.Name, h.MeshIface)
			continue
		}
		routes, _ := exec.Command("ip", "-n", h.NS, "-4", "-o", "route", "show", "dev", h.MeshIface).CombinedOutput()
		fmt.Fprintf(&b, "  %s (%s, port %d): %d peers; routes: %s\n", h.Name, h.MeshIface, d.ListenPort, len(d.Peers),
			strings.Join(strings.Fields(strings.ReplaceAll(string(routes), "\n", ";")), " "))
		peers := append([]wgtypes.Peer(nil), d.Peers...)
		sort.Slice(peers, func(i, j int) bool { return names[peers[i].PublicKey] < names[peers[j].PublicKey] })
		for _, p := range peers {
			name := names[p.PublicKey]
			if name == "" {
				name = p.PublicKey.String()[:8] + "…"
			}
			shook := "never"
			if !p.LastHandshakeTime.IsZero() {
				shook = now.Sub(p.LastHandshakeTime).Round(time.Millisecond).String() + " ago"
			}
			var allowed []string
			for _, n := range p.AllowedIPs {
				allowed = append(allowed, n.String())
			}
			fmt.Fprintf(&b, "    → %s at %v: handshake %s, rx %d B, tx %d B, allowed %s\n",
				name, p.Endpoint, shook, p.ReceiveBytes, p.TransmitBytes, strings.Join(allowed, ","))
		}
	}
	return b.String()
}
