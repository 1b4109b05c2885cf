package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Credentials hold a node's certificate, key and trust bundle, and let
// them be replaced while connections are being made: the tls.Configs built
// from them read the current values at each handshake, so certificate
// renewal and CA rotation need no restart. Existing connections keep the
// credentials they were made with.
type Credentials struct {
	// Clock, if set before the Credentials are used, is the time peers'
	// certificates are checked against. Nil means time.Now.
	Clock func() time.Time

	cur atomic.Pointer[material]
}

// material is one immutable set of credentials.
type material struct {
	base   tls.Certificate // as loaded: the chain SignNode returned, and the key
	cert   tls.Certificate // presented: base's chain plus the trusted roots not in it
	leaf   *x509.Certificate
	id     Identity
	bundle *Bundle
}

// NewCredentials makes the credentials of a node from its certificate
// chain (as SignNode returns it), its key, and the CAs it trusts.
func NewCredentials(certPEM, keyPEM []byte, trust *Bundle) (*Credentials, error) {
	m, err := newMaterial(certPEM, keyPEM, trust)
	if err != nil {
		return nil, err
	}
	c := &Credentials{}
	c.cur.Store(m)
	return c, nil
}

func newMaterial(certPEM, keyPEM []byte, trust *Bundle) (*material, error) {
	if trust == nil {
		return nil, errors.New("pki: credentials: no trust bundle")
	}
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: credentials: %w", err)
	}
	leaf := kp.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(kp.Certificate[0]); err != nil {
			return nil, fmt.Errorf("pki: credentials: %w", err)
		}
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return nil, fmt.Errorf("pki: credentials: %w", err)
	}
	if id.ClusterID != trust.ClusterID() {
		return nil, fmt.Errorf("pki: credentials: the certificate is of cluster %s but the trusted CA is of cluster %s", id.ClusterID, trust.ClusterID())
	}
	return withTrust(kp, leaf, id, trust), nil
}

// withTrust builds the material presenting kp's chain plus every trusted
// root not already in it. Sending the roots lets a joining node find the
// CA its token pins (see BootstrapClientConfig) and costs a few hundred
// bytes per handshake.
func withTrust(kp tls.Certificate, leaf *x509.Certificate, id Identity, trust *Bundle) *material {
	kp.Leaf = leaf
	presented := kp
	presented.Certificate = slices.Clone(kp.Certificate)
	for _, root := range trust.certs {
		if !slices.ContainsFunc(presented.Certificate, func(der []byte) bool { return bytes.Equal(der, root.Raw) }) {
			presented.Certificate = append(presented.Certificate, root.Raw)
		}
	}
	return &material{base: kp, cert: presented, leaf: leaf, id: id, bundle: trust}
}

// Update replaces the certificate, key and trust bundle at once, after a
// renewal or a rotation step. The certificate must be of the same cluster.
func (c *Credentials) Update(certPEM, keyPEM []byte, trust *Bundle) error {
	m, err := newMaterial(certPEM, keyPEM, trust)
	if err != nil {
		return err
	}
	if old := c.cur.Load(); m.id.ClusterID != old.id.ClusterID {
		return fmt.Errorf("pki: credentials: the new certificate is of cluster %s, these are of cluster %s", m.id.ClusterID, old.id.ClusterID)
	}
	c.cur.Store(m)
	return nil
}

// SetTrust replaces the trust bundle and keeps the certificate: the first
// and last steps of a CA rotation.
func (c *Credentials) SetTrust(trust *Bundle) error {
	if trust == nil {
		return errors.New("pki: credentials: no trust bundle")
	}
	for {
		old := c.cur.Load()
		if trust.ClusterID() != old.id.ClusterID {
			return fmt.Errorf("pki: credentials: the trust bundle is of cluster %s, these are of cluster %s", trust.ClusterID(), old.id.ClusterID)
		}
		if c.cur.CompareAndSwap(old, withTrust(old.base, old.leaf, old.id, trust)) {
			return nil
		}
	}
}

// Identity is this node's identity, from its current certificate.
func (c *Credentials) Identity() Identity { return c.cur.Load().id }

// Leaf is this node's current certificate.
func (c *Credentials) Leaf() *x509.Certificate { return c.cur.Load().leaf }

// Trust is the current trust bundle.
func (c *Credentials) Trust() *Bundle { return c.cur.Load().bundle }

// RenewalDue reports whether the node should renew its certificate now:
// it is past its RenewAt point, or it was not signed by the active CA of
// the trust bundle (a rotation is under way).
func (c *Credentials) RenewalDue(now time.Time) bool {
	m := c.cur.Load()
	return NeedsRenewal(m.leaf, now) || !m.bundle.IssuedByActive(m.leaf)
}

// SelfCheck verifies this node's own certificate as its peers will: a node
// whose certificate no longer verifies (expired, or its CA rotated out)
// must join again.
func (c *Credentials) SelfCheck() error {
	m := c.cur.Load()
	chain := make([]*x509.Certificate, 0, len(m.cert.Certificate))
	for _, der := range m.cert.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			return fmt.Errorf("pki: self-check: %w", err)
		}
		chain = append(chain, x)
	}
	_, err := VerifyPeer(chain, m.bundle.pool, x509.ExtKeyUsageClientAuth, c.now())
	return err
}

func (c *Credentials) now() time.Time {
	if c.Clock != nil {
		return c.Clock()
	}
	return time.Now()
}

// verify is the VerifyConnection of the configs below: the chain against
// the current trust bundle (expired: an expired leaf is let through, see
// VerifyExpiredPeer), the same cluster, then want.
func (c *Credentials) verify(certs []*x509.Certificate, usage x509.ExtKeyUsage, want func(Identity) error, expired bool) error {
	m := c.cur.Load()
	var id Identity
	var err error
	if expired {
		id, _, err = VerifyExpiredPeer(certs, m.bundle.pool, usage, c.now())
	} else {
		id, err = VerifyPeer(certs, m.bundle.pool, usage, c.now())
	}
	if err != nil {
		return err
	}
	if id.ClusterID != m.id.ClusterID {
		return fmt.Errorf("%w: %s is of cluster %s, this node of %s", ErrWrongCluster, id.NodeID, id.ClusterID, m.id.ClusterID)
	}
	if want != nil {
		return want(id)
	}
	return nil
}

func (c *Credentials) certificate() *tls.Certificate {
	m := c.cur.Load()
	return &m.cert
}

// ServerConfig is the TLS 1.3 configuration of a node's listeners between
// nodes (the API, Raft, the replica stream): it presents the node's
// current certificate and requires a client certificate that chains to
// the current trust bundle, of this cluster, for which want (if not nil)
// returns nil. Handlers read the peer with PeerIdentity.
//
// Session tickets are off: every connection is a full handshake verified
// against the current trust bundle, so a certificate whose CA was rotated
// out cannot resume its way back in.
func ServerConfig(c *Credentials, want func(Identity) error) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		ClientAuth:             tls.RequireAnyClientCert,
		GetCertificate:         func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return c.certificate(), nil },
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return c.verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth, want, false)
		},
	}
}

// JoinServerConfig is ServerConfig for the listener joining nodes reach:
// a client may present no certificate (a node joining with a token, or
// warrenctl), in which case PeerIdentity returns ErrNoPeerCertificate and
// handlers must authenticate it otherwise; a certificate it does present
// is verified as ServerConfig does. Serve only the join call to
// anonymous peers.
//
// expiredOK, if not nil, lets through a client certificate that has
// expired but is otherwise valid (VerifyExpiredPeer) on the connections
// for which it returns true (the API's ALPN protocol, say, and not
// Raft's): a node cut off past its certificate's expiry can then prove
// who it is and renew it. Handlers must then check PeerExpiry on every
// request and let such a peer do nothing but renew.
func JoinServerConfig(c *Credentials, expiredOK func(tls.ConnectionState) bool) *tls.Config {
	cfg := ServerConfig(c, nil)
	cfg.ClientAuth = tls.RequestClientCert
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		return c.verify(cs.PeerCertificates, x509.ExtKeyUsageClientAuth, nil, expiredOK != nil && expiredOK(cs))
	}
	return cfg
}

// ClientConfig is the TLS 1.3 configuration for dialling another node: it
// presents the node's current certificate, and accepts the server only if
// its certificate chains to the current trust bundle, is of this cluster,
// and want (if not nil) returns nil for its identity, for instance
// RequireRole(RoleManager). Host names and IP addresses are not checked:
// dial any address a manager has.
func ClientConfig(c *Credentials, want func(Identity) error) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return c.certificate(), nil
		},
		// Not insecure: the standard verification, which would check the
		// host name against the certificate's SANs, is replaced by
		// VerifyConnection, which checks the chain and the identity.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return c.verify(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, want, false)
		},
	}
}

// PeerIdentity is the identity of the peer of a connection made with
// ServerConfig, JoinServerConfig or ClientConfig, whose handshake verified
// it (for gRPC: peer.FromContext(ctx).AuthInfo.(credentials.TLSInfo).State).
// It does not verify the certificate again: on a connection made with any
// other tls.Config, the answer means nothing. A peer that presented no
// certificate (JoinServerConfig) gives ErrNoPeerCertificate.
func PeerIdentity(state tls.ConnectionState) (Identity, error) {
	if !state.HandshakeComplete {
		return Identity{}, errors.New("pki: peer identity: the TLS handshake is not complete")
	}
	if len(state.PeerCertificates) == 0 {
		return Identity{}, ErrNoPeerCertificate
	}
	return IdentityOf(state.PeerCertificates[0])
}

// PeerExpiry is when the certificate the peer of a connection presented
// expires, or expired (a connection JoinServerConfig let through with an
// expired certificate); zero when it presented none. Like PeerIdentity,
// it means something only on connections made with these configs.
func PeerExpiry(state tls.ConnectionState) time.Time {
	if len(state.PeerCertificates) == 0 {
		return time.Time{}
	}
	return state.PeerCertificates[0].NotAfter
}
