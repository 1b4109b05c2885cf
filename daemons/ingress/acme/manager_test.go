package acme

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warren-edge/warren/daemons/api"
)

func TestHTTP01Issues(t *testing.T) {
	env := startPebble(t, 0)
	const host = "http01.shop.test"
	m, took := env.routed(t, host, nil)
	t.Logf("time to first certificate (http-01, pebble): %s", took)

	chain, err := env.handshake(host, nil)
	if err != nil {
		t.Fatalf("handshake for %s: %v", host, err)
	}
	if !slices.Contains(chain[0].DNSNames, host) {
		t.Errorf("served certificate names %v, want %s", chain[0].DNSNames, host)
	}
	if n := env.newOrders.Load(); n != 1 {
		t.Errorf("pebble got %d new orders, want 1", n)
	}
	st := m.Status()
	if len(st) != 1 || st[0].Host != host || st[0].State != "valid" || st[0].Source != api.TLSAcme ||
		!st[0].NotAfter.Equal(chain[0].NotAfter) || st[0].Issuer != chain[0].Issuer.CommonName {
		t.Errorf("Status() = %+v, want %s valid from acme, issued by %q until %s", st, host, chain[0].Issuer.CommonName, chain[0].NotAfter)
	}
	want := fmt.Sprintf(`
# HELP warren_ingress_certificate_expiry_seconds When the certificate served for a host expires (unix time of its NotAfter).
# TYPE warren_ingress_certificate_expiry_seconds gauge
warren_ingress_certificate_expiry_seconds{host=%q} %d
`, host, chain[0].NotAfter.Unix())
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "warren_ingress_certificate_expiry_seconds"); err != nil {
		t.Errorf("metrics: %v", err)
	}

	m.SetRoutes(nil)
	waitFor(t, "the host to be let go", func() bool { return !m.HasCert(host) && len(m.Status()) == 0 })
	if _, err := env.handshake(host, nil); err == nil {
		t.Errorf("handshake for %s succeeded after its route went", host)
	}
}

// A renewal certmagic queued before the last route of a host went away
// (its maintenance picks what to renew, then renews outside its lock) is
// stopped before it reaches the CA, and the certificate a reload from the
// store put back in the cache is taken out again. Without this the job
// put the renewed certificate back in the cache, and the host was renewed
// for ever after with no route naming it (qa/cluster saw it).
func TestReleasedHostNotRenewed(t *testing.T) {
	env := startPebble(t, 0)
	const host = "released.shop.test"
	m, _ := env.routed(t, host, nil)
	inCache := func() int { return len(m.cache.AllMatchingCertificates(host)) }
	m.SetRoutes(nil)
	waitFor(t, "the host to be let go", func() bool { return inCache() == 0 })

	// What certmagic's queued jobs do: reload the stored certificate into
	// the cache; renew it.
	cfg := m.configs[api.ChallengeHTTP01]
	if _, err := cfg.CacheManagedCertificate(context.Background(), host); err != nil {
		t.Fatal(err)
	}
	orders := env.newOrders.Load()
	err := cfg.RenewCertSync(context.Background(), host, true)
	if err == nil || !strings.Contains(err.Error(), "no route names "+host) {
		t.Errorf("renewing %s with no route naming it: %v; want it refused", host, err)
	}
	if n := env.newOrders.Load() - orders; n != 0 {
		t.Errorf("pebble got %d new orders for a host no route names; want 0", n)
	}
	waitFor(t, "the certificate taken out of the cache after the refused renewal", func() bool { return inCache() == 0 })
	// Named again, the host is served again (from the store).
	m.SetRoutes([]api.IngressRoute{{Host: host, Port: 8080}})
	waitCert(t, m, host)
	if n := env.newOrders.Load() - orders; n != 0 {
		t.Errorf("pebble got %d new orders for a host routed again with its certificate in the store; want 0", n)
	}
}

// BenchmarkFirstCertificate is the time from SetRoutes naming a new host
// to its certificate served, from pebble over http-01 (each iteration a
// new host, one pebble and one Manager for all).
func BenchmarkFirstCertificate(b *testing.B) {
	env := startPebble(b, 0)
	m := env.newManager(b, newFakeStore(), "node-a", nil)
	env.serve(m)
	var routes []api.IngressRoute
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		host := fmt.Sprintf("bench-%d.shop.test", i)
		routes = append(routes, api.IngressRoute{Host: host, Port: 8080})
		m.SetRoutes(routes)
		waitCert(b, m, host)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	ok := Config{Store: newFakeStore(), NodeID: "node-a", CA: "https://ca.example/dir"}
	for name, edit := range map[string]func(*Config){
		"no store":           func(c *Config) { c.Store = nil },
		"no node":            func(c *Config) { c.NodeID = "" },
		"ratio 1":            func(c *Config) { c.RenewalRatio = 1 },
		"missing roots file": func(c *Config) { c.CARootsFile = "/nonexistent/ca.pem" },
	} {
		c := ok
		edit(&c)
		if m, err := New(c); err == nil {
			m.Close()
			t.Errorf("New with %s succeeded", name)
		}
	}
}

func TestTLSALPN01Issues(t *testing.T) {
	env := startPebble(t, 0)
	m := env.newManager(t, newFakeStore(), "node-a", func(c *Config) { c.CARoots, c.CARootsFile = nil, env.caFile })
	env.serve(m)
	var httpHits atomic.Int64
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpHits.Add(1)
		http.NotFound(w, r)
	}))
	env.httpHandler.Store(&h)
	const host = "alpn.shop.test"
	m.SetRoutes([]api.IngressRoute{{Host: host, Port: 8080, TLS: &api.IngressTLS{Challenge: api.ChallengeTLSALPN01}}})
	took := waitCert(t, m, host)
	t.Logf("time to first certificate (tls-alpn-01, pebble): %s", took)

	chain, err := env.handshake(host, nil, "h2", "http/1.1")
	if err != nil {
		t.Fatalf("handshake for %s: %v", host, err)
	}
	if !slices.Contains(chain[0].DNSNames, host) {
		t.Errorf("served certificate names %v, want %s", chain[0].DNSNames, host)
	}
	if n := httpHits.Load(); n != 0 {
		t.Errorf("pebble made %d HTTP requests; a tls-alpn-01 route should be validated over TLS only", n)
	}
	if n := env.newOrders.Load(); n != 1 {
		t.Errorf("pebble got %d new orders, want 1", n)
	}
}

// A certificate is renewed before it expires: pebble issues 15-second
// certificates, renewal comes two thirds in.
func TestRenewal(t *testing.T) {
	env := startPebble(t, 15*time.Second)
	const host = "renew.shop.test"
	env.routed(t, host, func(c *Config) { c.RenewCheckInterval = 250 * time.Millisecond })
	first, err := env.handshake(host, nil)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if life := first[0].NotAfter.Sub(first[0].NotBefore); life > time.Minute {
		t.Fatalf("pebble issued a certificate for %s, want the 15s of certificateValidityPeriod", life)
	}
	var next []*x509.Certificate
	waitFor(t, "a renewed certificate", func() bool {
		next, err = env.handshake(host, nil)
		return err == nil && next[0].SerialNumber.Cmp(first[0].SerialNumber) != 0
	})
	if seen := time.Now(); !seen.Before(first[0].NotAfter) {
		t.Errorf("the renewed certificate was served at %s, after the first expired (%s)", seen, first[0].NotAfter)
	}
	if !next[0].NotAfter.After(first[0].NotAfter) {
		t.Errorf("renewed certificate ends %s, not after the first (%s)", next[0].NotAfter, first[0].NotAfter)
	}
	if n := env.newOrders.Load(); n < 2 {
		t.Errorf("pebble got %d new orders, want at least 2 (issue, renew)", n)
	}
}

// A certificate no route names any more is cleaned out of the store once
// it has been expired for the grace; one still routed is renewed and kept.
// Two nodes share the store.
func TestExpiredCertificatesCleaned(t *testing.T) {
	env := startPebble(t, 15*time.Second)
	store := newFakeStore()
	clean := func(c *Config) {
		c.RenewCheckInterval = 250 * time.Millisecond
		c.CleanEvery, c.ExpiredGrace = time.Second, time.Second
	}
	a := env.newManager(t, store, "node-a", clean)
	b := env.newManager(t, store, "node-b", clean)
	env.serve(a)
	const gone, kept = "gone.shop.test", "kept.shop.test"
	routes := []api.IngressRoute{{Host: gone, Port: 8080}, {Host: kept, Port: 8080}}
	a.SetRoutes(routes)
	b.SetRoutes(routes)
	waitCert(t, a, gone)
	waitCert(t, a, kept)
	certsOf := func(host string) []string {
		var out []string
		for _, o := range store.keys() {
			if strings.HasPrefix(o, "certificates/") && strings.Contains(o, "/"+host+"/") {
				out = append(out, o)
			}
		}
		return out
	}
	if n := len(certsOf(gone)); n != 3 {
		t.Fatalf("the store holds %v for %s, want its .crt, .key and .json", certsOf(gone), gone)
	}
	first, err := env.handshake(gone, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.SetRoutes(routes[1:])
	b.SetRoutes(routes[1:])
	waitFor(t, "the certificate of "+gone+" cleaned out of the store", func() bool { return len(certsOf(gone)) == 0 })
	if now := time.Now(); now.Before(first[0].NotAfter.Add(time.Second)) {
		t.Errorf("cleaned at %s, before the certificate had been expired for the grace (it ends %s)", now, first[0].NotAfter)
	}
	if n := len(certsOf(kept)); n != 3 {
		t.Errorf("the store holds %v for %s, still routed; want its .crt, .key and .json", certsOf(kept), kept)
	}
	if _, err := env.handshake(kept, nil); err != nil {
		t.Errorf("handshake for %s after the cleaning: %v", kept, err)
	}
}

// Two ingress nodes on one store both serve the certificate; the CA got
// one order.
func TestTwoNodesOneOrder(t *testing.T) {
	env := startPebble(t, 0)
	store := newFakeStore()
	a := env.newManager(t, store, "node-a", nil)
	b := env.newManager(t, store, "node-b", nil)
	env.serve(a)
	const host = "both.shop.test"
	routes := []api.IngressRoute{{Host: host, Port: 8080}}
	a.SetRoutes(routes)
	b.SetRoutes(routes)
	waitCert(t, a, host)
	waitCert(t, b, host)

	ca, err := env.handshake(host, nil)
	if err != nil {
		t.Fatalf("handshake with node-a: %v", err)
	}
	env.serve(b)
	cb, err := env.handshake(host, nil)
	if err != nil {
		t.Fatalf("handshake with node-b: %v", err)
	}
	if ca[0].SerialNumber.Cmp(cb[0].SerialNumber) != 0 {
		t.Errorf("node-a serves serial %x, node-b %x; want the same certificate", ca[0].SerialNumber, cb[0].SerialNumber)
	}
	if n := env.newOrders.Load(); n != 1 {
		t.Errorf("pebble got %d new orders from two nodes, want 1", n)
	}
}

// The CA's http-01 request reaches node-b, which did not start the order
// (its routes lag behind): node-b answers from the store.
func TestDistributedHTTP01(t *testing.T) {
	env := startPebble(t, 0)
	store := newFakeStore()
	a := env.newManager(t, store, "node-a", nil)
	b := env.newManager(t, store, "node-b", nil)
	hb := b.HTTPChallengeHandler()
	env.httpHandler.Store(&hb)
	env.tlsConfig.Store(a.TLSConfig())

	const host = "spread.shop.test"
	routes := []api.IngressRoute{{Host: host, Port: 8080}}
	a.SetRoutes(routes)
	waitCert(t, a, host)
	if n := b.fromStore.Load(); n == 0 {
		t.Errorf("node-b answered no http-01 challenge from the store")
	}
	if n := a.fromStore.Load(); n != 0 {
		t.Errorf("node-a answered %d http-01 challenges; the CA only reached node-b", n)
	}

	b.SetRoutes(routes)
	waitCert(t, b, host)
	if n := env.newOrders.Load(); n != 1 {
		t.Errorf("pebble got %d new orders, want 1 (node-b takes node-a's certificate from the store)", n)
	}
}

// The CA's tls-alpn-01 validation reaches node-b while node-a made the
// order: node-b answers with the challenge's certificate from the store
// (certmagic keeps it there), though no route has reached node-b.
func TestDistributedTLSALPN01(t *testing.T) {
	env := startPebble(t, 0)
	store := newFakeStore()
	a := env.newManager(t, store, "node-a", nil)
	b := env.newManager(t, store, "node-b", nil)
	var httpHits atomic.Int64
	h := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpHits.Add(1)
		http.NotFound(w, r)
	}))
	env.httpHandler.Store(&h)
	env.tlsConfig.Store(b.TLSConfig())

	const host = "alpn-spread.shop.test"
	routes := []api.IngressRoute{{Host: host, Port: 8080, TLS: &api.IngressTLS{Challenge: api.ChallengeTLSALPN01}}}
	a.SetRoutes(routes)
	waitCert(t, a, host)
	if n := httpHits.Load(); n != 0 {
		t.Errorf("pebble made %d HTTP requests; a tls-alpn-01 route is validated over TLS only", n)
	}
	b.SetRoutes(routes)
	waitCert(t, b, host)
	if n := env.newOrders.Load(); n != 1 {
		t.Errorf("pebble got %d new orders, want 1 (node-b takes node-a's certificate from the store)", n)
	}
	if chain, err := env.handshake(host, nil); err != nil || !slices.Contains(chain[0].DNSNames, host) {
		t.Errorf("node-b's handshake for %s: %v", host, err)
	}
}

// A handshake for a name no route names fails and sends nothing to the
// CA, however many such names come.
func TestUnroutedNameAsksNothing(t *testing.T) {
	env := startPebble(t, 0)
	store := newFakeStore()
	m := env.newManager(t, store, "node-a", nil)
	env.serve(m)
	const host = "known.shop.test"
	m.SetRoutes([]api.IngressRoute{{Host: host, Port: 8080}, {Host: "plain.shop.test", Port: 8080, TLS: &api.IngressTLS{Source: api.TLSNone}}})
	waitCert(t, m, host)

	reqs := env.requests.Load()
	store.mu.Lock()
	locks, keys := store.lockCalls, len(store.objs)
	store.mu.Unlock()
	for i := range 50 {
		name := fmt.Sprintf("flood-%d.shop.test", i)
		if _, err := env.handshake(name, nil); err == nil {
			t.Fatalf("handshake for unrouted %s succeeded", name)
		}
	}
	for _, name := range []string{"plain.shop.test", "x.known.shop.test"} {
		if _, err := env.handshake(name, nil); err == nil {
			t.Errorf("handshake for %s (no certificate source) succeeded", name)
		}
	}
	if _, err := env.handshake("flood-alpn.shop.test", nil, "acme-tls/1"); err == nil {
		t.Errorf("an acme-tls/1 handshake for a name with no challenge succeeded")
	}
	time.Sleep(500 * time.Millisecond) // anything started asynchronously would show by now
	if n := env.requests.Load() - reqs; n != 0 {
		t.Errorf("unrouted handshakes sent %d requests to the CA, want 0", n)
	}
	store.mu.Lock()
	if store.lockCalls != locks || len(store.objs) != keys {
		t.Errorf("unrouted handshakes took %d locks and wrote %d keys, want none", store.lockCalls-locks, len(store.objs)-keys)
	}
	store.mu.Unlock()
	if st := m.Status(); len(st) != 1 || st[0].Host != host {
		t.Errorf("Status() = %+v, want only %s", st, host)
	}
}

// A route with its certificate in a secret serves that certificate, the
// new one after the secret changes, and none once the route is gone.
// No CA is involved.
func TestSecretRoute(t *testing.T) {
	store := newFakeStore()
	m, err := New(Config{Store: store, NodeID: "node-a", CA: "https://127.0.0.1:1/dir", Logger: testLogger(t, "node-a")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	env := &pebbleEnv{}
	ln := listen(t)
	env.tlsAddr = ln.Addr().String()
	go serveTLS(ln, env)
	env.tlsConfig.Store(m.TLSConfig())

	first, firstPEM := selfSigned(t, "*.wild.shop.test", "secret.shop.test")
	store.setSecret("shop-cert", firstPEM)
	routes := []api.IngressRoute{
		{Host: "secret.shop.test", Port: 8080, TLS: &api.IngressTLS{Source: api.TLSSecret, Secret: "shop-cert"}},
		{Host: "*.wild.shop.test", Port: 8080, TLS: &api.IngressTLS{Source: api.TLSSecret, Secret: "shop-cert"}},
	}
	m.SetRoutes(routes)
	waitFor(t, "the secret's certificate", func() bool { return m.HasCert("secret.shop.test") && m.HasCert("a.wild.shop.test") })
	for _, name := range []string{"secret.shop.test", "a.wild.shop.test"} {
		chain, err := env.handshake(name, poolOf(first))
		if err != nil {
			t.Fatalf("handshake for %s: %v", name, err)
		}
		if !chain[0].Equal(first) {
			t.Errorf("%s: served %v, want the secret's certificate", name, chain[0].Subject)
		}
	}

	second, secondPEM := selfSigned(t, "*.wild.shop.test", "secret.shop.test")
	store.setSecret("shop-cert", secondPEM)
	m.SetRoutes(routes)
	waitFor(t, "the secret's new certificate", func() bool {
		chain, err := env.handshake("secret.shop.test", poolOf(second))
		return err == nil && chain[0].Equal(second)
	})
	if n := len(m.cache.AllMatchingCertificates("secret.shop.test")); n != 1 {
		t.Errorf("%d certificates cached for secret.shop.test after the secret changed, want 1 (the old one dropped)", n)
	}
	if st := m.Status(); len(st) != 2 || st[0].State != "valid" || st[0].Source != api.TLSSecret {
		t.Errorf("Status() = %+v, want two valid hosts from the secret", st)
	}

	m.SetRoutes(nil)
	waitFor(t, "the certificate to go with its route", func() bool { return !m.HasCert("secret.shop.test") })
	if _, err := env.handshake("secret.shop.test", poolOf(second)); err == nil {
		t.Errorf("handshake for a host with no route any more succeeded")
	}
}

// A route whose secret is missing or not a certificate gets no
// certificate and an error, counted.
func TestSecretRouteErrors(t *testing.T) {
	store := newFakeStore()
	store.setSecret("junk", []byte("not PEM"))
	m, err := New(Config{Store: store, NodeID: "node-a", CA: "https://127.0.0.1:1/dir", Logger: testLogger(t, "node-a")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	m.SetRoutes([]api.IngressRoute{
		{Host: "missing.shop.test", TLS: &api.IngressTLS{Source: api.TLSSecret, Secret: "nope"}},
		{Host: "junk.shop.test", TLS: &api.IngressTLS{Source: api.TLSSecret, Secret: "junk"}},
		{Host: "*.w.shop.test"}, // wildcard without dns-01
	})
	waitFor(t, "errors for both secrets", func() bool {
		st := m.Status()
		return len(st) == 3 && st[1].Error != "" && st[2].Error != ""
	})
	for _, st := range m.Status() {
		if st.State != "error" || st.Error == "" {
			t.Errorf("status of %s = %+v, want state error with a message", st.Host, st)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	if n := testutil.ToFloat64(m.errorsSeen.WithLabelValues("junk.shop.test")); n < 1 {
		t.Errorf("warren_ingress_certificate_errors_total{host=junk.shop.test} = %v, want at least 1", n)
	}
	if _, err := reg.Gather(); err != nil {
		t.Errorf("Gather: %v", err)
	}
}

// DNS-01 through the hook: a wildcard certificate, the hook writing the
// TXT record that the test's DNS server (pebble's resolver) answers.
func TestDNS01Wildcard(t *testing.T) {
	env := startPebble(t, 0)
	calls := filepath.Join(t.TempDir(), "calls")
	hook := writeScript(t, `echo "$1 $2 $3" >> `+calls+`
case "$1" in
present) echo "$2 $3" >> `+env.dns.txt+` ;;
cleanup) grep -v "^$2 $3\$" `+env.dns.txt+` > `+env.dns.txt+`.new; mv `+env.dns.txt+`.new `+env.dns.txt+` ;;
*) echo "unknown action $1" >&2; exit 2 ;;
esac
`)
	m := env.newManager(t, newFakeStore(), "node-a", func(c *Config) { c.DNSHook = hook })
	env.serve(m)
	m.SetRoutes([]api.IngressRoute{{Host: "*.wild.shop.test", Port: 8080, TLS: &api.IngressTLS{Challenge: api.ChallengeDNS01}}})
	took := waitCert(t, m, "a.wild.shop.test")
	t.Logf("time to first certificate (dns-01 through the hook, wildcard, pebble): %s", took)

	chain, err := env.handshake("a.wild.shop.test", nil)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if !slices.Contains(chain[0].DNSNames, "*.wild.shop.test") {
		t.Errorf("served certificate names %v, want *.wild.shop.test", chain[0].DNSNames)
	}
	b, _ := os.ReadFile(calls)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "present _acme-challenge.wild.shop.test. ") || !strings.HasPrefix(lines[1], "cleanup _acme-challenge.wild.shop.test. ") {
		t.Errorf("hook calls:\n%s\nwant present then cleanup of _acme-challenge.wild.shop.test.", b)
	}
	if left, _ := os.ReadFile(env.dns.txt); len(bytes.TrimSpace(left)) != 0 {
		t.Errorf("TXT records left after cleanup: %q", left)
	}
}

// A rate limit from the CA holds every node back, not just the one that
// met it.
func TestRateLimitHoldsTheCluster(t *testing.T) {
	env := startPebble(t, 0)
	env.rateLimitOrders.Store(1)
	store := newFakeStore()
	a := env.newManager(t, store, "node-a", nil)
	env.serve(a)
	const host = "limited.shop.test"
	routes := []api.IngressRoute{{Host: host, Port: 8080}}
	a.SetRoutes(routes)
	waitFor(t, "node-a to meet the rate limit", func() bool {
		st := a.Status()
		return len(st) == 1 && strings.Contains(st[0].Error, "rateLimited")
	})
	if n := testutil.ToFloat64(a.errorsSeen.WithLabelValues(host)); n != 1 {
		t.Errorf("errors counted for %s = %v, want 1", host, n)
	}
	a.Close() // node-a would hold the name's lock while it waits to retry

	b := env.newManager(t, store, "node-b", nil)
	env.serve(b)
	b.SetRoutes(routes)
	waitFor(t, "node-b to hold back", func() bool {
		st := b.Status()
		return len(st) == 1 && strings.Contains(st[0].Error, "not asking the CA before")
	})
	if n := env.newOrders.Load(); n != 1 {
		t.Errorf("pebble got %d new orders, want only the one that was rate limited", n)
	}
	if b.HasCert(host) {
		t.Errorf("node-b has a certificate for %s", host)
	}
}

func (f *fakeStore) setSecret(name string, v []byte) {
	f.mu.Lock()
	f.secrets[name] = v
	f.mu.Unlock()
}

func selfSigned(t *testing.T, names ...string) (*x509.Certificate, []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	c, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	return c, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})...)
}

func poolOf(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

// TestChallengeLookupsBounded: a flood of http-01 requests costs the
// managers a bounded number of store reads: 10 a second for names no
// route has, and reads of one key coalesce.
func TestChallengeLookupsBounded(t *testing.T) {
	var l windowLimiter
	t0 := time.Unix(1000, 0)
	count := func(key string, limit int, at time.Time) (n int) {
		for range 1000 {
			if l.allow(key, limit, at) {
				n++
			}
		}
		return n
	}
	if n := count("", 10, t0); n != 10 {
		t.Errorf("unrouted names: %d lookups in a second, want 10", n)
	}
	if n := count("", 10, t0.Add(time.Second)); n != 10 {
		t.Errorf("the next second: %d lookups, want 10 again", n)
	}
}

func TestChallengeReadsCoalesce(t *testing.T) {
	var f flights
	release := make(chan struct{})
	var reads atomic.Int32
	var wg sync.WaitGroup
	started := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.do("k", func() ([]byte, error) { reads.Add(1); close(started); <-release; return []byte("v"), nil })
	}()
	<-started
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b, err := f.do("k", func() ([]byte, error) { reads.Add(1); return []byte("other"), nil }); err != nil || (string(b) != "v" && string(b) != "other") {
				t.Errorf("do: %q %v", b, err)
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		f.mu.Lock()
		n := f.m["k"].waiters
		f.mu.Unlock()
		if n == 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 20 lookups joined the read under way", n)
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if n := reads.Load(); n != 1 {
		t.Errorf("%d reads for 21 lookups of one key during one read; want them shared", n)
	}
	// Once done, a new lookup reads again: a miss is never remembered.
	f.do("k", func() ([]byte, error) { reads.Add(1); return nil, nil })
	if f.m["k"] != nil {
		t.Errorf("a finished read stays in flight")
	}
}
