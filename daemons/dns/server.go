package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ServerConfig says what a Server serves and where.
type ServerConfig struct {
	// Handler is the chain, e.g. Guard(Zone(replica, forwarder)).
	Handler Handler
	// PacketConn is the UDP socket and Listener the TCP one; either may
	// be nil.
	PacketConn net.PacketConn
	Listener   net.Listener
	// QueryTimeout bounds the handling of one query (default 5s).
	QueryTimeout time.Duration
	// MaxTCPConns bounds open TCP connections (default 256); more wait
	// in the kernel's backlog.
	MaxTCPConns int
	Logger      *slog.Logger
}

// Server serves a Handler over UDP and TCP with miekg/dns's server. It
// drops responses (QR set) unread, answers packets that do not unpack
// with FORMERR (miekg/dns does, from their header), recovers a handler's
// panic as SERVFAIL, and fits each response to the client: UDP responses
// are cut to the client's EDNS payload size (512 without EDNS, at most
// UDPSize), additional records first and then, with TC set, the rest.
type Server struct {
	cfg     ServerConfig
	log     *slog.Logger
	started chan struct{}
	ctx     context.Context

	queries, truncated, panics atomic.Uint64
	rcodes                     [6]atomic.Uint64 // NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED
	otherRcodes                atomic.Uint64
}

// NewServer makes a server; Serve runs it.
func NewServer(cfg ServerConfig) *Server {
	if cfg.QueryTimeout == 0 {
		cfg.QueryTimeout = 5 * time.Second
	}
	if cfg.MaxTCPConns == 0 {
		cfg.MaxTCPConns = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Server{cfg: cfg, log: cfg.Logger, started: make(chan struct{}), ctx: context.Background()}
}

// Started is closed once the server reads from all its sockets.
func (s *Server) Started() <-chan struct{} { return s.started }

// Serve answers queries until ctx ends, then lets the queries in flight
// finish (for up to QueryTimeout) and closes the sockets. It returns early
// with an error if a socket fails.
func (s *Server) Serve(ctx context.Context) error {
	if s.cfg.PacketConn == nil && s.cfg.Listener == nil {
		return errors.New("dns: nothing to serve on")
	}
	s.ctx = ctx
	h := adapter{s}
	var servers []*dns.Server
	var wg sync.WaitGroup
	var startedN sync.WaitGroup
	errc := make(chan error, 2)
	start := func(srv *dns.Server, what string) {
		startedN.Add(1)
		var once sync.Once
		srv.NotifyStartedFunc = func() { once.Do(startedN.Done) }
		servers = append(servers, srv)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ActivateAndServe(); err != nil && ctx.Err() == nil {
				once.Do(startedN.Done)
				errc <- fmt.Errorf("dns: serve %s: %w", what, err)
			}
		}()
	}
	if pc := s.cfg.PacketConn; pc != nil {
		// The UDP loop's read timeout only wakes the loop to read again
		// (miekg/dns's default is 2 s); a stop unblocks the read by a
		// deadline in the past. An idle server then sleeps.
		start(&dns.Server{PacketConn: pc, Handler: h, UDPSize: readSize, MsgAcceptFunc: accept, ReadTimeout: time.Hour}, "udp "+pc.LocalAddr().String())
	}
	if l := s.cfg.Listener; l != nil {
		start(&dns.Server{Listener: limitListener(l, s.cfg.MaxTCPConns), Handler: h, MsgAcceptFunc: accept,
			ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second}, "tcp "+l.Addr().String())
	}
	go func() { startedN.Wait(); close(s.started) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.QueryTimeout)
	defer cancel()
	for _, srv := range servers {
		srv.ShutdownContext(sctx)
	}
	wg.Wait()
	return err
}

// accept lets every query through to the Guard, which knows the RFCs'
// answers; responses are dropped unread.
func accept(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// ServerStats count the queries served.
type ServerStats struct {
	Queries                                                      uint64
	NoError, FormErr, ServFail, NXDomain, NotImp, Refused, Other uint64
	// Truncated responses had records cut (TC set) to fit UDP.
	Truncated uint64
	// Panics of the handler, answered SERVFAIL.
	Panics uint64
}

// Stats returns the counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Queries: s.queries.Load(),
		NoError: s.rcodes[0].Load(), FormErr: s.rcodes[1].Load(), ServFail: s.rcodes[2].Load(),
		NXDomain: s.rcodes[3].Load(), NotImp: s.rcodes[4].Load(), Refused: s.rcodes[5].Load(),
		Other: s.otherRcodes.Load(), Truncated: s.truncated.Load(), Panics: s.panics.Load()}
}

// adapter is the miekg/dns handler in front of the chain.
type adapter struct{ s *Server }

func (a adapter) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	s := a.s
	s.queries.Add(1)
	network := "udp"
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		network = "tcp"
	}
	rw := &writer{w: w, req: r, network: network, s: s}
	defer func() {
		if v := recover(); v != nil {
			s.panics.Add(1)
			s.log.Error("panic answering a query; answered SERVFAIL", "panic", v, "stack", string(debug.Stack()))
			if !rw.written {
				writeRcode(rw, r, dns.RcodeServerFailure)
			}
		}
	}()
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.QueryTimeout)
	defer cancel()
	s.cfg.Handler.ServeDNS(ctx, rw, r)
}

// writer fits a response to the client and counts it.
type writer struct {
	w       dns.ResponseWriter
	req     *dns.Msg
	network string
	s       *Server
	written bool
}

func (w *writer) RemoteAddr() net.Addr { return w.w.RemoteAddr() }
func (w *writer) Network() string      { return w.network }

func (w *writer) WriteMsg(m *dns.Msg) error {
	if w.written {
		return errors.New("dns: a response was written already")
	}
	w.written = true
	b, err := Fit(m, maxResponseSize(w.req, w.network))
	if err != nil {
		w.s.log.Debug("response does not pack; answered SERVFAIL", "question", w.req.Question, "err", err)
		m = NewReply(w.req, dns.RcodeServerFailure)
		if b, err = m.Pack(); err != nil {
			return fmt.Errorf("dns: pack SERVFAIL: %w", err)
		}
	}
	if m.Truncated {
		w.s.truncated.Add(1)
	}
	if m.Rcode >= 0 && m.Rcode < len(w.s.rcodes) {
		w.s.rcodes[m.Rcode].Add(1)
	} else {
		w.s.otherRcodes.Add(1)
	}
	_, err = w.w.Write(b)
	return err
}

// Fit packs m, compressed, into at most size bytes: if it is larger, the
// additional records other than OPT go first (they are optional, RFC 2181
// §9, so no TC for them), then records from the end, with TC set
// (miekg/dns's Truncate).
func Fit(m *dns.Msg, size int) ([]byte, error) {
	m.Compress = true
	b, err := m.Pack()
	if err != nil || len(b) <= size {
		return b, err
	}
	if opt := m.IsEdns0(); len(m.Extra) > 0 {
		m.Extra = nil
		if opt != nil {
			m.Extra = []dns.RR{opt}
		}
	}
	m.Truncate(size)
	m.Compress = true
	return m.Pack()
}

// limitListener bounds the connections open at once.
func limitListener(l net.Listener, n int) net.Listener {
	return &limited{Listener: l, sem: make(chan struct{}, n)}
}

type limited struct {
	net.Listener
	sem chan struct{}
}

func (l *limited) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Probe asks the server at ap over network ("udp" or "tcp") for the SOA
// of domain and checks that it answers it: the watchdog's proof that the
// serving goroutines and the chain work. See Socket.ProbeAddr for ap.
func Probe(ctx context.Context, network string, ap netip.AddrPort, domain string) error {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(domain), dns.TypeSOA)
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m, _, err := c.ExchangeContext(ctx, q, ap.String())
	if err != nil {
		return fmt.Errorf("dns: probe %s %s: %w", network, ap, err)
	}
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) == 0 {
		return fmt.Errorf("dns: probe %s %s: answered %s with %d records, want the SOA", network, ap, dns.RcodeToString[m.Rcode], len(m.Answer))
	}
	return nil
}
