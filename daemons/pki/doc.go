// Package pki is the cluster's public-key infrastructure: the cluster CA,
// node certificates and the identity they carry, the mutual TLS 1.3
// configurations every connection between nodes uses, join tokens, the
// pinned handshake a joining node makes, and the primitives of
// certificate renewal and CA rotation.
//
// It is pure: functions take "now" and return values; nothing is stored,
// sent or logged here. The manager keeps the CA key, the token records and
// the trust bundle in Raft; the daemons hold a node's [Credentials] and
// build their tls.Configs from them once.
//
//	warren init        NewCA ─▶ CA (key in Raft, encrypted) ─▶ NewBundle(ca)
//	join-token         NewToken(kind, ca.Digest()) ─▶ token shown once, TokenRecord stored
//	joining node       NewKey, NewCSR ─▶ dial with BootstrapClientConfig(token's digest)
//	manager            ParseToken, CheckToken ─▶ CA.SignNode(csr, identity) ─▶ chain + bundle back
//	every connection   ServerConfig / ClientConfig(Credentials) ─▶ PeerIdentity in handlers
//	renewal            Credentials.RenewalDue ─▶ NewCSR ─▶ SignNode ─▶ Credentials.Update
//	rotation           NewCA, CA.CrossSign ─▶ Bundle(new, old) ─▶ renew all ─▶ Bundle(new)
//
// A node is its [Identity] — cluster ID, node ID and role, in the
// certificate's subject and its URI SAN warren://<cluster>/<role>/<node> —
// never its address: no certificate has an IP or DNS SAN, and verification
// ([VerifyPeer]) checks the chain and the identity, not a host name.
//
// README.md in this folder describes the join, renewal and rotation
// sequences and the state of each.
package pki
