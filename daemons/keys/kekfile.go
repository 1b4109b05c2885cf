package keys

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/warren-edge/warren/netcfg/atomicfile"
)

// The KEK file, DATADIR/keys/kek.json, mode 0600:
//
//	{"version":1,"kek":"<base64>"}                       autolock off
//	{"version":1,"sealed":{"nonce":..,"box":..},"unlockCheck":".."}   autolock on
//
// With autolock on, the KEK opens only with the unlock key: a stolen SD
// card gives ciphertext, and a restarted manager waits for warrenctl
// unlock. With it off, the KEK is on the same disk as what it protects:
// a copied raft.db, snapshot or state.db (a backup, a log shipped for a
// bug report) gives nothing away, but the whole card does. A TPM would
// seal this file's KEK to the device's boot state instead (the
// TPM2_Create/Unseal pair under a PCR policy): the card alone then opens
// nothing, with no one typing a key. These machines have no TPM.

// KEKFile is the KEK file's path under a manager's data directory.
func KEKFile(dataDir string) string { return filepath.Join(dataDir, "keys", "kek.json") }

type kekFile struct {
	Version     int     `json:"version"`
	KEK         []byte  `json:"kek,omitempty"`
	Sealed      *Sealed `json:"sealed,omitempty"`
	UnlockCheck string  `json:"unlockCheck,omitempty"`
}

// Errors of ReadKEK.
var (
	// ErrNoKEK: there is no KEK file (a manager that never joined, or
	// one made before encryption at rest).
	ErrNoKEK = errors.New("keys: this manager has no key file")
	// ErrNeedUnlock: the file is sealed and no unlock key was given.
	ErrNeedUnlock = errors.New("keys: the manager is autolocked: give the unlock key with warrenctl unlock")
	// ErrWrongUnlockKey: the unlock key given is not the one the file is
	// sealed under.
	ErrWrongUnlockKey = errors.New("keys: this is not the cluster's unlock key (warrenctl unlock-key on an unlocked manager shows the current one; after a rotation the previous key still unlocks a manager that was down)")
)

// EncodeKEK is the KEK file's content: kek sealed under u if u is not
// zero (autolock on), in the clear otherwise.
func EncodeKEK(kek Key, u UnlockKey) ([]byte, error) {
	f := kekFile{Version: 1}
	if u.IsZero() {
		f.KEK = kek[:]
	} else {
		nonce, box, err := seal(aead(u.wrapKey()), kek[:], []byte("warren kek"))
		if err != nil {
			return nil, err
		}
		f.Sealed, f.UnlockCheck = &Sealed{Key: "unlock", Nonce: nonce, Box: box}, u.Check()
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return b, nil
}

// WriteKEK writes the KEK file (EncodeKEK), replacing it atomically.
func WriteKEK(path string, kek Key, u UnlockKey) error {
	b, err := EncodeKEK(kek, u)
	if err != nil {
		return err
	}
	return InstallKEK(path, b)
}

// InstallKEK writes a KEK file's content that another manager encoded,
// once it is checked to be one.
func InstallKEK(path string, b []byte) error {
	if _, err := decodeKEKFile(path, b); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("keys: write the key file: %w", err)
	}
	return nil
}

// KEKFileInfo says what the file holds without opening it: its state, ""
// (none), "clear" or "sealed", and for a sealed one the check of the
// unlock key it is sealed under (UnlockKey.Check).
func KEKFileInfo(path string) (state, unlockCheck string, err error) {
	f, err := readKEKFile(path)
	switch {
	case errors.Is(err, ErrNoKEK):
		return "", "", nil
	case err != nil:
		return "", "", err
	case f.Sealed != nil:
		return "sealed", f.UnlockCheck, nil
	}
	return "clear", "", nil
}

func readKEKFile(path string) (kekFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return kekFile{}, ErrNoKEK
	}
	if err != nil {
		return kekFile{}, fmt.Errorf("keys: read the key file: %w", err)
	}
	return decodeKEKFile(path, b)
}

func decodeKEKFile(path string, b []byte) (kekFile, error) {
	var f kekFile
	if err := json.Unmarshal(b, &f); err != nil || f.Version != 1 || (len(f.KEK) != KeyLen && f.Sealed == nil) {
		return kekFile{}, fmt.Errorf("keys: the key file %s is damaged: rejoin this manager (warren leave, then warren join with a manager token)", path)
	}
	return f, nil
}

// ReadKEK reads the KEK file, opening it with u if it is sealed.
func ReadKEK(path string, u UnlockKey) (Key, error) {
	f, err := readKEKFile(path)
	if err != nil {
		return Key{}, err
	}
	var k Key
	if f.Sealed == nil {
		copy(k[:], f.KEK)
		return k, nil
	}
	if u.IsZero() {
		return Key{}, ErrNeedUnlock
	}
	if f.UnlockCheck != "" && f.UnlockCheck != u.Check() {
		return Key{}, ErrWrongUnlockKey
	}
	p, err := open(aead(u.wrapKey()), f.Sealed.Nonce, f.Sealed.Box, []byte("warren kek"))
	if err != nil || len(p) != KeyLen {
		return Key{}, ErrWrongUnlockKey
	}
	copy(k[:], p)
	return k, nil
}
