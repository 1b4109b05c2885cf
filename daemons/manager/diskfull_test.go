package manager_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
	"github.com/warren-edge/warren/daemons/store"
)

// smallDisk mounts a tmpfs of size bytes for the test (root only) and
// returns its path; it is unmounted when the test ends, failed or not.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Skipf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v, want ENOSPC", path, err)
			}
			break
		}
	}
	// The last pages too.
	for {
		if _, err := f.Write(buf[:512]); err != nil {
			break
		}
	}
}

// small is a service of no replicas: its create is the only write (no
// task plan follows it), so the write that meets the full disk is the
// test's own.
func small(name string) api.ServiceSpec {
	return api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: 0}
}

// outcomes sorts writes (service creates, by name) by what their callers
// were told.
type outcomes struct {
	acked     map[string]bool // acknowledged: must be there
	committed map[string]bool // committed, not applied yet: must be there once space is back
	refused   map[string]bool // refused: must not be there
	inDoubt   map[string]bool // may be there, once
}

func newOutcomes() *outcomes {
	return &outcomes{acked: map[string]bool{}, committed: map[string]bool{}, refused: map[string]bool{}, inDoubt: map[string]bool{}}
}

// record files the create of name by its error, and says whether it was
// the disk-full error; any other error fails the test.
func (o *outcomes) record(t *testing.T, name string, err error) (full bool) {
	t.Helper()
	switch {
	case err == nil:
		o.acked[name] = true
		return false
	case !api.IsCode(err, api.CodeUnavailable):
	case strings.Contains(err.Error(), store.DiskFullCommitted):
		o.committed[name] = true
		return true
	case strings.Contains(err.Error(), store.DiskFullRefused):
		o.refused[name] = true
		return true
	case strings.Contains(err.Error(), store.DiskFullInDoubt):
		o.inDoubt[name] = true
		return true
	}
	t.Fatalf("CreateService(%s) = %v, want success or the disk-full error", name, err)
	return false
}

// check compares the services a manager holds with what was written.
func (o *outcomes) check(t *testing.T, who string, svcs []api.Service) {
	t.Helper()
	have := map[string]int{}
	for _, s := range svcs {
		have[s.Spec.Name]++
	}
	for name, n := range have {
		if n != 1 || !o.acked[name] && !o.committed[name] && !o.inDoubt[name] {
			t.Errorf("%s holds service %s %d times (acknowledged %v, committed %v, in doubt %v, refused %v), want once and only if written",
				who, name, n, o.acked[name], o.committed[name], o.inDoubt[name], o.refused[name])
		}
	}
	for _, want := range []map[string]bool{o.acked, o.committed} {
		for name := range want {
			if have[name] != 1 {
				t.Errorf("%s lacks service %s (acknowledged %v, committed %v)", who, name, o.acked[name], o.committed[name])
			}
		}
	}
	t.Logf("%s holds %d services: %d acknowledged, %d committed at the failure, %d in doubt, %d refused",
		who, len(svcs), len(o.acked), len(o.committed), len(o.inDoubt), len(o.refused))
}

// writeUntilFull creates services through cl until one fails with the
// disk-full error, and returns that error.
func writeUntilFull(t *testing.T, cl *client.Client, o *outcomes, prefix string) error {
	t.Helper()
	for i := range 2000 {
		name := fmt.Sprintf("%s-%d", prefix, i)
		_, err := cl.CreateService(ctx(t), small(name))
		if o.record(t, name, err) {
			t.Logf("first failure after %d writes on the full disk: %v", i, err)
			return err
		}
	}
	t.Fatal("2000 services created on a full disk: none failed")
	return nil
}

// TestFullDiskRefusesWritesAndResumes runs a manager whose data dir is on
// a small tmpfs, fills the tmpfs, and writes: the writes fail with the
// disk-full error and the manager does not panic (it would take the test
// with it). Once the filler is removed, writes succeed again without a
// restart, and the state holds every write acknowledged before and during
// the full period, and each write whose entry was committed when the disk
// filled, once; none that was refused.
//
// Each runs with the Raft log in raft-wal (the default) and in bbolt.
// With the whole data dir on the tmpfs, a bbolt log is the first to fail;
// a raft-wal log allocates each of its files whole, so the state database
// fails first. With the Raft log on a tmpfs of its own, the state
// database fails, and the entries committed but not applied must apply
// once space is back. (TestWALFileOnAFullDisk: a raft-wal log that must
// make a new file on a full disk.)
func TestFullDiskRefusesWritesAndResumes(t *testing.T) {
	for _, logStore := range []string{"wal", "bbolt"} {
		t.Run("one disk/"+logStore, func(t *testing.T) { testFullDisk(t, false, logStore) })
		t.Run("raft log apart/"+logStore, func(t *testing.T) { testFullDisk(t, true, logStore) })
	}
}

// diskFor is the size of a small disk for a manager's data dir with its
// Raft log in logStore: 8 MiB, and for a raft-wal log room for its file
// and for the next (the space a manager waits for before it resumes).
func diskFor(logStore string) int {
	if logStore == "wal" {
		return 24 << 20
	}
	return 8 << 20
}

func testFullDisk(t *testing.T, logApart bool, logStore string) {
	disk := smallDisk(t, diskFor(logStore))
	dataDir := filepath.Join(disk, "warren")
	if logApart {
		if err := os.MkdirAll(filepath.Join(dataDir, "raft"), 0o700); err != nil {
			t.Fatal(err)
		}
		logDisk := smallDisk(t, 64<<20)
		if err := unix.Mount(logDisk, filepath.Join(dataDir, "raft"), "", unix.MS_BIND, ""); err != nil {
			t.Fatalf("bind %s on the data dir's raft: %v", logDisk, err)
		}
		t.Cleanup(func() { unix.Unmount(filepath.Join(dataDir, "raft"), unix.MNT_DETACH) })
	}
	m := managertest.Start(t, managertest.Options{DataDir: dataDir, RaftLogStore: logStore})
	c := ctx(t)
	o := newOutcomes()
	for i := range 5 {
		name := fmt.Sprintf("before-%d", i)
		_, err := m.Client.CreateService(c, small(name))
		if o.record(t, name, err) {
			t.Fatalf("CreateService(%s) before the disk filled = %v", name, err)
		}
	}

	filler := filepath.Join(disk, "filler")
	fill(t, filler)
	full := writeUntilFull(t, m.Client, o, "during")
	if !strings.Contains(full.Error(), dataDir) || !strings.Contains(full.Error(), "free space") {
		t.Errorf("the first failed write = %v, want an error naming %s and saying to free space", full, dataDir)
	}
	if logApart && len(o.committed) == 0 {
		t.Errorf("with the Raft log on its own disk, the first failure = %v, want the state database's (committed, not applied)", full)
	}

	// From now on every write is refused at once, and the manager says why.
	for i := range 3 {
		name := fmt.Sprintf("refused-%d", i)
		_, err := m.Client.CreateService(c, small(name))
		if !api.IsCode(err, api.CodeUnavailable) || !strings.Contains(err.Error(), store.DiskFullRefused) {
			t.Errorf("CreateService(%s) while the disk is full = %v, want the disk-full refusal", name, err)
		}
		o.refused[name] = true
	}
	if _, err := m.Client.ScaleService(c, "before-0", 1); !api.IsCode(err, api.CodeUnavailable) {
		t.Errorf("ScaleService(before-0) while the disk is full = %v, want the disk-full refusal", err)
	}
	info, err := m.Client.Info(c)
	if err != nil || !strings.Contains(info.DiskFull, "disk full") {
		t.Errorf("Info while the disk is full: DiskFull %q, %v; want it to say so", info.DiskFull, err)
	}
	if st := m.Status(); !strings.Contains(st, "disk full") {
		t.Errorf("Status() while the disk is full = %q, want it to say so (systemd's STATUS=)", st)
	}
	if self, err := m.Client.Node(c, info.NodeID); err != nil || self.Manager == nil || !self.Manager.DiskFull {
		t.Errorf("Node(self) while the disk is full = %+v, %v; want its manager status to say disk full", self, err)
	}
	// Reads go on.
	if svcs, err := m.Client.Services(c, client.ReadOptions{}); err != nil || len(svcs) < 5 {
		t.Errorf("Services while the disk is full = %d services, %v; want the state as it was", len(svcs), err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The manager resumes on its own: no restart.
	eventually(t, "a write once space was freed", 30*time.Second, func() error {
		_, err := m.Client.CreateService(c, small("after"))
		if err != nil && !api.IsCode(err, api.CodeNotLeader) && !api.IsCode(err, api.CodeUnavailable) {
			t.Fatalf("CreateService(after) once space was freed = %v", err)
		}
		return err
	})
	o.acked["after"] = true
	if info, err := m.Client.Info(c); err != nil || info.DiskFull != "" {
		t.Errorf("Info after space was freed: DiskFull %q, %v; want none", info.DiskFull, err)
	}
	svcs, err := m.Client.Services(c, client.ReadOptions{Consistent: true})
	if err != nil {
		t.Fatal(err)
	}
	o.check(t, "the manager", svcs)
}

// TestFullDiskOfTheLeader: the leader of three managers fills its disk.
// It stops leading and voting and refuses writes; the two others elect a
// leader and take writes meanwhile. Once space is freed it catches up on
// its own, and the three hold the same state: every acknowledged write
// once, none that was refused.
func TestFullDiskOfTheLeader(t *testing.T) {
	disks, dirs := map[string]string{}, map[string]string{}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("mgr%d", i)
		disks[id] = smallDisk(t, diskFor("wal"))
		dirs[id] = filepath.Join(disks[id], "warren")
	}
	cl := managertest.StartCluster(t, 3, managertest.Options{DataDirs: dirs, RaftLogStore: "wal"})
	c := ctx(t)
	o := newOutcomes()
	old := cl.WaitLeader()
	for i := range 5 {
		name := fmt.Sprintf("before-%d", i)
		if _, err := old.Client.CreateService(c, small(name)); o.record(t, name, err) {
			t.Fatalf("CreateService(%s) before the disk filled = %v", name, err)
		}
	}

	filler := filepath.Join(disks[old.ID], "filler")
	fill(t, filler)
	writeUntilFull(t, old.Client, o, "during")
	var leader *managertest.Member
	eventually(t, "another leader", 15*time.Second, func() error {
		if leader = cl.Leader(); leader == nil || leader == old {
			return fmt.Errorf("leader %v", leader)
		}
		return nil
	})
	for i := range 5 {
		name := fmt.Sprintf("elsewhere-%d", i)
		var err error
		eventually(t, "a write through the new leader", 15*time.Second, func() error {
			_, err = leader.Client.CreateService(c, small(name))
			if api.IsCode(err, api.CodeNotLeader) {
				return err
			}
			return nil
		})
		if o.record(t, name, err) {
			t.Fatalf("CreateService(%s) through %s, whose disk has space = %v", name, leader.ID, err)
		}
	}
	_, err := old.Client.CreateService(c, small("refused"))
	if !api.IsCode(err, api.CodeUnavailable) || !strings.Contains(err.Error(), store.DiskFullRefused) {
		t.Errorf("CreateService(refused) through %s, whose disk is full = %v, want the disk-full refusal", old.ID, err)
	}
	o.refused["refused"] = true

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the three managers at the same index", 30*time.Second, func() error {
		var idx []uint64
		for _, m := range cl.Managers {
			info, err := m.Client.Info(c)
			if err != nil {
				return err
			}
			if info.DiskFull != "" {
				return fmt.Errorf("%s: %s", m.ID, info.DiskFull)
			}
			idx = append(idx, info.Index)
		}
		if idx[0] != idx[1] || idx[1] != idx[2] {
			return fmt.Errorf("indexes %v", idx)
		}
		return nil
	})
	for _, m := range cl.Managers {
		svcs, err := m.Client.Services(c, client.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		o.check(t, m.ID, svcs)
	}
}
