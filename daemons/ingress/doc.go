// Package ingress is the data plane of warren-ingress: the routing
// table built from the services' ingress routes and their serving
// tasks (BuildTable, pure), the reverse proxy that forwards requests by
// it (Proxy), and the listeners that serve it on plain HTTP and HTTPS
// (ServePlain, ServeTLS). Certificates come from outside (package
// acme, through a *tls.Config and Config.HasCert/Challenge); the table
// is fed by the daemon's watch of the local manager.
//
// A request goes through, in order:
//
//	ACME HTTP-01 challenge (plain HTTP only) → route match (404)
//	→ HTTPS redirect (308) → allow/deny lists (403) → rate limit (429)
//	→ basic auth (401) → no backend (503) → request headers and path
//	→ balancer (power of two choices on requests in flight; retries on
//	  another backend when an idempotent request without a body could
//	  not connect) → response headers
//
// The redirect comes before the other middleware so a client is sent
// to HTTPS before it is asked for a password over plain HTTP.
//
// Backends are kept per address across tables, with their connection
// pools and outlier state:
//
//	in ──(EjectAfter failures in a row)──▶ ejected for EjectBase·2ⁿ (≤ EjectMax)
//	 ▲                                          │
//	 └──────────────(period over)───────────────┘
//
// A backend is never ejected when it is the last one of its route in;
// when all of a route's backends are out, the balancer uses them all.
// A table swap never cuts a request: it keeps the route state and
// backend it started with; a backend no table names is retired and its
// connections closed once idle.
package ingress
