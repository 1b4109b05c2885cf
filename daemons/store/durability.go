package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/warren-edge/warren/netcfg/atomicfile"
)

// Durability of the state database.
//
// The Raft log is synced to disk before a write is acknowledged; it is the
// record. The state database is derived from it, so it is written without
// an fsync per batch (an fsync costs about 1.3 ms here, and it would be
// paid twice per write). Three cases on open:
//
//   - the database was checkpointed (synced, marker file NAME.clean) and not
//     written since: it is whole, keep it;
//   - it was last opened in this same boot (NAME.boot holds the kernel's
//     boot ID): only the process died, the page cache kept every write,
//     keep it;
//   - otherwise the machine went down with unsynced writes and the file may
//     be torn (bbolt without fsync gives no order between pages): set it
//     aside and start empty. The manager then restores the newest Raft
//     snapshot and Raft replays the log after it, rebuilding every write.
//
// A checkpoint happens when writes pause (RunCheckpoints) and on Close. The
// first write after a checkpoint removes the marker (and syncs the
// directory) before it touches the database.
type durability struct {
	// synced: every write is synced (OpenStateSynced); the database is
	// always whole and never set aside.
	synced bool
	path   string
	boot   string
	mu     sync.Mutex
	clean  bool
	// lastWrite is when the last write began.
	lastWrite time.Time
}

// bootIDFile is the kernel's ID of the current boot; tests replace it.
var bootIDFile = "/proc/sys/kernel/random/boot_id"

func readBootID() string {
	b, err := os.ReadFile(bootIDFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// open decides whether the database at path can be trusted, sets it aside
// if not, and records this boot. It returns why it set the file aside, or "".
func (d *durability) open(path string) string {
	d.path = path
	d.boot = readBootID()
	var why string
	if _, err := os.Stat(path); err == nil {
		_, cerr := os.Stat(path + ".clean")
		prev, _ := os.ReadFile(path + ".boot")
		switch {
		case cerr == nil, d.synced:
		case d.boot != "" && strings.TrimSpace(string(prev)) == d.boot:
		default:
			why = "the machine stopped (a new boot) after writes that were not synced"
			setAside(path)
		}
	}
	d.clean = fileExists(path + ".clean")
	if err := WriteFileAtomic(path+".boot", []byte(d.boot+"\n")); err != nil {
		// Without the boot file the next open after a crash is merely
		// more cautious; it is not an error.
		_ = err
	}
	return why
}

// setAside renames an untrusted database so it is kept for inspection but
// never read again.
func setAside(path string) {
	os.Rename(path, path+".untrusted")
	os.Remove(path + ".clean")
}

// dirty is called before each write: the first write after a checkpoint
// removes the marker, durably, before the database changes.
func (d *durability) dirty() error {
	d.lastWrite = time.Now()
	if !d.clean || d.synced {
		return nil
	}
	if err := os.Remove(d.path + ".clean"); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("store: %w", err)
	}
	if err := syncDir(filepath.Dir(d.path)); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	d.clean = false
	return nil
}

// markClean records a checkpoint; the database is synced already.
func (d *durability) markClean() error {
	if err := WriteFileAtomic(d.path+".clean", []byte(time.Now().UTC().Format(time.RFC3339)+"\n")); err != nil {
		return fmt.Errorf("store: mark state clean: %w", err)
	}
	d.clean = true
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// WriteFileAtomic writes a small file (0600) atomically and durably.
func WriteFileAtomic(path string, b []byte) error { return atomicfile.Write(path, b, 0o600) }

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
