package ingress

import (
	"net/http"
	"net/netip"
	"strings"
)

// forwarded is who a request comes from and how, as the backend is told
// in X-Forwarded-For, -Proto and -Host.
type forwarded struct {
	peer       netip.AddrPort // the connection's peer (after a PROXY header)
	client     netip.Addr     // the original client: the peer, or from a trusted hop's X-Forwarded-For
	clientPort netip.AddrPort // client with the peer's port when the client is the peer
	trusted    bool
	xff        string
	proto      string // "http" or "https", as the client asked
	host       string
}

// forwarded reads a request's origin. From a trusted proxy, the peer is
// appended to the X-Forwarded-For it sent, its X-Forwarded-Proto and
// -Host are kept, and the client is the last address of the chain that
// is not a trusted proxy. From anyone else they are replaced by what
// the connection says.
func (p *Proxy) forwarded(r *http.Request) forwarded {
	var f forwarded
	f.peer, _ = netip.ParseAddrPort(r.RemoteAddr)
	f.peer = netip.AddrPortFrom(f.peer.Addr().Unmap(), f.peer.Port())
	f.client, f.clientPort = f.peer.Addr(), f.peer
	f.proto = "http"
	if r.TLS != nil {
		f.proto = "https"
	}
	f.host = r.Host
	f.xff = f.client.String()
	f.trusted = f.peer.IsValid() && inPrefixes(p.cfg.TrustedProxies, f.peer.Addr())
	if !f.trusted {
		return f
	}
	if in := r.Header.Values("X-Forwarded-For"); len(in) > 0 {
		chain := strings.Join(in, ", ")
		f.xff = chain + ", " + f.xff
		hops := strings.Split(chain, ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := parseHop(hops[i])
			if err != nil {
				break // a hop the trusted chain cannot vouch for
			}
			f.client, f.clientPort = a, netip.AddrPortFrom(a, 0)
			if !inPrefixes(p.cfg.TrustedProxies, a) {
				break
			}
		}
	}
	if v := r.Header.Get("X-Forwarded-Proto"); v != "" {
		v, _, _ = strings.Cut(v, ",")
		switch v = strings.ToLower(strings.TrimSpace(v)); v {
		case "http", "https":
			f.proto = v
		}
	}
	if v := r.Header.Get("X-Forwarded-Host"); v != "" {
		f.host = v
	}
	return f
}

func parseHop(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a.Unmap(), err
}
