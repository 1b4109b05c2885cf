package store

import (
	"testing"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
)

// A keyring with one data key over a harness's cluster, and the CA key
// sealed under it.
func keyedHarness(t *testing.T) (*harness, keys.Key, *keys.Ring, Keyring) {
	h := newHarness(t)
	kek, _ := keys.NewKey()
	w, err := keys.WrapNew(kek, t0)
	if err != nil {
		t.Fatal(err)
	}
	k := Keyring{Keys: []keys.Wrapped{w}, Active: w.ID, KEKCheck: keys.KEKCheck(kek)}
	h.mustApply(CmdKeyring, k)
	ring := keys.NewRing()
	ring.Follow(func() ([]keys.Wrapped, string, uint64) {
		var cur *Keyring
		h.view(func(v *View) { cur = v.Keyring() })
		return cur.Keys, cur.Active, cur.Index
	})
	if err := ring.Unlock(kek); err != nil {
		t.Fatal(err)
	}
	sealed, err := ring.Seal([]byte("-----BEGIN PRIVATE KEY-----"), PlaceCAKey)
	if err != nil {
		t.Fatal(err)
	}
	h.mustApply(CmdCA, CA{CertPEM: "cert", Key: sealed, At: t0})
	h.view(func(v *View) { k = *v.Keyring() })
	return h, kek, ring, k
}

// A data key is dropped only once no value is sealed under it; a reseal
// changes a value only if it is still under the key it was read under.
func TestKeyringKeepsKeysInUse(t *testing.T) {
	h, kek, ring, k := keyedHarness(t)
	old := k.Active
	nw, _ := keys.WrapNew(kek, t0)
	k.Keys, k.Active = append(k.Keys, nw), nw.ID
	h.mustApply(CmdKeyring, k)

	// Dropping the old key while the CA key is under it is refused.
	drop := k
	drop.Keys = []keys.Wrapped{nw}
	if err := asErr(h.apply(CmdKeyring, drop)); !api.IsCode(err, api.CodeConflict) {
		t.Fatalf("drop a data key in use: %v; want a conflict", err)
	}
	var ca *CA
	h.view(func(v *View) { ca = v.CA() })
	again, moved, err := ring.Reseal(ca.Key, PlaceCAKey)
	if err != nil || !moved || again.Key != nw.ID {
		t.Fatalf("reseal: %v, %v, %v", again.Key, moved, err)
	}
	// A reseal read under another key than the value's now is skipped.
	if n := h.mustApply(CmdReseal, Reseal{Items: []ResealItem{{Place: PlaceCAKey, Was: "dek-other", Value: again}}}); n != 0 {
		t.Errorf("a stale reseal changed %v values", n)
	}
	if n := h.mustApply(CmdReseal, Reseal{Items: []ResealItem{{Place: PlaceCAKey, Was: old, Value: again}}}); n != 1 {
		t.Errorf("reseal changed %v values; want 1", n)
	}
	if err := asErr(h.apply(CmdReseal, Reseal{Items: []ResealItem{{Place: "nowhere", Was: old, Value: again}}})); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("reseal at an unknown place: %v; want it refused", err)
	}
	h.mustApply(CmdKeyring, drop)
	h.view(func(v *View) { ca = v.CA() })
	if p, err := ring.Open(ca.Key, PlaceCAKey); err != nil || string(p) != "-----BEGIN PRIVATE KEY-----" {
		t.Errorf("the CA key after the rotation: %q, %v", p, err)
	}
	// A value does not open at another place.
	if _, err := ring.Open(ca.Key, PlaceUnlockKey); err == nil {
		t.Errorf("a sealed value opened at another place")
	}
}

// A cluster made before encryption at rest kept its CA key in the clear,
// in its first entry: sealing it takes it out of both records.
func TestLegacyCAKeyIsSealed(t *testing.T) {
	st, err := OpenState(t.TempDir() + "/state.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hub := NewHub(1024, 1<<20, 0)
	h := &harness{t: t, state: st, hub: hub, fsm: NewFSM(st, hub)}
	h.mustApply(CmdClusterInit, ClusterInit{ClusterID: "c1", ClusterCIDR: "10.240.0.0/16", SubnetBits: 24, CreatedAt: t0, CACertPEM: "cert", CAKeyPEM: "clear key"})
	kek, _ := keys.NewKey()
	w, _ := keys.WrapNew(kek, t0)
	h.mustApply(CmdKeyring, Keyring{Keys: []keys.Wrapped{w}, Active: w.ID, KEKCheck: keys.KEKCheck(kek)})
	var n map[string]int
	h.view(func(v *View) { n = v.SealedCount() })
	if n[""] != 1 {
		t.Fatalf("values in the clear: %v; want the CA key", n)
	}
	r := keys.NewRing()
	r.SetKeys([]keys.Wrapped{w}, w.ID)
	r.Unlock(kek)
	s, _ := r.Seal([]byte("clear key"), PlaceCAKey)
	h.mustApply(CmdReseal, Reseal{Items: []ResealItem{{Place: PlaceCAKey, Value: s}}})
	h.view(func(v *View) {
		if ca := v.CA(); ca.KeyPEM != "" || ca.Key.Key != w.ID {
			t.Errorf("CA after sealing: %+v", ca)
		}
		if cl := v.Cluster(); cl.CAKeyPEM != "" {
			t.Errorf("the first entry still holds the key in the clear")
		}
	})
}
