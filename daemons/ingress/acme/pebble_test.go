package acme

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/qa/testport"
)

// The pebble tests run Debian's pebble (an ACME test CA) on loopback:
// pebble validates challenges at 127.0.0.1 on the test's own listeners
// (httpPort, tlsPort), resolving every name through a DNS server of the
// test that answers 127.0.0.1 and the TXT records a DNS hook writes. A
// reverse proxy in front of pebble's ACME endpoint counts the requests
// and the new orders, and can answer new orders with a rate limit.

const pebbleBin = "/usr/bin/pebble"

type pebbleEnv struct {
	dirURL string         // the ACME directory, through the counting proxy
	roots  *x509.CertPool // trust for pebble's (and the proxy's) HTTPS
	caFile string         // the same, as a PEM file
	issued *x509.CertPool // pebble's root, which signs what it issues

	httpPort, tlsPort int
	httpHandler       atomic.Pointer[http.Handler] // answers pebble's http-01 validations
	tlsConfig         atomic.Pointer[tls.Config]   // serves the test's TLS listener
	tlsAddr           string

	dns *testDNS

	requests        atomic.Int64 // every ACME request through the proxy
	newOrders       atomic.Int64
	rateLimitOrders atomic.Int64 // answer this many new orders with rateLimited
}

// startPebble starts pebble for t (stopped at its end, pass or fail).
// validity, if not 0, is the lifetime of the certificates it issues.
func startPebble(t testing.TB, validity time.Duration) *pebbleEnv {
	t.Helper()
	if _, err := os.Stat(pebbleBin); err != nil {
		t.Skipf("%s is not installed (Debian package pebble; make deps installs it): %v", pebbleBin, err)
	}
	dir := t.TempDir()
	env := &pebbleEnv{}

	caPEM, certPEM, keyPEM := testCA(t)
	env.roots = x509.NewCertPool()
	env.roots.AppendCertsFromPEM(caPEM)
	env.caFile = filepath.Join(dir, "ca.pem")
	must(t, os.WriteFile(env.caFile, caPEM, 0o600))
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(certFile, certPEM, 0o600))
	must(t, os.WriteFile(keyFile, keyPEM, 0o600))

	env.dns = startDNS(t, filepath.Join(dir, "txt"))

	// pebble validates http-01 and tls-alpn-01 here.
	httpLn := listen(t)
	env.httpPort = httpLn.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := env.httpHandler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(httpLn)
	t.Cleanup(func() { srv.Close() })
	tlsLn := listen(t)
	env.tlsPort = tlsLn.Addr().(*net.TCPAddr).Port
	env.tlsAddr = tlsLn.Addr().String()
	go serveTLS(tlsLn, env)
	t.Cleanup(func() { tlsLn.Close() })

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.roots}}}
	var directory struct {
		NewOrder string `json:"newOrder"`
	}
	// pebble binds its two addresses itself. testport found them free and
	// outside the range outgoing connections take their ports from; if one
	// was taken before pebble bound it all the same, pebble exits at once,
	// and starts again on two others.
	var listenAddr, mgmtAddr string
	for attempt := 1; ; attempt++ {
		listenAddr, mgmtAddr = testport.Addr(t), testport.Addr(t)
		cfg := map[string]any{"pebble": map[string]any{
			"listenAddress":                  listenAddr,
			"managementListenAddress":        mgmtAddr,
			"certificate":                    certFile,
			"privateKey":                     keyFile,
			"httpPort":                       env.httpPort,
			"tlsPort":                        env.tlsPort,
			"ocspResponderURL":               "",
			"externalAccountBindingRequired": false,
			"certificateValidityPeriod":      uint64(validity / time.Second),
		}}
		cfgFile := filepath.Join(dir, "pebble.json")
		b, _ := json.Marshal(cfg)
		must(t, os.WriteFile(cfgFile, b, 0o600))

		cmd := exec.Command(pebbleBin, "-config", cfgFile, "-dnsserver", env.dns.addr)
		cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
		out := new(lockedBuffer)
		cmd.Stdout, cmd.Stderr = out, out
		must(t, cmd.Start())
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			cmd.Process.Kill()
			<-exited
			if t.Failed() {
				t.Logf("pebble's output:\n%s", tail(out.String(), 60))
			}
		})

		deadline := time.Now().Add(15 * time.Second)
		var err error
		dead := false
		for {
			var resp *http.Response
			if resp, err = client.Get("https://" + listenAddr + "/dir"); err == nil {
				err = json.NewDecoder(resp.Body).Decode(&directory)
				resp.Body.Close()
				if err == nil && directory.NewOrder != "" {
					break
				}
			}
			select {
			case <-exited:
				dead, err = true, fmt.Errorf("pebble exited: %s", cmd.ProcessState)
			default:
			}
			if dead || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err == nil && directory.NewOrder != "" {
			break
		}
		if attempt < 3 && dead && strings.Contains(out.String(), "address already in use") {
			t.Logf("pebble could not bind %s or %s, taken since: starting it on others", listenAddr, mgmtAddr)
			continue
		}
		t.Fatalf("pebble did not answer on %s: %v\n%s", listenAddr, err, out.String())
	}
	newOrderURL, err := url.Parse(directory.NewOrder)
	must(t, err)

	resp, err := client.Get("https://" + mgmtAddr + "/roots/0")
	must(t, err)
	root, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	env.issued = x509.NewCertPool()
	if !env.issued.AppendCertsFromPEM(root) {
		t.Fatalf("pebble's /roots/0 is no PEM certificate: %q", root)
	}

	// The counting proxy. pebble writes its URLs with the host the
	// request names, so the client keeps talking to the proxy.
	target, _ := url.Parse("https://" + listenAddr)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: env.roots}},
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	must(t, err)
	proxyLn := tls.NewListener(listen(t), &tls.Config{Certificates: []tls.Certificate{pair}})
	psrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.requests.Add(1)
		if r.Method == http.MethodPost && r.URL.Path == newOrderURL.Path {
			env.newOrders.Add(1)
			if env.rateLimitOrders.Add(-1) >= 0 {
				w.Header().Set("Content-Type", "application/problem+json")
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(http.StatusTooManyRequests)
				fmt.Fprintf(w, `{"type":"urn:ietf:params:acme:error:rateLimited","status":429,"detail":"too many new orders recently: retry after %s: see https://letsencrypt.org/docs/rate-limits/"}`,
					time.Now().Add(time.Hour).UTC().Format("2006-01-02 15:04:05 UTC"))
				return
			}
			env.rateLimitOrders.Store(0)
		}
		proxy.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 5 * time.Second}
	go psrv.Serve(proxyLn)
	t.Cleanup(func() { psrv.Close() })
	env.dirURL = "https://" + proxyLn.Addr().String() + "/dir"
	return env
}

// serveTLS completes TLS handshakes with the config the test set (the
// Manager's), then closes: enough for pebble's tls-alpn-01 validation
// and for the test's own handshakes.
func serveTLS(ln net.Listener, env *pebbleEnv) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			cfg := env.tlsConfig.Load()
			if cfg == nil {
				return
			}
			tc := tls.Server(c, cfg)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if tc.Handshake() == nil {
				io.Copy(io.Discard, tc) // until the client closes
			}
		}()
	}
}

// serve points the test's challenge listeners at m.
func (env *pebbleEnv) serve(m *Manager) {
	h := m.HTTPChallengeHandler()
	env.httpHandler.Store(&h)
	env.tlsConfig.Store(m.TLSConfig())
}

// handshake connects to the test's TLS listener with SNI name and
// returns the certificate chain it was served, verified against pebble's
// root (or roots, if not nil).
func (env *pebbleEnv) handshake(name string, roots *x509.CertPool, protos ...string) ([]*x509.Certificate, error) {
	if roots == nil {
		roots = env.issued
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", env.tlsAddr, &tls.Config{ServerName: name, RootCAs: roots, NextProtos: protos})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates, nil
}

// newManager returns a Manager on store for node that uses env's pebble,
// closed at the end of t.
func (env *pebbleEnv) newManager(t testing.TB, store Store, node string, edit func(*Config)) *Manager {
	t.Helper()
	cfg := Config{
		Store:    store,
		NodeID:   node,
		CA:       env.dirURL,
		CARoots:  env.roots,
		Email:    "ops@shop.test",
		Logger:   testLogger(t, node),
		HTTPPort: env.httpPort,
		TLSPort:  env.tlsPort,
	}
	if edit != nil {
		edit(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// routed starts a Manager on a store of its own, served by env, with one
// route to host, and waits for its certificate (how long it took).
func (env *pebbleEnv) routed(t testing.TB, host string, edit func(*Config)) (*Manager, time.Duration) {
	t.Helper()
	m := env.newManager(t, newFakeStore(), "node-a", edit)
	env.serve(m)
	m.SetRoutes([]api.IngressRoute{{Host: host, Port: 8080}})
	return m, waitCert(t, m, host)
}

// waitCert waits until m serves a certificate for host.
func waitCert(t testing.TB, m *Manager, host string) time.Duration {
	t.Helper()
	start := time.Now()
	for !m.HasCert(host) {
		if time.Since(start) > 60*time.Second {
			t.Fatalf("%s has no certificate for %s after 60s; status %+v", m.cfg.NodeID, host, m.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// waitFor polls cond for up to 60s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 60*time.Second {
			t.Fatalf("still waiting, after 60s, for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testDNS answers 127.0.0.1 to every A question and, to TXT questions,
// the records of a file of "NAME VALUE" lines (the DNS hook writes it).
type testDNS struct {
	addr string
	txt  string
}

func startDNS(t testing.TB, txtFile string) *testDNS {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	must(t, err)
	d := &testDNS{addr: pc.LocalAddr().String(), txt: txtFile}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(d.serve)}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return d
}

func (d *testDNS) serve(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	for _, q := range r.Question {
		hdr := dns.RR_Header{Name: q.Name, Class: dns.ClassINET, Rrtype: q.Qtype, Ttl: 0}
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
		case dns.TypeTXT:
			b, _ := os.ReadFile(d.txt)
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 2 && strings.EqualFold(dns.Fqdn(f[0]), q.Name) {
					m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{f[1]}})
				}
			}
		}
	}
	w.WriteMsg(m)
}

// testCA makes a CA and a certificate it signs for 127.0.0.1 and
// localhost (pebble's HTTPS listener and the proxy's).
func testCA(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "warren test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	must(t, err)
	kb, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func listen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	t.Cleanup(func() { ln.Close() })
	return ln
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testLogger keeps a node's logs (certmagic's included) and shows them if
// t fails; WARREN_TEST_LOG=1 shows them as they come, on stderr.
func testLogger(t testing.TB, node string) *slog.Logger {
	var w io.Writer
	buf := &lockedBuffer{}
	if os.Getenv("WARREN_TEST_LOG") != "" {
		w = os.Stderr
	} else {
		w = buf
	}
	t.Cleanup(func() {
		if t.Failed() && buf.String() != "" {
			t.Logf("logs of %s:\n%s", node, tail(buf.String(), 80))
		}
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", node)
}
