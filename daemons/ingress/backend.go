package ingress

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// backend is one task address as the proxy sees it across tables: its
// connection pool, the requests in flight and its outlier state. It is
// kept per address (and PROXY protocol version) for as long as some
// table names it, so a table swap neither drops pooled connections nor
// forgets an ejection.
type backend struct {
	addr     string
	ppVer    byte // PROXY protocol version sent first, 0 for none
	tr       *http.Transport
	inflight atomic.Int64
	retired  atomic.Bool // no table names it any more

	mu           sync.Mutex
	fails        int       // consecutive connect or transport failures
	ejectedUntil time.Time // zero when not ejected
	ejections    int       // in a row, for the doubling period
	lastEjected  time.Time
}

// ejected says whether the backend sits out at now.
func (b *backend) ejected(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return now.Before(b.ejectedUntil)
}

// dialError marks an error of connecting to a backend: the request did
// not reach it, so it may go to another.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

type ctxKey int

const (
	clientAddrKey ctxKey = iota // netip.AddrPort of the client, for PROXY headers
	reqStateKey                 // *reqState
)

// newTransport is the pool of one backend. A backend that gets PROXY
// headers gets one connection per request: a connection carries one
// client's address.
func newTransport(cfg *Config, ppVer byte) *http.Transport {
	d := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, &dialError{err}
		}
		if ppVer == 0 {
			return c, nil
		}
		src, _ := ctx.Value(clientAddrKey).(netip.AddrPort)
		dst, _ := ctx.Value(http.LocalAddrContextKey).(net.Addr)
		h := proxyHeader(ppVer, src, dst)
		if _, err := h.WriteTo(c); err != nil {
			c.Close()
			return nil, &dialError{fmt.Errorf("write PROXY header: %w", err)}
		}
		return c, nil
	}
	return &http.Transport{
		DialContext:           dial,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       cfg.IdleTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableKeepAlives:     ppVer != 0,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}

// proxyHeader is the PROXY header telling a backend about the client.
func proxyHeader(ver byte, src netip.AddrPort, dst net.Addr) *proxyproto.Header {
	d, ok := dst.(*net.TCPAddr)
	if !ok || !src.IsValid() {
		return &proxyproto.Header{Version: ver, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	}
	s := net.TCPAddrFromAddrPort(netip.AddrPortFrom(src.Addr().Unmap(), src.Port()))
	dd := &net.TCPAddr{IP: d.IP, Port: d.Port}
	if ip4 := d.IP.To4(); ip4 != nil {
		dd.IP = ip4
	}
	if s.IP.To4() == nil && dd.IP.To4() != nil {
		dd.IP = dd.IP.To16() // both v6, the v4 side mapped
	}
	if s.IP.To4() != nil && dd.IP.To4() == nil {
		s.IP = s.IP.To16()
	}
	return proxyproto.HeaderProxyFromAddrs(ver, s, dd)
}

// pool holds the backends by address.
type pool struct {
	cfg *Config
	mu  sync.Mutex
	m   map[poolKey]*backend
}

type poolKey struct {
	addr  string
	ppVer byte
}

func ppVersion(s string) byte {
	switch s {
	case "v1":
		return 1
	case "v2":
		return 2
	}
	return 0
}

// sync makes the pool hold exactly the backends wanted: it keeps those
// it has, makes the new ones, and retires the others, whose idle
// connections it closes (requests still open on them go on).
func (p *pool) sync(want map[poolKey]bool) map[poolKey]*backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[poolKey]*backend, len(want))
	for k := range want {
		b, ok := p.m[k]
		if !ok {
			b = &backend{addr: k.addr, ppVer: k.ppVer, tr: newTransport(p.cfg, k.ppVer)}
			p.m[k] = b
		}
		out[k] = b
	}
	for key, b := range p.m {
		if !want[key] {
			delete(p.m, key)
			b.retired.Store(true)
			b.tr.CloseIdleConnections()
		}
	}
	return out
}

// pick chooses a backend for a request by the power of two choices: of
// two backends drawn at random among those neither ejected nor tried
// already, the one with fewer requests in flight. When every untried
// backend is ejected it picks among them all the same (a route never
// loses its last backends to ejection).
func pick(bs []*backend, tried []*backend, now time.Time) *backend {
	cand := make([]*backend, 0, len(bs))
	var ejected []*backend
	for _, b := range bs {
		if contains(tried, b) {
			continue
		}
		if b.ejected(now) {
			ejected = append(ejected, b)
			continue
		}
		cand = append(cand, b)
	}
	if len(cand) == 0 {
		cand = ejected
	}
	switch len(cand) {
	case 0:
		return nil
	case 1:
		return cand[0]
	}
	i := rand.IntN(len(cand))
	j := rand.IntN(len(cand) - 1)
	if j >= i {
		j++
	}
	a, b := cand[i], cand[j]
	if b.inflight.Load() < a.inflight.Load() {
		return b
	}
	return a
}

func contains(bs []*backend, b *backend) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

// outlier is the passive outlier detection's settings.
type outlier struct {
	after int           // consecutive failures that eject
	base  time.Duration // first ejection period, doubled each time after
	max   time.Duration
}

// failed records a connect or transport failure of b at now; it ejects
// b after enough of them in a row, unless that would leave the route
// (its backends, routeBackends) with none. It says whether it ejected.
func (o outlier) failed(b *backend, routeBackends []*backend, now time.Time) bool {
	b.mu.Lock()
	b.fails++
	if b.fails < o.after || now.Before(b.ejectedUntil) {
		b.mu.Unlock()
		return false
	}
	b.mu.Unlock()
	// never the last: some other backend of the route must be in.
	others := 0
	for _, x := range routeBackends {
		if x != b && !x.ejected(now) {
			others++
		}
	}
	if others == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.lastEjected.IsZero() && now.Sub(b.lastEjected) > o.max+o.base<<min(b.ejections, 16) {
		b.ejections = 0 // it behaved for a long while: start over
	}
	d := min(o.base<<min(b.ejections, 16), o.max)
	b.ejections++
	b.fails = 0
	b.lastEjected = now
	b.ejectedUntil = now.Add(d)
	return true
}

// succeeded records a response from b.
func (o outlier) succeeded(b *backend) {
	b.mu.Lock()
	b.fails = 0
	b.mu.Unlock()
}

var errNoBackend = errors.New("ingress: no backend serving")
