package api

import "time"

// HTTP ingress: warren-ingress routes HTTP and HTTPS requests by host and
// path to the tasks of the service that names the route. Routes live in
// the services' specs (ServiceSpec.Ingress); a change of them never
// restarts a task.
//
// Precedence, one rule for every ingress node: an exact host before a
// wildcard host ("*.example.com" matches one label, "a.example.com" but
// not "example.com" nor "a.b.example.com"), then the longest path prefix
// (matched on whole segments: "/api" matches "/api" and "/api/x", not
// "/apix"). Two services may not claim the same host and path: the write
// is refused.

// IngressRoute is one route into a service's tasks.
type IngressRoute struct {
	// Host is the name clients ask for: "shop.example" or a wildcard of
	// one label, "*.shop.example". Lower case, no port, no trailing dot.
	Host string `json:"host" yaml:"host"`
	// Path is the prefix of the request paths the route takes (default
	// "/").
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Port is the tasks' port the requests go to.
	Port uint16 `json:"port" yaml:"port"`
	// StripPrefix removes Path from the request's path before it goes to
	// the task ("/api/x" → "/x").
	StripPrefix bool `json:"stripPrefix,omitempty" yaml:"stripPrefix,omitempty"`
	// Rewrite replaces Path with this prefix before the request goes to
	// the task ("/api/x" with rewrite "/v2" → "/v2/x"). Not with
	// StripPrefix.
	Rewrite string `json:"rewrite,omitempty" yaml:"rewrite,omitempty"`
	// TLS says where the route's certificate comes from (nil: ACME with
	// HTTP-01 for an exact host; a wildcard host needs DNS-01 or a
	// certificate from a secret).
	TLS *IngressTLS `json:"tls,omitempty" yaml:"tls,omitempty"`
	// HTTPSRedirect sends plain HTTP requests to HTTPS with a 308 (nil:
	// yes whenever the route has a certificate).
	HTTPSRedirect *bool `json:"httpsRedirect,omitempty" yaml:"httpsRedirect,omitempty"`

	// Middleware, applied in this order: IP lists, rate limit, basic
	// auth, request headers and path, then response headers.
	Allow           []string     `json:"allow,omitempty" yaml:"allow,omitempty"` // CIDRs; when set, only these
	Deny            []string     `json:"deny,omitempty" yaml:"deny,omitempty"`   // CIDRs refused (before Allow)
	RateLimit       *RateLimit   `json:"rateLimit,omitempty" yaml:"rateLimit,omitempty"`
	BasicAuth       *BasicAuth   `json:"basicAuth,omitempty" yaml:"basicAuth,omitempty"`
	RequestHeaders  *HeaderRules `json:"requestHeaders,omitempty" yaml:"requestHeaders,omitempty"`
	ResponseHeaders *HeaderRules `json:"responseHeaders,omitempty" yaml:"responseHeaders,omitempty"`
	// ProxyProtocol sends a PROXY protocol header to the task first:
	// "" (none), "v1" or "v2".
	ProxyProtocol string `json:"proxyProtocol,omitempty" yaml:"proxyProtocol,omitempty"`
}

// Certificate sources of a route.
const (
	// TLSAcme: a certificate from the ACME CA warren-ingress is set up
	// with (the default).
	TLSAcme = "acme"
	// TLSSecret: the PEM certificate chain and key in a secret.
	TLSSecret = "secret"
	// TLSNone: plain HTTP only.
	TLSNone = "none"
)

// ACME challenge types.
const (
	ChallengeHTTP01    = "http-01"
	ChallengeTLSALPN01 = "tls-alpn-01"
	ChallengeDNS01     = "dns-01"
)

// IngressTLS is where a route's certificate comes from.
type IngressTLS struct {
	// Source is acme (default), secret or none.
	Source string `json:"source,omitempty" yaml:"source,omitempty"`
	// Challenge is the ACME challenge: http-01 (default), tls-alpn-01 or
	// dns-01 (through warren-ingress's --dns-hook command, for sites
	// behind NAT). Only with source acme.
	Challenge string `json:"challenge,omitempty" yaml:"challenge,omitempty"`
	// Secret names the secret holding the PEM certificate chain followed
	// by its private key. Only with source secret.
	Secret string `json:"secret,omitempty" yaml:"secret,omitempty"`
}

// RateLimit is a token bucket per client address: Rate requests a second
// on average, bursts of up to Burst; a client over it gets 429 with
// Retry-After.
type RateLimit struct {
	Rate  float64 `json:"rate" yaml:"rate"`
	Burst int     `json:"burst,omitempty" yaml:"burst,omitempty"` // default: max(1, ceil(Rate))
}

// BasicAuth asks for a user and password; the users are the lines
// "user:bcrypt-hash" of a secret (htpasswd -B format).
type BasicAuth struct {
	Secret string `json:"secret" yaml:"secret"`
	Realm  string `json:"realm,omitempty" yaml:"realm,omitempty"`
}

// HeaderRules change the headers of a request or a response: Remove
// first, then Set (replacing), then Add (appending).
type HeaderRules struct {
	Set    map[string]string `json:"set,omitempty" yaml:"set,omitempty"`
	Add    map[string]string `json:"add,omitempty" yaml:"add,omitempty"`
	Remove []string          `json:"remove,omitempty" yaml:"remove,omitempty"`
}

// LabelIngress on a node (value "true") makes it an ingress node: its
// warren-ingress may read and write the cluster's certificate store and
// take its locks, and read the secrets that routes name. Other nodes'
// certificates are refused those routes.
const LabelIngress = "warren.ingress"

// IsIngressNode says whether n is an ingress node (LabelIngress "true").
func (n *Node) IsIngressNode() bool { return n != nil && n.Spec.Labels[LabelIngress] == "true" }

// The ingress store is a small key/value store in Raft for what ACME
// needs to share between ingress nodes: the account key, certificates
// and their keys, challenge tokens. Values are sealed at rest like
// secrets. Keys are slash-separated paths ("certificates/acme/x.crt").
//
//	GET    /v1/nodes/{ref}/ingress/store?key=K           → IngressObject (with value); 404 if none
//	GET    /v1/nodes/{ref}/ingress/store?prefix=P[&recursive=1]
//	                                                     → []IngressObject (no values): the keys
//	                                                       under P, one level or all
//	PUT    /v1/nodes/{ref}/ingress/store?key=K  (body: the value, at most MaxIngressValue bytes)
//	DELETE /v1/nodes/{ref}/ingress/store?key=K           → K and every key under K/; 404 if none
//	POST   /v1/nodes/{ref}/ingress/locks/{name}  IngressLockRequest
//	                                                     → IngressLock; 409 (CodeConflict) while
//	                                                       another holder has it
//	DELETE /v1/nodes/{ref}/ingress/locks/{name}?holder=H
//	GET    /v1/nodes/{ref}/ingress/secrets/{name}        → the value of a secret a route names
//	                                                       (TLS certificate or basic auth users)
const (
	MaxIngressValue  = 1 << 20
	MaxIngressKeyLen = 512
	MaxIngressLock   = 10 * 60e9 // the longest lock TTL, 10 minutes
)

// IngressObject is one key of the ingress store.
type IngressObject struct {
	Key      string    `json:"key"`
	Value    []byte    `json:"value,omitempty"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
	// Dir is set on a listing's entry that is a prefix of other keys.
	Dir bool `json:"dir,omitempty"`
}

// IngressLockRequest takes or extends a lock of the ingress store: a
// lease that ends TTL after the leader applies it, unless renewed by the
// same holder.
type IngressLockRequest struct {
	Holder string   `json:"holder"`
	TTL    Duration `json:"ttl"`
}

// IngressLock is a lock held.
type IngressLock struct {
	Name   string    `json:"name"`
	Holder string    `json:"holder"`
	Until  time.Time `json:"until"`
}

// IngressRouteStatus is one route as `warrenctl ingress ls` shows it
// (GET /v1/ingress/routes, for readers): where it goes and how its
// certificate stands. No key material.
type IngressRouteStatus struct {
	Service   string           `json:"service"`
	ServiceID string           `json:"serviceID"`
	Route     IngressRoute     `json:"route"`
	Backends  []IngressBackend `json:"backends"`
	Cert      IngressCert      `json:"cert"`
}

// IngressBackend is one task a route balances over.
type IngressBackend struct {
	TaskID  string `json:"taskID"`
	NodeID  string `json:"nodeID"`
	Addr    string `json:"addr"` // IP:port
	Serving bool   `json:"serving"`
}

// IngressCert is a route's certificate as the cluster has it.
type IngressCert struct {
	// State is "none" (TLS off), "pending" (not issued yet), "valid",
	// "expiring" (past two thirds of its lifetime) or "expired", or
	// "error" with Error.
	State    string    `json:"state"`
	Source   string    `json:"source"`
	Issuer   string    `json:"issuer,omitempty"`
	NotAfter time.Time `json:"notAfter,omitzero"`
	Error    string    `json:"error,omitempty"`
}
