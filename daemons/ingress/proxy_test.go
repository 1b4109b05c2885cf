package ingress

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/crypto/bcrypt"

	"github.com/warren-edge/warren/daemons/api"
)

func TestProxyRoutesAndRefusals(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("b1"))
	reg := prometheus.NewRegistry()
	p := New(Config{Registerer: reg})
	p.SetTable(BuildTable(TableOptions{}, []*api.Service{
		svc("s1", "web", api.IngressRoute{Host: "web.example", Port: port}),
		svc("s2", "empty", api.IngressRoute{Host: "empty.example", Port: port}),
	}, []*api.Task{task("t1", "s1", "n1", ips[0])}))
	c := clientTo(t, startPlain(t, p, false, nil))

	resp, body := do(t, c, newReq(t, "GET", "http://web.example/a/b?q=1", "", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("GET web.example/a/b: %d %q, want 200", resp.StatusCode, body)
	}
	s := decodeSeen(t, body)
	if s.Host != "web.example" || s.URI != "/a/b?q=1" || s.XFF != "127.0.0.1" || s.XFP != "http" || s.XFH != "web.example" {
		t.Errorf("backend saw %+v, want host web.example, URI /a/b?q=1, XFF 127.0.0.1, proto http", s)
	}

	resp, body = do(t, c, newReq(t, "GET", "http://nobody.example/", "", nil))
	if resp.StatusCode != 404 || !strings.Contains(body, "no route") {
		t.Errorf("GET of an unknown host: %d %q, want 404 no route", resp.StatusCode, body)
	}
	resp, body = do(t, c, newReq(t, "GET", "http://empty.example/", "", nil))
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET of a route without backends: %d %q Retry-After %q, want 503 with Retry-After", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}

	if resp, _ := do(t, c, newReq(t, "CONNECT", "http://web.example:443", "", nil)); resp.StatusCode != 405 {
		t.Errorf("CONNECT: %d, want 405", resp.StatusCode)
	}

	if got := testutil.ToFloat64(p.metrics.requests.WithLabelValues("web.example/", "2xx")); got != 1 {
		t.Errorf("requests_total{route=web.example/,code=2xx} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(p.metrics.requests.WithLabelValues("", "4xx")); got != 2 {
		t.Errorf(`requests_total{route="",code=4xx} = %v, want 2 (the unknown host, CONNECT)`, got)
	}
	if got := testutil.ToFloat64(p.metrics.backends.WithLabelValues("web.example/")); got != 1 {
		t.Errorf("backends{route=web.example/} = %v, want 1", got)
	}
	n, err := testutil.GatherAndCount(reg, "warren_ingress_request_duration_seconds", "warren_ingress_backends")
	if err != nil || n != 5 { // 3 routes took requests ("" for the unknown host), 2 backends gauges
		t.Errorf("gathered %d duration and backends series (err %v), want 5", n, err)
	}
	p.SetTable(BuildTable(TableOptions{}, nil, nil))
	if n := testutil.CollectAndCount(p.metrics.backends); n != 0 {
		t.Errorf("backends gauge has %d series after every route left, want 0", n)
	}
}

func TestProxyForwardedHeaders(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("b1"))
	tb := tableFor(ips, api.IngressRoute{Host: "web.example", Port: port})
	get := func(cfg Config) seen {
		p := New(cfg)
		p.SetTable(tb)
		c := clientTo(t, startPlain(t, p, false, nil))
		req := newReq(t, "GET", "http://web.example/", "", nil)
		req.Header.Set("X-Forwarded-For", "198.51.100.1, 10.1.1.1")
		req.Header.Set("X-Forwarded-Proto", "https")
		req.Header.Set("X-Forwarded-Host", "front.example")
		req.Header.Set("X-Real-IP", "6.6.6.6")
		resp, body := do(t, c, req)
		if resp.StatusCode != 200 {
			t.Fatalf("GET: %d %q", resp.StatusCode, body)
		}
		return decodeSeen(t, body)
	}
	// from anyone: replaced, or left out
	if s := get(Config{}); s.RealIP != "" {
		t.Errorf("untrusted peer without RealIP: backend saw X-Real-IP %q, want none", s.RealIP)
	}
	s := get(Config{RealIP: true})
	if s.XFF != "127.0.0.1" || s.XFP != "http" || s.XFH != "web.example" || s.RealIP != "127.0.0.1" {
		t.Errorf("untrusted peer: backend saw XFF %q proto %q host %q real %q, want 127.0.0.1 http web.example 127.0.0.1", s.XFF, s.XFP, s.XFH, s.RealIP)
	}
	// from a trusted hop: appended; the client is the last untrusted hop
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	s = get(Config{RealIP: true, TrustedProxies: trusted})
	if s.XFF != "198.51.100.1, 10.1.1.1, 127.0.0.1" || s.XFP != "https" || s.XFH != "front.example" || s.RealIP != "198.51.100.1" {
		t.Errorf("trusted peer: backend saw XFF %q proto %q host %q real %q, want the chain appended, https, front.example, 198.51.100.1", s.XFF, s.XFP, s.XFH, s.RealIP)
	}
}

func TestProxyPathAndHeaderRules(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("b1"))
	p := New(Config{})
	p.SetTable(tableFor(ips,
		api.IngressRoute{Host: "web.example", Path: "/api", StripPrefix: true, Port: port,
			RequestHeaders:  &api.HeaderRules{Remove: []string{"X-Drop"}, Set: map[string]string{"X-Set": "s"}, Add: map[string]string{"X-Add": "a"}},
			ResponseHeaders: &api.HeaderRules{Remove: []string{"X-Backend-Secret"}, Set: map[string]string{"Strict-Transport-Security": "max-age=60"}}},
		api.IngressRoute{Host: "web.example", Path: "/v1", Rewrite: "/v2/", Port: port},
		api.IngressRoute{Host: "web.example", Path: "/admin", Allow: []string{"10.0.0.0/8"}, Port: port},
		api.IngressRoute{Host: "web.example", Port: port},
	))
	c := clientTo(t, startPlain(t, p, false, nil))
	tests := []struct {
		uri, wantPath, wantRaw string
		wantCode               int
	}{
		{"/api/x/y?q=1", "/x/y", "", 200},
		{"/api", "/", "", 200},
		{"/api/a%2Fb/c", "/a/b/c", "/a%2Fb/c", 200},
		{"/apix", "/apix", "", 200}, // the "/" route, not /api
		{"/v1/users", "/v2/users", "", 200},
		{"/v1", "/v2", "", 200},
		{"/v1/a%2Fb", "/v2/a/b", "/v2/a%2Fb", 200},
		{"/admin/x", "", "", 403},
		{"/public/../admin/x", "", "", 403}, // cleaned before routing
		{"/public/%2e%2e/admin", "", "", 403},
	}
	for _, tt := range tests {
		req := newReq(t, "GET", "http://web.example"+tt.uri, "", nil)
		req.Header.Set("X-Drop", "1")
		req.Header.Set("X-Add", "client")
		resp, body := do(t, c, req)
		if resp.StatusCode != tt.wantCode {
			t.Errorf("GET %s: %d %q, want %d", tt.uri, resp.StatusCode, body, tt.wantCode)
			continue
		}
		if tt.wantCode != 200 {
			continue
		}
		s := decodeSeen(t, body)
		if s.Path != tt.wantPath || s.RawPath != tt.wantRaw {
			t.Errorf("GET %s: backend saw path %q raw %q, want %q %q", tt.uri, s.Path, s.RawPath, tt.wantPath, tt.wantRaw)
		}
		if tt.uri == "/api" || strings.HasPrefix(tt.uri, "/api/") {
			if s.Header.Get("X-Drop") != "" || s.Header.Get("X-Set") != "s" || strings.Join(s.Header.Values("X-Add"), ",") != "client,a" {
				t.Errorf("GET %s: backend saw headers %v, want X-Drop removed, X-Set s, X-Add client,a", tt.uri, s.Header)
			}
			if resp.Header.Get("X-Backend-Secret") != "" || resp.Header.Get("Strict-Transport-Security") != "max-age=60" {
				t.Errorf("GET %s: response headers %v, want X-Backend-Secret removed and HSTS set", tt.uri, resp.Header)
			}
		} else if resp.Header.Get("X-Backend-Secret") != "internal" {
			t.Errorf("GET %s: response header rules of /api applied to another route", tt.uri)
		}
	}
}

func TestProxyAllowDeny(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("b1"))
	p := New(Config{})
	p.SetTable(tableFor(ips,
		api.IngressRoute{Host: "web.example", Path: "/allowed", Allow: []string{"127.0.0.1/32"}, Port: port},
		api.IngressRoute{Host: "web.example", Path: "/other-net", Allow: []string{"10.0.0.0/8", "::1"}, Port: port},
		api.IngressRoute{Host: "web.example", Path: "/denied", Deny: []string{"127.0.0.0/8"}, Port: port},
		api.IngressRoute{Host: "web.example", Path: "/deny-wins", Allow: []string{"127.0.0.1/32"}, Deny: []string{"127.0.0.1"}, Port: port},
		api.IngressRoute{Host: "web.example", Path: "/bad", Allow: []string{"not-a-cidr"}, Port: port},
	))
	c := clientTo(t, startPlain(t, p, false, nil))
	for path, want := range map[string]int{"/allowed": 200, "/other-net": 403, "/denied": 403, "/deny-wins": 403, "/bad": 403} {
		resp, body := do(t, c, newReq(t, "GET", "http://web.example"+path, "", nil))
		if resp.StatusCode != want {
			t.Errorf("GET %s from 127.0.0.1: %d %q, want %d", path, resp.StatusCode, body, want)
		}
	}
}

func TestProxyRateLimit(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("b1"))
	p := New(Config{})
	rl := &api.RateLimit{Rate: 0.01, Burst: 2} // one token per 100s
	p.SetTable(tableFor(ips, api.IngressRoute{Host: "web.example", RateLimit: rl, Port: port}))
	c := clientTo(t, startPlain(t, p, false, nil))
	codes := []int{}
	var last *http.Response
	for range 3 {
		resp, _ := do(t, c, newReq(t, "GET", "http://web.example/", "", nil))
		codes = append(codes, resp.StatusCode)
		last = resp
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Fatalf("3 GETs with a burst of 2: codes %v, want [200 200 429]", codes)
	}
	if ra := last.Header.Get("Retry-After"); ra != "100" {
		t.Errorf("429 Retry-After = %q, want 100 (seconds to the next token)", ra)
	}
	// a new table with the same limit keeps the buckets
	p.SetTable(tableFor(ips, api.IngressRoute{Host: "web.example", RateLimit: rl, Port: port}))
	if resp, _ := do(t, c, newReq(t, "GET", "http://web.example/", "", nil)); resp.StatusCode != 429 {
		t.Errorf("GET after a table swap with the same limit: %d, want 429 still", resp.StatusCode)
	}
}

func TestLimiterMemoryBounded(t *testing.T) {
	l := newLimiter(1, 1, 1024)
	now := time.Now()
	var b [4]byte
	for i := range 200_000 {
		b[0], b[1], b[2] = byte(i>>16), byte(i>>8), byte(i)
		l.allow(netip.AddrFrom4(b), now)
	}
	if n := l.size(); n > 1024 {
		t.Errorf("after 200000 addresses the limiter remembers %d, want at most 1024", n)
	}
	a := netip.MustParseAddr("192.0.2.1")
	if ok, _ := l.allow(a, now); !ok {
		t.Fatal("first request of a new client refused")
	}
	ok, wait := l.allow(a, now)
	if ok || wait != time.Second {
		t.Errorf("second request at once: allowed %v, wait %v; want refused, 1s", ok, wait)
	}
	if ok, _ := l.allow(a, now.Add(time.Second)); !ok {
		t.Error("request a second later refused, want allowed")
	}
	// an IPv6 host does not get a bucket per address of its /64
	if ok, _ := l.allow(netip.MustParseAddr("2001:db8:1:2::1"), now); !ok {
		t.Fatal("first request of an IPv6 client refused")
	}
	if ok, _ := l.allow(netip.MustParseAddr("2001:db8:1:2:ffff::2"), now); ok {
		t.Error("second request from the same /64 allowed, want refused")
	}
}

func TestProxyBasicAuth(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("b1"))
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := "# users\nalice:" + strings.Replace(string(hash), "$2a$", "$2y$", 1) + "\n"
	var loads atomic.Int32
	fail := atomic.Bool{}
	p := New(Config{Secret: func(name string) ([]byte, error) {
		loads.Add(1)
		if fail.Load() {
			return nil, errors.New("manager unreachable")
		}
		if name != "web-users" {
			return nil, errors.New("no such secret")
		}
		return []byte(users), nil
	}})
	route := api.IngressRoute{Host: "web.example", Port: port, BasicAuth: &api.BasicAuth{Secret: "web-users", Realm: "Shop"}}
	p.SetTable(tableFor(ips, route))
	c := clientTo(t, startPlain(t, p, false, nil))

	get := func(user, pass string) *http.Response {
		req := newReq(t, "GET", "http://web.example/", "", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, _ := do(t, c, req)
		return resp
	}
	resp := get("", "")
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="Shop"`) {
		t.Errorf("GET without credentials: %d WWW-Authenticate %q, want 401 realm=\"Shop\"", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	for _, up := range [][2]string{{"alice", "wrong"}, {"bob", "s3cret"}} {
		if resp := get(up[0], up[1]); resp.StatusCode != 401 {
			t.Errorf("GET as %s:%s: %d, want 401", up[0], up[1], resp.StatusCode)
		}
	}
	for range 3 {
		if resp := get("alice", "s3cret"); resp.StatusCode != 200 {
			t.Errorf("GET as alice with her password: %d, want 200", resp.StatusCode)
		}
	}
	if n := loads.Load(); n != 1 {
		t.Errorf("the users secret was loaded %d times for one table, want 1", n)
	}
	// a new table loads it again; a failing load answers 503
	fail.Store(true)
	p.SetTable(tableFor(ips, route))
	if resp := get("alice", "s3cret"); resp.StatusCode != 503 {
		t.Errorf("GET while the users cannot be loaded: %d, want 503", resp.StatusCode)
	}
}

func TestProxyHTTPSRedirect(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("b1"))
	var challenges atomic.Int32
	p := New(Config{
		HasCert:        func(host string) bool { return host == "secure.example" },
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Challenge: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			challenges.Add(1)
			w.Write([]byte("token"))
		}),
	})
	p.SetTable(BuildTable(TableOptions{}, []*api.Service{svc("s1", "web",
		api.IngressRoute{Host: "secure.example", Port: port},
		api.IngressRoute{Host: "plain.example", Port: port},
		api.IngressRoute{Host: "forced.example", HTTPSRedirect: ptr(true), Port: port},
		api.IngressRoute{Host: "optout.example", HTTPSRedirect: ptr(false), Port: port},
	)}, []*api.Task{task("t1", "s1", "n1", ips[0])}))
	c := clientTo(t, startPlain(t, p, false, nil))
	tests := []struct {
		url, xfp     string
		code         int
		wantLocation string
	}{
		{"http://secure.example/a?b=c", "", 308, "https://secure.example/a?b=c"},
		{"http://Secure.Example:80/", "", 308, "https://Secure.Example/"},
		{"http://plain.example/", "", 200, ""},
		{"http://forced.example/x", "", 308, "https://forced.example/x"},
		{"http://optout.example/", "", 200, ""},
		{"http://secure.example/", "https", 200, ""}, // TLS ended at a trusted balancer
		{"http://secure.example/.well-known/acme-challenge/tok", "", 200, ""},
		{"http://unknown.example/.well-known/acme-challenge/tok", "", 200, ""},
	}
	for _, tt := range tests {
		req := newReq(t, "GET", tt.url, "", nil)
		if tt.xfp != "" {
			req.Header.Set("X-Forwarded-Proto", tt.xfp)
		}
		resp, body := do(t, c, req)
		if resp.StatusCode != tt.code || resp.Header.Get("Location") != tt.wantLocation {
			t.Errorf("GET %s (X-Forwarded-Proto %q): %d Location %q (%q), want %d %q", tt.url, tt.xfp, resp.StatusCode, resp.Header.Get("Location"), body, tt.code, tt.wantLocation)
		}
	}
	if n := challenges.Load(); n != 2 {
		t.Errorf("the challenge handler got %d requests, want 2", n)
	}
}
