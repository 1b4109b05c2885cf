package ingress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-edge/warren/daemons/api"
)

// Config is how a Proxy works. The zero value of a field is its
// default.
type Config struct {
	// Logger gets the proxy's own events (ejections, bad routes); nil
	// discards them.
	Logger *slog.Logger

	// ConnectTimeout bounds a connection to a backend (default 5s).
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a backend's response
	// headers once the request is sent (default 30s).
	ResponseHeaderTimeout time.Duration
	// IdleTimeout is how long an idle connection to a backend, or from a
	// client (ServePlain, ServeTLS), is kept (default 90s).
	IdleTimeout time.Duration

	// TrustedProxies are the peers whose X-Forwarded-For, -Proto and
	// -Host are believed: the proxy appends to them. From any other peer
	// they are replaced.
	TrustedProxies []netip.Prefix
	// RealIP sets X-Real-IP to the client's address as well.
	RealIP bool

	// HasCert says whether a certificate is at hand for a host; a route
	// whose HTTPSRedirect is nil redirects plain HTTP to HTTPS when it
	// is. Nil: never.
	HasCert func(host string) bool
	// HTTPSPort is the port of HTTPS redirects (default 443, left out of
	// the URL).
	HTTPSPort int
	// Challenge serves /.well-known/acme-challenge/ on plain HTTP before
	// any routing. Nil: those requests are routed like any other.
	Challenge http.Handler
	// Secret returns the value of a secret a route names (basic-auth
	// users). It is called at most once per secret and table while it
	// succeeds, again after 5s when it failed. Nil: routes with basic
	// auth answer 503.
	Secret func(name string) ([]byte, error)

	// AccessLog says where requests are logged.
	AccessLog AccessLog
	// Registerer gets the proxy's metrics; nil registers none
	// (Proxy.Collector returns them).
	Registerer prometheus.Registerer

	// EjectAfter is the number of consecutive connect or transport
	// failures that eject a backend (default 3); EjectBase the first
	// ejection's period (default 30s), doubled for each ejection in a
	// row, up to EjectMax (default 5m).
	EjectAfter int
	EjectBase  time.Duration
	EjectMax   time.Duration
	// MaxAttempts bounds the backends a retryable request tries
	// (default 3).
	MaxAttempts int
	// RateLimitClients is how many client addresses a route's rate
	// limit remembers (default 65536).
	RateLimitClients int
	// DrainTimeout bounds the wait for open requests when a server shuts
	// down (default 30s); UpgradeDrain the wait for upgraded connections
	// (WebSocket) to end on their own (default 5s, at most DrainTimeout).
	// Those usually stay open for as long as they are let, and a
	// restart waits for the drain: new connections queue meanwhile.
	DrainTimeout time.Duration
	UpgradeDrain time.Duration
}

// DefaultUpgradeDrain is Config.UpgradeDrain's default.
const DefaultUpgradeDrain = 5 * time.Second

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ConnectTimeout, 5*time.Second)
	def(&c.ResponseHeaderTimeout, 30*time.Second)
	def(&c.IdleTimeout, 90*time.Second)
	def(&c.EjectBase, 30*time.Second)
	def(&c.EjectMax, 5*time.Minute)
	def(&c.DrainTimeout, 30*time.Second)
	def(&c.UpgradeDrain, DefaultUpgradeDrain)
	c.UpgradeDrain = min(c.UpgradeDrain, c.DrainTimeout)
	if c.EjectAfter <= 0 {
		c.EjectAfter = 3
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 3
	}
	if c.RateLimitClients <= 0 {
		c.RateLimitClients = 1 << 16
	}
	if c.HTTPSPort <= 0 {
		c.HTTPSPort = 443
	}
}

// Proxy is the HTTP handler of warren-ingress: it routes each request
// by the current table and forwards it to one of its route's backends.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	state   atomic.Pointer[tableState]
	setMu   sync.Mutex // serializes SetTable
	pool    *pool
	outlier outlier
	rp      *httputil.ReverseProxy
	metrics *metrics
	access  *accessLogger
	now     func() time.Time
}

// tableState is a table and what the proxy derived from it, swapped as
// one.
type tableState struct {
	table  *Table
	routes map[*Route]*routeState
}

// routeState is what a request needs of its route: the middleware's
// compiled settings and the backends.
type routeState struct {
	route    *Route
	key      string
	lists    ipLists
	badLists error // an unparsable allow/deny list: the route refuses all
	limiter  *limiter
	users    *users
	backends []*backend
}

// New makes a proxy with an empty table.
func New(cfg Config) *Proxy {
	cfg.setDefaults()
	p := &Proxy{
		cfg:     cfg,
		log:     cfg.Logger,
		pool:    &pool{m: map[poolKey]*backend{}},
		outlier: outlier{after: cfg.EjectAfter, base: cfg.EjectBase, max: cfg.EjectMax},
		metrics: newMetrics(),
		access:  newAccessLogger(cfg.AccessLog),
		now:     time.Now,
	}
	p.pool.cfg = &p.cfg
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		Transport:      (*balancer)(p),
		ModifyResponse: p.modifyResponse,
		ErrorHandler:   p.proxyError,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		// Without a pool every response allocates and clears a 32 KiB
		// copy buffer (a tenth of the proxy's CPU in BenchmarkProxy).
		BufferPool: &copyBuffers,
	}
	p.state.Store(&tableState{table: BuildTable(TableOptions{}, nil, nil), routes: map[*Route]*routeState{}})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(p.metrics); err != nil {
			p.log.Error("ingress: register metrics", "err", err)
		}
	}
	return p
}

// copyBuffers are the response copy buffers of every proxy.
var copyBuffers = bufferPool{sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

// Collector returns the proxy's metrics, to register elsewhere.
func (p *Proxy) Collector() prometheus.Collector { return p.metrics }

// Table is the table in use.
func (p *Proxy) Table() *Table { return p.state.Load().table }

// SetTable swaps the table in. Requests already under way keep the
// route and backend they started with; connections to backends no
// table names any more are closed once idle.
func (p *Proxy) SetTable(t *Table) {
	p.setMu.Lock()
	defer p.setMu.Unlock()
	old := p.state.Load()
	oldLimiters := map[string]*routeState{}
	oldCounts := map[string]int{}
	for _, rs := range old.routes {
		oldLimiters[rs.key] = rs
		oldCounts[rs.key] = len(rs.backends)
	}

	want := map[poolKey]bool{}
	for _, r := range t.routes {
		for _, b := range r.Backends {
			want[poolKey{b.Addr, ppVersion(r.Spec.ProxyProtocol)}] = true
		}
	}
	bs := p.pool.sync(want)

	ts := &tableState{table: t, routes: make(map[*Route]*routeState, len(t.routes))}
	usersBySecret := map[string]*users{} // one load per secret and table
	counts := map[string]int{}
	for _, r := range t.routes {
		rs := &routeState{route: r, key: r.Key()}
		var err error
		if rs.lists.allow, err = parsePrefixes(r.Spec.Allow); err == nil {
			rs.lists.deny, err = parsePrefixes(r.Spec.Deny)
		}
		if err != nil {
			rs.badLists = fmt.Errorf("ingress: route %s of service %s: allow/deny: %w", rs.key, r.Service, err)
			p.log.Error("ingress: route refuses every request", "route", rs.key, "err", rs.badLists)
		}
		if rl := r.Spec.RateLimit; rl != nil && rl.Rate > 0 {
			if prev := oldLimiters[rs.key]; prev != nil && prev.limiter != nil &&
				prev.route.Spec.RateLimit != nil && *prev.route.Spec.RateLimit == *rl {
				rs.limiter = prev.limiter // the clients' buckets live on
			} else {
				rs.limiter = newLimiter(rl.Rate, rl.Burst, p.cfg.RateLimitClients)
			}
		}
		if ba := r.Spec.BasicAuth; ba != nil {
			u := usersBySecret[ba.Secret]
			if u == nil {
				name := ba.Secret
				u = &users{ok: map[[32]byte]bool{}, load: func() ([]byte, error) {
					if p.cfg.Secret == nil {
						return nil, fmt.Errorf("ingress: secret %q: no secret source", name)
					}
					b, err := p.cfg.Secret(name)
					if err != nil {
						return nil, fmt.Errorf("ingress: secret %q: %w", name, err)
					}
					return b, nil
				}}
				usersBySecret[name] = u
			}
			rs.users = u
		}
		ver := ppVersion(r.Spec.ProxyProtocol)
		for _, b := range r.Backends {
			rs.backends = append(rs.backends, bs[poolKey{b.Addr, ver}])
		}
		counts[rs.key] = len(rs.backends)
		ts.routes[r] = rs
	}
	p.state.Store(ts)
	p.metrics.setBackends(oldCounts, counts)
}

// reqState is one request's route and what became of it, shared by the
// handler, the balancer and the access log.
type reqState struct {
	rs      *routeState
	fwd     forwarded
	backend string
	err     error
}

// ServeHTTP routes and forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := p.now()
	rw := &respWriter{ResponseWriter: w, up: upgradesOf(r.Context())}
	fwd := p.forwarded(r)
	e := entry{start: start, client: fwd.client.String(), host: r.Host, method: r.Method, path: r.URL.Path}
	rq := &reqState{fwd: fwd}
	defer func() {
		if rw.hijacked != nil && rw.up != nil {
			rw.up.remove(rw.hijacked)
		}
		d := p.now().Sub(start)
		e.status, e.bytes, e.backend, e.err = rw.status, rw.bytes, rq.backend, rq.err
		if e.status == 0 {
			e.status = http.StatusOK
		}
		if rq.rs != nil {
			e.route = rq.rs.key
		}
		p.metrics.requests.WithLabelValues(e.route, codeClass(e.status)).Inc()
		p.metrics.duration.WithLabelValues(e.route).Observe(d.Seconds())
		p.access.write(&e, d)
	}()

	challenge := strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/")
	if challenge && r.TLS == nil && p.cfg.Challenge != nil {
		p.cfg.Challenge.ServeHTTP(rw, r)
		return
	}
	if r.Method == http.MethodConnect {
		rw.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE")
		text(rw, http.StatusMethodNotAllowed, "405 CONNECT is not proxied")
		return
	}
	ts := p.state.Load()
	clean := CleanPath(r.URL.Path)
	route, ok := ts.table.Match(r.Host, clean)
	if !ok {
		text(rw, http.StatusNotFound, "404 no route for this host and path")
		return
	}
	rs := ts.routes[route]
	rq.rs = rs
	spec := &route.Spec

	if fwd.proto == "http" && !challenge && p.redirects(spec, r.Host) {
		p.redirect(rw, r)
		return
	}
	if rs.badLists != nil {
		rq.err = rs.badLists
		text(rw, http.StatusForbidden, "403 forbidden")
		return
	}
	if !rs.lists.permits(fwd.client) {
		text(rw, http.StatusForbidden, "403 forbidden")
		return
	}
	if rs.limiter != nil {
		if ok, wait := rs.limiter.allow(fwd.client, start); !ok {
			secs := int((wait + time.Second - 1) / time.Second)
			rw.Header().Set("Retry-After", strconv.Itoa(max(1, secs)))
			text(rw, http.StatusTooManyRequests, "429 too many requests")
			return
		}
	}
	if rs.users != nil {
		ok, err := rs.users.check(r, start)
		if err != nil {
			rq.err = err
			rw.Header().Set("Retry-After", "5")
			text(rw, http.StatusServiceUnavailable, "503 authentication unavailable")
			return
		}
		if !ok {
			challengeAuth(rw, spec.BasicAuth.Realm)
			return
		}
	}
	if len(rs.backends) == 0 {
		rw.Header().Set("Retry-After", "5")
		text(rw, http.StatusServiceUnavailable, "503 no backend serving")
		return
	}

	ctx := context.WithValue(r.Context(), reqStateKey, rq)
	ctx = context.WithValue(ctx, clientAddrKey, fwd.clientPort)
	r2 := r.WithContext(ctx)
	if clean != r.URL.Path {
		u := *r.URL
		u.Path, u.RawPath = clean, ""
		r2.URL = &u
	}
	p.rp.ServeHTTP(rw, r2)
}

// redirects says whether a plain HTTP request to the route goes to
// HTTPS.
func (p *Proxy) redirects(spec *api.IngressRoute, host string) bool {
	if spec.HTTPSRedirect != nil {
		return *spec.HTTPSRedirect
	}
	return p.cfg.HasCert != nil && p.cfg.HasCert(NormalizeHost(host))
}

func (p *Proxy) redirect(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	host = strings.TrimSuffix(host, ".")
	if p.cfg.HTTPSPort != 443 {
		host += ":" + strconv.Itoa(p.cfg.HTTPSPort)
	}
	http.Redirect(w, r, "https://"+host+r.URL.RequestURI(), http.StatusPermanentRedirect)
}

// rewrite makes the request to the backend: the route's path rewrite,
// the X-Forwarded headers and the request header rules. The backend's
// address is set by the balancer.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	rq := pr.In.Context().Value(reqStateKey).(*reqState)
	out := pr.Out
	out.URL.Scheme = "http"
	out.URL.Host = rq.rs.key // replaced by the balancer
	rewritePath(out.URL, &rq.rs.route.Spec)
	h := out.Header
	h.Set("X-Forwarded-For", rq.fwd.xff)
	h.Set("X-Forwarded-Proto", rq.fwd.proto)
	h.Set("X-Forwarded-Host", rq.fwd.host)
	if p.cfg.RealIP {
		h.Set("X-Real-IP", rq.fwd.client.String())
	} else if !rq.fwd.trusted {
		h.Del("X-Real-IP") // a client's own is a lie the backend might believe
	}
	applyHeaders(h, rq.rs.route.Spec.RequestHeaders)
}

func (p *Proxy) modifyResponse(resp *http.Response) error {
	rq := resp.Request.Context().Value(reqStateKey).(*reqState)
	applyHeaders(resp.Header, rq.rs.route.Spec.ResponseHeaders)
	return nil
}

// proxyError answers a request the backends did not: 503 when none
// was there, 504 on a timeout, 502 otherwise; nothing when the client
// went away.
func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	rq := r.Context().Value(reqStateKey).(*reqState)
	rq.err = err
	if r.Context().Err() != nil {
		if rw, ok := w.(*respWriter); ok && rw.status == 0 {
			rw.status = 499 // client closed the request, as nginx logs it
		}
		return
	}
	var ne net.Error
	switch {
	case errors.Is(err, errNoBackend):
		w.Header().Set("Retry-After", "5")
		text(w, http.StatusServiceUnavailable, "503 no backend serving")
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		text(w, http.StatusGatewayTimeout, "504 backend timed out")
	default:
		text(w, http.StatusBadGateway, "502 backend unreachable")
	}
}

func text(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

func challengeAuth(w http.ResponseWriter, realm string) {
	if realm == "" {
		realm = "warren"
	}
	w.Header().Set("WWW-Authenticate", "Basic realm="+strconv.Quote(realm)+`, charset="UTF-8"`)
	text(w, http.StatusUnauthorized, "401 unauthorized")
}

// balancer is the proxy's http.RoundTripper: it picks a backend of the
// request's route, and tries another when a retryable request could not
// connect.
type balancer Proxy

func (bl *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	p := (*Proxy)(bl)
	rq := req.Context().Value(reqStateKey).(*reqState)
	rs := rq.rs
	retryable := idempotent(req.Method) && (req.Body == nil || req.Body == http.NoBody)
	attempts := 1
	if retryable {
		attempts = min(p.cfg.MaxAttempts, len(rs.backends))
	}
	var tried []*backend
	var lastErr error = errNoBackend
	for len(tried) < max(attempts, 1) {
		now := p.now()
		b := pick(rs.backends, tried, now)
		if b == nil {
			break
		}
		tried = append(tried, b)
		out := req.WithContext(req.Context())
		u := *req.URL
		u.Host = b.addr
		out.URL = &u
		rq.backend = b.addr
		b.inflight.Add(1)
		resp, err := b.tr.RoundTrip(out)
		if err == nil {
			p.outlier.succeeded(b)
			resp.Body = releaseOnClose(resp.Body, b)
			return resp, nil
		}
		b.release()
		lastErr = err
		if req.Context().Err() != nil {
			return nil, err // the client went away: not the backend's fault
		}
		p.metrics.upstream.WithLabelValues(rs.key).Inc()
		if p.outlier.failed(b, rs.backends, now) {
			p.log.Warn("ingress: backend ejected", "route", rs.key, "backend", b.addr, "err", err)
		}
		var de *dialError
		if !errors.As(err, &de) || !retryable {
			break
		}
	}
	return nil, lastErr
}

func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

func (b *backend) release() {
	b.inflight.Add(-1)
	if b.retired.Load() {
		b.tr.CloseIdleConnections()
	}
}

// releaseOnClose ends a request's count on b when its response body is
// closed, keeping the body's io.ReadWriteCloser side for upgrades.
func releaseOnClose(body io.ReadCloser, b *backend) io.ReadCloser {
	var once sync.Once
	done := func() { once.Do(b.release) }
	if rwc, ok := body.(io.ReadWriteCloser); ok {
		return &releaseRWC{ReadWriteCloser: rwc, done: done}
	}
	return &releaseBody{ReadCloser: body, done: done}
}

type releaseBody struct {
	io.ReadCloser
	done func()
}

func (r *releaseBody) Close() error { err := r.ReadCloser.Close(); r.done(); return err }

type releaseRWC struct {
	io.ReadWriteCloser
	done func()
}

func (r *releaseRWC) Close() error { err := r.ReadWriteCloser.Close(); r.done(); return err }

// respWriter notes a response's status and size, and a hijacked
// connection in its server's upgrades.
type respWriter struct {
	http.ResponseWriter
	status   int
	bytes    int64
	up       *upgrades
	hijacked net.Conn
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 || w.status < 200 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *respWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Hijack hands the connection over (upgrades); the response is a 101.
func (w *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return c, brw, err
	}
	if w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	if w.up != nil {
		if !w.up.add(c) {
			c.Close()
			return nil, nil, errors.New("ingress: the server is shutting down")
		}
		w.hijacked = c
	}
	return c, brw, nil
}
