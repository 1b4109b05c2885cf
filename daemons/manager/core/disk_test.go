package core

import (
	"errors"
	"io/fs"
	"syscall"
	"testing"

	"github.com/hashicorp/raft"
)

// failingStable fails its first writes with err, then stores.
type failingStable struct {
	raft.StableStore
	fails int
	err   error
	tries int
}

func (f *failingStable) SetUint64(k []byte, v uint64) error {
	f.tries++
	if f.tries <= f.fails {
		return f.err
	}
	return f.StableStore.SetUint64(k, v)
}

// TestGuardedStableRetriesAFullDisk: Raft panics when it cannot save its
// term, so a write that finds the disk full is reported and tried again
// until it succeeds; another error is returned at once.
func TestGuardedStableRetriesAFullDisk(t *testing.T) {
	full := &fs.PathError{Op: "write", Path: "raft.db", Err: syscall.ENOSPC}
	inner := &failingStable{StableStore: raft.NewInmemStore(), fails: 1, err: full}
	var reports []error
	g := guardedStable{inner, func(err error) { reports = append(reports, err) }}
	if err := g.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatalf("SetUint64 on a disk full once = %v, want it retried to success", err)
	}
	if v, _ := inner.GetUint64([]byte("CurrentTerm")); v != 7 || inner.tries != 2 {
		t.Errorf("after SetUint64: value %d in %d tries, want 7 in 2", v, inner.tries)
	}
	if len(reports) != 1 || !errors.Is(reports[0], syscall.ENOSPC) {
		t.Errorf("reports = %v, want the one ENOSPC", reports)
	}

	eio := &fs.PathError{Op: "write", Path: "raft.db", Err: syscall.EIO}
	inner = &failingStable{StableStore: raft.NewInmemStore(), fails: 1, err: eio}
	g = guardedStable{inner, func(err error) { t.Errorf("an I/O error was reported as a full disk: %v", err) }}
	if err := g.SetUint64([]byte("CurrentTerm"), 7); !errors.Is(err, syscall.EIO) || inner.tries != 1 {
		t.Errorf("SetUint64 on an I/O error = %v after %d tries, want EIO after 1", err, inner.tries)
	}
}

// failingLog fails every append with err.
type failingLog struct {
	raft.LogStore
	err error
}

func (f failingLog) StoreLogs([]*raft.Log) error { return f.err }

// TestGuardedLogReportsAFullDisk: a failed append is reported as a full
// disk and returned to Raft (which steps down or answers the append as
// failed), through raft's log cache, which keeps only the message.
func TestGuardedLogReportsAFullDisk(t *testing.T) {
	full := &fs.PathError{Op: "write", Path: "raft.db", Err: syscall.ENOSPC}
	var reports []error
	cache, err := raft.NewLogCache(16, guardedLog{failingLog{raft.NewInmemStore(), full}, func(err error) { reports = append(reports, err) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := cache.StoreLogs([]*raft.Log{{Index: 1}}); err == nil {
		t.Fatal("StoreLogs on a full disk succeeded")
	}
	if len(reports) != 1 || !errors.Is(reports[0], syscall.ENOSPC) {
		t.Errorf("reports = %v, want the one ENOSPC", reports)
	}
}

// TestKeptTransport: Raft must not close the shared transport when an
// instance shuts down, and must still see pre-vote.
func TestKeptTransport(t *testing.T) {
	_, inner := raft.NewInmemTransport("a")
	k := keep(inner)
	if _, ok := k.(raft.WithClose); ok {
		t.Error("the kept transport offers Close: Raft's shutdown would close it")
	}
	if _, ok := k.(raft.WithPreVote); !ok {
		t.Error("the kept transport hides pre-vote")
	}
	stop := k.drain()
	stop()
	stop() // twice is fine
	if err := k.close(); err != nil {
		t.Errorf("close() = %v", err)
	}
}
