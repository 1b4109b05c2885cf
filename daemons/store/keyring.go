package store

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
)

// Encryption at rest: the state keeps every sensitive value sealed
// (keys.Sealed) under one of the data keys of the Keyring, and the
// Keyring keeps those data keys wrapped by the cluster's KEK, which is
// not in the state (package keys). Each sealed value has a place, the
// additional data it is sealed with, so that it opens only where it was
// put.
const (
	PlaceCAKey     = "ca-key"
	PlaceUnlockKey = "unlock-key"
)

var kKeyring = []byte("keyring")

// Keyring is the cluster's data keys and autolock setting
// (CmdKeyring replaces it whole).
type Keyring struct {
	Keys []keys.Wrapped `json:"keys"`
	// Active is the data key new values are sealed under.
	Active string `json:"active"`
	// KEKCheck recognizes the KEK the keys are wrapped by (keys.KEKCheck).
	KEKCheck string `json:"kekCheck"`
	// Autolock: managers keep the KEK sealed under the unlock key, and a
	// restarted manager waits for warrenctl unlock.
	Autolock bool `json:"autolock,omitempty"`
	// UnlockKey is the unlock key, sealed at PlaceUnlockKey (so that
	// warrenctl unlock-key can show it again on an unlocked manager).
	UnlockKey   keys.Sealed `json:"unlockKey,omitzero"`
	UnlockCheck string      `json:"unlockCheck,omitempty"`
	// Rotation is a data key rotation under way: the values still sealed
	// under another key than Active are sealed again by the leader, and
	// the old keys dropped when none is left under them.
	Rotation *KeyRotation `json:"rotation,omitempty"`
	// Index is the Raft index of the last change (set by the FSM).
	Index uint64 `json:"index"`
}

// KeyRotation is a data key rotation under way.
type KeyRotation struct {
	StartedAt time.Time `json:"startedAt"`
}

// Key is the wrapped data key with id, if the keyring has it.
func (k *Keyring) Key(id string) (keys.Wrapped, bool) {
	i := slices.IndexFunc(k.Keys, func(w keys.Wrapped) bool { return w.ID == id })
	if i < 0 {
		return keys.Wrapped{}, false
	}
	return k.Keys[i], true
}

// Reseal replaces sealed values in place (a data key rotation): each item
// only if the value there is still sealed under Was, so that a value
// changed since it was read is left alone.
type Reseal struct {
	Items []ResealItem `json:"items"`
}

// ResealItem is one value sealed again.
type ResealItem struct {
	Place string      `json:"place"`
	Was   string      `json:"was"` // the data key it was read under
	Value keys.Sealed `json:"value"`
}

// Keyring is the cluster's keyring, nil before initialisation (or on a
// cluster made before encryption at rest).
func (v *View) Keyring() *Keyring {
	b := v.tx.Bucket(bMeta).Get(kKeyring)
	if b == nil {
		return nil
	}
	var k Keyring
	mustDecode(b, &k)
	return &k
}

// SealedValue is a sealed value of the state where it is.
type SealedValue struct {
	Place string
	Value keys.Sealed
	// Clear: the value is kept in the clear (a cluster made before
	// encryption at rest, not yet sealed by its leader).
	Clear bool
}

// WalkSealed calls fn with every sealed value of the state: the one list
// of where they are, for the key rotation, its check and the refusal to
// drop a key still in use.
func (v *View) WalkSealed(fn func(SealedValue) error) error {
	if ca := v.CA(); ca != nil {
		if err := fn(SealedValue{Place: PlaceCAKey, Value: ca.Key, Clear: ca.KeyPEM != ""}); err != nil {
			return err
		}
	}
	if k := v.Keyring(); k != nil && !k.UnlockKey.IsZero() {
		if err := fn(SealedValue{Place: PlaceUnlockKey, Value: k.UnlockKey}); err != nil {
			return err
		}
	}
	for _, walk := range sealedWalkers {
		if err := walk(v, fn); err != nil {
			return err
		}
	}
	return nil
}

// sealedWalkers are the other kinds of objects that hold sealed values
// (secrets); resealers put a value back at their places.
var (
	sealedWalkers []func(v *View, fn func(SealedValue) error) error
	resealers     = map[string]func(w *wtx, place string, was string, s keys.Sealed) bool{}
)

// SealedCount counts the sealed values by the data key they are under;
// values in the clear count under "".
func (v *View) SealedCount() map[string]int {
	n := map[string]int{}
	v.WalkSealed(func(s SealedValue) error {
		if s.Clear {
			n[""]++
		} else if !s.Value.IsZero() {
			n[s.Value.Key]++
		}
		return nil
	})
	return n
}

func applyKeyring(w *wtx, c *Keyring) any {
	v := w.view()
	if v.Cluster() == nil {
		return api.Errorf(api.CodeConflict, "the cluster is not initialised")
	}
	if _, ok := c.Key(c.Active); !ok {
		return api.Errorf(api.CodeInvalid, "the active data key %q is not in the keyring", c.Active)
	}
	if cur := v.Keyring(); cur != nil && cur.KEKCheck != c.KEKCheck {
		return api.Errorf(api.CodeInvalid, "the keyring's data keys are wrapped by another KEK than the cluster's")
	}
	// A data key is dropped only when no value is sealed under it any
	// more: an interrupted re-encryption never loses a value. The unlock
	// key counted is the command's, which replaces the state's.
	inUse := map[string]int{}
	v.WalkSealed(func(s SealedValue) error {
		if s.Place != PlaceUnlockKey && !s.Clear && !s.Value.IsZero() {
			inUse[s.Value.Key]++
		}
		return nil
	})
	if !c.UnlockKey.IsZero() {
		inUse[c.UnlockKey.Key]++
	}
	for id, n := range inUse {
		if _, ok := c.Key(id); !ok {
			return api.Errorf(api.CodeConflict, "%d values are still sealed under the data key %s: it stays until the re-encryption has sealed them again (warrenctl secret ls --check)", n, id)
		}
	}
	c.Index = w.index
	b, _ := json.Marshal(c)
	w.must(w.tx.Bucket(bMeta).Put(kKeyring, b))
	return nil
}

func applyReseal(w *wtx, c *Reseal) any {
	k := w.view().Keyring()
	if k == nil {
		return api.Errorf(api.CodeConflict, "the cluster has no keyring")
	}
	done := 0
	for _, it := range c.Items {
		if _, ok := k.Key(it.Value.Key); !ok {
			return api.Errorf(api.CodeInvalid, "%s: sealed under a data key the keyring does not have", it.Place)
		}
		if !knownPlace(it.Place) {
			return api.Errorf(api.CodeInvalid, "no value is kept at %q", it.Place)
		}
	}
	for _, it := range c.Items {
		if resealAt(w, k, it) {
			done++
		}
	}
	return done
}

// resealAt puts one value back at its place, if it is still under it.Was.
func resealAt(w *wtx, k *Keyring, it ResealItem) bool {
	switch it.Place {
	case PlaceCAKey:
		ca := w.view().CA()
		if ca == nil || ca.Key.Key != it.Was {
			return false
		}
		ca.Key, ca.KeyPEM = it.Value, ""
		b, _ := json.Marshal(ca)
		w.must(w.tx.Bucket(bMeta).Put(kCA, b))
		// The first entry's copy goes: the CA record is the one now.
		cl := w.view().Cluster()
		cl.CAKey, cl.CAKeyPEM = keys.Sealed{}, ""
		b, _ = json.Marshal(cl)
		w.must(w.tx.Bucket(bMeta).Put(kCluster, b))
		return true
	case PlaceUnlockKey:
		if k.UnlockKey.Key != it.Was {
			return false
		}
		k.UnlockKey, k.Index = it.Value, w.index
		b, _ := json.Marshal(k)
		w.must(w.tx.Bucket(bMeta).Put(kKeyring, b))
		return true
	}
	if fn := resealerOf(it.Place); fn != nil {
		return fn(w, it.Place, it.Was, it.Value)
	}
	return false
}

func resealerOf(place string) func(w *wtx, place string, was string, s keys.Sealed) bool {
	for prefix, fn := range resealers {
		if strings.HasPrefix(place, prefix) {
			return fn
		}
	}
	return nil
}

func knownPlace(place string) bool {
	return place == PlaceCAKey || place == PlaceUnlockKey || resealerOf(place) != nil
}
