package core

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"

	"github.com/warren-edge/warren/daemons/store"
)

// walEntry is the n-th entry of the tests' logs: 4 KiB, its index in it.
func walEntry(n uint64) *raft.Log {
	data := bytes.Repeat([]byte(fmt.Sprintf("%08d", n)), 512)
	return &raft.Log{Index: n, Term: 1, Type: raft.LogCommand, Data: data}
}

// checkWAL reads entries 1..last back from the log in dir, reopened.
func checkWAL(t *testing.T, dir string, segment int, last uint64) {
	t.Helper()
	w, err := openWAL(dir, segment)
	if err != nil {
		t.Fatalf("reopen the log: %v", err)
	}
	defer w.Close()
	if got, _ := w.LastIndex(); got != last {
		t.Errorf("reopened, the log's last index is %d, want %d (every acknowledged entry, no more)", got, last)
	}
	for n := uint64(1); n <= last; n++ {
		var l raft.Log
		if err := w.GetLog(n, &l); err != nil || !bytes.Equal(l.Data, walEntry(n).Data) {
			t.Fatalf("entry %d after reopening: %v (data %.16q); want it whole", n, err, l.Data)
		}
	}
}

// TestWALFileOnAFullDisk: a raft-wal log allocates each file whole when it
// moves to it. On a full disk that fails with the disk-full error, and
// nothing acknowledged is lost. Once there is space the same entries are
// written, as a new Raft instance does after a full disk: in the first
// round after the core opens the log again (disk.go), in the second
// without (raft-wal refuses every write after a failed move to a new file
// until the log is opened again, which StoreLogs does). The log, closed
// and opened in the same process, has every acknowledged entry.
func TestWALFileOnAFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	disk := t.TempDir()
	if err := unix.Mount("tmpfs", disk, "tmpfs", 0, "size=6m,mode=0700"); err != nil {
		t.Skipf("mount a tmpfs: %v", err)
	}
	defer unix.Unmount(disk, unix.MNT_DETACH)
	const segment = 1 << 20
	dir := filepath.Join(disk, "wal")
	os.Mkdir(dir, 0o700)
	w, err := openWAL(dir, segment)
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	write := func() error {
		batch := []*raft.Log{walEntry(next), walEntry(next + 1), walEntry(next + 2)}
		if err := w.StoreLogs(batch); err != nil {
			return err
		}
		next += 3
		return nil
	}
	for round := 1; round <= 2; round++ {
		if err := write(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		filler := filepath.Join(disk, "filler")
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		for _, err = f.Write(make([]byte, 64<<10)); err == nil; _, err = f.Write(make([]byte, 64<<10)) {
		}
		f.Close()
		var full error
		for i := 0; i < 1000 && full == nil; i++ {
			full = write()
		}
		if !store.IsDiskFull(full) {
			t.Fatalf("round %d: writing a log whose next file does not fit: %v after %d entries, want the disk-full error", round, full, next-1)
		}
		t.Logf("round %d: disk full after %d entries: %v", round, next-1, full)
		if err := write(); !store.IsDiskFull(err) {
			t.Fatalf("round %d: a write to the full disk = %v, want the disk-full error", round, err)
		}
		os.Remove(filler)
		if round == 1 {
			if err := w.reopen(); err != nil {
				t.Fatalf("reopen after the full disk: %v", err)
			}
		}
		for i := 0; i < 100; i++ {
			if err := write(); err != nil {
				t.Fatalf("round %d: once there is space, writing entry %d: %v", round, next, err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	checkWAL(t, dir, segment, next-1)
}

// TestWALTornTail: a power cut in the middle of a write leaves part of
// the write after the log's last synced frame, whatever bytes the disk
// kept. Opened again, the log has every entry written before (each was
// synced before it was acknowledged), takes new writes after them, and
// keeps those too.
func TestWALTornTail(t *testing.T) {
	dir := t.TempDir()
	const segment = 1 << 20
	w, err := openWAL(dir, segment)
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	for i := uint64(1); i <= n; i += 2 {
		if err := w.StoreLogs([]*raft.Log{walEntry(i), walEntry(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	// The tail file: allocated whole, zeros after the last frame.
	files, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	if len(files) != 1 {
		t.Fatalf("log files %v, want one", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	end := len(b)
	for end > 0 && b[end-1] == 0 {
		end--
	}
	// overwrite writes p after the last frame, as a torn write would.
	overwrite := func(p []byte) {
		t.Helper()
		f, err := os.OpenFile(files[0], os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(p, int64(end)); err != nil {
			t.Fatal(err)
		}
	}
	for i, torn := range [][]byte{
		bytes.Repeat([]byte{0xff}, 37),                           // garbage
		walEntryFrameLike(),                                      // what looks like the start of a frame
		append(bytes.Repeat([]byte{0}, 8), []byte("partial")...), // a frame header of zeros, then data
	} {
		overwrite(torn)
		checkWAL(t, dir, segment, n)
		if t.Failed() {
			t.Fatalf("torn tail %d (%q after the last frame): entries lost", i, torn)
		}
		// Zeros again, as before the torn write, for the next case.
		overwrite(make([]byte, len(torn)))
	}
	// A torn tail, then new writes: they follow the last whole entry.
	overwrite(bytes.Repeat([]byte{0xab}, 100))
	if w, err = openWAL(dir, segment); err != nil {
		t.Fatal(err)
	}
	if err := w.StoreLogs([]*raft.Log{walEntry(n + 1), walEntry(n + 2)}); err != nil {
		t.Fatalf("a write after the torn tail: %v", err)
	}
	w.Close()
	checkWAL(t, dir, segment, n+2)
}

// walEntryFrameLike is the first bytes of a raft-wal entry frame (type 1,
// then a length), with no data after it.
func walEntryFrameLike() []byte {
	return []byte{1, 0, 0, 0, 0, 0x10, 0, 0}
}

// TestLogStoreKind: a new data dir keeps its log in raft-wal unless told
// otherwise, and records it; a data dir keeps the store it started with
// (one from before the record: bbolt), and a flag that says otherwise is
// refused, as is a store Warren does not know.
func TestLogStoreKind(t *testing.T) {
	for _, c := range []struct {
		what   string
		marker string // the logstore file ("": none)
		raftDB bool   // a raft.db from before the record
		want   string // the flag
		got    string
		err    string
	}{
		{what: "new, no flag", got: "wal"},
		{what: "new, bbolt", want: "bbolt", got: "bbolt"},
		{what: "new, wal", want: "wal", got: "wal"},
		{what: "recorded bbolt, no flag", marker: "bbolt", got: "bbolt"},
		{what: "recorded wal, no flag", marker: "wal", raftDB: true, got: "wal"},
		{what: "before the record", raftDB: true, got: "bbolt"},
		{what: "recorded wal, told bbolt", marker: "wal", want: "bbolt", err: "start it with --raft-log-store wal"},
		{what: "an unknown flag", want: "rocks", err: "use wal or bbolt"},
		{what: "an unknown record", marker: "rocks", err: "restore the file"},
	} {
		dir := t.TempDir()
		if c.marker != "" {
			os.WriteFile(filepath.Join(dir, "logstore"), []byte(c.marker+"\n"), 0o600)
		}
		if c.raftDB {
			os.WriteFile(filepath.Join(dir, "raft.db"), nil, 0o600)
		}
		got, err := logStoreKind(dir, c.want)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: logStoreKind = %q, %v; want an error saying %q", c.what, got, err, c.err)
			}
		case err != nil || got != c.got:
			t.Errorf("%s: logStoreKind = %q, %v; want %q", c.what, got, err, c.got)
		default:
			if b, _ := os.ReadFile(filepath.Join(dir, "logstore")); strings.TrimSpace(string(b)) != c.got {
				t.Errorf("%s: the data dir records %q, want %q", c.what, b, c.got)
			}
		}
	}
}

// TestWALTailTruncation: a follower drops the tail of its log that the
// leader's does not have (Raft's DeleteRange up to the last index), writes
// the leader's entries in their place, and is restarted. raft-wal 0.4.0
// marked the truncated file sealed without its index block, and the log
// could not be opened again ("sealed segment has no index block", which
// Raft panics on: the manager could not start); third_party/raft-wal writes
// the block first.
func TestWALTailTruncation(t *testing.T) {
	dir := t.TempDir()
	const segment = 1 << 20
	w, err := openWAL(dir, segment)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 10; i++ {
		if err := w.StoreLogs([]*raft.Log{walEntry(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.DeleteRange(8, 10); err != nil {
		t.Fatalf("drop the tail: %v", err)
	}
	for i := uint64(8); i <= 12; i++ {
		if err := w.StoreLogs([]*raft.Log{walEntry(i)}); err != nil {
			t.Fatalf("write %d after the tail was dropped: %v", i, err)
		}
	}
	if err := w.reopen(); err != nil {
		t.Fatalf("open again after a dropped tail: %v", err)
	}
	if err := w.DeleteRange(12, 12); err != nil {
		t.Fatalf("drop the tail again: %v", err)
	}
	w.Close()
	checkWAL(t, dir, segment, 11)
}
