package core

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// walSegmentBytes is the size of each file of a raft-wal log, allocated
// whole when the file is made: the log's next writes have their space
// before they come (a disk that fills up stops the log only when it moves
// to a new file, see raftStores.logSpace). raft-wal's default, 64 MiB, is
// a lot on a device's small disk; at 8 MiB a busy manager moves to a new
// file every few thousand writes, which costs a few milliseconds.
const walSegmentBytes = 8 << 20

// walLog is a Raft log in raft-wal that can be closed and opened again in
// the same process:
//   - raft-wal 0.4.0's Close leaves its metadata database open, and with
//     it the file's lock: a second Open of the directory waits forever. The
//     log opens that database itself and closes it.
//   - When raft-wal fails to move to a new file (a full disk), the open log
//     refuses every later write ("segment is sealed"); opened again, it
//     goes on from its last whole write (StoreLogs). The core also opens
//     it again before it restarts Raft after a full disk (disk.go).
type walLog struct {
	dir     string
	segment int
	mu      sync.RWMutex
	w       *wal.WAL
	meta    *metadb.BoltMetaDB
}

// openWAL opens the raft-wal log in dir, in files of segmentBytes.
func openWAL(dir string, segmentBytes int) (*walLog, error) {
	l := &walLog{dir: dir, segment: segmentBytes}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *walLog) open() error {
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(l.dir, wal.WithSegmentSize(l.segment), wal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return fmt.Errorf("open raft wal %s: %w", l.dir, err)
	}
	l.w, l.meta = w, meta
	return nil
}

// reopen closes the log and opens it again. If that fails, the log stays
// closed (every call fails) until a reopen works.
func (l *walLog) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.closeLocked(); err != nil {
		return fmt.Errorf("close raft wal %s: %w", l.dir, err)
	}
	return l.open()
}

// Close closes the log and its metadata database.
func (l *walLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closeLocked()
}

// closeLocked closes the log, then its metadata database (raft-wal's
// Close leaves it open). Callers hold l.mu.
func (l *walLog) closeLocked() error { return errors.Join(l.w.Close(), l.meta.Close()) }

func (l *walLog) FirstIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.w.FirstIndex()
}

func (l *walLog) LastIndex() (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.w.LastIndex()
}

func (l *walLog) GetLog(index uint64, log *raft.Log) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.w.GetLog(index, log)
}

func (l *walLog) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

// StoreLogs appends logs. raft-wal moves to a new file in the background;
// when that fails (it logs why: on a full disk, the allocation of the
// file) the open log refuses every later write as sealed. The log is then
// opened again, which makes the new file or says why it cannot (a full
// disk, which the core handles), and the write is tried once more.
func (l *walLog) StoreLogs(logs []*raft.Log) error {
	err := l.storeLogs(logs)
	if !errors.Is(err, wal.ErrSealed) {
		return err
	}
	if err := l.reopen(); err != nil {
		return err
	}
	return l.storeLogs(logs)
}

func (l *walLog) storeLogs(logs []*raft.Log) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.w.StoreLogs(logs)
}

func (l *walLog) DeleteRange(lo, hi uint64) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.w.DeleteRange(lo, hi)
}

// IsMonotonic: raft-wal takes no gap between indexes
// (raft.MonotonicLogStore).
func (l *walLog) IsMonotonic() bool { return true }
