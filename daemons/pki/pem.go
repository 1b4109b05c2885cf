package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types.
const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"    // PKCS #8
	pemECKey       = "EC PRIVATE KEY" // SEC 1, accepted when reading
)

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: der})
}

// parseCerts reads every CERTIFICATE block of b, in order. Other blocks
// are an error: a key pasted into a certificate file is a mistake worth
// reporting.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != pemCertificate {
			return nil, fmt.Errorf("found a %q PEM block where certificates were expected", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE PEM block found")
	}
	return certs, nil
}

// MarshalKey encodes a private key as PKCS #8 PEM ("PRIVATE KEY").
func MarshalKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// ParseKey reads a PEM private key: PKCS #8 ("PRIVATE KEY") or SEC 1
// ("EC PRIVATE KEY"), ECDSA P-256 or P-384, or Ed25519.
func ParseKey(b []byte) (crypto.Signer, error) {
	k, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("pki: read key: %w", err)
	}
	return k, nil
}

func parseKey(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case pemPrivateKey:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemECKey:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("found a %q PEM block, want %q", block.Type, pemPrivateKey)
	}
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok || checkPublicKey(s.Public()) != nil {
		return nil, fmt.Errorf("a %T key; want ECDSA P-256 or P-384, or Ed25519", key)
	}
	return s, nil
}

// checkPublicKey accepts the key types node certificates may have.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("ECDSA key on curve %s; want P-256 or P-384", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	default:
		return fmt.Errorf("a %T key; want ECDSA P-256 or P-384, or Ed25519", pub)
	}
}
