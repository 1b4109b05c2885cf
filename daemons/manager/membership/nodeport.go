package membership

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
	"github.com/warren-edge/warren/netcfg/hostaddr"
)

// The node port: one TCP port per manager for everything between nodes,
// mutual TLS 1.3, the protocol chosen by ALPN:
//
//	"warren-raft" ─▶ Raft's transport (manager certificates only)
//	"http/1.1"    ─▶ the API: managers, workers (their scope), and anonymous
//	                 callers for POST /v1/join only
//
// Raft addresses are node IDs; the address book maps them to the node
// port a node last announced (its node record, its Raft hello, the join
// answer), so a manager whose address changes keeps its place.
const (
	alpnRaft = "warren-raft"
	alpnHTTP = "http/1.1"
)

// addrBook maps node IDs to node-port addresses.
type addrBook struct {
	mu sync.Mutex
	m  map[string]string
}

func newAddrBook() *addrBook { return &addrBook{m: map[string]string{}} }

func (b *addrBook) set(id, addr string) {
	if id == "" || addr == "" {
		return
	}
	b.mu.Lock()
	b.m[id] = addr
	b.mu.Unlock()
}

func (b *addrBook) get(id string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.m[id]
	return a, ok
}

// learn fills the book from the node records of the state.
func (b *addrBook) learn(v *store.View) {
	for _, n := range v.Nodes() {
		if n.Description.Addr != "" {
			b.set(n.ID, n.Description.Addr)
		}
	}
}

// hello is the first line a manager sends on a Raft connection: who it is
// (which its certificate must confirm) and where it listens.
type hello struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// streamLayer is raft.StreamLayer over the node port.
type streamLayer struct {
	m      *Membership
	addr   net.Addr
	accept chan net.Conn
	done   chan struct{}
	once   sync.Once
}

func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.accept:
		return c, nil
	case <-s.done:
		return nil, errors.New("manager: raft stream layer closed")
	}
}

func (s *streamLayer) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

func (s *streamLayer) Addr() net.Addr { return s.addr }

// Dial connects to the manager whose node ID is address.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	id := string(address)
	to, ok := s.m.book.get(id)
	if !ok {
		return nil, fmt.Errorf("manager: no known address for manager %s", id)
	}
	creds := s.m.credentials()
	if creds == nil {
		return nil, errors.New("manager: no node certificate yet")
	}
	cfg := pki.ClientConfig(creds, wantNode(id, pki.RoleManager))
	cfg.NextProtos = []string{alpnRaft}
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", to, cfg)
	if err != nil {
		return nil, fmt.Errorf("manager: raft dial %s at %s: %w", id, to, err)
	}
	b, _ := json.Marshal(hello{ID: s.m.nodeID, Addr: s.m.cfg.AdvertiseAddr})
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(append(b, '\n')); err != nil {
		c.Close()
		return nil, err
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// wantNode checks that the peer is the node we meant to reach.
func wantNode(id string, role pki.Role) func(pki.Identity) error {
	return func(i pki.Identity) error {
		if i.Role != role {
			return fmt.Errorf("peer %s is a %s, not a %s", i.NodeID, i.Role, role)
		}
		if id != "" && i.NodeID != id {
			return fmt.Errorf("reached node %s instead of %s", i.NodeID, id)
		}
		return nil
	}
}

// wantAnyNode checks that the peer is the node we meant to reach, a
// manager or a worker (never an operator's certificate).
func wantAnyNode(id string) func(pki.Identity) error {
	return func(i pki.Identity) error {
		if i.Role != pki.RoleManager && i.Role != pki.RoleWorker {
			return fmt.Errorf("peer %s is a %s, not a node", i.NodeID, i.Role)
		}
		if i.NodeID != id {
			return fmt.Errorf("reached node %s instead of %s", i.NodeID, id)
		}
		return nil
	}
}

// nodePort serves the node port on a listener.
type nodePort struct {
	m          *Membership
	l          net.Listener
	conns      *connLimiter
	handshakes *rateLimiter // per address
	raft       *streamLayer
	httpL      *chanListener
	server     *http.Server
}

// chanListener hands connections accepted elsewhere to an http.Server.
type chanListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// The node port's bounds: a slow or silent client cannot hold a
// connection (and its goroutine and buffers) for long, and no client can
// open connections without limit. (Variables: tests shorten them.)
var (
	handshakeTimeout = 10 * time.Second
	maxConnsPerHost  = 256
	// Each address may start handshakeBurst TLS handshakes at once, then
	// one per handshakeEvery (50/s). A handshake costs the manager real
	// CPU, and the manager runs before the node's containers
	// (warren-manager.service: Nice=-10): a host that only opens and
	// drops connections must not be able to buy that priority. 64 at once
	// lets a site of devices behind one NAT come back together.
	handshakeBurst = 64
	handshakeEvery = 20 * time.Millisecond
)

const (
	headerTimeout = 10 * time.Second
	// bodyTimeout bounds reading a request (uploads that need longer extend
	// it themselves, see ExtendRead).
	bodyTimeout = time.Minute
	// idleTimeout closes a kept-alive connection with no request.
	idleTimeout    = 2 * time.Minute
	maxHeaderBytes = 64 << 10
	// maxConns bounds the node port's connections; maxConnsPerHost those
	// of one address (a site of devices behind one NAT shares one).
	maxConns = 2048
)

func newNodePort(m *Membership, l net.Listener) *nodePort {
	np := &nodePort{m: m, l: l, conns: newConnLimiter(maxConns, maxConnsPerHost), handshakes: newRateLimiter(handshakeBurst, handshakeEvery),
		raft:  &streamLayer{m: m, addr: l.Addr(), accept: make(chan net.Conn), done: make(chan struct{})},
		httpL: &chanListener{addr: l.Addr(), ch: make(chan net.Conn), done: make(chan struct{})}}
	np.server = &http.Server{
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       bodyTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tls.Conn); ok {
				if id, err := pki.PeerIdentity(tc.ConnectionState()); err == nil {
					return withTLSIdentity(ctx, id, pki.PeerExpiry(tc.ConnectionState()))
				}
			}
			return ctx // anonymous: only the join endpoint
		},
	}
	return np
}

// serve accepts connections until the listener closes.
func (np *nodePort) serve() {
	ClearDeadline(np.l)
	go np.server.Serve(np.httpL)
	for {
		c, err := np.l.Accept()
		if err != nil {
			np.httpL.Close()
			np.raft.Close()
			return
		}
		if ok, _ := np.handshakes.allow(hostOf(c.RemoteAddr()), time.Now()); !ok {
			np.m.log.Debug("node port: connection refused: too many handshakes from this address", "from", c.RemoteAddr())
			c.Close()
			continue
		}
		lc, ok := np.conns.admit(c)
		if !ok {
			np.m.log.Debug("node port: connection refused: too many open", "from", c.RemoteAddr())
			c.Close()
			continue
		}
		go np.handshake(lc)
	}
}

func (np *nodePort) close() {
	np.l.Close()
	np.httpL.Close()
	np.raft.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	np.server.Shutdown(ctx)
	np.server.Close()
}

func (np *nodePort) handshake(c net.Conn) {
	// A node that has just started may not hold its certificate yet (a
	// new cluster's first manager makes it): a client that came early
	// waits for it, within the handshake's deadline, instead of having
	// its connection reset.
	creds := np.m.credentials()
	for deadline := time.Now().Add(handshakeTimeout); creds == nil && time.Now().Before(deadline); creds = np.m.credentials() {
		time.Sleep(20 * time.Millisecond)
	}
	if creds == nil {
		c.Close()
		return
	}
	// A node whose certificate expired while it was cut off comes back
	// with it to renew it: let it through to the API (Authenticate judges
	// it on every request), never to Raft.
	cfg := pki.JoinServerConfig(creds, func(cs tls.ConnectionState) bool { return cs.NegotiatedProtocol != alpnRaft })
	cfg.NextProtos = []string{alpnRaft, alpnHTTP}
	tc := tls.Server(c, cfg)
	tc.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		np.m.log.Debug("node port: handshake refused", "from", c.RemoteAddr(), "err", err)
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			// Plain HTTP: say so, as net/http does, so that the client can
			// tell its user the node port speaks mutual TLS only.
			re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		c.Close()
		return
	}
	tc.SetDeadline(time.Time{})
	switch tc.ConnectionState().NegotiatedProtocol {
	case alpnRaft:
		id, err := pki.PeerIdentity(tc.ConnectionState())
		if err == nil {
			err = np.m.checkRaftPeer(id)
		}
		if err != nil {
			np.m.log.Warn("node port: raft connection refused", "from", c.RemoteAddr(), "identity", id, "err", err)
			tc.Close()
			return
		}
		tc.SetReadDeadline(time.Now().Add(5 * time.Second))
		r := bufio.NewReader(tc)
		line, err := r.ReadBytes('\n')
		var h hello
		if err != nil || json.Unmarshal(line, &h) != nil || h.ID != id.NodeID {
			tc.Close()
			return
		}
		tc.SetReadDeadline(time.Time{})
		np.m.book.set(h.ID, h.Addr)
		select {
		case np.raft.accept <- &bufferedConn{Conn: tc, r: r}:
		case <-np.raft.done:
			tc.Close()
		}
	default:
		select {
		case np.httpL.ch <- tc:
		case <-np.httpL.done:
			tc.Close()
		}
	}
}

// bufferedConn keeps what the hello's reader read ahead.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// tlsPeers reaches other nodes' APIs over the node port: managers
// (Client), or the manager of a node of either role (NodeClient, for the
// requests placed on the node that runs a task). It keeps one HTTP
// transport per peer and kind (and so its TLS connections), made again
// when the peer's address changes.
type tlsPeers struct {
	m     *Membership
	mu    sync.Mutex
	cache map[peerKey]*peerClient
}

type peerKey struct {
	id      string
	anyNode bool
}

type peerClient struct {
	addr   string
	client *http.Client
}

// peerDialTimeout bounds a connection attempt to another node: a peer that
// is cut off must not hold a request for a TCP timeout.
const peerDialTimeout = 3 * time.Second

// peerKeepAlive notices a peer that went silent on an open connection (a
// log stream that follows, a cut cable) within about 11 s, instead of the
// kernel's two hours.
var peerKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3}

func (p *tlsPeers) Client(id string) (*http.Client, string, error) { return p.client(id, false) }

func (p *tlsPeers) NodeClient(id string) (*http.Client, string, error) { return p.client(id, true) }

func (p *tlsPeers) client(id string, anyNode bool) (*http.Client, string, error) {
	addr, ok := p.m.book.get(id)
	if !ok {
		if anyNode {
			return nil, "", fmt.Errorf("no known address for node %s (is it in the cluster?)", id)
		}
		return nil, "", fmt.Errorf("no known address for manager %s", id)
	}
	creds := p.m.credentials()
	if creds == nil {
		return nil, "", errors.New("no node certificate yet")
	}
	key := peerKey{id: id, anyNode: anyNode}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.cache[key]; c != nil && c.addr == addr {
		return c.client, "https://" + id, nil
	}
	if old := p.cache[key]; old != nil {
		old.client.CloseIdleConnections()
	}
	want := wantNode(id, pki.RoleManager)
	if anyNode {
		want = wantAnyNode(id)
	}
	cfg := pki.ClientConfig(creds, want)
	cfg.NextProtos = []string{alpnHTTP}
	tr := &http.Transport{
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := &tls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: peerDialTimeout, KeepAliveConfig: peerKeepAlive}}
			return d.DialContext(ctx, "tcp", addr)
		},
		// Up to handshakeBurst connections to a peer are kept between
		// calls. A burst of calls (writes passed on to the leader, 32 at
		// once) then dials once and reuses its connections; with fewer
		// kept, each call after the burst dialed anew, and the peer's
		// limit of handshakes for one address refused the excess. The
		// number of connections is not capped: a log or exec stream holds
		// one for as long as it runs.
		MaxIdleConnsPerHost: handshakeBurst,
		IdleConnTimeout:     60 * time.Second,
	}
	c := &peerClient{addr: addr, client: &http.Client{Transport: tr}}
	if p.cache == nil {
		p.cache = map[peerKey]*peerClient{}
	}
	p.cache[key] = c
	return c.client, "https://" + id, nil
}

// reset drops the transports: the next request dials anew, with the
// node's current certificate. Connections made with the previous one
// (kept alive by a heartbeat every 2 s) would go on presenting it, and a
// manager refuses an expired certificate on every request.
func (p *tlsPeers) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.cache {
		c.client.CloseIdleConnections()
	}
	p.cache = nil
}

// AdvertiseFor picks the address peers reach a listener at: its own, or
// for an unspecified one the host's address that netcfg/hostaddr picks
// (outside the cluster's container range); never loopback: with no
// address to pick it is an error that says what to set.
func AdvertiseFor(a net.Addr, clusterCIDR string) (string, error) {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String(), nil
	}
	exclude, _ := netip.ParsePrefix(clusterCIDR)
	adv, err := hostaddr.Advertise(ap, exclude)
	if err != nil {
		return "", fmt.Errorf("manager: the node port listens on %s: %w", a, err)
	}
	return adv.String(), nil
}

// learnAddresses keeps the address book in step with the node records.
func (m *Membership) learnAddresses(ctx context.Context) {
	f := &store.Filter{Kinds: map[string]bool{api.KindNode: true}}
	index := m.store.Hub().Last()
	var buf []store.Change
	for {
		wait := m.store.Hub().Wait()
		changes, upTo, err := m.store.Hub().Read(index, f, 1024, buf[:0])
		if err != nil || len(changes) > 0 {
			m.store.View(func(v *store.View) error { m.book.learn(v); return nil })
		}
		if err == nil {
			index = upTo
		} else {
			index = m.store.Hub().Last()
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		}
	}
}

// ClearDeadline undoes the deadline an earlier manager on the same
// listener set to stop accepting (a restart in a new role).
func ClearDeadline(l net.Listener) {
	if d, ok := l.(interface{ SetDeadline(time.Time) error }); ok {
		d.SetDeadline(time.Time{})
	}
}

// looksLikeHTTP says whether the first bytes of a "TLS record" are the
// start of a plain HTTP request.
func looksLikeHTTP(h [5]byte) bool {
	switch string(h[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH":
		return true
	}
	return false
}
