package pki

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestTokenRoundTrip(t *testing.T) {
	ca := mustCA(t, "c1")
	for _, kind := range []Role{RoleWorker, RoleManager} {
		s, rec, err := NewToken(kind, ca.Digest(), 24*time.Hour, t0)
		if err != nil {
			t.Fatalf("NewToken(%s): %v", kind, err)
		}
		want := "WRN-1-" + kindLetter(kind) + "-" + ca.Digest() + "-"
		if !strings.HasPrefix(s, want) || len(s) != len(want)+tokenIDLen+1+tokenSecretLen {
			t.Errorf("NewToken(%s) = %q, want %s<8>-<26>", kind, s, want)
		}
		if rec.Kind != kind || !rec.CreatedAt.Equal(t0) || !rec.ExpiresAt.Equal(t0.Add(24*time.Hour)) || rec.Revoked {
			t.Errorf("NewToken(%s) record = %+v", kind, rec)
		}
		if strings.Contains(rec.Hash, s[len(s)-tokenSecretLen:]) {
			t.Errorf("NewToken(%s): the record holds the secret", kind)
		}
		for _, variant := range []string{s, strings.ToUpper(s), "  " + s + "\n"} {
			tok, err := ParseToken(variant)
			if err != nil {
				t.Errorf("ParseToken(NewToken(%s), as %.12q…) = %v", kind, variant, err)
				continue
			}
			if tok.Kind != kind || tok.CADigest != ca.Digest() || tok.ID != rec.ID {
				t.Errorf("ParseToken(NewToken(%s)) = %v, want kind %s, digest %s, ID %s", kind, tok, kind, ca.Digest(), rec.ID)
			}
			if err := CheckToken(rec, tok, []string{ca.Digest()}, t0.Add(time.Hour)); err != nil {
				t.Errorf("CheckToken(a fresh %s token) = %v, want nil", kind, err)
			}
		}
	}
	if _, _, err := NewToken("admin", ca.Digest(), 0, t0); err == nil {
		t.Errorf("NewToken(admin) succeeded, want an error")
	}
	if _, _, err := NewToken(RoleWorker, "abc", 0, t0); err == nil {
		t.Errorf("NewToken(digest abc) succeeded, want an error")
	}
	_, rec, _ := NewToken(RoleWorker, ca.Digest(), 0, t0)
	if !rec.ExpiresAt.IsZero() {
		t.Errorf("NewToken(ttl 0).ExpiresAt = %v, want zero (no expiry)", rec.ExpiresAt)
	}
}

func TestParseTokenErrors(t *testing.T) {
	d := mustCA(t, "c1").Digest()
	id, secret := "abcdefgh", strings.Repeat("q", tokenSecretLen)
	cases := []struct {
		token string
		want  error
	}{
		{"", ErrTokenMalformed},
		{"SWMTKN-1-" + d + "-" + secret, ErrTokenMalformed},
		{"WRN", ErrTokenMalformed},
		{"WRN-x-w-" + d + "-" + id + "-" + secret, ErrTokenMalformed},
		{"WRN-2-w-" + d + "-" + id + "-" + secret, ErrTokenVersion},
		{"WRN-2-anything", ErrTokenVersion},
		{"WRN-1-w-" + d + "-" + id, ErrTokenMalformed},
		{"WRN-1-w-" + d + "-" + id + "-" + secret + "-x", ErrTokenMalformed},
		{"WRN-1-a-" + d + "-" + id + "-" + secret, ErrTokenKind},
		{"WRN-1-worker-" + d + "-" + id + "-" + secret, ErrTokenKind},
		{"WRN-1-w-" + d[:51] + "-" + id + "-" + secret, ErrTokenMalformed},
		{"WRN-1-w-" + d[:51] + "0-" + id + "-" + secret, ErrTokenMalformed},
		{"WRN-1-w-" + d + "-abcdefg-" + secret, ErrTokenMalformed},
		{"WRN-1-w-" + d + "-" + id + "-" + secret[:25], ErrTokenMalformed},
		{"WRN-1-w-" + d + "-" + id + "-" + secret[:25] + "1", ErrTokenMalformed},
		{"WRN-1-w-" + d + "-" + id + "-" + secret + "a", ErrTokenMalformed},
	}
	for _, c := range cases {
		_, err := ParseToken(c.token)
		if !errors.Is(err, c.want) {
			t.Errorf("ParseToken(%q) = %v, want %v", c.token, err, c.want)
		}
		if err != nil && len(c.token) > 20 && strings.Contains(err.Error(), secret[:20]) {
			t.Errorf("ParseToken(%q) = %v: the error shows the secret", c.token, err)
		}
	}
}

func TestCheckToken(t *testing.T) {
	oldCA, newCA := mustCA(t, "c1"), mustCA(t, "c1")
	s, rec, err := NewToken(RoleWorker, newCA.Digest(), time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseToken(s)
	if err != nil {
		t.Fatal(err)
	}
	wrongSecret := tok
	wrongSecret.Secret = Secret{strings.Repeat("a", tokenSecretLen)}
	asManager := tok
	asManager.Kind = RoleManager
	revoked := rec
	revoked.Revoked = true
	both := []string{newCA.Digest(), oldCA.Digest()}
	s2, oldRec, _ := NewToken(RoleWorker, oldCA.Digest(), time.Hour, t0)
	oldTok, _ := ParseToken(s2)

	cases := []struct {
		name    string
		rec     TokenRecord
		tok     Token
		digests []string
		now     time.Time
		want    error
	}{
		{"a valid token", rec, tok, both, t0, nil},
		{"a valid token, digests in upper case", rec, tok, []string{strings.ToUpper(newCA.Digest())}, t0, nil},
		{"a token of the new CA after the rotation", rec, tok, []string{newCA.Digest()}, t0, nil},
		{"a token of the old CA during the rotation", oldRec, oldTok, both, t0, nil},
		{"a token of the old CA after the rotation", oldRec, oldTok, []string{newCA.Digest()}, t0, ErrTokenCADigest},
		{"a token of another cluster", TokenRecord{}, tok, []string{mustCA(t, "c2").Digest()}, t0, ErrTokenCADigest},
		{"no record", TokenRecord{}, tok, both, t0, ErrTokenUnknown},
		{"another token's record", TokenRecord{ID: "zzzzzzzz", Kind: RoleWorker, Hash: rec.Hash}, tok, both, t0, ErrTokenUnknown},
		{"the wrong secret", rec, wrongSecret, both, t0, ErrTokenSecret},
		{"the wrong secret of a revoked token", revoked, wrongSecret, both, t0, ErrTokenSecret},
		{"a worker token edited to say manager", rec, asManager, both, t0, ErrTokenKindMismatch},
		{"a revoked token", revoked, tok, both, t0, ErrTokenRevoked},
		{"an expired token", rec, tok, both, t0.Add(time.Hour), ErrTokenExpired},
		{"a token a second before expiry", rec, tok, both, t0.Add(time.Hour - time.Second), nil},
	}
	for _, c := range cases {
		err := CheckToken(c.rec, c.tok, c.digests, c.now)
		if !errors.Is(err, c.want) {
			t.Errorf("CheckToken(%s) = %v, want %v", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), s[len(s)-tokenSecretLen:]) {
			t.Errorf("CheckToken(%s) = %v: the error shows the secret", c.name, err)
		}
	}
	err = CheckToken(TokenRecord{}, tok, []string{oldCA.Digest()}, t0)
	if want := "made for another cluster or before a CA rotation"; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "ask an operator for a new one") {
		t.Errorf("CheckToken(a token pinning another CA) = %v, want it to say %q and to ask an operator for a new one", err, want)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s, rec, err := NewToken(RoleManager, mustCA(t, "c1").Digest(), 0, t0)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ParseToken(s)
	if err != nil {
		t.Fatal(err)
	}
	secret := s[len(s)-tokenSecretLen:]
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("join", "secret", tok.Secret, "token", tok)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("join", "secret", tok.Secret, "token", tok)
	js, _ := json.Marshal(tok)
	outputs := map[string]string{"slog": logged.String(), "json.Marshal": string(js), "Token.String": tok.String()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outputs[verb] = fmt.Sprintf(verb+" "+verb, tok, tok.Secret)
	}
	for how, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(out, fmt.Sprintf("%x", secret)) || strings.Contains(out, fmt.Sprintf("%X", secret)) {
			t.Errorf("%s of a token shows its secret: %s", how, out)
		}
	}
	if !VerifySecret(rec.Hash, tok.Secret) {
		t.Errorf("VerifySecret(the record's hash, the token's secret) = false, want true")
	}
	if VerifySecret(rec.Hash, Secret{}) || VerifySecret("", tok.Secret) {
		t.Errorf("VerifySecret with an empty secret or hash = true, want false")
	}
}
