package cluster

import (
	"fmt"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
)

// meshHandshakes returns, for each peer of the mesh interface iface, when
// it last shook hands (zero: never).
func meshHandshakes(iface string) ([]time.Time, error) {
	c, err := wgctrl.New()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	d, err := c.Device(iface)
	if err != nil {
		return nil, fmt.Errorf("mesh interface %s: %w", iface, err)
	}
	var out []time.Time
	for _, p := range d.Peers {
		out = append(out, p.LastHandshakeTime)
	}
	return out, nil
}
