package store

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
)

// putIngress seals value at its key's place and puts it.
func putIngress(h *harness, ring *keys.Ring, key, value string) any {
	h.t.Helper()
	s, err := ring.Seal([]byte(value), PlaceIngress(key))
	if err != nil {
		h.t.Fatal(err)
	}
	return h.apply(CmdIngressPut, IngressPut{Key: key, Sealed: s, Size: int64(len(value)), At: t0})
}

func ingressKeys(objs []api.IngressObject) string {
	var out []string
	for _, o := range objs {
		k := o.Key
		if o.Dir {
			k += "/"
		}
		out = append(out, k)
	}
	return strings.Join(out, " ")
}

func TestIngressStorePutGetListDelete(t *testing.T) {
	h, _, ring, _ := keyedHarness(t)
	for _, k := range []string{"acme/account.key", "certificates/acme/a.example/a.example.crt", "certificates/acme/a.example/a.example.key",
		"certificates/acme/wildcard_.b.example/wildcard_.b.example.crt", "certificates/other/c.example/c.example.crt", "certificates.txt"} {
		if err := asErr(putIngress(h, ring, k, "value of "+k)); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	h.view(func(v *View) {
		obj, sealed, ok := v.IngressGet("acme/account.key")
		if !ok || obj.Size != int64(len("value of acme/account.key")) || !obj.Modified.Equal(t0) {
			t.Fatalf("IngressGet(acme/account.key) = %+v, %v", obj, ok)
		}
		p, err := ring.Open(sealed, PlaceIngress("acme/account.key"))
		if err != nil || string(p) != "value of acme/account.key" {
			t.Errorf("the value opens as %q, %v", p, err)
		}
		if _, err := ring.Open(sealed, PlaceIngress("acme/other.key")); err == nil {
			t.Error("a value opened at another key's place")
		}
		if _, _, ok := v.IngressGet("acme"); ok {
			t.Error("IngressGet(acme), a directory, found a key")
		}
		for _, c := range []struct {
			prefix    string
			recursive bool
			want      string
		}{
			{"", false, "acme/ certificates/ certificates.txt"},
			{"certificates", false, "certificates/acme/ certificates/other/"},
			{"certificates/acme", false, "certificates/acme/a.example/ certificates/acme/wildcard_.b.example/"},
			{"certificates/acme/a.example", false, "certificates/acme/a.example/a.example.crt certificates/acme/a.example/a.example.key"},
			{"certificates", true, "certificates/acme/a.example/a.example.crt certificates/acme/a.example/a.example.key certificates/acme/wildcard_.b.example/wildcard_.b.example.crt certificates/other/c.example/c.example.crt"},
			{"nothing", true, ""},
		} {
			if got := ingressKeys(v.IngressList(c.prefix, c.recursive)); got != c.want {
				t.Errorf("IngressList(%q, %v) = %q, want %q", c.prefix, c.recursive, got, c.want)
			}
		}
		if n, _ := v.IngressUsage(); n != 6 {
			t.Errorf("IngressUsage = %d keys, want 6", n)
		}
	})

	// A key under a key, or over a directory, is refused.
	if err := asErr(putIngress(h, ring, "acme/account.key/x", "x")); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("put under a key: %v, want a conflict", err)
	}
	if err := asErr(putIngress(h, ring, "certificates/acme", "x")); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("put over a directory: %v, want a conflict", err)
	}
	// Replacing a value keeps the count.
	if err := asErr(putIngress(h, ring, "acme/account.key", "new")); err != nil {
		t.Fatal(err)
	}
	// Deleting a directory deletes what is under it, and not its
	// neighbours sharing its name's start.
	if n := h.mustApply(CmdIngressDelete, IngressDelete{Key: "certificates", At: t0}); n != 4 {
		t.Errorf("delete certificates removed %v keys, want 4", n)
	}
	if err := asErr(h.apply(CmdIngressDelete, IngressDelete{Key: "certificates", At: t0})); !api.NotFound(err) {
		t.Errorf("delete again: %v, want not found", err)
	}
	h.view(func(v *View) {
		if got := ingressKeys(v.IngressList("", true)); got != "acme/account.key certificates.txt" {
			t.Errorf("after delete: %q", got)
		}
		if n, b := v.IngressUsage(); n != 2 || b != int64(len("new")+len("value of certificates.txt")) {
			t.Errorf("IngressUsage = %d keys %d bytes after delete", n, b)
		}
	})
}

func TestIngressKeySyntax(t *testing.T) {
	long := strings.Repeat("a", api.MaxIngressKeyLen+1)
	for _, c := range []struct {
		key string
		ok  bool
	}{
		{"certificates/acme-v02.api.letsencrypt.org-directory/wildcard_.example.com/wildcard_.example.com.crt", true},
		{"acme/account.json", true},
		{"a", true},
		{"", false},
		{"/abs", false},
		{"trailing/", false},
		{"a//b", false},
		{"a/../b", false},
		{"..", false},
		{"a/./b", false},
		{"sp ace", false},
		{"tab\tx", false},
		{"ünicode", false},
		{"nul\x00", false},
		{long, false},
	} {
		err := ValidateIngressKey("key", c.key)
		if (err == nil) != c.ok {
			t.Errorf("ValidateIngressKey(%.40q) = %v, want ok=%v", c.key, err, c.ok)
		}
	}
	h := newHarness(t)
	if err := asErr(h.apply(CmdIngressPut, IngressPut{Key: "../x", Sealed: sealedOf("x"), Size: 1, At: t0})); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("apply put ../x: %v, want it refused", err)
	}
	if err := asErr(h.apply(CmdIngressPut, IngressPut{Key: "big", Sealed: sealedOf("x"), Size: api.MaxIngressValue + 1, At: t0})); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("apply put of %d bytes: %v, want it refused", api.MaxIngressValue+1, err)
	}
}

// The store is bounded: keys and bytes.
func TestIngressStoreIsBounded(t *testing.T) {
	h := newHarness(t)
	var logs []*raft.Log
	for i := range MaxIngressKeys {
		logs = append(logs, h.entry(CmdIngressPut, IngressPut{Key: fmt.Sprintf("k/%05d", i), Sealed: sealedOf("x"), Size: 1, At: t0}))
	}
	for i, res := range h.fsm.ApplyBatch(logs) {
		if err := asErr(res); err != nil {
			t.Fatalf("put key %d: %v", i, err)
		}
	}
	err := asErr(h.apply(CmdIngressPut, IngressPut{Key: "one/more", Sealed: sealedOf("x"), Size: 1, At: t0}))
	if !api.IsCode(err, api.CodeTooLarge) || !strings.Contains(err.Error(), "the ingress store is full") {
		t.Errorf("key %d: %v, want the store full", MaxIngressKeys+1, err)
	}
	// A key replaced does not count twice.
	if err := asErr(h.apply(CmdIngressPut, IngressPut{Key: "k/00001", Sealed: sealedOf("y"), Size: 2, At: t0})); err != nil {
		t.Errorf("replace a key in a full store: %v", err)
	}
	h.mustApply(CmdIngressDelete, IngressDelete{Key: "k", At: t0})
	for i := range MaxIngressBytes / api.MaxIngressValue {
		h.mustApply(CmdIngressPut, IngressPut{Key: fmt.Sprintf("big/%d", i), Sealed: sealedOf("x"), Size: api.MaxIngressValue, At: t0})
	}
	if err := asErr(h.apply(CmdIngressPut, IngressPut{Key: "big/last", Sealed: sealedOf("x"), Size: 1, At: t0})); !api.IsCode(err, api.CodeTooLarge) {
		t.Errorf("one byte past %d: %v, want the store full", MaxIngressBytes, err)
	}
}

// Values are sealed at rest: the state's file holds no value in the
// clear, a snapshot restores them, and a data key rotation seals them
// again.
func TestIngressValuesSealedRestoredAndRotated(t *testing.T) {
	h, kek, ring, k := keyedHarness(t)
	const secret = "-----BEGIN EC PRIVATE KEY----- ingress-test-value"
	putIngress(h, ring, "certificates/acme/x/x.key", secret)
	h.view(func(v *View) {
		raw := v.tx.Bucket(bIngress).Get([]byte("certificates/acme/x/x.key"))
		if raw == nil || bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte("ingress-test-value")) {
			t.Errorf("the stored record %q holds the value in the clear (or is missing)", raw)
		}
	})

	// Snapshot and restore into another manager's state.
	snap, err := h.fsm.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	o := newHarness(t)
	if err := o.fsm.Restore(io.NopCloser(&sink)); err != nil {
		t.Fatal(err)
	}
	o.view(func(v *View) {
		_, s, ok := v.IngressGet("certificates/acme/x/x.key")
		if !ok {
			t.Fatal("the restored state lost the ingress key")
		}
		if p, err := ring.Open(s, PlaceIngress("certificates/acme/x/x.key")); err != nil || string(p) != secret {
			t.Errorf("the restored value opens as %q, %v", p, err)
		}
	})

	// Rotation: a new data key; the value is among those still under
	// the old one, the old key stays until it is sealed again.
	old := k.Active
	nw, _ := keys.WrapNew(kek, t0)
	k.Keys, k.Active = append(k.Keys, nw), nw.ID
	h.mustApply(CmdKeyring, k)
	var items []ResealItem
	h.view(func(v *View) {
		if n := v.SealedCount(); n[old] != 2 {
			t.Errorf("SealedCount = %v, want the CA key and the ingress value under %s", n, old)
		}
		v.WalkSealed(func(s SealedValue) error {
			again, _, err := ring.Reseal(s.Value, s.Place)
			if err != nil {
				t.Fatalf("reseal %s: %v", s.Place, err)
			}
			items = append(items, ResealItem{Place: s.Place, Was: s.Value.Key, Value: again})
			return nil
		})
	})
	drop := k
	drop.Keys = []keys.Wrapped{nw}
	if err := asErr(h.apply(CmdKeyring, drop)); !api.IsCode(err, api.CodeConflict) {
		t.Fatalf("drop the old key under values: %v, want a conflict", err)
	}
	if n := h.mustApply(CmdReseal, Reseal{Items: items}); n != 2 {
		t.Errorf("reseal changed %v values, want 2", n)
	}
	h.mustApply(CmdKeyring, drop)
	h.view(func(v *View) {
		_, s, _ := v.IngressGet("certificates/acme/x/x.key")
		if s.Key != nw.ID {
			t.Errorf("the value is under %s after the rotation, want %s", s.Key, nw.ID)
		}
		if p, err := ring.Open(s, PlaceIngress("certificates/acme/x/x.key")); err != nil || string(p) != secret {
			t.Errorf("the value after the rotation opens as %q, %v", p, err)
		}
	})
}

// A lock is the holder's until its lease ends, by the times the leader
// put in the commands.
func TestIngressLocks(t *testing.T) {
	h := newHarness(t)
	take := func(holder string, at time.Time, ttl time.Duration) (*api.IngressLock, error) {
		res := h.apply(CmdIngressLock, IngressLockTake{Name: "issue_cert_a.example", Holder: holder, TTL: api.Duration(ttl), At: at})
		if err := asErr(res); err != nil {
			return nil, err
		}
		return res.(*api.IngressLock), nil
	}
	l, err := take("node-a", t0, time.Minute)
	if err != nil || l.Holder != "node-a" || !l.Until.Equal(t0.Add(time.Minute)) {
		t.Fatalf("take a free lock: %+v, %v", l, err)
	}
	if _, err := take("node-b", t0.Add(59*time.Second), time.Minute); !api.IsCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "held by node-a") {
		t.Errorf("take a held lock: %v, want a conflict naming node-a", err)
	}
	// Renewal by its holder extends the lease.
	if l, err = take("node-a", t0.Add(50*time.Second), time.Minute); err != nil || !l.Until.Equal(t0.Add(110*time.Second)) {
		t.Errorf("renew: %+v, %v", l, err)
	}
	if _, err := take("node-b", t0.Add(100*time.Second), time.Minute); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("take a renewed lock before its lease ends: %v, want a conflict", err)
	}
	// Release by another holder, while held, is refused.
	if err := asErr(h.apply(CmdIngressUnlock, IngressLockRelease{Name: "issue_cert_a.example", Holder: "node-b", At: t0.Add(100 * time.Second)})); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("release by another holder: %v, want a conflict", err)
	}
	// The lease ends: another holder takes it.
	if l, err = take("node-b", t0.Add(110*time.Second), time.Minute); err != nil || l.Holder != "node-b" {
		t.Errorf("take an expired lock: %+v, %v", l, err)
	}
	// The former holder's release is a no-op; the holder's frees it.
	if err := asErr(h.apply(CmdIngressUnlock, IngressLockRelease{Name: "issue_cert_a.example", Holder: "node-a", At: t0.Add(200 * time.Second)})); err != nil {
		t.Errorf("a stale release: %v", err)
	}
	h.mustApply(CmdIngressUnlock, IngressLockRelease{Name: "issue_cert_a.example", Holder: "node-b", At: t0.Add(120 * time.Second)})
	if l, err = take("node-a", t0.Add(121*time.Second), time.Minute); err != nil || l.Holder != "node-a" {
		t.Errorf("take a released lock: %+v, %v", l, err)
	}
	for _, ttl := range []time.Duration{0, -time.Second, time.Duration(api.MaxIngressLock) + time.Second} {
		if _, err := take("node-a", t0, ttl); !api.IsCode(err, api.CodeInvalid) {
			t.Errorf("take for %s: %v, want it refused", ttl, err)
		}
	}
	if _, err := take("", t0, time.Minute); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("take with no holder: %v, want it refused", err)
	}
}
