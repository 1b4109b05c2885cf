package wg

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/warren-edge/warren/netcfg/atomicfile"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// LoadOrCreateKey reads the node's private key from path, or makes one and
// writes it there (0600, atomically) if the file does not exist. The key
// never leaves the node. A file that is readable by others, or that does not
// hold one base64 key, is an error that says what to do: Warren does not
// silently replace a key, since the node's peers know its public half.
func LoadOrCreateKey(path string) (wgtypes.Key, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			return wgtypes.Key{}, fmt.Errorf("wg: generate a private key: %w", err)
		}
		if err := writeKey(path, k); err != nil {
			return wgtypes.Key{}, err
		}
		return k, nil
	}
	if err != nil {
		return wgtypes.Key{}, fmt.Errorf("wg: read the private key: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return wgtypes.Key{}, fmt.Errorf("wg: private key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return wgtypes.Key{}, fmt.Errorf("wg: private key %s is readable by others (mode %v): chmod 600 it, and if anyone else may have read it, remove it and restart the agent to make a new one", path, st.Mode().Perm())
	}
	k, err := wgtypes.ParseKey(strings.TrimSpace(string(raw)))
	if err != nil {
		return wgtypes.Key{}, fmt.Errorf("wg: private key %s does not hold a WireGuard key (%v): remove it and restart the agent to make a new one", path, err)
	}
	return k, nil
}

// writeKey writes k to path (0600), atomically.
func writeKey(path string, k wgtypes.Key) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("wg: key directory: %w", err)
	}
	if err := atomicfile.Write(path, []byte(k.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("wg: write the private key: %w", err)
	}
	return nil
}
