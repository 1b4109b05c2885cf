package opts

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/warren-edge/warren/daemons/api"
)

// ParsePort reads a --publish value. The short forms follow docker:
//
//	80                        target 80, published on the same port
//	8080:80                   published 8080, target 80
//	127.0.0.1:8080:80/udp     bound to one host address, udp
//	[::1]:8080:80             an IPv6 host address, in brackets
//
// and so does the long form: published=8080,target=80,protocol=udp,mode=host
// (hostaddr=127.0.0.1, or host_ip, binds a host-mode port to one address).
//
// The mode is left out unless given (mode=ingress or mode=host), so that the
// spec's default applies (api.PortConfig.Normalized): ingress, every node
// answers the port; host for a port bound to a host address, as only the
// nodes that run a task can publish it on one address.
func ParsePort(s string) (api.PortConfig, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return api.PortConfig{}, fmt.Errorf("empty port: use [HOSTADDR:]PUBLISHED:TARGET[/PROTO], e.g. 8080:80")
	}
	if strings.Contains(s, "=") {
		return parseLongPort(s)
	}
	var p api.PortConfig
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		proto := strings.ToLower(rest[i+1:])
		if proto != api.ProtoTCP && proto != api.ProtoUDP {
			return p, fmt.Errorf("port %q: protocol %q is not tcp or udp", s, rest[i+1:])
		}
		p.Protocol, rest = proto, rest[:i]
	}
	var host string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]:")
		if end < 0 {
			return p, fmt.Errorf("port %q: an IPv6 host address is written [ADDR]:PUBLISHED:TARGET, e.g. [::1]:8080:80", s)
		}
		host, rest = rest[1:end], rest[end+2:]
		if !strings.Contains(rest, ":") {
			return p, fmt.Errorf("port %q: after the host address give PUBLISHED:TARGET, e.g. [::1]:8080:80", s)
		}
	}
	parts := strings.Split(rest, ":")
	var published, target string
	switch len(parts) {
	case 1:
		target = parts[0]
	case 2:
		published, target = parts[0], parts[1]
	case 3:
		if host != "" {
			return p, fmt.Errorf("port %q: too many ':'; use [HOSTADDR:]PUBLISHED:TARGET[/PROTO]", s)
		}
		host, published, target = parts[0], parts[1], parts[2]
	default:
		if host == "" && strings.Count(rest, ":") > 2 {
			return p, fmt.Errorf("port %q: put an IPv6 host address in brackets, e.g. [::1]:8080:80", s)
		}
		return p, fmt.Errorf("port %q: too many ':'; use [HOSTADDR:]PUBLISHED:TARGET[/PROTO]", s)
	}
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" {
			return p, fmt.Errorf("port %q: host address %q is not an IP address (names are not allowed): e.g. 127.0.0.1:8080:80", s, host)
		}
		p.HostAddr = a.String()
	}
	var err error
	if p.Target, err = portNumber(s, "target", target, false); err != nil {
		return p, err
	}
	if p.Published, err = portNumber(s, "published", published, true); err != nil {
		return p, err
	}
	return p, nil
}

func portNumber(spec, what, v string, mayBeEmpty bool) (uint16, error) {
	if v == "" {
		if mayBeEmpty {
			return 0, nil
		}
		return 0, fmt.Errorf("port %q: the %s port is missing: use [HOSTADDR:]PUBLISHED:TARGET[/PROTO], e.g. 8080:80", spec, what)
	}
	if strings.Contains(v, "-") {
		return 0, fmt.Errorf("port %q: port ranges are not supported: publish each port with its own -p", spec)
	}
	n, err := strconv.ParseUint(v, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %q: %s port %q is not a number from 1 to 65535", spec, what, v)
	}
	return uint16(n), nil
}

func parseLongPort(s string) (api.PortConfig, error) {
	var p api.PortConfig
	var published, target string
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return p, fmt.Errorf("port %q: %q is not KEY=VALUE; the keys are published, target, protocol, mode and hostaddr", s, kv)
		}
		switch strings.ToLower(k) {
		case "published":
			published = v
		case "target":
			target = v
		case "protocol":
			v = strings.ToLower(v)
			if v != api.ProtoTCP && v != api.ProtoUDP {
				return p, fmt.Errorf("port %q: protocol %q is not tcp or udp", s, v)
			}
			p.Protocol = v
		case "hostaddr", "host_ip", "host-ip":
			a, err := netip.ParseAddr(strings.Trim(v, "[]"))
			if err != nil || a.Zone() != "" {
				return p, fmt.Errorf("port %q: host address %q is not an IP address", s, v)
			}
			p.HostAddr = a.String()
		case "mode":
			v = strings.ToLower(v)
			if v != api.PortModeIngress && v != api.PortModeHost {
				return p, fmt.Errorf("port %q: mode %q is not ingress (every node answers the port) or host (only the nodes that run a task)", s, v)
			}
			p.Mode = v
		default:
			return p, fmt.Errorf("port %q: unknown key %q; the keys are published, target, protocol, mode and hostaddr", s, k)
		}
	}
	var err error
	if p.Target, err = portNumber(s, "target", target, false); err != nil {
		return p, err
	}
	if p.Published, err = portNumber(s, "published", published, true); err != nil {
		return p, err
	}
	if p.Mode == api.PortModeIngress && p.HostAddr != "" {
		if a, _ := netip.ParseAddr(p.HostAddr); !a.IsUnspecified() {
			return p, fmt.Errorf("port %q: an ingress port answers on every address of every node and cannot be bound to %s: use mode=host", s, p.HostAddr)
		}
	}
	return p, nil
}

// RemovePorts drops the ports that --publish-rm values name. As in docker
// a bare number names a target port ("--publish-rm 80"); a full form
// ("8080:80/udp") must match published port, target and protocol.
func RemovePorts(ports []api.PortConfig, rm []string) ([]api.PortConfig, error) {
	type match struct {
		p        api.PortConfig
		withPub  bool
		withHost bool
	}
	var ms []match
	for _, s := range rm {
		p, err := ParsePort(s)
		if err != nil {
			return nil, err
		}
		ms = append(ms, match{p: p, withPub: p.Published != 0, withHost: p.HostAddr != ""})
	}
	var out []api.PortConfig
	for _, have := range ports {
		h := have.Normalized()
		drop := false
		for _, m := range ms {
			if m.p.Target != h.Target || m.p.Protocol != "" && m.p.Protocol != h.Protocol {
				continue
			}
			if m.withPub && m.p.Published != h.Published {
				continue
			}
			if m.withHost && m.p.HostAddr != h.HostAddr {
				continue
			}
			drop = true
		}
		if !drop {
			out = append(out, have)
		}
	}
	return out, nil
}
