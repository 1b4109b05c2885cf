package opts

import (
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/warren-edge/warren/daemons/api"
)

// The ingress flags: --ingress (and --ingress-add) give a route,
// --ingress-rm names one to drop, --ingress-mw sets the middleware of
// one. The checks of the route itself are the API's
// (api.ValidateServiceSpec); these say what is wrong with the flag value.

const ingressExample = "host=shop.example.com,path=/api,port=8080"

// splitKV splits a flag value into KEY=VALUE (or bare KEY) items at its
// commas; an item with a comma in it is written in double quotes, as
// with docker's --mount: "resp-header-set=Cache-Control:no-cache, no-store".
func splitKV(flag, s string) ([][2]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	r := csv.NewReader(strings.NewReader(s))
	r.TrimLeadingSpace = true
	fields, err := r.Read()
	if err != nil || strings.ContainsAny(s, "\r\n") {
		return nil, fmt.Errorf("%s %q: not a list of KEY=VALUE items split by ',' (quote an item that holds a comma)", flag, s)
	}
	out := make([][2]string, 0, len(fields))
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		out = append(out, [2]string{strings.ToLower(strings.TrimSpace(k)), v})
	}
	return out, nil
}

// ParseIngress reads an --ingress (or --ingress-add) value:
//
//	host=shop.example.com,path=/api,port=8080[,strip-prefix][,rewrite=/v2]
//	[,tls=acme|none|secret:NAME][,challenge=http-01|tls-alpn-01|dns-01]
//	[,redirect=true|false][,proxy-protocol=v1|v2]
//
// host and port are required; path defaults to "/".
func ParseIngress(s string) (api.IngressRoute, error) {
	var r api.IngressRoute
	const flag = "--ingress"
	items, err := splitKV(flag, s)
	if err != nil {
		return r, err
	}
	const keys = "host, path, port, strip-prefix, rewrite, tls, challenge, redirect and proxy-protocol"
	port := ""
	for _, kv := range items {
		k, v := kv[0], kv[1]
		switch k {
		case "host":
			r.Host = strings.ToLower(v)
		case "path":
			r.Path = v
		case "port":
			port = v
		case "strip-prefix", "stripprefix":
			b := true // a bare strip-prefix
			if v != "" {
				if b, err = strconv.ParseBool(v); err != nil {
					return r, fmt.Errorf("%s %q: strip-prefix=%q is not true or false", flag, s, v)
				}
			}
			r.StripPrefix = b
		case "rewrite":
			r.Rewrite = v
		case "tls":
			if r.TLS == nil {
				r.TLS = &api.IngressTLS{}
			}
			src, secret, hasSecret := strings.Cut(v, ":")
			switch src = strings.ToLower(src); {
			case src == api.TLSSecret && hasSecret && secret != "":
				r.TLS.Source, r.TLS.Secret = api.TLSSecret, secret
			case src == api.TLSSecret:
				return r, fmt.Errorf("%s %q: tls=secret needs the secret's name: tls=secret:NAME", flag, s)
			case (src == api.TLSAcme || src == api.TLSNone) && !hasSecret:
				r.TLS.Source = src
			default:
				return r, fmt.Errorf("%s %q: tls=%q is not acme, none or secret:NAME", flag, s, v)
			}
		case "challenge":
			if r.TLS == nil {
				r.TLS = &api.IngressTLS{}
			}
			r.TLS.Challenge = strings.ToLower(v)
		case "redirect", "https-redirect":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return r, fmt.Errorf("%s %q: redirect=%q is not true or false", flag, s, v)
			}
			r.HTTPSRedirect = &b
		case "proxy-protocol":
			r.ProxyProtocol = strings.ToLower(v)
		case "":
			return r, fmt.Errorf("%s %q: an empty item; write %s", flag, s, ingressExample)
		default:
			return r, fmt.Errorf("%s %q: unknown key %q; the keys are %s (middleware goes in --ingress-mw)", flag, s, k, keys)
		}
	}
	if r.Host == "" {
		return r, fmt.Errorf("%s %q: the host is missing: e.g. %s", flag, s, ingressExample)
	}
	if port == "" {
		return r, fmt.Errorf("%s %q: the port of the tasks the requests go to is missing: e.g. %s", flag, s, ingressExample)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return r, fmt.Errorf("%s %q: port %q is not a number from 1 to 65535", flag, s, port)
	}
	r.Port = uint16(n)
	return r, nil
}

// ParseIngressRef reads an --ingress-rm value: HOST or HOST/PATH
// ("shop.example.com/api"); HOST alone is the route of path "/".
func ParseIngressRef(s string) (api.IngressKey, error) {
	host, path, ok := strings.Cut(strings.TrimSpace(s), "/")
	if host == "" {
		return api.IngressKey{}, fmt.Errorf("--ingress-rm %q: give the route's HOST[/PATH], e.g. shop.example.com/api", s)
	}
	if ok {
		path = "/" + path
	}
	return api.IngressRoute{Host: host, Path: path}.Key(), nil
}

// SetIngress applies --ingress-rm values, then --ingress (--ingress-add)
// values, to routes: a route given again (same host and path) replaces
// the old one, middleware and all. It returns a new list.
func SetIngress(routes []api.IngressRoute, rm, add []string) ([]api.IngressRoute, error) {
	out := slices.Clone(routes)
	for _, s := range rm {
		k, err := ParseIngressRef(s)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(out, func(r api.IngressRoute) bool { return r.Key() == k })
		if i < 0 {
			return nil, fmt.Errorf("--ingress-rm %q: the service has no ingress route %s%s", s, k, listRoutes(out))
		}
		out = slices.Delete(out, i, i+1)
	}
	for _, s := range add {
		r, err := ParseIngress(s)
		if err != nil {
			return nil, err
		}
		k := r.Key()
		if i := slices.IndexFunc(out, func(have api.IngressRoute) bool { return have.Key() == k }); i >= 0 {
			out[i] = r
		} else {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		out = nil
	}
	return out, nil
}

func listRoutes(routes []api.IngressRoute) string {
	if len(routes) == 0 {
		return " (it has none)"
	}
	var ks []string
	for _, r := range routes {
		k := r.Key()
		ks = append(ks, k.Host+rmPath(k.Path))
	}
	return " (it has " + strings.Join(ks, ", ") + ")"
}

func rmPath(p string) string {
	if p == "/" {
		return ""
	}
	return p
}

// IngressMiddleware is one --ingress-mw value: the route it is for and
// what it changes of that route's middleware.
type IngressMiddleware struct {
	Route api.IngressKey
	in    string
	edits []func(r *api.IngressRoute) error
}

// ParseIngressMiddleware reads an --ingress-mw value:
//
//	host=shop.example.com[,path=/api],KEY=VALUE...
//
// host and path name the route (path: "/" if left out). The keys:
//
//	allow=CIDR;CIDR...   only these clients: replaces the list (allow= again
//	                     in the same value adds to it, as ';' does, without
//	                     quoting it from a shell; an empty one clears it)
//	deny=CIDR;CIDR...    refuse these clients (as allow)
//	rate=R, burst=N      a rate limit per client, R requests a second (rate=0 removes it)
//	basic-auth=SECRET    ask for a user from the secret's htpasswd -B lines (empty removes it)
//	realm=TEXT           the basic auth realm
//	req-header-set=K:V, req-header-add=K:V, req-header-rm=K
//	resp-header-set=K:V, resp-header-add=K:V, resp-header-rm=K
//
// Header keys may be given more than once.
func ParseIngressMiddleware(s string) (IngressMiddleware, error) {
	const flag = "--ingress-mw"
	m := IngressMiddleware{in: s}
	items, err := splitKV(flag, s)
	if err != nil {
		return m, err
	}
	const keys = "host, path, allow, deny, rate, burst, basic-auth, realm, req-header-set, req-header-add, req-header-rm, resp-header-set, resp-header-add and resp-header-rm"
	var host, path string
	edit := func(fn func(r *api.IngressRoute) error) { m.edits = append(m.edits, fn) }
	var rate *float64
	var burst *int
	var realm *string
	lists := map[string][]string{} // allow and deny, as given (nil: cleared)
	for _, kv := range items {
		k, v := kv[0], kv[1]
		switch k {
		case "host":
			host = v
		case "path":
			path = v
		case "allow", "deny":
			list, err := parseCIDRList(v)
			if err != nil {
				return m, fmt.Errorf("%s %q: %s: %w", flag, s, k, err)
			}
			lists[k] = append(lists[k], list...)
		case "rate":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f != f {
				return m, fmt.Errorf("%s %q: rate=%q is not a number of requests a second, e.g. rate=10 or rate=0.5 (rate=0 removes the limit)", flag, s, v)
			}
			rate = &f
		case "burst":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return m, fmt.Errorf("%s %q: burst=%q is not a whole number of requests, e.g. burst=20", flag, s, v)
			}
			burst = &n
		case "basic-auth":
			edit(func(r *api.IngressRoute) error {
				switch {
				case v == "":
					r.BasicAuth = nil
				case r.BasicAuth == nil:
					r.BasicAuth = &api.BasicAuth{Secret: v}
				default:
					r.BasicAuth.Secret = v
				}
				return nil
			})
		case "realm":
			realm = &v
		case "req-header-set", "req-header-add", "resp-header-set", "resp-header-add":
			name, val, ok := strings.Cut(v, ":")
			if !ok || strings.TrimSpace(name) == "" {
				return m, fmt.Errorf("%s %q: %s=%q is not NAME:VALUE, e.g. %s=X-Frame-Options:DENY", flag, s, k, v, k)
			}
			name, val = strings.TrimSpace(name), strings.TrimSpace(val)
			resp, add := strings.HasPrefix(k, "resp-"), strings.HasSuffix(k, "-add")
			edit(func(r *api.IngressRoute) error {
				h := headerRules(r, resp)
				if add {
					h.Add = setMap(h.Add, name, val)
				} else {
					h.Set = setMap(h.Set, name, val)
				}
				return nil
			})
		case "req-header-rm", "resp-header-rm":
			name := strings.TrimSpace(v)
			if name == "" {
				return m, fmt.Errorf("%s %q: %s needs a header name, e.g. %s=Server", flag, s, k, k)
			}
			resp := strings.HasPrefix(k, "resp-")
			edit(func(r *api.IngressRoute) error {
				h := headerRules(r, resp)
				if !slices.Contains(h.Remove, name) {
					h.Remove = append(h.Remove, name)
				}
				return nil
			})
		case "":
			return m, fmt.Errorf("%s %q: an empty item; write host=HOST,path=PATH,KEY=VALUE and so on", flag, s)
		default:
			return m, fmt.Errorf("%s %q: unknown key %q; the keys are %s (the route itself goes in --ingress)", flag, s, k, keys)
		}
	}
	if host == "" {
		return m, fmt.Errorf("%s %q: name the route with host= (and path=, default /), e.g. host=shop.example.com,path=/api,rate=10", flag, s)
	}
	m.Route = api.IngressRoute{Host: host, Path: path}.Key()
	if rate != nil || burst != nil {
		edit(func(r *api.IngressRoute) error {
			switch {
			case rate != nil && *rate == 0:
				r.RateLimit = nil
				return nil
			case rate == nil && r.RateLimit == nil:
				return fmt.Errorf("%s %q: burst goes with a rate limit: add rate=R (requests a second)", flag, s)
			case r.RateLimit == nil:
				r.RateLimit = &api.RateLimit{}
			}
			if rate != nil {
				r.RateLimit.Rate = *rate
			}
			if burst != nil {
				r.RateLimit.Burst = *burst
			}
			return nil
		})
	}
	if l, ok := lists["allow"]; ok {
		edit(func(r *api.IngressRoute) error { r.Allow = l; return nil })
	}
	if l, ok := lists["deny"]; ok {
		edit(func(r *api.IngressRoute) error { r.Deny = l; return nil })
	}
	if realm != nil { // after basic-auth, wherever it was given
		edit(func(r *api.IngressRoute) error {
			if r.BasicAuth == nil {
				return fmt.Errorf("%s %q: realm goes with basic auth: add basic-auth=SECRET", flag, s)
			}
			r.BasicAuth.Realm = *realm
			return nil
		})
	}
	if len(m.edits) == 0 {
		return m, fmt.Errorf("%s %q: nothing to set; the keys are %s", flag, s, keys)
	}
	return m, nil
}

// Apply changes the middleware of the route m names among routes (the
// spec of the service called service, "" for a new one without a name
// yet, as the same command leaves it). It returns a new list; routes is
// left as it is.
func (m IngressMiddleware) Apply(routes []api.IngressRoute, service string) ([]api.IngressRoute, error) {
	i := slices.IndexFunc(routes, func(r api.IngressRoute) bool { return r.Key() == m.Route })
	if i < 0 {
		on := "on service " + service
		if service == "" {
			on = "on the new service"
		}
		return nil, fmt.Errorf("--ingress-mw %q: no ingress route %s %s: add it with --ingress first%s",
			m.in, m.Route, on, listRoutes(routes))
	}
	out := slices.Clone(routes)
	r := routes[i].Normalized() // a deep copy
	for _, e := range m.edits {
		if err := e(&r); err != nil {
			return nil, err
		}
	}
	for _, h := range []**api.HeaderRules{&r.RequestHeaders, &r.ResponseHeaders} {
		if *h != nil && len((*h).Set)+len((*h).Add)+len((*h).Remove) == 0 {
			*h = nil
		}
	}
	out[i] = r
	return out, nil
}

func headerRules(r *api.IngressRoute, resp bool) *api.HeaderRules {
	p := &r.RequestHeaders
	if resp {
		p = &r.ResponseHeaders
	}
	if *p == nil {
		*p = &api.HeaderRules{}
	}
	return *p
}

func setMap(m map[string]string, k, v string) map[string]string {
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// parseCIDRList reads "CIDR;CIDR..." into canonical prefixes; "" is none.
func parseCIDRList(v string) ([]string, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	var out []string
	for _, c := range strings.Split(v, ";") {
		p, err := api.ParseCIDR(strings.TrimSpace(c))
		if err != nil {
			return nil, err
		}
		out = append(out, p.String())
	}
	return out, nil
}
