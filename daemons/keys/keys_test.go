package keys

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSealOpenAndPlaces(t *testing.T) {
	kek, _ := NewKey()
	w, _ := WrapNew(kek, time.Now())
	r := NewRing()
	r.SetKeys([]Wrapped{w}, w.ID)
	if _, err := r.Seal([]byte("x"), "p"); !errors.Is(err, ErrLocked) {
		t.Fatalf("seal on a locked ring: %v", err)
	}
	other, _ := NewKey()
	if err := r.Unlock(other); err == nil {
		t.Fatal("another KEK unlocked the ring")
	}
	if err := r.Unlock(kek); err != nil {
		t.Fatal(err)
	}
	s, err := r.Seal([]byte("hunter2"), "secret/a/1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(s.Box), "hunter2") {
		t.Fatal("the box holds the value")
	}
	if p, err := r.Open(s, "secret/a/1"); err != nil || string(p) != "hunter2" {
		t.Fatalf("open: %q, %v", p, err)
	}
	if _, err := r.Open(s, "secret/b/1"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("open at another place: %v", err)
	}
	s.Box[0] ^= 1
	if _, err := r.Open(s, "secret/a/1"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("open a changed box: %v", err)
	}
	if got := fmt.Sprintf("%v %s %x", kek, kek, kek); strings.Count(got, "[redacted]") != 3 {
		t.Errorf("a key prints as %q", got)
	}
}

func TestKEKFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "kek.json")
	if _, err := ReadKEK(path, UnlockKey{}); !errors.Is(err, ErrNoKEK) {
		t.Fatalf("no file: %v", err)
	}
	kek, _ := NewKey()
	u, _ := NewUnlockKey()
	if err := WriteKEK(path, kek, u); err != nil {
		t.Fatal(err)
	}
	if st, check, _ := KEKFileInfo(path); st != "sealed" || check != u.Check() {
		t.Errorf("info: %q %q", st, check)
	}
	if _, err := ReadKEK(path, UnlockKey{}); !errors.Is(err, ErrNeedUnlock) {
		t.Errorf("sealed, no key: %v", err)
	}
	v, _ := NewUnlockKey()
	if _, err := ReadKEK(path, v); !errors.Is(err, ErrWrongUnlockKey) {
		t.Errorf("sealed, another key: %v", err)
	}
	parsed, err := ParseUnlockKey(" " + strings.ToLower(u.Reveal()) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ReadKEK(path, parsed); err != nil || got != kek {
		t.Errorf("sealed, the key: %v", err)
	}
	for _, bad := range []string{"", "WRN-UNLOCK-", "WRN-UNLOCK-!!!", "WRN-1-w-abc", "WRN-UNLOCK-" + strings.Repeat("a", 52)} {
		if _, err := ParseUnlockKey(bad); err == nil {
			t.Errorf("ParseUnlockKey(%q) took it", bad)
		}
	}
	if err := InstallKEK(path, []byte(`{"version":1}`)); err == nil {
		t.Error("InstallKEK took a file with no key")
	}
}
