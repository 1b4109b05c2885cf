// Package keys encrypts what the managers keep that must not be read off
// a disk: secret values, the CA's private key, the autolock unlock key.
//
// Two levels of keys, as envelope encryption does it:
//
//	data key (DEK)  AES-256-GCM; seals the values. Kept in Raft, wrapped:
//	                the Raft log, snapshots and state.db hold ciphertext.
//	key-encryption  AES-256-GCM; wraps the data keys. One per cluster,
//	key (KEK)       given to a manager when it joins (over mTLS), kept in
//	                DATADIR/keys/kek.json: in the clear without autolock,
//	                sealed under the unlock key with it.
//
// A Ring holds the wrapped data keys the store has and, once it has the
// KEK, their plain form. Without the KEK it is locked: Seal and Open fail
// with ErrLocked, and nothing else changes.
//
// The package links no network and no store: it is pure crypto and one
// file.
package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// KeyLen is the length of every key here: AES-256.
const KeyLen = 32

// Key is a 256-bit key. It never prints.
type Key [KeyLen]byte

// Format prints "[redacted]" whatever the verb.
func (Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// NewKey is a fresh random key.
func NewKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return Key{}, fmt.Errorf("keys: new key: %w", err)
	}
	return k, nil
}

// Errors.
var (
	// ErrLocked: the ring has no KEK yet (an autolocked manager before
	// warrenctl unlock, or a manager that has not joined).
	ErrLocked = errors.New("keys: the manager is locked: it cannot read or write encrypted values until it is unlocked (warrenctl unlock)")
	// ErrUnknownKey: the value is sealed under a data key this ring does
	// not hold.
	ErrUnknownKey = errors.New("keys: the value is sealed under a data key this manager does not have")
	// ErrCorrupt: the value does not open (tampered, moved to another
	// place, or sealed under another key with the same ID).
	ErrCorrupt = errors.New("keys: the value does not decrypt: it was changed or moved")
)

// Sealed is a value encrypted under one data key, as it is stored.
type Sealed struct {
	Key   string `json:"key"` // the data key's ID
	Nonce []byte `json:"nonce"`
	Box   []byte `json:"box"` // ciphertext and tag
}

// IsZero reports whether s holds nothing.
func (s Sealed) IsZero() bool { return s.Key == "" && len(s.Box) == 0 }

// Wrapped is a data key as Raft keeps it: sealed under the KEK.
type Wrapped struct {
	ID        string    `json:"id"`
	Nonce     []byte    `json:"nonce"`
	Box       []byte    `json:"box"`
	CreatedAt time.Time `json:"createdAt"`
}

// KEKCheck is what a ring's KEK is recognized by: a hash that gives
// nothing of the key away. A joining manager or an unlock is checked
// against the one Raft holds.
func KEKCheck(kek Key) string {
	sum := sha256.Sum256(append([]byte("warren kek check\x00"), kek[:]...))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

func aead(k Key) cipher.AEAD {
	b, err := aes.NewCipher(k[:])
	if err != nil {
		panic(err) // 32 bytes is always a valid AES key
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return g
}

func seal(g cipher.AEAD, plain, aad []byte) (nonce, box []byte, err error) {
	nonce = make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, fmt.Errorf("keys: nonce: %w", err)
	}
	return nonce, g.Seal(nil, nonce, plain, aad), nil
}

func open(g cipher.AEAD, nonce, box, aad []byte) ([]byte, error) {
	if len(nonce) != g.NonceSize() {
		return nil, ErrCorrupt
	}
	p, err := g.Open(nil, nonce, box, aad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return p, nil
}

var keyIDs = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// WrapNew makes a new data key and wraps it under kek.
func WrapNew(kek Key, now time.Time) (Wrapped, error) {
	dek, err := NewKey()
	if err != nil {
		return Wrapped{}, err
	}
	var idb [5]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return Wrapped{}, fmt.Errorf("keys: %w", err)
	}
	id := "dek-" + keyIDs.EncodeToString(idb[:])
	nonce, box, err := seal(aead(kek), dek[:], []byte("warren dek "+id))
	if err != nil {
		return Wrapped{}, err
	}
	return Wrapped{ID: id, Nonce: nonce, Box: box, CreatedAt: now.UTC()}, nil
}

func unwrap(w Wrapped, kek Key) (Key, error) {
	p, err := open(aead(kek), w.Nonce, w.Box, []byte("warren dek "+w.ID))
	if err != nil {
		return Key{}, fmt.Errorf("keys: data key %s does not unwrap under this KEK: %w", w.ID, err)
	}
	var k Key
	copy(k[:], p)
	return k, nil
}

// Ring is the data keys a manager can use. It is safe for concurrent use.
type Ring struct {
	mu      sync.RWMutex
	kek     *Key
	wrapped []Wrapped
	active  string
	deks    map[string]cipher.AEAD
	// src gives the wrapped keys the store holds now and a version that
	// changes with them (Follow); ver is the version last taken.
	src func() ([]Wrapped, string, uint64)
	ver uint64
}

// Follow makes the ring take its wrapped keys from src (the store), before
// each use, whenever src's version changed.
func (r *Ring) Follow(src func() (ws []Wrapped, active string, version uint64)) {
	r.mu.Lock()
	r.src = src
	r.mu.Unlock()
	r.refresh()
}

func (r *Ring) refresh() {
	r.mu.RLock()
	src, ver := r.src, r.ver
	r.mu.RUnlock()
	if src == nil {
		return
	}
	ws, active, v := src()
	if v == ver && v != 0 {
		return
	}
	r.SetKeys(ws, active)
	r.mu.Lock()
	r.ver = v
	r.mu.Unlock()
}

// NewRing is a locked, empty ring.
func NewRing() *Ring { return &Ring{deks: map[string]cipher.AEAD{}} }

// Unlock gives the ring its KEK and unwraps the data keys it holds. A KEK
// under which they do not unwrap is refused and changes nothing.
func (r *Ring) Unlock(kek Key) error {
	r.refresh()
	r.mu.Lock()
	defer r.mu.Unlock()
	deks, err := unwrapAll(r.wrapped, kek)
	if err != nil {
		return err
	}
	r.kek, r.deks = &kek, deks
	return nil
}

// Lock forgets the KEK and the plain data keys.
func (r *Ring) Lock() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kek, r.deks = nil, map[string]cipher.AEAD{}
}

// Locked reports whether the ring has no KEK.
func (r *Ring) Locked() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.kek == nil
}

// KEK is the ring's KEK (ErrLocked without one).
func (r *Ring) KEK() (Key, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.kek == nil {
		return Key{}, ErrLocked
	}
	return *r.kek, nil
}

// SetKeys replaces the wrapped data keys (what Raft holds now) and the ID
// of the one new values are sealed under. With a KEK, the keys are
// unwrapped; one that does not unwrap is reported, and the keys it could
// unwrap stay usable.
func (r *Ring) SetKeys(ws []Wrapped, active string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wrapped, r.active = append([]Wrapped(nil), ws...), active
	if r.kek == nil {
		return nil
	}
	deks := map[string]cipher.AEAD{}
	var errs []error
	for _, w := range ws {
		if g, ok := r.deks[w.ID]; ok {
			deks[w.ID] = g
			continue
		}
		k, err := unwrap(w, *r.kek)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		deks[w.ID] = aead(k)
	}
	r.deks = deks
	return errors.Join(errs...)
}

func unwrapAll(ws []Wrapped, kek Key) (map[string]cipher.AEAD, error) {
	deks := map[string]cipher.AEAD{}
	for _, w := range ws {
		k, err := unwrap(w, kek)
		if err != nil {
			return nil, err
		}
		deks[w.ID] = aead(k)
	}
	return deks, nil
}

// Active is the ID of the data key new values are sealed under.
func (r *Ring) Active() string {
	r.refresh()
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.active
}

// Seal encrypts plain under the active data key. aad names the value's
// place (for example "secret/ID/3"): the value opens only there.
func (r *Ring) Seal(plain []byte, aad string) (Sealed, error) {
	r.refresh()
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.kek == nil {
		return Sealed{}, ErrLocked
	}
	g, ok := r.deks[r.active]
	if !ok {
		return Sealed{}, fmt.Errorf("keys: no active data key: %w", ErrUnknownKey)
	}
	nonce, box, err := seal(g, plain, []byte(aad))
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{Key: r.active, Nonce: nonce, Box: box}, nil
}

// Open decrypts s, sealed at the place aad.
func (r *Ring) Open(s Sealed, aad string) ([]byte, error) {
	r.refresh()
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.kek == nil {
		return nil, ErrLocked
	}
	g, ok := r.deks[s.Key]
	if !ok {
		return nil, fmt.Errorf("%w (%s)", ErrUnknownKey, s.Key)
	}
	return open(g, s.Nonce, s.Box, []byte(aad))
}

// Reseal opens s and seals it again under the active key (a data key
// rotation). A value already under the active key is returned as it is.
func (r *Ring) Reseal(s Sealed, aad string) (Sealed, bool, error) {
	if s.Key == r.Active() {
		return s, false, nil
	}
	p, err := r.Open(s, aad)
	if err != nil {
		return Sealed{}, false, err
	}
	out, err := r.Seal(p, aad)
	clear(p)
	return out, err == nil, err
}

// The unlock key: what an operator keeps to unlock an autolocked manager.
// It is shown as WRN-UNLOCK-<52 base32 characters> (256 random bits).
const unlockPrefix = "WRN-UNLOCK-"

// UnlockKey is a parsed unlock key. It never prints.
type UnlockKey struct{ k Key }

// Format prints "[redacted]" whatever the verb.
func (UnlockKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("[redacted]")) }

// IsZero reports whether u is no key.
func (u UnlockKey) IsZero() bool { return u.k == Key{} }

// Reveal is the unlock key's text, to show the operator who asked.
func (u UnlockKey) Reveal() string { return unlockPrefix + keyIDs.EncodeToString(u.k[:]) }

// NewUnlockKey is a fresh unlock key.
func NewUnlockKey() (UnlockKey, error) {
	k, err := NewKey()
	return UnlockKey{k}, err
}

// ParseUnlockKey reads an unlock key as Reveal writes it (any case,
// surrounding space ignored).
func ParseUnlockKey(s string) (UnlockKey, error) {
	s = strings.TrimSpace(s)
	if len(s) < len(unlockPrefix) || !strings.EqualFold(s[:len(unlockPrefix)], unlockPrefix) {
		return UnlockKey{}, fmt.Errorf("keys: this is not an unlock key: it starts with %s (warrenctl unlock-key shows it on an unlocked manager)", unlockPrefix)
	}
	b, err := keyIDs.DecodeString(strings.ToLower(s[len(unlockPrefix):]))
	if err != nil || len(b) != KeyLen {
		return UnlockKey{}, fmt.Errorf("keys: the unlock key is damaged: after %s come 52 letters a-z and digits 2-7", unlockPrefix)
	}
	var u UnlockKey
	copy(u.k[:], b)
	if u.IsZero() {
		return UnlockKey{}, fmt.Errorf("keys: this is not an unlock key Warren made (it is all zeros)")
	}
	return u, nil
}

// Bytes is the key's raw form, to seal in Raft.
func (u UnlockKey) Bytes() []byte { return append([]byte(nil), u.k[:]...) }

// UnlockKeyFrom reads the raw form Bytes gave.
func UnlockKeyFrom(b []byte) (UnlockKey, error) {
	if len(b) != KeyLen {
		return UnlockKey{}, fmt.Errorf("keys: an unlock key is %d bytes, not %d", KeyLen, len(b))
	}
	var u UnlockKey
	copy(u.k[:], b)
	return u, nil
}

// Check is what an unlock key is recognized by, without giving it away.
func (u UnlockKey) Check() string {
	sum := sha256.Sum256(append([]byte("warren unlock check\x00"), u.k[:]...))
	return "sha256:" + hex.EncodeToString(sum[:8])
}

// wrapKey is the AES key an unlock key seals the KEK under.
func (u UnlockKey) wrapKey() Key {
	return sha256.Sum256(append([]byte("warren unlock wrap\x00"), u.k[:]...))
}
