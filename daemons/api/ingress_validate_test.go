package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func yes() *bool { t := true; return &t }

// route is a valid route that each case changes in one place.
func route() api.IngressRoute {
	return api.IngressRoute{Host: "shop.example.com", Path: "/api", Port: 8080}
}

func TestValidateIngress(t *testing.T) {
	type tc struct {
		name  string
		edit  func(r *api.IngressRoute)
		field string // "": valid
		want  string // a substring of the field's message
	}
	host := func(h string) func(*api.IngressRoute) { return func(r *api.IngressRoute) { r.Host = h } }
	path := func(p string) func(*api.IngressRoute) { return func(r *api.IngressRoute) { r.Path = p } }
	tls := func(t api.IngressTLS) func(*api.IngressRoute) { return func(r *api.IngressRoute) { r.TLS = &t } }
	many := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		}
		return out
	}
	cases := []tc{
		{"valid", func(*api.IngressRoute) {}, "", ""},
		{"no path", path(""), "", ""},
		{"root path", path("/"), "", ""},
		{"trailing slash", path("/api/"), "", ""},
		{"dots inside a segment", path("/v1.2/..x/.well-known"), "", ""},
		{"escape", path("/caf%C3%A9"), "", ""},
		{"unicode path", path("/café"), "", ""},
		{"wildcard with dns-01", func(r *api.IngressRoute) {
			r.Host = "*.example.com"
			r.TLS = &api.IngressTLS{Challenge: api.ChallengeDNS01}
		}, "", ""},
		{"wildcard with a secret", func(r *api.IngressRoute) {
			r.Host = "*.example.com"
			r.TLS = &api.IngressTLS{Source: api.TLSSecret, Secret: "wild.pem"}
		}, "", ""},
		{"wildcard without TLS", func(r *api.IngressRoute) { r.Host = "*.example.com"; r.TLS = &api.IngressTLS{Source: api.TLSNone} }, "", ""},
		{"xn-- label", host("xn--caf-dma.example"), "", ""},
		{"63-character label", host(strings.Repeat("a", 63) + ".example"), "", ""},
		{"digits in labels", host("123.4example"), "", ""},
		{"everything", func(r *api.IngressRoute) {
			r.Rewrite = "/v2"
			r.TLS = &api.IngressTLS{Source: api.TLSAcme, Challenge: api.ChallengeTLSALPN01}
			r.HTTPSRedirect = yes()
			r.Allow = []string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1"}
			r.Deny = []string{"10.1.0.0/16"}
			r.RateLimit = &api.RateLimit{Rate: 0.5, Burst: 10}
			r.BasicAuth = &api.BasicAuth{Secret: "shop-users", Realm: "Shop admin"}
			r.RequestHeaders = &api.HeaderRules{Set: map[string]string{"X-Forwarded-Prefix": "/api"}, Remove: []string{"Cookie"}}
			r.ResponseHeaders = &api.HeaderRules{Add: map[string]string{"Strict-Transport-Security": "max-age=31536000"}}
			r.ProxyProtocol = "v2"
		}, "", ""},

		{"no host", host(""), "host", "a host is required"},
		{"IPv4 host", host("192.0.2.1"), "host", "is an IP address: a route needs a DNS name"},
		{"IPv6 host", host("[2001:db8::1]"), "host", "is an IP address"},
		{"all-digit last label", host("shop.123"), "host", "all-digit label"},
		{"port", host("shop.example.com:8443"), "host", "has a port: leave it out"},
		{"trailing dot", host("shop.example.com."), "host", "leave the trailing dot out"},
		{"capitals", host("Shop.Example.com"), "host", "write it in lower case, shop.example.com"},
		{"underscore", host("my_shop.example.com"), "host", "holds '_'"},
		{"one label", host("localhost"), "host", "is one label"},
		{"wildcard over a TLD", host("*.com"), "host", "wildcard over a top-level domain"},
		{"wildcard inside", host("a.*.example.com"), "host", "one leading '*' label"},
		{"partial wildcard", host("*shop.example.com"), "host", "one leading '*' label"},
		{"two wildcards", host("*.*.example.com"), "host", "one leading '*' label"},
		{"empty label", host("shop..example.com"), "host", "empty label"},
		{"leading dot", host(".example.com"), "host", "empty label"},
		{"long label", host(strings.Repeat("a", 64) + ".example"), "host", "label of 64 characters"},
		{"long name", host(strings.Repeat("abcdefghi.", 26) + "com"), "host", "at most 253"},
		{"dash at a label's end", host("shop-.example.com"), "host", "starts or ends with '-'"},
		{"unicode host", host("café.example"), "host", "punycode"},
		{"URL", host("https://shop.example.com/"), "host", "looks like a URL"},
		{"bad character", host("shop!.example.com"), "host", "a DNS name may not"},

		{"relative path", path("api"), "path", "write it as /api"},
		{"dot-dot", path("/api/../admin"), "path", `holds a ".." segment`},
		{"dot", path("/api/./x"), "path", `holds a "." segment`},
		{"final dot-dot", path("/api/.."), "path", `".." segment`},
		{"double slash", path("/api//x"), "path", "holds '//'"},
		{"query", path("/api?x=1"), "path", "without a query or fragment"},
		{"fragment", path("/api#top"), "path", "without a query or fragment"},
		{"control", path("/api\x01"), "path", "control character"},
		{"NUL", path("/api\x00"), "path", "control character"},
		{"space", path("/my api"), "path", "write it as %20"},
		{"stray percent", path("/100%"), "path", "write a % as %25"},
		{"escaped dot", path("/api/%2e%2E"), "path", "escaped '.' or '/'"},
		{"escaped slash", path("/a%2Fb"), "path", "escaped '.' or '/'"},
		{"long path", path("/" + strings.Repeat("a", api.MaxIngressPathLen)), "path", "the limit is 1024"},

		{"no port", func(r *api.IngressRoute) { r.Port = 0 }, "port", "(1-65535) is required"},
		{"strip and rewrite", func(r *api.IngressRoute) { r.StripPrefix = true; r.Rewrite = "/v2" }, "rewrite", "do not go together"},
		{"relative rewrite", func(r *api.IngressRoute) { r.Rewrite = "v2" }, "rewrite", "does not start with '/'"},

		{"unknown source", tls(api.IngressTLS{Source: "letsencrypt"}), "tls.source", "use acme (the default), secret or none"},
		{"unknown challenge", tls(api.IngressTLS{Challenge: "http"}), "tls.challenge", "is not an ACME challenge"},
		{"challenge without acme", tls(api.IngressTLS{Source: api.TLSNone, Challenge: api.ChallengeHTTP01}), "tls.challenge", "goes with source acme only"},
		{"secret source without a name", tls(api.IngressTLS{Source: api.TLSSecret}), "tls.secret", "tls=secret:NAME"},
		{"secret with acme", tls(api.IngressTLS{Secret: "x"}), "tls.secret", "of source secret only"},
		{"bad secret name", tls(api.IngressTLS{Source: api.TLSSecret, Secret: "../etc"}), "tls.secret", "is not valid"},
		{"wildcard with http-01", func(r *api.IngressRoute) { r.Host = "*.example.com" }, "tls.challenge", "set challenge dns-01"},
		{"wildcard with tls-alpn-01", func(r *api.IngressRoute) {
			r.Host = "*.example.com"
			r.TLS = &api.IngressTLS{Challenge: api.ChallengeTLSALPN01}
		}, "tls.challenge", "through dns-01 only"},
		{"redirect without a certificate", func(r *api.IngressRoute) {
			r.TLS = &api.IngressTLS{Source: api.TLSNone}
			r.HTTPSRedirect = yes()
		}, "httpsRedirect", "needs a certificate"},

		{"bad CIDR", func(r *api.IngressRoute) { r.Allow = []string{"10.0.0.0/8", "10.0.0.0/33"} }, "allow[1]", "is not a CIDR prefix"},
		{"name in deny", func(r *api.IngressRoute) { r.Deny = []string{"example.com"} }, "deny[0]", "is not an IP address or a CIDR prefix"},
		{"zone", func(r *api.IngressRoute) { r.Deny = []string{"fe80::1%eth0"} }, "deny[0]", "is not an IP address"},
		{"allow at the limit", func(r *api.IngressRoute) { r.Allow = many(api.MaxIngressCIDRs) }, "", ""},
		{"allow over the limit", func(r *api.IngressRoute) { r.Allow = many(api.MaxIngressCIDRs + 1) }, "allow", "257 entries; the limit is 256"},

		{"zero rate", func(r *api.IngressRoute) { r.RateLimit = &api.RateLimit{} }, "rateLimit.rate", "more than 0"},
		{"huge rate", func(r *api.IngressRoute) { r.RateLimit = &api.RateLimit{Rate: 2e6} }, "rateLimit.rate", "at most 1000000"},
		{"negative burst", func(r *api.IngressRoute) { r.RateLimit = &api.RateLimit{Rate: 1, Burst: -1} }, "rateLimit.burst", "is not a burst"},
		{"basic auth without a secret", func(r *api.IngressRoute) { r.BasicAuth = &api.BasicAuth{} }, "basicAuth.secret", "htpasswd -B"},
		{"quote in the realm", func(r *api.IngressRoute) { r.BasicAuth = &api.BasicAuth{Secret: "u", Realm: `a"b`} }, "basicAuth.realm", "without quotes"},
		{"newline in the realm", func(r *api.IngressRoute) { r.BasicAuth = &api.BasicAuth{Secret: "u", Realm: "a\nb"} }, "basicAuth.realm", "printable"},

		{"bad header name", func(r *api.IngressRoute) { r.RequestHeaders = &api.HeaderRules{Set: map[string]string{"X Bad": "1"}} },
			"requestHeaders.set.X Bad", "is not a header name"},
		{"CRLF in a value", func(r *api.IngressRoute) {
			r.ResponseHeaders = &api.HeaderRules{Add: map[string]string{"X-A": "1\r\nSet-Cookie: x=1"}}
		}, "responseHeaders.add.X-A", "CR, LF or NUL"},
		{"hop-by-hop", func(r *api.IngressRoute) { r.RequestHeaders = &api.HeaderRules{Remove: []string{"transfer-encoding"}} },
			"requestHeaders.remove[0]", "a route may not change it"},
		{"Host", func(r *api.IngressRoute) { r.RequestHeaders = &api.HeaderRules{Set: map[string]string{"Host": "x"}} },
			"requestHeaders.set.Host", "the proxy sets it"},
		{"Upgrade", func(r *api.IngressRoute) {
			r.ResponseHeaders = &api.HeaderRules{Set: map[string]string{"Upgrade": "h2c"}}
		},
			"responseHeaders.set.Upgrade", "belongs to the connection"},
		{"too many header rules", func(r *api.IngressRoute) { r.RequestHeaders = &api.HeaderRules{Remove: many(api.MaxHeaderRules + 1)} },
			"requestHeaders", "the limit is 64"},

		{"proxy protocol v3", func(r *api.IngressRoute) { r.ProxyProtocol = "v3" }, "proxyProtocol", "use v1 or v2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := route()
			c.edit(&r)
			s := goodSpec()
			s.Ingress = []api.IngressRoute{r}
			call := fmt.Sprintf("ValidateServiceSpec(ingress %s)", c.name)
			err := api.ValidateServiceSpec(&s)
			if c.field == "" {
				if err != nil {
					t.Fatalf("%s = %v, want nil", call, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s = nil, want an error on ingress[0].%s", call, c.field)
			}
			fields := fieldsOf(t, call, err, "service spec")
			want := "ingress[0]." + c.field
			if c.field == "" || len(fields) != 1 || fields[0] != want {
				t.Fatalf("%s named %v, want [%s]\n%v", call, fields, want, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s = %q, want it to say %q", call, err, c.want)
			}
		})
	}
}

func TestValidateIngressRoutes(t *testing.T) {
	other := route()
	other.Path = "/web"
	for _, c := range []struct {
		name   string
		routes []api.IngressRoute
		field  string
		want   string
	}{
		{"two paths", []api.IngressRoute{route(), other}, "", ""},
		{"the same route twice", []api.IngressRoute{route(), route()}, "ingress[1]", "ingress[0] has the same host and path (host=shop.example.com path=/api)"},
		{"the same route, written otherwise", []api.IngressRoute{route(), {Host: "SHOP.example.com", Path: "/api/", Port: 81}},
			"ingress[1]", "ingress[0] has the same host and path"},
		{"too many", make([]api.IngressRoute, api.MaxIngressRoutes+1), "ingress", "65 routes; the limit is 64"},
	} {
		s := goodSpec()
		s.Ingress = c.routes
		api.NormalizeSpec(&s)
		err := api.ValidateServiceSpec(&s)
		call := fmt.Sprintf("ValidateServiceSpec(%s)", c.name)
		if c.field == "" {
			if err != nil {
				t.Errorf("%s = %v, want nil", call, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s = nil, want an error on %s", call, c.field)
			continue
		}
		if fields := fieldsOf(t, call, err, "service spec"); len(fields) != 1 || fields[0] != c.field || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s = %v, want one problem on %s saying %q", call, err, c.field, c.want)
		}
	}
}

func TestNormalizeIngress(t *testing.T) {
	s := goodSpec()
	in := api.IngressRoute{Host: "Shop.Example.COM", Path: "/api/", Port: 80,
		Allow: []string{"10.1.2.3/8", "192.0.2.7", "2001:DB8::1", "bad"}, Deny: []string{"::ffff:10.0.0.1/128"}}
	s.Ingress = []api.IngressRoute{in, {Host: "b.example.com", Port: 80}}
	api.NormalizeSpec(&s)
	got := s.Ingress[0]
	if got.Host != "shop.example.com" || got.Path != "/api" {
		t.Errorf("NormalizeSpec gave host %q path %q, want shop.example.com /api", got.Host, got.Path)
	}
	if want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128", "bad"}; strings.Join(got.Allow, " ") != strings.Join(want, " ") {
		t.Errorf("NormalizeSpec gave allow %q, want %q", got.Allow, want)
	}
	if got.Deny[0] != "::ffff:10.0.0.1/128" {
		t.Errorf("NormalizeSpec gave deny %q, want ::ffff:10.0.0.1/128", got.Deny)
	}
	if in.Allow[0] != "10.1.2.3/8" {
		t.Errorf("NormalizeSpec changed the caller's allow list: %q", in.Allow)
	}
	if s.Ingress[1].Path != "/" {
		t.Errorf("NormalizeSpec gave path %q for none, want /", s.Ingress[1].Path)
	}
	again := s
	again.Ingress = []api.IngressRoute{got.Normalized(), s.Ingress[1].Normalized()}
	if !api.SpecEqual(&s, &again) {
		t.Errorf("Normalized is not idempotent: %+v, then %+v", s.Ingress, again.Ingress)
	}
}

// FuzzIngressHostPath validates routes with any host and path: nothing
// panics, and a route that is accepted is accepted again once normalized,
// with the same key, and normalizing twice changes nothing.
func FuzzIngressHostPath(f *testing.F) {
	for _, seed := range [][2]string{
		{"shop.example.com", "/api"}, {"*.example.com", "/"}, {"Shop.Example.com", "/api/"}, {"a.b", ""},
		{"192.0.2.1", "/x"}, {"x.example", "/a/../b"}, {"x.example", "//"}, {"*.x.example", "/%2e"},
		{"x.example", "/"}, {"xn--d.example", "/caf\u00e9/"}, {"x.example", "/a%zz"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		s := goodSpec()
		s.Ingress = []api.IngressRoute{{Host: host, Path: path, Port: 80, TLS: &api.IngressTLS{Source: api.TLSNone}}}
		if api.ValidateServiceSpec(&s) != nil {
			return
		}
		key := s.Ingress[0].Key()
		api.NormalizeSpec(&s)
		if err := api.ValidateServiceSpec(&s); err != nil {
			t.Fatalf("route host %q path %q is valid, but not once normalized to %q %q: %v", host, path, s.Ingress[0].Host, s.Ingress[0].Path, err)
		}
		if k := s.Ingress[0].Key(); k != key || k.Host != s.Ingress[0].Host || k.Path != s.Ingress[0].Path {
			t.Fatalf("route host %q path %q: key %v before normalizing, %v after, route %q %q", host, path, key, k, s.Ingress[0].Host, s.Ingress[0].Path)
		}
		if n := s.Ingress[0].Normalized(); n.Host != s.Ingress[0].Host || n.Path != s.Ingress[0].Path {
			t.Fatalf("normalizing %q %q twice gives %q %q", s.Ingress[0].Host, s.Ingress[0].Path, n.Host, n.Path)
		}
	})
}
