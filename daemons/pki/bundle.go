package pki

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
)

// Bundle is the set of CA certificates a node trusts: its trust roots. In
// steady state it holds the cluster CA alone. During a rotation it holds
// the new CA first ("active": the one managers sign with) and the previous
// one after it, so certificates of either are accepted. A Bundle is
// immutable and safe for concurrent use.
type Bundle struct {
	certs []*x509.Certificate
	pool  *x509.CertPool
}

// NewBundle makes the bundle of the active CA and, during a rotation, the
// CAs still trusted. Each must be a self-signed warren CA of the same
// cluster, none twice.
func NewBundle(active *x509.Certificate, others ...*x509.Certificate) (*Bundle, error) {
	certs := append([]*x509.Certificate{active}, others...)
	var cluster string
	pool := x509.NewCertPool()
	for i, c := range certs {
		if c == nil {
			return nil, errors.New("pki: trust bundle: nil certificate")
		}
		cid, err := caCluster(c)
		if err != nil {
			return nil, fmt.Errorf("pki: trust bundle: %w", err)
		}
		if i == 0 {
			cluster = cid
		} else if cid != cluster {
			return nil, fmt.Errorf("pki: trust bundle: the CAs are of clusters %s and %s", cluster, cid)
		}
		if slices.ContainsFunc(certs[:i], func(p *x509.Certificate) bool { return bytes.Equal(p.Raw, c.Raw) }) {
			return nil, fmt.Errorf("pki: trust bundle: the CA %s is listed twice", Digest(c))
		}
		pool.AddCert(c)
	}
	return &Bundle{certs: certs, pool: pool}, nil
}

// ParseBundle reads a bundle written by PEM: the active CA first.
func ParseBundle(pemBytes []byte) (*Bundle, error) {
	certs, err := parseCerts(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("pki: trust bundle: %w", err)
	}
	return NewBundle(certs[0], certs[1:]...)
}

// PEM is the bundle's certificates, the active CA first.
func (b *Bundle) PEM() []byte {
	var out []byte
	for _, c := range b.certs {
		out = append(out, encodeCert(c.Raw)...)
	}
	return out
}

// Active is the CA that node certificates should be signed by.
func (b *Bundle) Active() *x509.Certificate { return b.certs[0] }

// Certificates is every trusted CA, the active one first.
func (b *Bundle) Certificates() []*x509.Certificate { return slices.Clone(b.certs) }

// ClusterID is the cluster of the bundle's CAs.
func (b *Bundle) ClusterID() string { return b.certs[0].Subject.Organization[0] }

// Pool is the bundle as roots for x509 verification. Do not modify it.
func (b *Bundle) Pool() *x509.CertPool { return b.pool }

// Digests is the Digest of every trusted CA, the active one first: the
// digests a join token may pin (pass them to CheckToken).
func (b *Bundle) Digests() []string {
	d := make([]string, len(b.certs))
	for i, c := range b.certs {
		d[i] = Digest(c)
	}
	return d
}

// Contains reports whether the bundle trusts the CA with this digest.
func (b *Bundle) Contains(digest string) bool {
	return slices.ContainsFunc(b.certs, func(c *x509.Certificate) bool { return SameDigest(Digest(c), digest) })
}

// IssuedByActive reports whether leaf was signed by the active CA's key.
// During a rotation, a node whose certificate is not renews it.
func (b *Bundle) IssuedByActive(leaf *x509.Certificate) bool {
	return bytes.Equal(leaf.RawIssuer, b.certs[0].RawSubject) && leaf.CheckSignatureFrom(b.certs[0]) == nil
}
