package ingress

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	proxyproto "github.com/pires/go-proxyproto"

	"github.com/warren-edge/warren/daemons/api"
)

// wsEcho is a WebSocket backend that sends each message back after
// prefix.
func wsEcho(prefix string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte(prefix), msg...)); err != nil {
				return
			}
		}
	})
}

func TestWebSocketEcho(t *testing.T) {
	port, ips := loopbackBackends(t, 1, wsEcho("echo: "))
	log := &syncBuffer{}
	p := New(Config{AccessLog: AccessLog{SampleRate: 1, Writer: log}})
	p.SetTable(tableFor(ips, api.IngressRoute{Host: "ws.example", Port: port}))
	addr := startPlain(t, p, false, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws://ws.example/chat", &websocket.DialOptions{HTTPClient: clientTo(t, addr)})
	if err != nil {
		t.Fatalf("websocket.Dial through the proxy: %v (response %v)", err, resp)
	}
	defer conn.CloseNow()
	for _, m := range []string{"hello", "world"} {
		if err := conn.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
		_, got, err := conn.Read(ctx)
		if err != nil || string(got) != "echo: "+m {
			t.Fatalf("websocket echo of %q: %q, %v", m, got, err)
		}
	}
	conn.Close(websocket.StatusNormalClosure, "")
	if ls := waitLines(t, log, 1); ls[0]["status"].(float64) != 101 || ls[0]["route"] != "ws.example/" {
		t.Errorf("access log of the upgrade: %v, want status 101 on route ws.example/", ls[0])
	}
}

// waitLines waits for the access log to hold n lines (a hijacked
// connection's line is written when it ends).
func waitLines(t *testing.T, log *syncBuffer, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ls := log.lines(t)
		if len(ls) >= n {
			return ls
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log has %d lines, want %d", len(ls), n)
		}
		time.Sleep(10 * time.Millisecond) // polling a log written by another goroutine
	}
}

func selfSigned(t testing.TB, host string) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestH2OverTLS(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("b1"))
	p := New(Config{})
	p.SetTable(tableFor(ips, api.IngressRoute{Host: "secure.example", Port: port}))
	cert, pool := selfSigned(t, "secure.example")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	acmeConfig := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"acme-tls/1"}}
	go func() { done <- ServeTLS(ctx, l, p, acmeConfig, false, nil) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeTLS: %v", err)
		}
	}()

	d := &net.Dialer{}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", l.Addr().String())
		},
	}
	defer tr.CloseIdleConnections()
	resp, body := do(t, &http.Client{Transport: tr}, newReq(t, "GET", "https://secure.example/x", "", nil))
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("GET https://secure.example/x: %d over %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	if s := decodeSeen(t, body); s.XFP != "https" || s.Host != "secure.example" {
		t.Errorf("backend saw proto %q host %q, want https secure.example", s.XFP, s.Host)
	}
	if len(acmeConfig.NextProtos) != 1 {
		t.Errorf("ServeTLS changed the caller's NextProtos: %v", acmeConfig.NextProtos)
	}
	// the ACME manager's tls-alpn-01 protocol is still offered
	conn, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "secure.example", NextProtos: []string{"acme-tls/1"}})
	if err != nil {
		t.Fatalf("TLS handshake with ALPN acme-tls/1: %v", err)
	}
	if np := conn.ConnectionState().NegotiatedProtocol; np != "acme-tls/1" {
		t.Errorf("ALPN with acme-tls/1 offered: negotiated %q, want acme-tls/1", np)
	}
	conn.Close()
}

func TestH2C(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("b1"))
	p := New(Config{})
	p.SetTable(tableFor(ips, api.IngressRoute{Host: "web.example", Port: port}))
	addr := startPlain(t, p, false, nil)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	d := &net.Dialer{}
	tr := &http.Transport{Protocols: &protos, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}}
	defer tr.CloseIdleConnections()
	resp, body := do(t, &http.Client{Transport: tr}, newReq(t, "GET", "http://web.example/", "", nil))
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Fatalf("h2c GET: %d over %s (%q), want 200 over HTTP/2", resp.StatusCode, resp.Proto, body)
	}
}

// rawGet sends a PROXY header (or any bytes) and a GET on one
// connection and returns the response, or an error when the connection
// ends without one.
func rawGet(addr string, prefix []byte, path string) (*http.Response, string, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	msg := append(bytes.Clone(prefix), "GET "+path+" HTTP/1.1\r\nHost: web.example\r\nConnection: close\r\n\r\n"...)
	if _, err := c.Write(msg); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func proxyHeaderBytes(t testing.TB, ver byte, src, dst string) []byte {
	h := proxyproto.HeaderProxyFromAddrs(ver, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInboundProxyProtocol(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("b1"))
	log := &syncBuffer{}
	p := New(Config{AccessLog: AccessLog{SampleRate: 1, Writer: log}})
	p.SetTable(tableFor(ips, api.IngressRoute{Host: "web.example", Port: port}))
	lb := startPlain(t, p, true, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	lbUntrusted := startPlain(t, p, true, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	direct := startPlain(t, p, false, nil)

	for _, tt := range []struct {
		ver    byte
		client string
	}{{1, "203.0.113.7"}, {2, "2001:db8::7"}} {
		resp, body, err := rawGet(lb, proxyHeaderBytes(t, tt.ver, netip.AddrPortFrom(netip.MustParseAddr(tt.client), 51234).String(), "127.0.0.1:80"), "/v"+string('0'+rune(tt.ver)))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET behind a PROXY v%d header: %v %v", tt.ver, resp, err)
		}
		if s := decodeSeen(t, body); s.XFF != tt.client {
			t.Errorf("PROXY v%d from %s: backend saw X-Forwarded-For %q, want %s", tt.ver, tt.client, s.XFF, tt.client)
		}
		found := false
		for _, l := range log.lines(t) {
			if l["path"] == "/v"+string('0'+rune(tt.ver)) {
				found = true
				if l["client"] != tt.client {
					t.Errorf("access log of PROXY v%d: client %v, want %s", tt.ver, l["client"], tt.client)
				}
			}
		}
		if !found {
			t.Errorf("no access log line for the PROXY v%d request", tt.ver)
		}
	}
	// without a header, from the trusted balancer (its health checks): served
	if resp, _, err := rawGet(lb, nil, "/health"); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET without a PROXY header on a behindLB listener: %v %v, want 200", resp, err)
	}
	// from an untrusted source: a PROXY header is refused, plain requests served
	v1 := proxyHeaderBytes(t, 1, "203.0.113.7:1", "127.0.0.1:80")
	if resp, _, err := rawGet(lbUntrusted, v1, "/spoof"); err == nil && resp.StatusCode == 200 {
		t.Errorf("PROXY header from an untrusted source: %d, want the connection refused", resp.StatusCode)
	}
	if resp, _, err := rawGet(lbUntrusted, nil, "/"); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET without PROXY from an untrusted source: %v %v, want 200", resp, err)
	}
	// on a listener not behind a balancer a PROXY header is bad HTTP
	for ver := byte(1); ver <= 2; ver++ {
		resp, body, err := rawGet(direct, proxyHeaderBytes(t, ver, "203.0.113.7:1", "127.0.0.1:80"), "/spoof")
		if resp == nil || resp.StatusCode != 400 { // the body may end in a reset
			t.Errorf("PROXY v%d header on a direct listener: %v %q %v, want 400", ver, resp, body, err)
		}
	}
	for _, l := range log.lines(t) {
		if l["path"] == "/spoof" {
			t.Errorf("a refused PROXY header was routed: %v", l)
		}
	}
}

// TestProxyProtocolToBackend: a route with ProxyProtocol tells its
// backend the client's address in a PROXY header.
func TestProxyProtocolToBackend(t *testing.T) {
	for _, ver := range []string{"v1", "v2"} {
		t.Run(ver, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.2:0")
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var remotes []string
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				remotes = append(remotes, r.RemoteAddr)
				mu.Unlock()
				io.WriteString(w, "ok")
			})}
			go srv.Serve(&proxyproto.Listener{Listener: l, ConnPolicy: func(proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
				return proxyproto.REQUIRE, nil
			}})
			defer srv.Close()
			port := uint16(l.Addr().(*net.TCPAddr).Port)
			p := New(Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
			p.SetTable(tableFor([]string{"127.0.0.2"}, api.IngressRoute{Host: "web.example", Port: port, ProxyProtocol: ver}))
			c := clientTo(t, startPlain(t, p, false, nil))
			for _, client := range []string{"198.51.100.9", "2001:db8::9"} {
				req := newReq(t, "GET", "http://web.example/", "", nil)
				req.Header.Set("X-Forwarded-For", client)
				if resp, body := do(t, c, req); resp.StatusCode != 200 {
					t.Fatalf("GET through a PROXY %s route: %d %q", ver, resp.StatusCode, body)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(remotes) != 2 || !strings.HasPrefix(remotes[0], "198.51.100.9:") || !strings.HasPrefix(remotes[1], "[2001:db8::9]:") {
				t.Errorf("backend saw peers %v, want the clients 198.51.100.9 and 2001:db8::9 from the PROXY headers", remotes)
			}
		})
	}
}

// FuzzProxyHeader feeds random bytes as a PROXY header to a behindLB
// listener: the server never panics, and a request behind a header the
// PROXY parser refuses never reaches a backend.
func FuzzProxyHeader(f *testing.F) {
	var mu sync.Mutex
	reached := map[string]string{} // path → X-Forwarded-For
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached[r.URL.Path] = r.Header.Get("X-Forwarded-For")
		mu.Unlock()
	})
	port, ips := loopbackBackends(f, 1, h)
	p := New(Config{})
	p.SetTable(tableFor(ips, api.IngressRoute{Host: "web.example", Port: port}))
	addr := startPlain(f, p, true, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})

	f.Add(proxyHeaderBytes(f, 1, "203.0.113.7:1", "127.0.0.1:80"))
	f.Add(proxyHeaderBytes(f, 2, "[2001:db8::1]:1", "[::1]:80"))
	f.Add([]byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"))
	f.Add([]byte("PROXY TCP4 999.2.3.4 5.6.7.8 1 2\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01\x00\x02"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x02\x01\x02"))
	f.Add([]byte("garbage"))
	n := 0
	f.Fuzz(func(t *testing.T, hdr []byte) {
		n++
		path := fmt.Sprintf("/fuzz/%d", n)
		_, _, _ = rawGet(addr, hdr, path)

		// what the reference parser makes of the same bytes
		full := append(bytes.Clone(hdr), "GET "+path+" HTTP/1.1\r\n"...)
		ref, refErr := proxyproto.Read(bufio.NewReader(bytes.NewReader(full)))
		mu.Lock()
		xff, ok := reached[path]
		mu.Unlock()
		switch {
		case refErr != nil && !errors.Is(refErr, proxyproto.ErrNoProxyProtocol):
			if ok {
				t.Fatalf("header %q refused by the parser (%v) but the request reached the backend", hdr, refErr)
			}
		case ok && refErr == nil && ref.Command == proxyproto.PROXY:
			if src, _, hasIPs := ref.IPs(); hasIPs && xff != src.String() {
				t.Fatalf("header %q from %s: backend saw X-Forwarded-For %q", hdr, src, xff)
			}
		}
	})
}

// TestShutdownDrains: when its context ends, ServePlain lets an open
// request finish, and gives up on one after the drain bound.
func TestShutdownDrains(t *testing.T) {
	for _, tt := range []struct {
		name    string
		drain   time.Duration
		release bool
	}{{"finishes", 30 * time.Second, true}, {"bounded", 200 * time.Millisecond, false}} {
		t.Run(tt.name, func(t *testing.T) {
			release := make(chan struct{})
			started := make(chan struct{}, 1)
			slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				started <- struct{}{}
				select {
				case <-release:
					io.WriteString(w, "done")
				case <-r.Context().Done():
				}
			})
			port, ips := loopbackBackends(t, 1, slow)
			p := New(Config{DrainTimeout: tt.drain})
			p.SetTable(tableFor(ips, api.IngressRoute{Host: "web.example", Port: port}))
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- ServePlain(ctx, l, p, false, nil) }()
			type result struct {
				body string
				err  error
			}
			got := make(chan result, 1)
			c := clientTo(t, l.Addr().String())
			go func() {
				resp, err := c.Do(newReq(t, "GET", "http://web.example/", "", nil))
				if err != nil {
					got <- result{err: err}
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				got <- result{string(b), err}
			}()
			<-started
			cancel()
			if tt.release {
				// the listener closes at once; the open request goes on
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); runtime.Gosched() {
					c, err := net.Dial("tcp", l.Addr().String())
					if err != nil {
						break
					}
					c.Close()
				}
				close(release)
				if r := <-got; r.err != nil || r.body != "done" {
					t.Errorf("request open during shutdown: %q, %v; want done", r.body, r.err)
				}
				if err := <-done; err != nil {
					t.Errorf("ServePlain after a drained shutdown: %v, want nil", err)
				}
				return
			}
			if err := <-done; err == nil {
				t.Error("ServePlain with a request open past the drain bound: nil, want an error")
			}
			if r := <-got; r.err == nil {
				t.Errorf("request open past the drain bound got %q, want its connection closed", r.body)
			}
		})
	}
}

// TestShutdownDrainsUpgrades: http.Server.Shutdown does not wait for
// hijacked connections; serve does. A WebSocket open at the stop may end
// on its own within UpgradeDrain (the server waits for it), or is closed
// at that bound.
func TestShutdownDrainsUpgrades(t *testing.T) {
	port, ips := loopbackBackends(t, 1, wsEcho(""))
	for _, tt := range []struct {
		name   string
		bound  time.Duration
		client bool // the client ends the connection during the drain
	}{{"ends", 30 * time.Second, true}, {"bounded", 300 * time.Millisecond, false}} {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Config{UpgradeDrain: tt.bound})
			p.SetTable(tableFor(ips, api.IngressRoute{Host: "ws.example", Port: port}))
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- ServePlain(ctx, l, p, false, nil) }()
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer dcancel()
			conn, _, err := websocket.Dial(dctx, "ws://ws.example/", &websocket.DialOptions{HTTPClient: clientTo(t, l.Addr().String())})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseNow()
			echo := func() error {
				if err := conn.Write(dctx, websocket.MessageText, []byte("hi")); err != nil {
					return err
				}
				_, got, err := conn.Read(dctx)
				if err == nil && string(got) != "hi" {
					err = fmt.Errorf("echo %q", got)
				}
				return err
			}
			if err := echo(); err != nil {
				t.Fatal(err)
			}
			cancel()
			if !tt.client {
				if err := <-done; err != nil {
					t.Errorf("ServePlain: %v, want nil (upgrades closed at their bound are not an error)", err)
				}
				if err := echo(); err == nil {
					t.Error("the WebSocket still echoes after its drain bound, want it closed")
				}
				return
			}
			// The server waits for the WebSocket, which goes on working.
			for range 5 {
				if err := echo(); err != nil {
					t.Fatalf("a WebSocket open at the stop: %v", err)
				}
				select {
				case err := <-done:
					t.Fatalf("ServePlain returned (%v) with a WebSocket open", err)
				case <-time.After(20 * time.Millisecond):
				}
			}
			conn.Close(websocket.StatusNormalClosure, "")
			if err := <-done; err != nil {
				t.Errorf("ServePlain after the WebSocket ended: %v, want nil", err)
			}
		})
	}
}

// TestServeTLSBehindLB: on HTTPS the PROXY header comes before the TLS
// handshake.
func TestServeTLSBehindLB(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("b1"))
	p := New(Config{})
	p.SetTable(tableFor(ips, api.IngressRoute{Host: "secure.example", Port: port}))
	cert, pool := selfSigned(t, "secure.example")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ServeTLS(ctx, l, p, &tls.Config{Certificates: []tls.Certificate{cert}}, true, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeTLS: %v", err)
		}
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Write(proxyHeaderBytes(t, 2, "192.0.2.44:5000", "127.0.0.1:443")); err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, &tls.Config{RootCAs: pool, ServerName: "secure.example", NextProtos: []string{"http/1.1"}})
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: secure.example\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatalf("TLS after a PROXY header: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if s := decodeSeen(t, string(b)); s.XFF != "192.0.2.44" || s.XFP != "https" {
		t.Errorf("backend saw XFF %q proto %q, want 192.0.2.44 https", s.XFF, s.XFP)
	}
}
