package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Errors of peer verification. Each is wrapped with what was presented and
// what to do.
var (
	// ErrNoPeerCertificate: the peer presented no certificate.
	ErrNoPeerCertificate = errors.New("pki: the peer presented no certificate")
	// ErrUntrusted: the peer's certificate is not signed by a CA this node
	// trusts: another cluster's, or rotated out, or forged.
	ErrUntrusted = errors.New("pki: the peer's certificate is not signed by this cluster's CA")
	// ErrExpired: the peer's certificate has expired.
	ErrExpired = errors.New("pki: the peer's certificate has expired")
	// ErrNotYetValid: the peer's certificate is not valid yet, which
	// usually means a clock is wrong.
	ErrNotYetValid = errors.New("pki: the peer's certificate is not valid yet")
	// ErrWrongCluster: a certificate of another cluster (defence in depth:
	// the trusted CAs only sign for their own cluster).
	ErrWrongCluster = errors.New("pki: the peer belongs to another cluster")
	// ErrNotAllowed: the peer is who it says, but may not connect here
	// (see RequireRole).
	ErrNotAllowed = errors.New("pki: the peer is not allowed here")
)

// VerifyPeer verifies the certificate chain a peer presented, leaf first,
// against roots at time now, for usage (x509.ExtKeyUsageServerAuth when
// the peer is a server, ExtKeyUsageClientAuth when it is a client), and
// returns the identity the leaf carries. It checks no host name or IP
// address: a node is its identity, wherever it is. The certificates after
// the leaf are used as intermediates (a cross-signed CA during a rotation)
// and may include roots; only roots decides what is trusted.
func VerifyPeer(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, now time.Time) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, ErrNoPeerCertificate
	}
	if roots == nil {
		// x509 would fall back to the system's web roots.
		return Identity{}, fmt.Errorf("%w: no trusted CA was configured", ErrUntrusted)
	}
	leaf := chain[0]
	if leaf.IsCA {
		return Identity{}, fmt.Errorf("%w: the peer presented the CA certificate %q as its own", ErrUntrusted, leaf.Subject.CommonName)
	}
	who := fmt.Sprintf("node %q (serial %x)", leaf.Subject.CommonName, leaf.SerialNumber)
	if now.After(leaf.NotAfter) {
		return Identity{}, fmt.Errorf("%w: %s expired at %s (it is now %s): the node must renew its certificate, or join again",
			ErrExpired, who, leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return Identity{}, fmt.Errorf("%w: %s is valid from %s but this clock says %s: check both machines' clocks (NTP)",
			ErrNotYetValid, who, leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	}); err != nil {
		return Identity{}, fmt.Errorf("%w: %s, issued by %q (CA serial %s), does not chain to a CA this node trusts; "+
			"a certificate of another cluster, or of a CA rotated out (such a node must join again): %w",
			ErrUntrusted, who, leaf.Issuer.CommonName, leaf.Issuer.SerialNumber, err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return Identity{}, err
	}
	return id, nil
}

// detailed is an error with a message of its own that errors.Is still
// matches to each of its causes.
type detailed struct {
	msg    string
	causes []error
}

func (e *detailed) Error() string   { return e.msg }
func (e *detailed) Unwrap() []error { return e.causes }
