package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"time"
)

// NewKey generates a node's private key, ECDSA P-256, on the node itself:
// the key never leaves the device, only a certificate request for it does.
// keyPEM is the key in PKCS #8 PEM, to be written 0600.
func NewKey() (key *ecdsa.PrivateKey, keyPEM []byte, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: new key: %w", err)
	}
	keyPEM, err = MarshalKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, keyPEM, nil
}

// NewCSR makes the certificate request (PKCS #10, DER) a node sends to a
// manager to join or to renew. nodeID, which may be empty when the
// manager assigns the ID, only goes in the request's subject as a hint:
// the manager decides the identity (see CA.SignNode).
func NewCSR(key crypto.Signer, nodeID string) ([]byte, error) {
	if err := checkPublicKey(key.Public()); err != nil {
		return nil, fmt.Errorf("pki: new certificate request: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: nodeID},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("pki: new certificate request: %w", err)
	}
	return der, nil
}

// RenewAt is when a node should renew cert: between 60% and 75% of the
// life it was issued for (from its signing, IssuedAt, to NotAfter; the
// Backdate before it is slack for clocks, not life), at a point that
// depends on the certificate's serial number, so a fleet that joined at
// once does not renew at once. It is a pure function of the certificate.
//
// A quarter of the life at least (22 days of a 90-day certificate) is
// left after it: far more than MaxClockSkew, so a device whose clock is a
// day behind still renews long before the managers see the certificate
// expire.
func RenewAt(cert *x509.Certificate) time.Time {
	issued := IssuedAt(cert)
	life := cert.NotAfter.Sub(issued)
	sum := sha256.Sum256(cert.SerialNumber.Bytes())
	spread := float64(binary.BigEndian.Uint16(sum[:2])) / 65536 // [0, 1)
	return issued.Add(time.Duration(float64(life) * (0.60 + 0.15*spread)))
}

// IssuedAt is when cert was signed: Backdate after its NotBefore. A
// certificate too short for that (not one SignNode made) counts from its
// NotBefore.
func IssuedAt(cert *x509.Certificate) time.Time {
	if t := cert.NotBefore.Add(Backdate); t.Before(cert.NotAfter) {
		return t
	}
	return cert.NotBefore
}

// NeedsRenewal reports whether cert is past its RenewAt point at now, or
// already expired.
func NeedsRenewal(cert *x509.Certificate, now time.Time) bool {
	return !now.Before(RenewAt(cert))
}
