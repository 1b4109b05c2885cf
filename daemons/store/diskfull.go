package store

import (
	"errors"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/warren-edge/warren/daemons/api"
)

// A full disk.
//
// When the state database cannot be written for lack of space, the FSM
// does not panic (a panicking manager would restart into the same full
// disk, forever): it stops. It applies nothing more, and refuses to
// snapshot, until its owner has stopped Raft and calls Resume before
// starting Raft again. The new Raft instance delivers again every entry
// after the state's applied index, so none is skipped or applied twice
// (see FSM.OnDiskFull). Other write errors (EIO) still panic.

// IsDiskFull says whether err is a file system refusing a write for lack
// of space: ENOSPC, or EDQUOT (a quota). bbolt's file-resize errors and
// raft's log cache keep only the message of the error they wrap, so the
// message is checked too.
func IsDiskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// FreeBytes is the space an unprivileged process may still use on the file
// system that holds path.
func FreeBytes(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// What became of a write that met a full disk, for DiskFullError.
const (
	// DiskFullRefused: the write never reached Raft.
	DiskFullRefused = "the write was refused and nothing changed"
	// DiskFullCommitted: the entry is in the Raft log but this manager
	// could not apply it.
	DiskFullCommitted = "the write is committed but not applied yet: it takes effect once there is space"
	// DiskFullInDoubt: Raft stopped while the write was under way.
	DiskFullInDoubt = "the write may not have taken effect: if it reached the Raft log it does once there is space"
)

// DiskFullError is the API error for a write on a manager whose data disk
// (dir) is full; outcome is one of the DiskFull* phrases.
func DiskFullError(dir, outcome string) *api.Error {
	free := "?"
	if n, err := FreeBytes(dir); err == nil {
		free = api.FormatBytes(n)
		if n <= 0 {
			free = "0B"
		}
	}
	return api.Errorf(api.CodeUnavailable, "this manager's disk is full (%s: %s free): %s; free space on it and the manager resumes on its own, no restart needed", dir, free, outcome)
}
