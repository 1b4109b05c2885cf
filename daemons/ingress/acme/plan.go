package acme

import (
	"fmt"
	"sort"
	"strings"

	"github.com/caddyserver/certmagic"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/ingress"
)

// hostPlan is where one routed host's certificate comes from.
type hostPlan struct {
	Host      string
	Source    string // api.TLSAcme or api.TLSSecret
	Challenge string // with acme: api.ChallengeHTTP01, TLSALPN01 or DNS01
	Secret    string // with secret: the secret's name
	// Err says why the host gets no certificate (a route the API should
	// have refused); the host is not managed.
	Err string
}

// table is the hosts that get certificates, by host ("shop.example",
// "*.shop.example").
type table map[string]hostPlan

// planRoutes says, for each host of routes, where its certificate comes
// from. It is pure. A host with TLS none on all its routes is left out.
// Where the routes of one host disagree (validation elsewhere should
// refuse that), a secret beats acme, then the first route by path wins;
// conflicts lists what was overruled.
func planRoutes(routes []api.IngressRoute, haveCA, haveDNSHook bool) (t table, conflicts []string) {
	sorted := make([]api.IngressRoute, len(routes))
	copy(sorted, routes)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Host != sorted[j].Host {
			return sorted[i].Host < sorted[j].Host
		}
		return sorted[i].Path < sorted[j].Path
	})
	t = make(table)
	for _, r := range sorted {
		host := r.Key().Host
		p, ok := planRoute(host, r.TLS, haveCA, haveDNSHook)
		if !ok {
			continue
		}
		cur, seen := t[host]
		switch {
		case !seen:
			t[host] = p
		case cur.Source == api.TLSAcme && p.Source == api.TLSSecret:
			conflicts = append(conflicts, fmt.Sprintf("%s: the certificate from secret %s replaces ACME (%s)", host, p.Secret, cur.Challenge))
			t[host] = p
		case cur != p:
			conflicts = append(conflicts, fmt.Sprintf("%s: route %s asks for %s, the host keeps %s", host, r.Path, describe(p), describe(cur)))
		}
	}
	return t, conflicts
}

func describe(p hostPlan) string {
	if p.Source == api.TLSSecret {
		return "secret " + p.Secret
	}
	return "acme " + p.Challenge
}

// planRoute is one route's certificate; false if it has none.
func planRoute(host string, tls *api.IngressTLS, haveCA, haveDNSHook bool) (hostPlan, bool) {
	src, chal, secret := api.TLSAcme, api.ChallengeHTTP01, ""
	if tls != nil {
		if tls.Source != "" {
			src = tls.Source
		}
		if tls.Challenge != "" {
			chal = tls.Challenge
		}
		secret = tls.Secret
	}
	p := hostPlan{Host: host, Source: src}
	switch src {
	case api.TLSNone:
		return hostPlan{}, false
	case api.TLSSecret:
		p.Secret = secret
		if secret == "" {
			p.Err = "TLS source secret names no secret"
		}
		return p, true
	case api.TLSAcme:
	default:
		p.Err = fmt.Sprintf("unknown TLS source %q", src)
		return p, true
	}
	p.Challenge = chal
	switch {
	case chal != api.ChallengeHTTP01 && chal != api.ChallengeTLSALPN01 && chal != api.ChallengeDNS01:
		p.Err = fmt.Sprintf("unknown ACME challenge %q", chal)
	case !certmagic.SubjectQualifiesForCert(host):
		p.Err = fmt.Sprintf("%q is not a name a certificate can be issued for", host)
	case strings.HasPrefix(host, "*.") && chal != api.ChallengeDNS01:
		p.Err = "a wildcard host needs the dns-01 challenge (or a certificate from a secret)"
	case chal == api.ChallengeDNS01 && !haveDNSHook:
		p.Err = "the dns-01 challenge needs warren-ingress's --dns-hook"
	case !haveCA:
		p.Err = "this ingress node has no ACME CA (warren ingress --acme-ca URL); give the route a certificate from a secret, or TLS source none"
	}
	return p, true
}

// normalizeHost is the name a client asked for (SNI, Host), as routes
// name hosts.
func normalizeHost(h string) string { return ingress.NormalizeHost(strings.TrimSpace(h)) }

// lookup finds the plan that serves name: the exact host first, then the
// wildcard of one label ("*.shop.example" for "a.shop.example", not for
// "a.b.shop.example").
func (t table) lookup(name string) (hostPlan, bool) {
	name = normalizeHost(name)
	if name == "" {
		return hostPlan{}, false
	}
	if p, ok := t[name]; ok {
		return p, true
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		if p, ok := t["*"+name[i:]]; ok {
			return p, true
		}
	}
	return hostPlan{}, false
}

// acmeNames returns the hosts to manage with ACME, by challenge type.
func (t table) acmeNames() map[string]string {
	out := make(map[string]string)
	for h, p := range t {
		if p.Source == api.TLSAcme && p.Err == "" {
			out[h] = p.Challenge
		}
	}
	return out
}
