// Package acme owns warren-ingress's TLS certificates: it gets them from
// an ACME CA (certmagic and acmez underneath), renews them, loads those
// that routes take from secrets, and serves them in TLS handshakes.
//
// # What is managed
//
// Exactly the hosts of the ingress routes (Manager.SetRoutes): a route
// with no TLS, or TLS source acme, has its host's certificate from the
// CA, with the route's challenge (http-01 by default, tls-alpn-01, or
// dns-01 through the operator's hook command); a wildcard host needs
// dns-01. A route with source secret serves the PEM chain and key of its
// secret. There is no on-demand issuance: a handshake for a name no
// route names fails, and neither a handshake nor a challenge request
// ever makes a node ask the CA anything.
//
// # One cluster, one certificate per name
//
// Every ingress node manages every routed host, over one shared store
// (Storage, over the cluster's ingress store in Raft): the ACME account,
// the certificates and keys, the challenge tokens and the locks. Before
// an issuance or a renewal, a node takes the name's lock, a lease in Raft
// renewed while held; it then looks in the store, and only if the
// certificate is still missing or due does it ask the CA. The others wait
// on the lock and then load what the holder stored. Challenges are
// written to the store before the CA is told to validate, so whichever
// node the CA reaches answers (HTTPChallengeHandler, the tls-alpn-01
// handshake).
//
// A name's certificate, on each node:
//
//	          SetRoutes names it
//	(none) ─────────────────────▶ pending ──(lock; in store? load : order)──▶ valid
//	                                ▲  │ failure: certmagic retries with backoff,           │
//	                                │  ▼ the cluster holds the name (rate limits too)       │ 2/3 of its life
//	                                └─ error                                     expiring ◀─┘
//	                                                                 (lock; renewed in store? load : renew)
//	any state ── no route names it any more ──▶ (none): no longer renewed here
//
// # Failures and the CA's limits
//
// certmagic retries a failed issuance with its own backoff (1 minute,
// then longer) while it keeps the lock, so other nodes do not try the
// same name meanwhile. Each failure is also recorded in the store
// (warren/holds/NAME.json, see hold): until the hold ends, an attempt by
// any node stops before it reaches the CA. A rateLimited answer holds the
// name until the time the CA gives in its message (or an hour).
package acme
