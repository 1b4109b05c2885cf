package membership

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/manager/peer"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// Encryption at rest on the managers (package keys for the scheme):
//
//   - A new cluster's first entry carries its first data key, wrapped by
//     the KEK the first manager made, and the CA key sealed under it.
//   - A manager that joins, or a worker promoted, has no KEK: it fetches
//     it from another manager over mTLS (GET /v1/internal/kek, managers
//     only) and keeps it in its key file. With autolock on, what it gets
//     is the KEK sealed under the unlock key, and it stays locked until
//     warrenctl unlock: a certificate taken from a locked manager's disk
//     fetches nothing that disk did not already hold.
//   - The leader keeps the keyring: it makes one for a cluster made before
//     encryption at rest, seals a CA key found in the clear, and carries
//     a data key rotation through (rotateKeys).

// OpenKeyRing opens a manager's key ring: unlocked with the KEK file if
// it is in the clear, locked if it is sealed (autolock) or missing. A
// manager that bootstraps a new cluster makes the cluster's KEK.
func OpenKeyRing(dataDir string, bootstrap bool) (*keys.Ring, error) {
	ring := keys.NewRing()
	path := keys.KEKFile(dataDir)
	kek, err := keys.ReadKEK(path, keys.UnlockKey{})
	switch {
	case err == nil:
		return ring, ring.Unlock(kek)
	case errors.Is(err, keys.ErrNeedUnlock):
		return ring, nil
	case errors.Is(err, keys.ErrNoKEK) && bootstrap:
		if kek, err = keys.NewKey(); err != nil {
			return nil, err
		}
		if err := keys.WriteKEK(path, kek, keys.UnlockKey{}); err != nil {
			return nil, err
		}
		return ring, ring.Unlock(kek)
	case errors.Is(err, keys.ErrNoKEK):
		return ring, nil // fetchKEK gets it
	}
	return nil, err
}

// followKeyring makes the ring follow the keyring in the state.
func (m *Membership) followKeyring() {
	if m.cfg.Keys == nil {
		return
	}
	m.cfg.Keys.Follow(func() ([]keys.Wrapped, string, uint64) {
		var k *store.Keyring
		m.store.View(func(v *store.View) error { k = v.Keyring(); return nil })
		if k == nil {
			return nil, "", 0
		}
		return k.Keys, k.Active, k.Index
	})
}

// keyring is the state's keyring (nil before there is one).
func (m *Membership) keyring() *store.Keyring {
	var k *store.Keyring
	m.store.View(func(v *store.View) error { k = v.Keyring(); return nil })
	return k
}

// caKeyPEM is the CA's private key, opened from its record.
func (m *Membership) caKeyPEM(rec *store.CA) ([]byte, error) {
	if rec.KeyPEM != "" { // a cluster from before encryption at rest
		return []byte(rec.KeyPEM), nil
	}
	if m.cfg.Keys == nil {
		return nil, keys.ErrLocked
	}
	return m.cfg.Keys.Open(rec.Key, store.PlaceCAKey)
}

// loadCA opens the CA of a record.
func (m *Membership) loadCA(rec *store.CA) (*pki.CA, error) {
	key, err := m.caKeyPEM(rec)
	if err != nil {
		return nil, fmt.Errorf("the CA's key: %w", err)
	}
	defer clear(key)
	return pki.LoadCA([]byte(rec.CertPEM), key)
}

// caRecord is the record of ca, its key sealed for the state.
func (m *Membership) caRecord(ca *pki.CA) (store.CA, error) {
	key, err := ca.KeyPEM()
	if err != nil {
		return store.CA{}, err
	}
	defer clear(key)
	sealed, err := m.cfg.Keys.Seal(key, store.PlaceCAKey)
	if err != nil {
		return store.CA{}, err
	}
	return store.CA{CertPEM: string(ca.CertPEM()), Key: sealed}, nil
}

// newClusterKeys makes a new cluster's keyring and seals its CA key in
// it, for its first entry.
func (m *Membership) newClusterKeys(ca *pki.CA, now time.Time) (*store.Keyring, keys.Sealed, error) {
	kek, err := m.cfg.Keys.KEK()
	if err != nil {
		return nil, keys.Sealed{}, err
	}
	w, err := keys.WrapNew(kek, now)
	if err != nil {
		return nil, keys.Sealed{}, err
	}
	ring := keys.NewRing()
	ring.SetKeys([]keys.Wrapped{w}, w.ID)
	if err := ring.Unlock(kek); err != nil {
		return nil, keys.Sealed{}, err
	}
	key, err := ca.KeyPEM()
	if err != nil {
		return nil, keys.Sealed{}, err
	}
	defer clear(key)
	sealed, err := ring.Seal(key, store.PlaceCAKey)
	if err != nil {
		return nil, keys.Sealed{}, err
	}
	return &store.Keyring{Keys: []keys.Wrapped{w}, Active: w.ID, KEKCheck: keys.KEKCheck(kek)}, sealed, nil
}

// ensureKeyring gives a cluster made before encryption at rest its
// keyring (on its leader, which makes the KEK if no manager has one).
func (m *Membership) ensureKeyring(ctx context.Context) error {
	if m.cfg.Keys == nil || m.keyring() != nil {
		return nil
	}
	kek, err := m.cfg.Keys.KEK()
	if errors.Is(err, keys.ErrLocked) {
		if st, _, _ := keys.KEKFileInfo(keys.KEKFile(m.cfg.DataDir)); st != "" {
			return err // autolocked: nothing to do until unlocked
		}
		if kek, err = keys.NewKey(); err != nil {
			return err
		}
		if err := keys.WriteKEK(keys.KEKFile(m.cfg.DataDir), kek, keys.UnlockKey{}); err != nil {
			return err
		}
		if err := m.cfg.Keys.Unlock(kek); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	w, err := keys.WrapNew(kek, time.Now())
	if err != nil {
		return err
	}
	m.log.Info("encryption at rest: the cluster gets its first data key", "key", w.ID)
	_, err = m.propose(ctx, store.CmdKeyring, store.Keyring{Keys: []keys.Wrapped{w}, Active: w.ID, KEKCheck: keys.KEKCheck(kek)})
	return err
}

// kekAnswer is what GET /v1/internal/kek answers: the KEK file another
// manager writes as its own.
type kekAnswer struct {
	File []byte `json:"file"`
}

// getKEK answers GET /v1/internal/kek (managers only): the cluster's KEK,
// sealed under the unlock key when autolock is on.
func (m *Membership) getKEK(w http.ResponseWriter, r *http.Request) {
	if m.onWorker(w) {
		return
	}
	b, err := m.kekFile()
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, kekAnswer{File: b})
}

// kekFile is the KEK file another manager is given: the KEK, sealed under
// the unlock key when autolock is on.
func (m *Membership) kekFile() ([]byte, error) {
	kek, err := m.cfg.Keys.KEK()
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "%v", err)
	}
	var u keys.UnlockKey
	if k := m.keyring(); k != nil && k.Autolock {
		if u, err = m.unlockKey(k); err != nil {
			return nil, api.Errorf(api.CodeUnavailable, "%v", err)
		}
	}
	b, err := keys.EncodeKEK(kek, u)
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "%v", err)
	}
	return b, nil
}

// unlockKey opens the cluster's unlock key.
func (m *Membership) unlockKey(k *store.Keyring) (keys.UnlockKey, error) {
	if k.UnlockKey.IsZero() {
		return keys.UnlockKey{}, nil
	}
	b, err := m.cfg.Keys.Open(k.UnlockKey, store.PlaceUnlockKey)
	if err != nil {
		return keys.UnlockKey{}, err
	}
	defer clear(b)
	return keys.UnlockKeyFrom(b)
}

// keepKEK gets the KEK from another manager when this one has no key
// file (it joined, or was promoted), and keeps the key file in step with
// the cluster's autolock setting.
func (m *Membership) keepKEK(ctx context.Context) {
	if m.cfg.Keys == nil {
		return
	}
	path := keys.KEKFile(m.cfg.DataDir)
	for {
		inStep := false // the file is there and follows the cluster
		st, check, err := keys.KEKFileInfo(path)
		switch {
		case err != nil:
			m.log.Error("the key file", "err", err)
		case st == "":
			m.fetchKEK(ctx, path)
		case m.foreignKEK():
			// A KEK that is not the cluster's (managers bootstrapped
			// together each made one; the first leader's won) opens
			// nothing: the cluster's replaces it.
			m.log.Warn("encryption at rest: this manager's KEK is not the cluster's: it fetches the cluster's")
			m.cfg.Keys.Lock()
			os.Remove(path)
			m.fetchKEK(ctx, path)
		case !m.cfg.Keys.Locked():
			inStep = m.syncKEKFile(path, st, check)
		}
		// Until it is in step (no file yet, a fetch that failed, a
		// locked manager), look again each second.
		if m.paceCheck(ctx, inStep) != nil {
			return
		}
	}
}

// foreignKEK says whether the ring holds a KEK other than the one the
// cluster's keyring is wrapped by.
func (m *Membership) foreignKEK() bool {
	k := m.keyring()
	kek, err := m.cfg.Keys.KEK()
	return k != nil && err == nil && keys.KEKCheck(kek) != k.KEKCheck
}

func (m *Membership) fetchKEK(ctx context.Context, path string) {
	if m.keyring() == nil {
		return // no cluster keyring yet: the leader makes it
	}
	for _, id := range m.managerIDs() {
		if id == m.nodeID {
			continue
		}
		var ans kekAnswer
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := m.peers.Do(c, id, peer.Request{Method: http.MethodGet, Path: "/v1/internal/kek"}, &ans)
		cancel()
		if err != nil {
			m.log.Debug("fetch the KEK", "from", id, "err", err)
			continue
		}
		if err := keys.InstallKEK(path, ans.File); err != nil {
			m.log.Error("the key file", "err", err)
			return
		}
		kek, err := keys.ReadKEK(path, keys.UnlockKey{})
		if errors.Is(err, keys.ErrNeedUnlock) {
			m.log.Warn("the cluster is autolocked: this manager stays locked until warrenctl unlock", "from", id)
			return
		}
		if err == nil {
			err = m.cfg.Keys.Unlock(kek)
		}
		if err != nil {
			m.log.Error("the KEK fetched does not open the cluster's data keys", "from", id, "err", err)
			os.Remove(path)
			return
		}
		m.log.Info("encryption at rest: this manager has the cluster's KEK", "from", id)
		return
	}
}

// syncKEKFile rewrites an unlocked manager's key file when the cluster's
// autolock setting or unlock key changed; it says whether the file now
// follows the cluster.
func (m *Membership) syncKEKFile(path, st, check string) bool {
	k := m.keyring()
	if k == nil {
		return false
	}
	want := "clear"
	if k.Autolock {
		want = "sealed"
	}
	if st == want && (!k.Autolock || check == k.UnlockCheck) {
		return true
	}
	kek, err := m.cfg.Keys.KEK()
	if err != nil {
		return false
	}
	var u keys.UnlockKey
	if k.Autolock {
		if u, err = m.unlockKey(k); err != nil {
			m.log.Error("autolock: open the unlock key", "err", err)
			return false
		}
	}
	if err := keys.WriteKEK(path, kek, u); err != nil {
		m.log.Error("autolock: rewrite the key file", "err", err)
		return false
	}
	m.log.Info("autolock: the key file follows the cluster", "autolock", k.Autolock)
	return true
}
