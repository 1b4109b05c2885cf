package manager

import (
	"errors"
	"time"

	"github.com/warren-edge/warren/daemons/keys"
)

// openKeys opens the manager's key ring.
//
// INTERIM (until the data keys live in Raft): the KEK file is made on
// first start and the ring gets one data key made here, so values sealed
// by one manager process do not open after its restart or on another
// manager.
func openKeys(dataDir string) (*keys.Ring, error) {
	path := keys.KEKFile(dataDir)
	kek, err := keys.ReadKEK(path, keys.UnlockKey{})
	if errors.Is(err, keys.ErrNoKEK) {
		if kek, err = keys.NewKey(); err == nil {
			err = keys.WriteKEK(path, kek, keys.UnlockKey{})
		}
	}
	if err != nil {
		return nil, err
	}
	w, err := keys.WrapNew(kek, time.Now())
	if err != nil {
		return nil, err
	}
	ring := keys.NewRing()
	if err := ring.SetKeys([]keys.Wrapped{w}, w.ID); err != nil {
		return nil, err
	}
	if err := ring.Unlock(kek); err != nil {
		return nil, err
	}
	return ring, nil
}
