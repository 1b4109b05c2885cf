package format

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// IngressTable writes ingress ls: one row per route, by host, path and
// service: HOST PATH SERVICE PORT BACKENDS (serving/total) TLS
// (source/challenge, or secret:NAME) CERT (state, and until when).
func IngressTable(w io.Writer, routes []api.IngressRouteStatus) error {
	routes = slices.Clone(routes)
	slices.SortFunc(routes, func(a, b api.IngressRouteStatus) int {
		return cmp.Or(cmp.Compare(a.Route.Host, b.Route.Host), cmp.Compare(a.Route.Key().Path, b.Route.Key().Path), cmp.Compare(a.Service, b.Service))
	})
	rows := make([][]string, 0, len(routes))
	for _, r := range routes {
		serving := 0
		for _, b := range r.Backends {
			if b.Serving {
				serving++
			}
		}
		rows = append(rows, []string{r.Route.Host, r.Route.Key().Path, r.Service, fmt.Sprint(r.Route.Port),
			fmt.Sprintf("%d/%d", serving, len(r.Backends)), RouteTLS(r.Route), CertState(r.Cert)})
	}
	return WriteTable(w, []string{"HOST", "PATH", "SERVICE", "PORT", "BACKENDS", "TLS", "CERT"}, rows)
}

// RouteTLS is where a route's certificate comes from, in short:
// "acme/http-01" (the challenge's default shown), "secret:NAME" or
// "none".
func RouteTLS(r api.IngressRoute) string {
	switch src := r.TLSSource(); src {
	case api.TLSAcme:
		ch := api.ChallengeHTTP01
		if r.TLS != nil && r.TLS.Challenge != "" {
			ch = r.TLS.Challenge
		}
		return src + "/" + ch
	case api.TLSSecret:
		return "secret:" + r.TLS.Secret
	default:
		return src
	}
}

// CertState is a route's certificate in a few words: "valid until
// 2027-03-01", "expiring 2027-03-01", "expired 2026-01-01", "pending",
// "error: ...", or "-" without TLS.
func CertState(c api.IngressCert) string {
	day := ""
	if !c.NotAfter.IsZero() {
		day = c.NotAfter.UTC().Format(time.DateOnly)
	}
	switch c.State {
	case "", "none":
		return "-"
	case "valid":
		if day != "" {
			return "valid until " + day
		}
	case "expiring", "expired":
		if day != "" {
			return c.State + " " + day
		}
	case "error":
		if c.Error != "" {
			return "error: " + c.Error
		}
	}
	return c.State
}

// ingressRoutes writes the routes of a service for inspect --pretty.
func ingressRoutes(p *pretty, routes []api.IngressRoute) {
	if len(routes) == 0 {
		return
	}
	p.head(0, "Ingress")
	for _, r := range routes {
		k := r.Key()
		p.item(1, fmt.Sprintf("Route = %s%s", k.Host, k.Path))
		p.item(2, fmt.Sprintf("TargetPort = %d", r.Port))
		switch {
		case r.StripPrefix:
			p.item(2, "StripPrefix = true")
		case r.Rewrite != "":
			p.item(2, "Rewrite = "+r.Rewrite)
		}
		p.item(2, "TLS = "+RouteTLS(r))
		redirect := r.TLSSource() != api.TLSNone
		if r.HTTPSRedirect != nil {
			redirect = *r.HTTPSRedirect
		}
		p.item(2, fmt.Sprintf("HTTPSRedirect = %v", redirect))
		if len(r.Allow) > 0 {
			p.item(2, "Allow = "+strings.Join(r.Allow, ", "))
		}
		if len(r.Deny) > 0 {
			p.item(2, "Deny = "+strings.Join(r.Deny, ", "))
		}
		if l := r.RateLimit; l != nil {
			burst := ""
			if l.Burst > 0 {
				burst = fmt.Sprintf(", burst %d", l.Burst)
			}
			p.item(2, fmt.Sprintf("RateLimit = %v/s per client%s", l.Rate, burst))
		}
		if a := r.BasicAuth; a != nil {
			realm := ""
			if a.Realm != "" {
				realm = fmt.Sprintf(", realm %q", a.Realm)
			}
			p.item(2, "BasicAuth = users in secret "+a.Secret+realm)
		}
		headerRules(p, "RequestHeaders", r.RequestHeaders)
		headerRules(p, "ResponseHeaders", r.ResponseHeaders)
		if r.ProxyProtocol != "" {
			p.item(2, "ProxyProtocol = "+r.ProxyProtocol)
		}
	}
}

func headerRules(p *pretty, name string, h *api.HeaderRules) {
	if h == nil {
		return
	}
	var ops []string
	for _, k := range h.Remove {
		ops = append(ops, "-"+k)
	}
	for _, k := range slices.Sorted(maps.Keys(h.Set)) {
		ops = append(ops, k+"="+h.Set[k])
	}
	for _, k := range slices.Sorted(maps.Keys(h.Add)) {
		ops = append(ops, k+"+="+h.Add[k])
	}
	if len(ops) > 0 {
		p.item(2, name+" = "+strings.Join(ops, ", "))
	}
}
