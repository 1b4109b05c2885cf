package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"strings"
)

// b32 is lowercase RFC 4648 base32 without padding: letters and 2-7, no
// characters that look alike (0/O, 1/l) and none that a shell or a URL
// treats specially, so tokens survive being read aloud and pasted.
var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// DigestLen is the length of a Digest: sha256 in 52 base32 characters.
const DigestLen = 52

// Digest is the fingerprint of a CA certificate that join tokens pin:
// sha256 of the certificate's DER, in lowercase base32 (52 characters).
// Compare digests with SameDigest; they are case-insensitive.
func Digest(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return b32.EncodeToString(sum[:])
}

// SameDigest reports whether two digests are equal, ignoring case and
// surrounding space.
func SameDigest(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

// validB32 reports whether s is n characters of the lowercase base32
// alphabet.
func validB32(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
