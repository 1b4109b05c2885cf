package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Join tokens.
//
// A token is what an operator copies to a device so it can join:
//
//	WRN-1-<kind>-<ca digest>-<id>-<secret>
//
//	WRN          fixed prefix
//	1            format version
//	<kind>       w (worker) or m (manager): the role the token grants
//	<ca digest>  Digest of the cluster CA, 52 characters: the joining node
//	             checks the manager it reaches against it
//	<id>         8 characters naming the token, public, the key of the
//	             cluster's TokenRecord
//	<secret>     26 characters, 130 random bits
//
// All of it is lowercase base32 (a-z, 2-7) apart from the prefix; it is
// read case-insensitively. The cluster stores only a hash of the secret.
const (
	tokenPrefix    = "WRN"
	tokenVersion   = "1"
	tokenIDLen     = 8  // 5 random bytes
	tokenSecretLen = 26 // 16 random bytes
	tokenFormat    = "WRN-1-<w|m>-<ca digest>-<id>-<secret>"
)

// Errors of ParseToken and CheckToken. Each is wrapped with what is wrong and
// what to do; none ever includes the secret.
var (
	ErrTokenMalformed    = errors.New("pki: the join token is malformed")
	ErrTokenVersion      = errors.New("pki: the join token's version is not supported")
	ErrTokenKind         = errors.New("pki: the join token's kind is unknown")
	ErrTokenCADigest     = errors.New("pki: the join token was made for another cluster or before a CA rotation")
	ErrTokenUnknown      = errors.New("pki: the join token is not known to the cluster")
	ErrTokenSecret       = errors.New("pki: the join token's secret is wrong")
	ErrTokenKindMismatch = errors.New("pki: the join token's kind is not the kind it was issued with")
	ErrTokenRevoked      = errors.New("pki: the join token was revoked")
	ErrTokenExpired      = errors.New("pki: the join token has expired")
)

// askForToken ends the errors a person joining a device can only fix with
// a new token.
const askForToken = "ask an operator for a new one (warrenctl join-token worker|manager)"

// Secret is a token's secret part. It never prints: every fmt verb and
// slog show "[redacted]". Only Hash leaves it.
type Secret struct{ s string }

// Hash is what the cluster stores in place of the secret: "sha256:" and
// the hex sha256 of the secret. The secret is 130 random bits, so a fast
// hash is enough: there is nothing to guess.
func (s Secret) Hash() string {
	sum := sha256.Sum256([]byte(s.s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.s == "" }

// Format prints "[redacted]" whatever the verb.
func (Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, "[redacted]") }

// String is "[redacted]".
func (Secret) String() string { return "[redacted]" }

// LogValue keeps the secret out of slog.
func (Secret) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// VerifySecret reports, in constant time, whether s hashes to hash.
func VerifySecret(hash string, s Secret) bool {
	return subtle.ConstantTimeCompare([]byte(s.Hash()), []byte(hash)) == 1
}

// Token is a parsed join token.
type Token struct {
	Kind     Role   // the role the token grants
	CADigest string // the pinned CA digest, lowercase
	ID       string // the token's public name, lowercase
	Secret   Secret
}

// String is the token with its secret left out, for logs.
func (t Token) String() string {
	return fmt.Sprintf("%s-%s-%s-%s-%s-[redacted]", tokenPrefix, tokenVersion, kindLetter(t.Kind), t.CADigest, t.ID)
}

// TokenRecord is what the cluster stores of a token: everything but the
// secret. Look records up by ID.
type TokenRecord struct {
	ID        string    `json:"id"`
	Kind      Role      `json:"kind"`
	Hash      string    `json:"hash"` // Secret.Hash
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt,omitzero"` // zero: never
	Revoked   bool      `json:"revoked,omitempty"`
}

// NewToken makes a join token granting kind, pinning the CA with digest
// caDigest (the active CA: Bundle.Active), valid for ttl from now (for
// ever if ttl <= 0). It returns the token, to show the operator once, and
// the record to store.
func NewToken(kind Role, caDigest string, ttl time.Duration, now time.Time) (string, TokenRecord, error) {
	if !kind.IsNode() {
		return "", TokenRecord{}, fmt.Errorf("pki: new token: the kind %q is not %q or %q", kind, RoleWorker, RoleManager)
	}
	digest := strings.ToLower(strings.TrimSpace(caDigest))
	if !validB32(digest, DigestLen) {
		return "", TokenRecord{}, fmt.Errorf("pki: new token: %q is not a CA digest", caDigest)
	}
	var b [5 + 16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", TokenRecord{}, fmt.Errorf("pki: new token: %w", err)
	}
	id, secret := b32.EncodeToString(b[:5]), Secret{b32.EncodeToString(b[5:])}
	rec := TokenRecord{ID: id, Kind: kind, Hash: secret.Hash(), CreatedAt: now}
	if ttl > 0 {
		rec.ExpiresAt = now.Add(ttl)
	}
	tok := strings.Join([]string{tokenPrefix, tokenVersion, kindLetter(kind), digest, id, secret.s}, "-")
	return tok, rec, nil
}

func kindLetter(r Role) string {
	switch r {
	case RoleWorker:
		return "w"
	case RoleManager:
		return "m"
	}
	return "?"
}

// ParseToken reads a join token, case-insensitively and ignoring
// surrounding space. Its errors are ErrTokenMalformed, ErrTokenVersion and
// ErrTokenKind, wrapped with what was expected.
func ParseToken(s string) (Token, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(s)), "-")
	if len(parts) < 2 || parts[0] != strings.ToLower(tokenPrefix) {
		return Token{}, fmt.Errorf("%w: it does not start with %s-; want %s", ErrTokenMalformed, tokenPrefix, tokenFormat)
	}
	if parts[1] != tokenVersion {
		if parts[1] == "" || strings.Trim(parts[1], "0123456789") != "" {
			return Token{}, fmt.Errorf("%w: want %s", ErrTokenMalformed, tokenFormat)
		}
		return Token{}, fmt.Errorf("%w: it is version %s; this warren reads version %s: upgrade warren, or %s",
			ErrTokenVersion, parts[1], tokenVersion, askForToken)
	}
	if len(parts) != 6 {
		return Token{}, fmt.Errorf("%w: it has %d parts separated by '-', want 6: %s (was it copied whole?)",
			ErrTokenMalformed, len(parts), tokenFormat)
	}
	var t Token
	switch parts[2] {
	case "w":
		t.Kind = RoleWorker
	case "m":
		t.Kind = RoleManager
	default:
		return Token{}, fmt.Errorf("%w: %q; want w (worker) or m (manager)", ErrTokenKind, truncate(parts[2], 8))
	}
	if !validB32(parts[3], DigestLen) {
		return Token{}, fmt.Errorf("%w: the CA digest must be %d characters of a-z and 2-7 (was it copied whole?)", ErrTokenMalformed, DigestLen)
	}
	if !validB32(parts[4], tokenIDLen) {
		return Token{}, fmt.Errorf("%w: the token ID must be %d characters of a-z and 2-7", ErrTokenMalformed, tokenIDLen)
	}
	if !validB32(parts[5], tokenSecretLen) {
		return Token{}, fmt.Errorf("%w: the secret must be %d characters of a-z and 2-7 (was it copied whole?)", ErrTokenMalformed, tokenSecretLen)
	}
	t.CADigest, t.ID, t.Secret = parts[3], parts[4], Secret{parts[5]}
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// CheckToken decides whether tok, presented by a joining node, may join at
// now. rec is the stored record with ID tok.ID (the zero TokenRecord if
// there is none); caDigests are the digests of the CAs the cluster trusts
// (Bundle.Digests: during a rotation, tokens of the old and the new CA
// both work). The checks run in this order, and the first that fails is
// returned: the CA digest (ErrTokenCADigest), the record exists
// (ErrTokenUnknown), the secret, in constant time (ErrTokenSecret), the
// kind (ErrTokenKindMismatch), revocation (ErrTokenRevoked), expiry
// (ErrTokenExpired). A caller without the secret learns nothing past
// ErrTokenSecret.
func CheckToken(rec TokenRecord, tok Token, caDigests []string, now time.Time) error {
	if !slices.ContainsFunc(caDigests, func(d string) bool { return SameDigest(d, tok.CADigest) }) {
		return fmt.Errorf("%w (the token pins CA %s, the cluster trusts %s): %s",
			ErrTokenCADigest, truncate(tok.CADigest, 12), shortDigests(caDigests), askForToken)
	}
	if rec.ID == "" || rec.ID != tok.ID {
		return fmt.Errorf("%w: no token %s; it may have been rotated out: %s", ErrTokenUnknown, tok.ID, askForToken)
	}
	if !VerifySecret(rec.Hash, tok.Secret) {
		return fmt.Errorf("%w for token %s: check it was copied whole", ErrTokenSecret, tok.ID)
	}
	if tok.Kind != rec.Kind {
		return fmt.Errorf("%w: token %s was issued as a %s token, not a %s token", ErrTokenKindMismatch, tok.ID, rec.Kind, tok.Kind)
	}
	if rec.Revoked {
		return fmt.Errorf("%w: token %s: %s", ErrTokenRevoked, tok.ID, askForToken)
	}
	if !rec.ExpiresAt.IsZero() && !now.Before(rec.ExpiresAt) {
		return fmt.Errorf("%w: token %s expired at %s: %s", ErrTokenExpired, tok.ID, rec.ExpiresAt.UTC().Format(time.RFC3339), askForToken)
	}
	return nil
}

func shortDigests(ds []string) string {
	if len(ds) == 0 {
		return "no CA"
	}
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = truncate(strings.ToLower(d), 12)
	}
	return strings.Join(s, ", ")
}
