package link

import (
	"bytes"
	"fmt"
	"os"
)

// Sysctls are named by their path under /proc/sys, such as
// "net/ipv4/ip_forward" (the slash form keeps interface names with dots
// intact).

// setSysctls writes sysctls in the host network namespace. /proc/sys/net
// shows the namespace of the thread that opens it, so the files are opened
// through Do. A value that is already right is not written.
func (h *Host) setSysctls(kv ...[2]string) error {
	return h.Do(func() error {
		for _, p := range kv {
			path := "/proc/sys/" + p[0]
			cur, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("sysctl %s: %w", p[0], err)
			}
			if string(bytes.TrimSpace(cur)) == p[1] {
				continue
			}
			if err := os.WriteFile(path, []byte(p[1]), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", p[0], p[1], err)
			}
		}
		return nil
	})
}

// Sysctl reads a sysctl in the host network namespace; key is its path
// under /proc/sys, such as "net/ipv4/ip_forward".
func (h *Host) Sysctl(key string) (string, error) {
	var v string
	err := h.Do(func() error {
		b, err := os.ReadFile("/proc/sys/" + key)
		v = string(bytes.TrimSpace(b))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("link: sysctl %s: %w", key, err)
	}
	return v, nil
}

// RouteLocalnet turns route_localnet on for the interface name (an existing
// one, such as the mesh's), so that a connection the node makes to
// localhost, DNATed by a published port to a container behind that
// interface, may leave through it (its source is then translated; see
// netcfg/nft). EnsureBridge does the same for the bridge. It lets packets
// for 127.0.0.0/8 come in through the interface too: table inet warren
// drops those that are not answers.
func (h *Host) RouteLocalnet(name string) error {
	if err := CheckIfname(name); err != nil {
		return fmt.Errorf("link: route_localnet: %w", err)
	}
	if _, err := h.nl.LinkByName(name); err != nil {
		return fmt.Errorf("link: route_localnet on %s: %w", name, err)
	}
	if err := h.setSysctls([2]string{"net/ipv4/conf/" + name + "/route_localnet", "1"}); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	return nil
}
