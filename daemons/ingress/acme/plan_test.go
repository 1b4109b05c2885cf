package acme

import (
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestPlanRoutes(t *testing.T) {
	tls := func(src, chal, secret string) *api.IngressTLS {
		return &api.IngressTLS{Source: src, Challenge: chal, Secret: secret}
	}
	for _, c := range []struct {
		name   string
		routes []api.IngressRoute
		hook   bool
		want   map[string]string // host → describe(plan) or "ERR:substring"
	}{
		{"nil TLS is acme http-01", []api.IngressRoute{{Host: "Shop.Example."}}, false,
			map[string]string{"shop.example": "acme http-01"}},
		{"challenges", []api.IngressRoute{
			{Host: "a.example", TLS: tls("acme", "tls-alpn-01", "")},
			{Host: "b.example", TLS: tls("", "dns-01", "")},
			{Host: "c.example", TLS: tls("acme", "", "")},
		}, true, map[string]string{"a.example": "acme tls-alpn-01", "b.example": "acme dns-01", "c.example": "acme http-01"}},
		{"none is left out", []api.IngressRoute{{Host: "plain.example", TLS: tls("none", "", "")}}, false, map[string]string{}},
		{"secret", []api.IngressRoute{{Host: "*.s.example", TLS: tls("secret", "", "s-cert")}}, false,
			map[string]string{"*.s.example": "secret s-cert"}},
		{"wildcard with http-01", []api.IngressRoute{{Host: "*.w.example"}}, true,
			map[string]string{"*.w.example": "ERR:wildcard host needs the dns-01"}},
		{"wildcard with dns-01", []api.IngressRoute{{Host: "*.w.example", TLS: tls("acme", "dns-01", "")}}, true,
			map[string]string{"*.w.example": "acme dns-01"}},
		{"dns-01 without a hook", []api.IngressRoute{{Host: "d.example", TLS: tls("acme", "dns-01", "")}}, false,
			map[string]string{"d.example": "ERR:--dns-hook"}},
		{"secret beats acme on one host", []api.IngressRoute{
			{Host: "m.example", Path: "/"},
			{Host: "m.example", Path: "/api", TLS: tls("secret", "", "m")},
		}, false, map[string]string{"m.example": "secret m"}},
		{"first path wins among acme", []api.IngressRoute{
			{Host: "p.example", Path: "/b", TLS: tls("acme", "tls-alpn-01", "")},
			{Host: "p.example", Path: "/a"},
		}, false, map[string]string{"p.example": "acme http-01"}},
	} {
		got, _ := planRoutes(c.routes, true, c.hook)
		if len(got) != len(c.want) {
			t.Errorf("%s: planRoutes(%v) = %v, want hosts %v", c.name, c.routes, got, c.want)
			continue
		}
		for h, w := range c.want {
			p, ok := got[h]
			switch {
			case !ok:
				t.Errorf("%s: planRoutes has no host %s: %v", c.name, h, got)
			case strings.HasPrefix(w, "ERR:"):
				if !strings.Contains(p.Err, w[4:]) {
					t.Errorf("%s: planRoutes(%s).Err = %q, want it to say %q", c.name, h, p.Err, w[4:])
				}
			case p.Err != "" || describe(p) != w:
				t.Errorf("%s: planRoutes(%s) = %s (err %q), want %s", c.name, h, describe(p), p.Err, w)
			}
		}
	}
}

func TestTableLookup(t *testing.T) {
	tab, _ := planRoutes([]api.IngressRoute{
		{Host: "shop.example"},
		{Host: "*.shop.example", TLS: &api.IngressTLS{Source: "secret", Secret: "w"}},
		{Host: "a.shop.example"},
	}, true, false)
	for name, want := range map[string]string{
		"shop.example":      "shop.example",
		"SHOP.example.":     "shop.example",
		"a.shop.example":    "a.shop.example",
		"b.shop.example":    "*.shop.example",
		"x.b.shop.example":  "",
		"other.example":     "",
		"":                  "",
		"hop.example":       "",
		"shop.example.evil": "",
	} {
		p, ok := tab.lookup(name)
		if got := p.Host; got != want || ok != (want != "") {
			t.Errorf("lookup(%q) = %q, %v; want %q", name, got, ok, want)
		}
	}
	names := tab.acmeNames()
	if len(names) != 2 || names["shop.example"] != api.ChallengeHTTP01 || names["a.shop.example"] != api.ChallengeHTTP01 {
		t.Errorf("acmeNames() = %v, want shop.example and a.shop.example with http-01 (the wildcard is from a secret)", names)
	}
}

// TestPlanWithoutCA: with no ACME CA, an ACME route's host gets an error
// that says what to do, and a secret's route is served as before.
func TestPlanWithoutCA(t *testing.T) {
	tab, _ := planRoutes([]api.IngressRoute{
		{Host: "shop.example"},
		{Host: "static.example", TLS: &api.IngressTLS{Source: api.TLSSecret, Secret: "s"}},
	}, false, false)
	if p := tab["shop.example"]; !strings.Contains(p.Err, "--acme-ca") {
		t.Errorf("shop.example without a CA: %+v", p)
	}
	if p := tab["static.example"]; p.Err != "" || p.Secret != "s" {
		t.Errorf("static.example without a CA: %+v", p)
	}
}
