package api

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on a service's ingress routes.
const (
	MaxIngressRoutes  = 64   // routes of one service
	MaxIngressHostLen = 253  // a DNS name
	MaxIngressPathLen = 1024 // a route's path and its rewrite
	MaxIngressCIDRs   = 256  // entries of allow, and of deny
	MaxHeaderRules    = 64   // set, add and remove entries of one HeaderRules
	MaxHeaderValueLen = 4096
	MaxRateLimit      = 1e6 // requests a second, and the burst
	MaxRealmLen       = 128
)

// hopByHop are the headers that belong to one connection (RFC 9110
// 7.6.1), and Host: the proxy owns them, a route may not change them.
var hopByHop = []string{"connection", "host", "keep-alive", "proxy-authenticate", "proxy-authorization",
	"proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}

// IngressKey is what a route claims: its host and path, normalized. Two
// routes with one key are the same route; two services may not claim one.
type IngressKey struct {
	Host string
	Path string
}

func (k IngressKey) String() string { return "host=" + k.Host + " path=" + k.Path }

// Key returns the host and path the route claims, normalized as
// NormalizeSpec stores them (a trailing dot, which validation refuses,
// is dropped too).
func (r IngressRoute) Key() IngressKey {
	return IngressKey{Host: strings.ToLower(strings.TrimSuffix(strings.TrimSpace(r.Host), ".")), Path: normalizeIngressPath(r.Path)}
}

// Wildcard says whether the route's host is a wildcard ("*.example.com").
func (r IngressRoute) Wildcard() bool { return strings.HasPrefix(r.Host, "*.") }

// TLSSource is the route's certificate source, its default applied.
func (r IngressRoute) TLSSource() string {
	if r.TLS == nil || r.TLS.Source == "" {
		return TLSAcme
	}
	return r.TLS.Source
}

// normalizeIngressPath gives "/" for an empty path and drops a trailing
// slash ("/api/" is "/api").
func normalizeIngressPath(p string) string {
	if p == "" {
		return "/"
	}
	if len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	return p
}

// Normalized is r with its host in lower case, its path defaulted and
// without a trailing slash, and its CIDRs in canonical form (a bare
// address is a /32 or /128; host bits are cleared). Entries that do not
// parse are kept as they are, for validation to name. It shares nothing
// with r.
func (r IngressRoute) Normalized() IngressRoute {
	k := r.Key()
	r.Host, r.Path = k.Host, k.Path
	r.Allow, r.Deny = normalizeCIDRs(r.Allow), normalizeCIDRs(r.Deny)
	if r.TLS != nil {
		t := *r.TLS
		r.TLS = &t
	}
	if r.HTTPSRedirect != nil {
		b := *r.HTTPSRedirect
		r.HTTPSRedirect = &b
	}
	if r.RateLimit != nil {
		l := *r.RateLimit
		r.RateLimit = &l
	}
	if r.BasicAuth != nil {
		a := *r.BasicAuth
		r.BasicAuth = &a
	}
	r.RequestHeaders, r.ResponseHeaders = r.RequestHeaders.clone(), r.ResponseHeaders.clone()
	return r
}

func (h *HeaderRules) clone() *HeaderRules {
	if h == nil {
		return nil
	}
	return &HeaderRules{Set: maps.Clone(h.Set), Add: maps.Clone(h.Add), Remove: slices.Clone(h.Remove)}
}

func normalizeCIDRs(in []string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, c := range in {
		out[i] = c
		if p, err := ParseCIDR(c); err == nil {
			out[i] = p.String()
		}
	}
	return out
}

// ParseCIDR reads an allow or deny entry: a prefix ("10.0.0.0/8",
// "2001:db8::/32") or a bare address, which stands for itself alone (/32
// or /128). The prefix returned is masked (host bits cleared).
func ParseCIDR(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a CIDR prefix: use e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32", s)
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix: use ADDRESS/BITS, e.g. 10.0.0.0/8 or 2001:db8::/32", s)
	}
	return p.Masked(), nil
}

// ValidateIngressHost checks a route's host: a lower-case DNS name of at
// least two labels, or a wildcard of one leading label ("*.example.com").
func ValidateIngressHost(host string) error {
	const fix = "use a lower-case DNS name such as shop.example.com, or *.example.com for every name one label below example.com"
	name := strings.TrimPrefix(host, "*.")
	switch {
	case host == "":
		return fmt.Errorf("a host is required: %s", fix)
	case len(host) > MaxIngressHostLen:
		return fmt.Errorf("%.40q... is %d characters long; a DNS name has at most %d", host, len(host), MaxIngressHostLen)
	case !utf8.ValidString(host) || strings.IndexFunc(host, func(r rune) bool { return r >= utf8.RuneSelf }) >= 0:
		return fmt.Errorf("%q is not ASCII: write an internationalized name in its punycode form (xn--...)", host)
	case strings.ContainsAny(host, "/?#@ "):
		return fmt.Errorf("%q is not a host name (it looks like a URL): give the name alone, e.g. shop.example.com, and the path in path", host)
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return fmt.Errorf("%q is an IP address: a route needs a DNS name (certificates and virtual hosts go by name)", a)
	}
	switch {
	case strings.Contains(host, ":"):
		return fmt.Errorf("%q has a port: leave it out (warren-ingress answers on 80 and 443; the tasks' port is the route's port)", host)
	case strings.HasSuffix(host, "."):
		return fmt.Errorf("%q ends with a dot: leave the trailing dot out", host)
	case host != strings.ToLower(host):
		return fmt.Errorf("%q has capitals: write it in lower case, %s", host, strings.ToLower(host))
	case strings.Contains(host, "_"):
		return fmt.Errorf("%q holds '_': a host name has letters, digits, '-' and '.' only", host)
	case strings.Contains(name, "*"):
		return fmt.Errorf("%q: a wildcard is one leading '*' label, as in *.example.com", host)
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		if name != host {
			return fmt.Errorf("%q is a wildcard over a top-level domain: the name after *. needs two labels or more, e.g. *.example.com", host)
		}
		return fmt.Errorf("%q is one label: a route's host is a fully qualified name of two labels or more, e.g. %s.example.com", host, host)
	}
	for _, l := range labels {
		switch {
		case l == "":
			return fmt.Errorf("%q has an empty label (two dots in a row, or a leading dot): %s", host, fix)
		case len(l) > 63:
			return fmt.Errorf("%q has a label of %d characters; the limit is 63", host, len(l))
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("%q has a label that starts or ends with '-'", host)
		case strings.IndexFunc(l, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }) >= 0:
			return fmt.Errorf("%q holds a character a DNS name may not: use letters, digits, '-' and '.'", host)
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Errorf("%q ends with an all-digit label, which reads as an IP address: a route needs a DNS name", host)
	}
	return nil
}

// ValidateIngressPath checks a route's path prefix (or a rewrite's): it
// starts with "/", is already clean (no "." or ".." segment, no "//") and
// has no query, fragment or control characters. A trailing slash is
// allowed; NormalizeSpec drops it.
func ValidateIngressPath(p string) error {
	switch {
	case p == "":
		return nil
	case len(p) > MaxIngressPathLen:
		return fmt.Errorf("%.40q... is %d characters long; the limit is %d", p, len(p), MaxIngressPathLen)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q does not start with '/': write it as /%s", p, p)
	case !utf8.ValidString(p):
		return fmt.Errorf("%q is not UTF-8", p)
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return fmt.Errorf("%q holds a control character", p)
	case strings.ContainsAny(p, "?#"):
		return fmt.Errorf("%q holds '?' or '#': a route matches paths only, without a query or fragment", p)
	case strings.IndexFunc(p, unicode.IsSpace) >= 0:
		return fmt.Errorf("%q holds a space: write it as %%20", p)
	case strings.Contains(p, "//"):
		return fmt.Errorf("%q holds '//' (an empty segment): write the path clean, e.g. /api/v1", p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%q holds a %q segment: write the path clean, e.g. /api/v1", p, seg)
		}
	}
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
			return fmt.Errorf("%q holds a '%%' that is not an escape %%XX: write a %% as %%25", p)
		}
		if e := strings.ToLower(p[i+1 : i+3]); e == "2e" || e == "2f" {
			return fmt.Errorf("%q holds an escaped '.' or '/' (%%%s): write them as they are, and the path clean", p, p[i+1:i+3])
		}
	}
	return nil
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// validHeaderName says whether s is an HTTP field name: a token of RFC
// 9110 5.6.2.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func validateIngress(fe *fieldErrs, routes []IngressRoute) {
	if len(routes) > MaxIngressRoutes {
		fe.add("ingress", "%d routes; the limit is %d: give the service fewer routes, or use a wildcard host or a shorter path prefix", len(routes), MaxIngressRoutes)
		return // and no pairwise check over a hostile list
	}
	seen := map[IngressKey]int{}
	for i, r := range routes {
		f := fmt.Sprintf("ingress[%d]", i)
		validateIngressRoute(fe, f, r)
		k := r.Key()
		if j, ok := seen[k]; ok {
			fe.add(f, "ingress[%d] has the same host and path (%s): a service names a route once; remove one, or give them different paths", j, k)
			continue
		}
		seen[k] = i
	}
}

func validateIngressRoute(fe *fieldErrs, f string, r IngressRoute) {
	hostErr := ValidateIngressHost(r.Host)
	if hostErr != nil {
		fe.add(f+".host", "%v", hostErr)
	}
	if err := ValidateIngressPath(r.Path); err != nil {
		fe.add(f+".path", "%v", err)
	}
	if r.Port == 0 {
		fe.add(f+".port", "the tasks' port the requests go to (1-65535) is required, e.g. port=8080")
	}
	if r.Rewrite != "" {
		if r.StripPrefix {
			fe.add(f+".rewrite", "stripPrefix and rewrite do not go together: stripPrefix is a rewrite to \"/\"; keep one")
		}
		if err := ValidateIngressPath(r.Rewrite); err != nil {
			fe.add(f+".rewrite", "%v", err)
		}
	}
	validateIngressTLS(fe, f, r, hostErr == nil)
	for _, l := range []struct {
		name string
		list []string
	}{{"allow", r.Allow}, {"deny", r.Deny}} {
		if len(l.list) > MaxIngressCIDRs {
			fe.add(f+"."+l.name, "%d entries; the limit is %d: join neighbouring addresses into wider prefixes", len(l.list), MaxIngressCIDRs)
			continue
		}
		for i, c := range l.list {
			if _, err := ParseCIDR(c); err != nil {
				fe.add(fmt.Sprintf("%s.%s[%d]", f, l.name, i), "%v", err)
			}
		}
	}
	if l := r.RateLimit; l != nil {
		if !(l.Rate > 0 && l.Rate <= MaxRateLimit) { // also NaN
			fe.add(f+".rateLimit.rate", "%v is not a rate: give requests a second per client, more than 0 and at most %d (e.g. 0.5 or 10)", l.Rate, int(MaxRateLimit))
		}
		if l.Burst < 0 || l.Burst > MaxRateLimit {
			fe.add(f+".rateLimit.burst", "%d is not a burst: use 0 (the default, the rate rounded up) to %d", l.Burst, int(MaxRateLimit))
		}
	}
	if a := r.BasicAuth; a != nil {
		if err := ValidateSecretName(KindSecret, a.Secret); err != nil {
			fe.add(f+".basicAuth.secret", "%v: name the secret that holds the user:bcrypt-hash lines (htpasswd -B)", errMessage(err))
		}
		if len(a.Realm) > MaxRealmLen || !utf8.ValidString(a.Realm) ||
			strings.IndexFunc(a.Realm, func(c rune) bool { return !unicode.IsPrint(c) || c == '"' || c == '\\' }) >= 0 {
			fe.add(f+".basicAuth.realm", "the realm is printable text without quotes or backslashes, at most %d characters", MaxRealmLen)
		}
	}
	validateHeaderRules(fe, f+".requestHeaders", r.RequestHeaders)
	validateHeaderRules(fe, f+".responseHeaders", r.ResponseHeaders)
	switch r.ProxyProtocol {
	case "", "v1", "v2":
	default:
		fe.add(f+".proxyProtocol", "%q is not a PROXY protocol version: use v1 or v2, or leave it out for none", r.ProxyProtocol)
	}
}

// errMessage is an error's message without the API error's framing.
func errMessage(err error) string {
	if e, ok := err.(*Error); ok {
		return e.Message
	}
	return err.Error()
}

// validateIngressTLS checks where the route's certificate comes from;
// hostOK says whether its host is valid (a wildcard's needs are only
// told about a valid one).
func validateIngressTLS(fe *fieldErrs, f string, r IngressRoute, hostOK bool) {
	source := r.TLSSource()
	t := r.TLS
	if t == nil {
		t = &IngressTLS{}
	}
	switch source {
	case TLSAcme, TLSSecret, TLSNone:
	default:
		fe.add(f+".tls.source", "%q is not a certificate source: use acme (the default), secret or none", t.Source)
		return
	}
	switch {
	case t.Challenge == "":
	case source != TLSAcme:
		fe.add(f+".tls.challenge", "a challenge is how ACME checks the name: it goes with source acme only, not %s", source)
	case t.Challenge != ChallengeHTTP01 && t.Challenge != ChallengeTLSALPN01 && t.Challenge != ChallengeDNS01:
		fe.add(f+".tls.challenge", "%q is not an ACME challenge: use http-01 (the default), tls-alpn-01 or dns-01", t.Challenge)
	}
	switch {
	case source == TLSSecret && t.Secret == "":
		fe.add(f+".tls.secret", "source secret needs the name of the secret that holds the PEM certificate chain and key (tls=secret:NAME)")
	case source == TLSSecret:
		if err := ValidateSecretName(KindSecret, t.Secret); err != nil {
			fe.add(f+".tls.secret", "%v", errMessage(err))
		}
	case t.Secret != "":
		fe.add(f+".tls.secret", "a secret is the certificate of source secret only, not %s: set source secret, or leave the secret out", source)
	}
	if hostOK && r.Wildcard() && source == TLSAcme && t.Challenge != ChallengeDNS01 {
		fe.add(f+".tls.challenge", "a wildcard host gets an ACME certificate through dns-01 only: set challenge dns-01 (warren-ingress needs its --dns-hook), or use a certificate from a secret (tls=secret:NAME)")
	}
	if source == TLSNone && r.HTTPSRedirect != nil && *r.HTTPSRedirect {
		fe.add(f+".httpsRedirect", "a redirect to HTTPS needs a certificate, and tls source none has none: set a source (acme or secret), or leave the redirect out")
	}
}

func validateHeaderRules(fe *fieldErrs, f string, h *HeaderRules) {
	if h == nil {
		return
	}
	if n := len(h.Set) + len(h.Add) + len(h.Remove); n > MaxHeaderRules {
		fe.add(f, "%d rules; the limit is %d", n, MaxHeaderRules)
		return
	}
	name := func(field, k string) bool {
		switch {
		case !validHeaderName(k):
			fe.add(field, "%q is not a header name: use letters, digits and !#$%%&'*+-.^_`|~, e.g. X-Forwarded-Prefix", k)
		case slices.Contains(hopByHop, strings.ToLower(k)):
			fe.add(field, "header %s belongs to the connection and the proxy sets it: a route may not change it", k)
		default:
			return true
		}
		return false
	}
	for _, m := range []struct {
		op   string
		vals map[string]string
	}{{"set", h.Set}, {"add", h.Add}} {
		for _, k := range slices.Sorted(maps.Keys(m.vals)) {
			field := f + "." + m.op + "." + k
			if !name(field, k) {
				continue
			}
			v := m.vals[k]
			switch {
			case len(v) > MaxHeaderValueLen:
				fe.add(field, "the value is %d bytes long; the limit is %d", len(v), MaxHeaderValueLen)
			case strings.ContainsAny(v, "\r\n\x00"):
				fe.add(field, "the value holds a CR, LF or NUL: a header value is one line")
			}
		}
	}
	for i, k := range h.Remove {
		name(fmt.Sprintf("%s.remove[%d]", f, i), k)
	}
}
