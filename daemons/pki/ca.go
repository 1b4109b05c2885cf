package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"time"
)

// Validity periods and clock tolerance.
const (
	// CAValidity is how long a new cluster CA is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// DefaultNodeTTL is the lifetime of a node certificate when SignNode
	// is given no TTL (Swarm's default too).
	DefaultNodeTTL = 90 * 24 * time.Hour
	// MaxClockSkew is how far the clock of a device may be from the
	// managers' clocks, either way, with nothing breaking: edge devices
	// often have no real-time clock, or a stale NTP fix. Backdate covers
	// a device behind; RenewAt leaves far more than it before expiry for
	// a device ahead (or behind) to renew; the managers alone judge
	// expiry and the grace after it, with their own clocks.
	MaxClockSkew = 24 * time.Hour
	// Backdate is how far before "now" certificates become valid: more
	// than MaxClockSkew, so that a device whose clock is a day behind the
	// manager that signed a certificate a moment ago (its own, a
	// manager's, the CA's) accepts it. The hour above MaxClockSkew is
	// slack for the time between signing and use.
	Backdate = MaxClockSkew + time.Hour
)

// caNamePrefix starts the common name of every cluster CA.
const caNamePrefix = "warren-ca "

// CA is a cluster certificate authority: a self-signed ECDSA P-256 root
// and its key, plus, while a rotation is under way, copies of the root's
// certificate signed by the previous CA ("cross-signed"), which SignNode
// adds to the chains it issues so that nodes still trusting only the
// previous CA accept them. A CA is immutable and safe for concurrent use.
type CA struct {
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
	cross []*x509.Certificate
}

// NewCA creates the CA of cluster clusterID: ECDSA P-256, valid from
// now-Backdate for CAValidity, named "warren-ca <clusterID>" with
// O=<clusterID>. Each CA also gets a random subject serial number, so that
// the old and the new CA of a rotation have different names.
func NewCA(clusterID string, now time.Time) (*CA, error) {
	if err := validID("cluster ID", clusterID); err != nil {
		return nil, fmt.Errorf("pki: new CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: new CA: generate key: %w", err)
	}
	var gen [8]byte
	if _, err := rand.Read(gen[:]); err != nil {
		return nil, fmt.Errorf("pki: new CA: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("pki: new CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   caNamePrefix + clusterID,
			Organization: []string{clusterID},
			SerialNumber: hex.EncodeToString(gen[:]),
		},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// One CA certificate may sit between this root and a node: the
		// cross-signed certificate of the next CA during a rotation.
		MaxPathLen: 1,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: new CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: new CA: %w", err)
	}
	return &CA{cert: cert, key: key}, nil
}

// LoadCA reads a CA saved with CertPEM and KeyPEM. The first certificate
// must be a self-signed CA whose public key is the key's; any further
// certificates must be cross-signed copies of it (same subject and key).
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, err := parseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	signer, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	key, ok := signer.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: load CA: the key is %T; a warren CA key is ECDSA", signer)
	}
	root := certs[0]
	if _, err := caCluster(root); err != nil {
		return nil, fmt.Errorf("pki: load CA: %w", err)
	}
	if !key.PublicKey.Equal(root.PublicKey) {
		return nil, errors.New("pki: load CA: the key does not belong to the certificate: were the files of two different CAs paired?")
	}
	for i, x := range certs[1:] {
		if !x.IsCA || !bytes.Equal(x.RawSubject, root.RawSubject) || !key.PublicKey.Equal(x.PublicKey) {
			return nil, fmt.Errorf("pki: load CA: certificate %d is not a cross-signed copy of the CA %q", i+2, root.Subject.CommonName)
		}
	}
	return &CA{cert: root, key: key, cross: certs[1:]}, nil
}

// caCluster checks c is a self-signed warren CA certificate and returns its
// cluster ID.
func caCluster(c *x509.Certificate) (string, error) {
	if !c.BasicConstraintsValid || !c.IsCA {
		return "", fmt.Errorf("%q is not a CA certificate", c.Subject.CommonName)
	}
	if err := c.CheckSignatureFrom(c); err != nil || !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return "", fmt.Errorf("%q is not self-signed", c.Subject.CommonName)
	}
	if len(c.Subject.Organization) != 1 || c.Subject.CommonName != caNamePrefix+c.Subject.Organization[0] {
		return "", fmt.Errorf("%q is not a warren cluster CA (want CN \"warren-ca <cluster>\", O=<cluster>)", c.Subject.CommonName)
	}
	return c.Subject.Organization[0], nil
}

// Certificate is the CA's self-signed root certificate.
func (c *CA) Certificate() *x509.Certificate { return c.cert }

// ClusterID is the cluster the CA signs for.
func (c *CA) ClusterID() string { return c.cert.Subject.Organization[0] }

// Digest is the digest of the root certificate, the one join tokens pin.
func (c *CA) Digest() string { return Digest(c.cert) }

// CertPEM is the root certificate followed by its cross-signed copies, if
// any; LoadCA reads it back.
func (c *CA) CertPEM() []byte {
	b := encodeCert(c.cert.Raw)
	for _, x := range c.cross {
		b = append(b, encodeCert(x.Raw)...)
	}
	return b
}

// KeyPEM is the CA's private key, PKCS #8 PEM. It is the cluster's most
// sensitive secret: store it encrypted, never log it.
func (c *CA) KeyPEM() ([]byte, error) { return MarshalKey(c.key) }

// CrossSigned is the cross-signed copies of the root, during a rotation.
func (c *CA) CrossSigned() []*x509.Certificate { return slices.Clone(c.cross) }

// SignNode issues the certificate of node id for the key in csrDER, a
// PKCS #10 request made with NewCSR. The request only proves that the node
// holds the key: everything the certificate says comes from id, which the
// caller decides (from the join token's kind, or from the identity of the
// node renewing). The certificate is valid from now-Backdate for ttl
// (DefaultNodeTTL if ttl <= 0, and never past the CA's own expiry), for
// both TLS server and client authentication, with subject CN=<node>,
// O=<cluster>, OU=<role> and the URI SAN warren://<cluster>/<role>/<node>;
// no IP address or DNS name.
//
// The result is the chain a node presents, in PEM: the node certificate,
// then the CA's cross-signed copies if any, then the CA certificate.
func (c *CA) SignNode(csrDER []byte, id Identity, ttl time.Duration, now time.Time) ([]byte, error) {
	if err := id.validate(); err != nil {
		return nil, fmt.Errorf("pki: sign node: %w", err)
	}
	if id.ClusterID != c.ClusterID() {
		return nil, fmt.Errorf("pki: sign node %s: this CA signs for cluster %s, not %s", id.NodeID, c.ClusterID(), id.ClusterID)
	}
	if !now.Before(c.cert.NotAfter) {
		return nil, fmt.Errorf("pki: sign node %s: the CA expired at %s: rotate it", id.NodeID, c.cert.NotAfter.Format(time.RFC3339))
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("pki: sign node %s: read the certificate request: %w", id.NodeID, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("pki: sign node %s: the certificate request is not signed by its key: %w", id.NodeID, err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("pki: sign node %s: %w", id.NodeID, err)
	}
	if ttl <= 0 {
		ttl = DefaultNodeTTL
	}
	notAfter := now.Add(ttl)
	if notAfter.After(c.cert.NotAfter) {
		notAfter = c.cert.NotAfter
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("pki: sign node %s: %w", id.NodeID, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         id.NodeID,
			Organization:       []string{id.ClusterID},
			OrganizationalUnit: []string{string(id.Role)},
		},
		URIs:                  []*url.URL{id.URI()},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, csr.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign node %s: %w", id.NodeID, err)
	}
	out := encodeCert(der)
	for _, x := range c.cross {
		out = append(out, encodeCert(x.Raw)...)
	}
	return append(out, encodeCert(c.cert.Raw)...), nil
}

// CrossSign starts a rotation from c to next. It returns next carrying a
// certificate for next's key and name signed by c, valid until the earlier
// of the two CAs' expiry. Node certificates the returned CA signs chain to
// next directly and, through that cross-signed certificate, to c as well:
// nodes that trust only c still accept them. See README.md for the whole
// rotation.
func (c *CA) CrossSign(next *CA, now time.Time) (*CA, error) {
	if next.ClusterID() != c.ClusterID() {
		return nil, fmt.Errorf("pki: cross-sign: the new CA is for cluster %s, not %s", next.ClusterID(), c.ClusterID())
	}
	if next.key.PublicKey.Equal(c.key.Public()) {
		return nil, errors.New("pki: cross-sign: the new CA has the same key as the old one")
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("pki: cross-sign: %w", err)
	}
	notAfter := next.cert.NotAfter
	if c.cert.NotAfter.Before(notAfter) {
		notAfter = c.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            next.cert.RawSubject,
		SubjectKeyId:          next.cert.SubjectKeyId,
		NotBefore:             now.Add(-Backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // only node certificates below it
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, next.key.Public(), c.key)
	if err != nil {
		return nil, fmt.Errorf("pki: cross-sign: %w", err)
	}
	x, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: cross-sign: %w", err)
	}
	return &CA{cert: next.cert, key: next.key, cross: []*x509.Certificate{x}}, nil
}

// WithoutCrossSigned is c without its cross-signed copies: what the CA
// becomes once a rotation is finished and the previous CA is no longer
// trusted.
func (c *CA) WithoutCrossSigned() *CA { return &CA{cert: c.cert, key: c.key} }

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}
