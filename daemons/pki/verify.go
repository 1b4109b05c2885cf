package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
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
	id, _, err := verifyPeer(chain, roots, usage, now)
	return id, err
}

// VerifyExpiredPeer is VerifyPeer for a node certificate that may have
// expired: it checks everything else as VerifyPeer does (the chain to
// roots, as of the leaf's last valid moment, and every CA on it valid now
// as well; the usage; the identity), and says when the leaf expired
// (zero if it has not). A node cut off past its certificate's expiry
// proves with it who it is, to renew it within the managers' grace: let
// such a peer do nothing else.
func VerifyExpiredPeer(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, now time.Time) (id Identity, expired time.Time, err error) {
	if len(chain) == 0 || !now.After(chain[0].NotAfter) {
		id, err = VerifyPeer(chain, roots, usage, now)
		return id, time.Time{}, err
	}
	leaf := chain[0]
	id, chains, err := verifyPeer(chain, roots, usage, leaf.NotAfter)
	if err != nil {
		return Identity{}, time.Time{}, err
	}
	// A CA that has expired since (or a cross-signed one) vouches for
	// nothing now.
	valid := func(c []*x509.Certificate) bool {
		for _, ca := range c[1:] {
			if now.Before(ca.NotBefore) || now.After(ca.NotAfter) {
				return false
			}
		}
		return true
	}
	if !slices.ContainsFunc(chains, valid) {
		return Identity{}, time.Time{}, fmt.Errorf("%w: node %q (serial %x) expired at %s, and the CA that signed it is not valid any more: join the node again",
			ErrUntrusted, leaf.Subject.CommonName, leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return id, leaf.NotAfter, nil
}

func verifyPeer(chain []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, now time.Time) (Identity, [][]*x509.Certificate, error) {
	if len(chain) == 0 {
		return Identity{}, nil, ErrNoPeerCertificate
	}
	if roots == nil {
		// x509 would fall back to the system's web roots.
		return Identity{}, nil, fmt.Errorf("%w: no trusted CA was configured", ErrUntrusted)
	}
	leaf := chain[0]
	if leaf.IsCA {
		return Identity{}, nil, fmt.Errorf("%w: the peer presented the CA certificate %q as its own", ErrUntrusted, leaf.Subject.CommonName)
	}
	who := fmt.Sprintf("node %q (serial %x)", leaf.Subject.CommonName, leaf.SerialNumber)
	if now.After(leaf.NotAfter) {
		return Identity{}, nil, fmt.Errorf("%w: %s expired at %s (it is now %s): the node must renew its certificate, or join again",
			ErrExpired, who, leaf.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return Identity{}, nil, fmt.Errorf("%w: %s is valid from %s but this clock says %s: check both machines' clocks (NTP)",
			ErrNotYetValid, who, leaf.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return Identity{}, nil, fmt.Errorf("%w: %s, issued by %q (CA serial %s), does not chain to a CA this node trusts; "+
			"a certificate of another cluster, or of a CA rotated out (such a node must join again): %w",
			ErrUntrusted, who, leaf.Issuer.CommonName, leaf.Issuer.SerialNumber, err)
	}
	id, err := IdentityOf(leaf)
	if err != nil {
		return Identity{}, nil, err
	}
	return id, chains, nil
}

// detailed is an error with a message of its own that errors.Is still
// matches to each of its causes.
type detailed struct {
	msg    string
	causes []error
}

func (e *detailed) Error() string   { return e.msg }
func (e *detailed) Unwrap() []error { return e.causes }
