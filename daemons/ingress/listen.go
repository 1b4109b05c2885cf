package ingress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// ReadHeaderTimeout bounds the time a client takes to send a request's
// headers (and a load balancer its PROXY header).
const ReadHeaderTimeout = 10 * time.Second

// ServePlain serves HTTP/1.1 and h2c (HTTP/2 without TLS, prior
// knowledge) on l until ctx ends, then shuts down, giving open requests
// up to the proxy's DrainTimeout. On a listener behindLB, connections
// from trustedLB may open with a PROXY header (v1 or v2), whose client
// address the proxy takes for the peer's; other sources' PROXY headers
// are refused. Elsewhere a PROXY header is not parsed: it fails as bad
// HTTP.
func ServePlain(ctx context.Context, l net.Listener, p *Proxy, behindLB bool, trustedLB []netip.Prefix) error {
	srv := p.server()
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	return serve(ctx, srv, wrapLB(l, behindLB, trustedLB), p, func(l net.Listener) error { return srv.Serve(l) })
}

// ServeTLS serves HTTPS (h2 and HTTP/1.1) on l with tlsConfig, as
// ServePlain does plain HTTP. tlsConfig is not changed: a copy gets
// "h2" and "http/1.1" first in NextProtos, keeping the protocols it has
// (such as "acme-tls/1"); a config that GetConfigForClient returns must
// list "h2" itself for HTTP/2. The PROXY header, when allowed, comes
// before the TLS handshake.
func ServeTLS(ctx context.Context, l net.Listener, p *Proxy, tlsConfig *tls.Config, behindLB bool, trustedLB []netip.Prefix) error {
	if tlsConfig == nil {
		return errors.New("ingress: ServeTLS: no TLS config")
	}
	cfg := tlsConfig.Clone()
	cfg.NextProtos = nextProtos(cfg.NextProtos)
	srv := p.server()
	srv.TLSConfig = cfg
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(true)
	return serve(ctx, srv, wrapLB(l, behindLB, trustedLB), p, func(l net.Listener) error { return srv.ServeTLS(l, "", "") })
}

// nextProtos puts h2 and http/1.1 first, then the others in their order.
func nextProtos(have []string) []string {
	out := []string{"h2", "http/1.1"}
	for _, s := range have {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func (p *Proxy) server() *http.Server {
	return &http.Server{
		Handler:           p,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       p.cfg.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
}

// wrapLB makes l read PROXY headers when it is behind a load balancer:
// used from trustedLB sources (optional there, so the balancer's health
// checks need none), refused from others.
func wrapLB(l net.Listener, behindLB bool, trustedLB []netip.Prefix) net.Listener {
	if !behindLB {
		return l
	}
	trusted := slices.Clone(trustedLB)
	return &proxyproto.Listener{
		Listener:          l,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
			ap, err := netip.ParseAddrPort(o.Upstream.String())
			if err == nil && inPrefixes(trusted, ap.Addr()) {
				return proxyproto.USE, nil
			}
			return proxyproto.REJECT, nil
		},
	}
}

// serve runs srv on l until ctx ends, then drains it: open requests get
// up to DrainTimeout, upgraded connections (WebSocket), which
// http.Server.Shutdown does not wait for, up to UpgradeDrain; those
// still open then are closed.
func serve(ctx context.Context, srv *http.Server, l net.Listener, p *Proxy, run func(net.Listener) error) error {
	up := &upgrades{conns: map[net.Conn]struct{}{}}
	srv.BaseContext = func(net.Listener) context.Context {
		return context.WithValue(context.Background(), upgradesKey{}, up)
	}
	done := make(chan error, 1)
	go func() { done <- run(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("ingress: serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), p.cfg.DrainTimeout)
	defer cancel()
	uctx, ucancel := context.WithTimeout(sctx, p.cfg.UpgradeDrain)
	defer ucancel()
	closed := make(chan int, 1)
	go func() { closed <- up.drain(uctx) }()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("ingress: shut down %s: %w", l.Addr(), err)
	}
	if n := <-closed; n > 0 {
		p.log.Info("closed upgraded connections still open at the drain bound", "listener", l.Addr(), "connections", n, "bound", p.cfg.UpgradeDrain)
	}
	<-done
	return err
}

// upgrades are a server's hijacked connections (upgrades: WebSocket),
// from the handler's Hijack until its ServeHTTP returns.
type upgrades struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	empty chan struct{} // closed when the last one ends, while draining
	shut  bool          // draining: any that start now are closed at once
}

type upgradesKey struct{}

// upgradesOf is the tracker of the server that serves ctx's request
// (nil for a proxy not run by serve, as in tests of the handler alone).
func upgradesOf(ctx context.Context) *upgrades {
	u, _ := ctx.Value(upgradesKey{}).(*upgrades)
	return u
}

// add notes c; it says false (and c must be closed) once draining is
// over.
func (u *upgrades) add(c net.Conn) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.shut {
		return false
	}
	u.conns[c] = struct{}{}
	return true
}

func (u *upgrades) remove(c net.Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.conns, c)
	if len(u.conns) == 0 && u.empty != nil {
		close(u.empty)
		u.empty = nil
	}
}

// drain waits until every upgraded connection has ended or ctx ends,
// then closes those left and refuses new ones; it returns how many it
// closed.
func (u *upgrades) drain(ctx context.Context) int {
	u.mu.Lock()
	var empty chan struct{}
	if len(u.conns) > 0 {
		u.empty = make(chan struct{})
		empty = u.empty
	}
	u.mu.Unlock()
	if empty != nil {
		select {
		case <-empty:
		case <-ctx.Done():
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.shut = true
	for c := range u.conns {
		c.Close()
	}
	return len(u.conns)
}
