package membership

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
)

// Autolock, the unlock key, and data key rotation.
//
// Autolock is off by default: an unattended device that reboots must come
// back on its own. With it on, every manager keeps its KEK sealed under
// the unlock key, and one that restarts is locked: it follows Raft (it
// keeps its seat, so a majority stays) but it cannot open a sealed value,
// gives up leadership when another manager can take it, and takes no
// write until an admin runs warrenctl unlock on it.

// Locked reports whether this manager has no KEK (it is autolocked, or has
// not fetched the cluster's yet).
func (m *Membership) Locked() bool { return m.cfg.Keys != nil && m.cfg.Keys.Locked() }

// Autolocked reports whether this manager is locked by autolock: its key
// file is sealed and no one gave the unlock key yet. (A manager locked
// only because it has no key file yet refuses nothing: the leader does
// the writes.)
func (m *Membership) Autolocked() bool {
	if !m.Locked() {
		return false
	}
	st, _, _ := keys.KEKFileInfo(keys.KEKFile(m.cfg.DataDir))
	return st == "sealed"
}

// onWorker answers a key route on a worker's manager, which holds no
// key: true if it did.
func (m *Membership) onWorker(w http.ResponseWriter) bool {
	if m.cfg.Keys != nil {
		return false
	}
	httpx.Error(w, api.Errorf(api.CodeForbidden, "this node is a worker: the cluster's keys are the managers' (run it on a manager; warrenctl node ls shows them)"))
	return true
}

// lockKeyring starts a change of the keyring: it takes keysMu and returns
// the keyring with how to let go of it, or answers w (a worker, no
// keyring yet) and returns nil.
func (m *Membership) lockKeyring(w http.ResponseWriter) (*store.Keyring, func()) {
	if m.onWorker(w) {
		return nil, nil
	}
	m.keysMu.Lock()
	k := m.keyring()
	if k == nil {
		m.keysMu.Unlock()
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "the cluster has no keyring yet: retry in a moment"))
		return nil, nil
	}
	return k, m.keysMu.Unlock
}

// postUnlock answers POST /v1/unlock: the unlock key opens this manager's
// key file.
func (m *Membership) postUnlock(w http.ResponseWriter, r *http.Request) {
	if m.onWorker(w) {
		return
	}
	var req api.UnlockRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.Error(w, err)
		return
	}
	if !m.Locked() {
		httpx.Error(w, api.Errorf(api.CodeConflict, "this manager is not locked"))
		return
	}
	u, err := keys.ParseUnlockKey(req.Key)
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "%v", err))
		return
	}
	kek, err := keys.ReadKEK(keys.KEKFile(m.cfg.DataDir), u)
	switch {
	case errors.Is(err, keys.ErrNoKEK):
		httpx.Error(w, api.Errorf(api.CodeConflict, "this manager has no key file yet: it fetches one from another manager once it has joined (see its log)"))
		return
	case errors.Is(err, keys.ErrWrongUnlockKey):
		httpx.Error(w, api.Errorf(api.CodeForbidden, "%v", err))
		return
	case err != nil:
		httpx.Error(w, api.Errorf(api.CodeInternal, "%v", err))
		return
	}
	if err := m.cfg.Keys.Unlock(kek); err != nil {
		httpx.Error(w, api.Errorf(api.CodeInternal, "the key file opened but its KEK does not open the cluster's data keys: %v", err))
		return
	}
	m.log.Info("autolock: this manager is unlocked")
	httpx.JSON(w, http.StatusOK, api.UnlockKeyInfo{Autolock: true})
}

// getUnlockKey answers GET /v1/unlock-key: the current unlock key.
func (m *Membership) getUnlockKey(w http.ResponseWriter, r *http.Request) {
	if m.onWorker(w) {
		return
	}
	k := m.keyring()
	if k == nil || !k.Autolock {
		httpx.JSON(w, http.StatusOK, api.UnlockKeyInfo{})
		return
	}
	u, err := m.unlockKey(k)
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", err))
		return
	}
	httpx.JSON(w, http.StatusOK, api.UnlockKeyInfo{Autolock: true, Key: u.Reveal()})
}

// rotateUnlockKey answers POST /v1/unlock-key/rotate: a new unlock key. A
// manager down meanwhile still opens with the previous one, and then
// follows the new.
func (m *Membership) rotateUnlockKey(w http.ResponseWriter, r *http.Request) {
	m.setAutolock(w, r, true, true)
}

// putAutolock answers PUT /v1/autolock?enabled=BOOL.
func (m *Membership) putAutolock(w http.ResponseWriter, r *http.Request) {
	on := r.URL.Query().Get("enabled")
	if on != "true" && on != "false" {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "enabled=%q: give true or false", on))
		return
	}
	m.setAutolock(w, r, on == "true", false)
}

func (m *Membership) setAutolock(w http.ResponseWriter, r *http.Request, on, rotate bool) {
	k, unlock := m.lockKeyring(w)
	if k == nil {
		return
	}
	defer unlock()
	if rotate && !k.Autolock {
		httpx.Error(w, api.Errorf(api.CodeConflict, "autolock is off, so there is no unlock key to rotate: turn it on with warrenctl cluster update --autolock"))
		return
	}
	next := *k
	next.Autolock = on
	var u keys.UnlockKey
	var err error
	switch {
	case !on:
		next.UnlockKey, next.UnlockCheck = keys.Sealed{}, ""
	case k.Autolock && !rotate:
		if u, err = m.unlockKey(k); err != nil {
			httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", err))
			return
		}
	default:
		if u, err = keys.NewUnlockKey(); err == nil {
			next.UnlockKey, err = m.cfg.Keys.Seal(u.Bytes(), store.PlaceUnlockKey)
		}
		if err != nil {
			httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", err))
			return
		}
		next.UnlockCheck = u.Check()
	}
	if _, err := m.propose(r.Context(), store.CmdKeyring, next); err != nil {
		httpx.Error(w, err)
		return
	}
	info := api.UnlockKeyInfo{Autolock: on}
	if on {
		info.Key = u.Reveal()
	}
	httpx.JSON(w, http.StatusOK, info)
}

// rotateDataKey answers POST /v1/keys/rotate: a new data key, under which
// the leader seals every value again in the background (keepKeys).
func (m *Membership) rotateDataKey(w http.ResponseWriter, r *http.Request) {
	k, unlock := m.lockKeyring(w)
	if k == nil {
		return
	}
	defer unlock()
	if k.Rotation != nil {
		httpx.Error(w, api.Errorf(api.CodeConflict, "a data key rotation is under way since %s: it finishes on its own (warrenctl cluster keys shows how far it is)", k.Rotation.StartedAt.Format(time.RFC3339)))
		return
	}
	kek, err := m.cfg.Keys.KEK()
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", err))
		return
	}
	now := time.Now().UTC()
	nw, err := keys.WrapNew(kek, now)
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeInternal, "%v", err))
		return
	}
	next := *k
	next.Keys = append(slices.Clone(k.Keys), nw)
	next.Active, next.Rotation = nw.ID, &store.KeyRotation{StartedAt: now}
	if _, err := m.propose(r.Context(), store.CmdKeyring, next); err != nil {
		httpx.Error(w, err)
		return
	}
	m.wakeKeys()
	httpx.JSON(w, http.StatusOK, m.keysInfo())
}

// getKeys answers GET /v1/keys.
func (m *Membership) getKeys(w http.ResponseWriter, r *http.Request) {
	if m.onWorker(w) {
		return
	}
	httpx.JSON(w, http.StatusOK, m.keysInfo())
}

func (m *Membership) keysInfo() api.KeysInfo {
	info := api.KeysInfo{Locked: m.Locked(), Keys: []api.DataKey{}}
	m.store.View(func(v *store.View) error {
		k := v.Keyring()
		n := v.SealedCount()
		info.Clear = n[""]
		if k == nil {
			return nil
		}
		info.Autolock, info.Active, info.Rotating = k.Autolock, k.Active, k.Rotation != nil
		for _, w := range k.Keys {
			info.Keys = append(info.Keys, api.DataKey{ID: w.ID, CreatedAt: w.CreatedAt, Values: n[w.ID]})
		}
		return nil
	})
	return info
}

// checkKeys answers GET /v1/keys/check: every sealed value is opened here.
func (m *Membership) checkKeys(w http.ResponseWriter, r *http.Request) {
	if m.onWorker(w) {
		return
	}
	if m.Locked() {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", keys.ErrLocked))
		return
	}
	out := api.KeyCheck{}
	m.store.View(func(v *store.View) error {
		if k := v.Keyring(); k != nil {
			out.Active = k.Active
		}
		return v.WalkSealed(func(s store.SealedValue) error {
			out.Checked++
			if s.Clear {
				out.Unreadable = append(out.Unreadable, api.UnreadableKey{Place: s.Place, Error: "kept in the clear: the leader seals it"})
				return nil
			}
			p, err := m.cfg.Keys.Open(s.Value, s.Place)
			if err != nil {
				out.Unreadable = append(out.Unreadable, api.UnreadableKey{Place: s.Place, Key: s.Value.Key, Error: err.Error()})
				return nil
			}
			clear(p)
			out.Readable++
			if s.Value.Key != out.Active {
				out.NotActive++
			}
			return nil
		})
	})
	httpx.JSON(w, http.StatusOK, out)
}

// resealBatch is how many values one reseal command carries.
const resealBatch = 256

// keepKeys runs the keyring's background work on the leader: it seals
// values found in the clear, seals again those under an old data key, and
// drops a data key once nothing is under it. Each step is a Raft entry
// and reads the state afresh, so a leader that stops part-way leaves the
// next to go on from there.
func (m *Membership) keepKeys(ctx context.Context) {
	for {
		worked := false
		m.lockedLeader()
		if m.isLeader() && !m.Locked() {
			n, err := m.keysStep(ctx)
			if err != nil {
				m.log.Warn("encryption at rest", "err", err)
			}
			worked = n > 0 && err == nil
		}
		if worked {
			continue
		}
		// Values in the clear or under an old key come with changes
		// to the state, or with a new leader (within checkIdle).
		if m.pace(ctx, m.keysWake) != nil {
			return
		}
	}
}

func (m *Membership) wakeKeys() {
	select {
	case m.keysWake <- struct{}{}:
	default:
	}
}

// keysStep does one step of keepKeys and says how many values it sealed.
func (m *Membership) keysStep(ctx context.Context) (int, error) {
	if err := m.ensureKeyring(ctx); err != nil {
		return 0, err
	}
	var items []store.ResealItem
	var k *store.Keyring
	var legacyCA string
	m.store.View(func(v *store.View) error {
		k = v.Keyring()
		if k == nil {
			return nil
		}
		if ca := v.CA(); ca != nil {
			legacyCA = ca.KeyPEM
		}
		return v.WalkSealed(func(s store.SealedValue) error {
			if len(items) < resealBatch && (s.Clear || s.Value.Key != k.Active) {
				items = append(items, store.ResealItem{Place: s.Place, Was: s.Value.Key, Value: s.Value})
			}
			return nil
		})
	})
	if k == nil {
		return 0, nil
	}
	for i := range items {
		var err error
		if items[i].Place == store.PlaceCAKey && legacyCA != "" {
			items[i].Value, err = m.cfg.Keys.Seal([]byte(legacyCA), store.PlaceCAKey)
		} else {
			items[i].Value, _, err = m.cfg.Keys.Reseal(items[i].Value, items[i].Place)
		}
		if err != nil {
			return 0, err
		}
	}
	if len(items) > 0 {
		if resealHook != nil && !resealHook() {
			return 0, nil
		}
		_, err := m.propose(ctx, store.CmdReseal, store.Reseal{Items: items})
		return len(items), err
	}
	// Nothing left under an old key: drop them.
	if k.Rotation == nil && len(k.Keys) == 1 {
		return 0, nil
	}
	m.keysMu.Lock()
	defer m.keysMu.Unlock()
	if cur := m.keyring(); cur == nil || cur.Index != k.Index {
		return 1, nil // changed meanwhile: look again
	}
	next := *k
	active, _ := k.Key(k.Active)
	next.Keys, next.Rotation = []keys.Wrapped{active}, nil
	if _, err := m.propose(ctx, store.CmdKeyring, next); err != nil {
		return 0, err
	}
	m.log.Info("encryption at rest: data key rotation done", "active", k.Active)
	return 0, nil
}

// lockedLeader gives up leadership while this manager is locked, if
// another manager can take it.
func (m *Membership) lockedLeader() {
	if !m.Locked() || !m.isLeader() {
		return
	}
	if n, err := m.core.Voters(); err == nil && n > 1 {
		m.log.Warn("autolock: this manager is locked: it hands leadership over")
		m.core.TransferLeadership()
	}
}
