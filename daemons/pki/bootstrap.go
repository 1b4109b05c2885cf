package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrPinMismatch: during a join, the server did not prove it holds a
// certificate of the CA the join token pins.
var ErrPinMismatch = errors.New("pki: the server is not a manager of the cluster the join token was made for")

// BootstrapClientConfig is the TLS 1.3 configuration a joining node dials
// a manager with, when all it has is a join token and an address. The
// token's CA digest stands in for a trust bundle: the manager sends its
// trusted CA certificates after its own (see Credentials), and the
// handshake succeeds only if one of them has exactly this digest, the
// manager's certificate chains to it, and says the manager role. A
// man-in-the-middle has no certificate signed by that CA, so it cannot
// complete the handshake and never sees the token's secret, which the
// joining node sends only over this connection.
//
// The joining node presents no certificate. Set Time on the returned
// config to use another clock than time.Now.
func BootstrapClientConfig(caDigest string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	// Not insecure: VerifyConnection replaces the standard verification,
	// which would want the web's roots and a host name.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		now := time.Now()
		if cfg.Time != nil {
			now = cfg.Time()
		}
		_, _, err := VerifyPinned(cs.PeerCertificates, caDigest, now)
		return err
	}
	return cfg
}

// VerifyPinned verifies the chain a manager presented to a joining node
// whose token pins caDigest: a certificate in the chain after the leaf is
// a self-signed warren CA with that digest, the leaf chains to it (through
// the chain's other certificates) for server authentication at now, and
// the leaf's identity is a manager of that CA's cluster. It returns the
// manager's identity and the pinned CA certificate.
func VerifyPinned(chain []*x509.Certificate, caDigest string, now time.Time) (Identity, *x509.Certificate, error) {
	if len(chain) == 0 {
		return Identity{}, nil, ErrNoPeerCertificate
	}
	digest := strings.ToLower(strings.TrimSpace(caDigest))
	if !validB32(digest, DigestLen) {
		return Identity{}, nil, fmt.Errorf("pki: %q is not a CA digest (%d characters of a-z and 2-7)", caDigest, DigestLen)
	}
	var pinned *x509.Certificate
	for _, c := range chain[1:] {
		if Digest(c) == digest {
			pinned = c
			break
		}
	}
	if pinned == nil {
		return Identity{}, nil, fmt.Errorf("%w: it did not present the CA %s…: check the manager's address, ask for a new token if the CA was rotated; otherwise something is intercepting the connection",
			ErrPinMismatch, digest[:12])
	}
	cluster, err := caCluster(pinned)
	if err != nil {
		return Identity{}, nil, fmt.Errorf("%w: %w", ErrPinMismatch, err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(pinned)
	id, err := VerifyPeer(chain, roots, x509.ExtKeyUsageServerAuth, now)
	if errors.Is(err, ErrUntrusted) || errors.Is(err, ErrNoIdentity) {
		// It sent the CA certificate, which is public, but its own
		// certificate is not signed by that CA.
		return Identity{}, nil, &detailed{
			msg: fmt.Sprintf("%s: it sent the CA %s… but its own certificate (%q) is not signed by it: something may be intercepting the connection",
				ErrPinMismatch, digest[:12], chain[0].Subject.CommonName),
			causes: []error{ErrPinMismatch, err},
		}
	}
	if err != nil {
		return Identity{}, nil, err // expired or not yet valid: a clock or a renewal problem
	}
	if id.ClusterID != cluster {
		return Identity{}, nil, fmt.Errorf("%w: %s is of cluster %s, the CA of %s", ErrPinMismatch, id.NodeID, id.ClusterID, cluster)
	}
	if id.Role != RoleManager {
		return Identity{}, nil, fmt.Errorf("%w: %s is a %s; join through a manager's address", ErrPinMismatch, id.NodeID, id.Role)
	}
	return id, pinned, nil
}
