package manager_test

import (
	"bytes"
	"errors"
	"sync/atomic"

	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/keys"
	"github.com/warren-edge/warren/daemons/manager/managertest"
	"github.com/warren-edge/warren/daemons/manager/membership"
)

// raftFiles are the files of a manager's data dir that hold the cluster's
// state: the Raft log and stable store, the snapshots, the state database
// (and its copies). Not the node's own TLS key: that is the node's, not
// the cluster's, and not the key file.
func raftFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(rel, "raft"+string(filepath.Separator)) || strings.HasPrefix(rel, "state.db") {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out[rel] = b
		}
		return nil
	})
	if len(out) == 0 {
		t.Fatalf("no Raft or state files under %s", dir)
	}
	return out
}

// noneOf fails t for each needle found in a file of dir.
func noneOf(t *testing.T, who, dir string, needles map[string][]byte) {
	t.Helper()
	for name, b := range raftFiles(t, dir) {
		for what, needle := range needles {
			if bytes.Contains(b, needle) {
				t.Errorf("%s: %s holds %s in the clear", who, name, what)
			}
		}
	}
}

// Three managers' Raft logs, snapshots and state databases hold no
// private key and no join token: the CA key is sealed under the data key,
// tokens are kept as hashes. The managers that joined fetched the KEK and
// open every value.
func TestNothingSensitiveIsKeptInTheClear(t *testing.T) {
	c := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	mtok := a.joinToken(t, api.RoleManager)
	wtok := a.joinToken(t, api.RoleWorker)
	b := startNetNode(t, filepath.Join(base, "b"), a.addr, mtok)
	d := startNetNode(t, filepath.Join(base, "d"), a.addr, a.joinToken(t, api.RoleManager))
	w := startNetNode(t, filepath.Join(base, "w"), a.addr, wtok)
	// A CA rotation writes a new key, twice.
	if _, err := a.cl().RotateCA(c, false); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cl().RotateCA(c, true); err != nil {
		t.Fatal(err)
	}
	ntok := a.joinToken(t, api.RoleWorker)
	// A secret, created on a follower, and a new version of it.
	value1, value2 := "first-"+api.NewID(), "second-"+api.NewID()
	if _, err := b.cl().CreateFile(c, api.KindSecret, api.SecretRequest{Name: "db", Data: []byte(value1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cl().UpdateFile(c, api.KindSecret, "db", []byte(value2)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*netNode{a, b, d} {
		eventually(t, n.dir+" opens every sealed value", 20*time.Second, func() error {
			chk, err := n.cl().CheckKeys(c)
			if err != nil {
				return err
			}
			if chk.Checked == 0 || chk.Readable != chk.Checked {
				return fmt.Errorf("%d of %d readable: %+v", chk.Readable, chk.Checked, chk.Unreadable)
			}
			return nil
		})
	}
	needles := map[string][]byte{"a private key PEM": []byte("PRIVATE KEY"), "a secret's value": []byte(value1), "a secret's new value": []byte(value2)}
	for i, tok := range []string{mtok, wtok, ntok} {
		secret := tok[strings.LastIndexByte(tok, '-')+1:]
		needles[fmt.Sprintf("join token %d's secret", i)] = []byte(secret)
	}
	// A worker holds no key and serves none of the key routes.
	if _, err := w.cl().CheckKeys(c); !api.IsCode(err, api.CodeForbidden) || !strings.Contains(err.Error(), "worker") {
		t.Errorf("key check on a worker: %v; want it refused, saying it is a worker", err)
	}
	if _, err := os.Stat(filepath.Dir(keys.KEKFile(w.dir))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the worker has a keys directory: %v", err)
	}
	for _, n := range []*netNode{a, b, d} {
		// A snapshot too: the state database as Raft keeps it.
		if err := n.Snapshot(); err != nil {
			t.Fatalf("%s: snapshot: %v", n.dir, err)
		}
		if snaps, _ := filepath.Glob(filepath.Join(n.dir, "raft", "snapshots", "*", "state.bin")); len(snaps) == 0 {
			t.Errorf("%s: no snapshot file to look into", n.dir)
		}
		noneOf(t, n.dir, n.dir, needles)
		if st, _, err := keys.KEKFileInfo(keys.KEKFile(n.dir)); st != "clear" || err != nil {
			t.Errorf("%s: key file %q, %v; want one in the clear (autolock is off)", n.dir, st, err)
		}
	}
}

// With autolock on, a restarted manager is locked: it refuses writes with
// an error that says what to do, serves reads, shows it in node ls, and
// opens with the unlock key only. A rotated unlock key replaces the old.
func TestAutolock(t *testing.T) {
	c := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	if _, err := a.cl().CreateService(c, api.ServiceSpec{Name: "before", Image: "busybox", Replicas: 1}); err != nil {
		t.Fatal(err)
	}
	if k, err := a.cl().UnlockKey(c); err != nil || k.Autolock || k.Key != "" {
		t.Fatalf("unlock key with autolock off: %+v, %v; want none", k, err)
	}
	on, err := a.cl().SetAutolock(c, true)
	if err != nil || !on.Autolock || !strings.HasPrefix(on.Key, "WRN-UNLOCK-") {
		t.Fatalf("autolock on: %+v, %v", on, err)
	}
	if k, err := a.cl().UnlockKey(c); err != nil || k.Key != on.Key {
		t.Fatalf("unlock-key shows %+v, %v; want the key autolock gave", k, err)
	}
	waitKeyFile(t, a.dir, "sealed")

	a.stop()
	a.restart(t)
	eventually(t, "the restarted manager answers", 15*time.Second, func() error { _, err := a.cl().Info(c); return err })
	if info, _ := a.cl().Info(c); !info.Locked {
		t.Fatalf("the restarted manager's info: %+v; want it locked", info)
	}
	_, err = a.cl().CreateService(c, api.ServiceSpec{Name: "locked", Image: "busybox", Replicas: 1})
	if !api.IsCode(err, api.CodeUnavailable) || !strings.Contains(err.Error(), "warrenctl unlock") {
		t.Errorf("a write to a locked manager: %v; want it refused, naming warrenctl unlock", err)
	}
	if _, err := a.cl().Service(c, "before", client.ReadOptions{}); err != nil {
		t.Errorf("a read from a locked manager: %v; want it served", err)
	}
	nodes, err := a.cl().Nodes(c, client.ReadOptions{})
	if err != nil || len(nodes) != 1 || nodes[0].Manager == nil || !nodes[0].Manager.Locked {
		var seen []string
		for _, n := range nodes {
			seen = append(seen, fmt.Sprintf("%s role %s manager %+v", n.ID, n.Spec.Role, n.Manager))
		}
		t.Errorf("node ls on a locked manager: %v, nodes %v; want itself shown locked", err, seen)
	}
	if _, err := a.cl().CheckKeys(c); !api.IsCode(err, api.CodeUnavailable) {
		t.Errorf("a key check on a locked manager: %v; want it refused", err)
	}
	if err := a.cl().Unlock(c, "WRN-UNLOCK-"+strings.Repeat("b", 52)); !api.IsCode(err, api.CodeForbidden) {
		t.Errorf("unlock with another key: %v; want it refused", err)
	}
	if err := a.cl().Unlock(c, "hello"); !api.IsCode(err, api.CodeInvalid) || !strings.Contains(err.Error(), "WRN-UNLOCK-") {
		t.Errorf("unlock with no key: %v; want an error that says what a key looks like", err)
	}
	if info, _ := a.cl().Info(c); !info.Locked {
		t.Fatalf("a wrong key unlocked the manager")
	}
	if err := a.cl().Unlock(c, strings.ToLower(on.Key)); err != nil {
		t.Fatalf("unlock with the key: %v", err)
	}
	if _, err := a.cl().CreateService(c, api.ServiceSpec{Name: "after", Image: "busybox", Replicas: 1}); err != nil {
		t.Errorf("a write after unlock: %v", err)
	}
	if chk, err := a.cl().CheckKeys(c); err != nil || chk.Readable != chk.Checked || chk.Checked < 2 {
		t.Errorf("key check after unlock: %+v, %v; want the CA key and the unlock key readable", chk, err)
	}

	// A rotated unlock key replaces the old one.
	rot, err := a.cl().RotateUnlockKey(c)
	if err != nil || rot.Key == on.Key || !rot.Autolock {
		t.Fatalf("rotate the unlock key: %+v, %v", rot, err)
	}
	eventually(t, "the key file sealed under the new unlock key", 10*time.Second, func() error {
		u, _ := keys.ParseUnlockKey(rot.Key)
		_, err := keys.ReadKEK(keys.KEKFile(a.dir), u)
		return err
	})
	a.stop()
	a.restart(t)
	eventually(t, "the restarted manager answers", 15*time.Second, func() error { _, err := a.cl().Info(c); return err })
	if err := a.cl().Unlock(c, on.Key); !api.IsCode(err, api.CodeForbidden) {
		t.Errorf("unlock with the rotated-out key: %v; want it refused", err)
	}
	if err := a.cl().Unlock(c, rot.Key); err != nil {
		t.Fatalf("unlock with the new key: %v", err)
	}

	// Off again: the key file is in the clear, and a restart needs no one.
	if _, err := a.cl().SetAutolock(c, false); err != nil {
		t.Fatal(err)
	}
	waitKeyFile(t, a.dir, "clear")
	a.stop()
	a.restart(t)
	eventually(t, "the restarted manager takes writes", 15*time.Second, func() error {
		_, err := a.cl().CreateService(c, api.ServiceSpec{Name: "unlocked", Image: "busybox", Replicas: 1})
		return err
	})
}

func waitKeyFile(t *testing.T, dir, want string) {
	t.Helper()
	eventually(t, "the key file "+want, 10*time.Second, func() error {
		st, _, err := keys.KEKFileInfo(keys.KEKFile(dir))
		if err != nil || st != want {
			return fmt.Errorf("key file %q, %v", st, err)
		}
		return nil
	})
}

// A manager that joins an autolocked cluster gets the KEK sealed under
// the unlock key, and stays locked until unlocked: its certificate alone,
// taken from its disk, fetches nothing the disk did not hold.
func TestJoiningAnAutolockedClusterStaysLocked(t *testing.T) {
	c := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	on, err := a.cl().SetAutolock(c, true)
	if err != nil {
		t.Fatal(err)
	}
	b := startNetNode(t, filepath.Join(base, "b"), a.addr, a.joinToken(t, api.RoleManager))
	waitKeyFile(t, b.dir, "sealed")
	if info, err := b.cl().Info(c); err != nil || !info.Locked {
		t.Fatalf("the manager that joined: %+v, %v; want it locked", info, err)
	}
	if err := b.cl().Unlock(c, on.Key); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the joined manager opens every value", 15*time.Second, func() error {
		chk, err := b.cl().CheckKeys(c)
		if err != nil || chk.Readable != chk.Checked {
			return fmt.Errorf("%+v, %v", chk, err)
		}
		return nil
	})
}

// A data key rotation stopped part-way (its leader sealed one batch, then
// stopped) leaves every value readable and the old key in place; the
// restarted leader goes on from the state and finishes, and only then is
// the old key dropped.
func TestDataKeyRotationResumes(t *testing.T) {
	c := ctx(t)
	base := t.TempDir()
	a := startFirstManager(t, base)
	const n = 600 // three reseal batches
	for i := range n {
		if _, err := a.cl().CreateFile(c, api.KindSecret, api.SecretRequest{Name: fmt.Sprintf("s%d", i), Data: []byte(fmt.Sprintf("value %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := a.cl().Keys(c)
	if err != nil || len(before.Keys) != 1 {
		t.Fatalf("keys: %+v, %v", before, err)
	}
	var batches atomic.Int32
	restore := membership.SetResealHookForTest(func() bool { return batches.Add(1) <= 1 })
	defer restore()
	rot, err := a.cl().RotateDataKey(c)
	if err != nil || !rot.Rotating || rot.Active == before.Active || len(rot.Keys) != 2 {
		t.Fatalf("rotate: %+v, %v", rot, err)
	}
	if _, err := a.cl().RotateDataKey(c); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("a second rotation while one runs: %v; want a conflict", err)
	}
	eventually(t, "one batch sealed again, then held", 10*time.Second, func() error {
		if batches.Load() < 2 {
			return fmt.Errorf("%d batches asked", batches.Load())
		}
		return nil
	})
	chk, err := a.cl().CheckKeys(c)
	if err != nil || chk.Readable != chk.Checked || chk.Checked < n || chk.NotActive == 0 || chk.NotActive == chk.Checked {
		t.Fatalf("check part-way: %+v, %v; want every value readable, some under each key", chk, err)
	}
	t.Logf("part-way: %d of %d values under the new key", chk.Checked-chk.NotActive, chk.Checked)

	// The leader stops part-way; it comes back and goes on.
	a.stop()
	restore()
	a.restart(t)
	eventually(t, "the rotation done after the restart", 30*time.Second, func() error {
		k, err := a.cl().Keys(c)
		if err != nil || k.Rotating || len(k.Keys) != 1 || k.Keys[0].ID != rot.Active {
			return fmt.Errorf("%+v, %v", k, err)
		}
		return nil
	})
	chk, err = a.cl().CheckKeys(c)
	if err != nil || chk.Readable != chk.Checked || chk.Checked < n || chk.NotActive != 0 {
		t.Fatalf("check after the rotation: %+v, %v", chk, err)
	}
	// The CA still signs (its key was sealed again, not lost).
	if _, err := a.cl().RotateCA(c, false); err != nil {
		t.Errorf("the CA after a data key rotation: %v", err)
	}
}

// Managers bootstrapped together each make a KEK; the first leader's
// wraps the cluster's keys, and the others replace theirs with it, so that
// any of them can lead: after the leader stops, the next one still signs.
func TestManagersBootstrappedTogetherShareTheKEK(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	ctx := ctx(t)
	for _, m := range c.Managers {
		eventually(t, m.ID+" opens every sealed value", 20*time.Second, func() error {
			chk, err := m.Client.CheckKeys(ctx)
			if err != nil {
				return err
			}
			if chk.Checked == 0 || chk.Readable != chk.Checked {
				return fmt.Errorf("%d of %d readable: %+v", chk.Readable, chk.Checked, chk.Unreadable)
			}
			return nil
		})
	}
	old := c.WaitLeader()
	old.Stop()
	next := c.WaitLeader()
	eventually(t, "a CA rotation on the next leader", 20*time.Second, func() error {
		_, err := next.Client.RotateCA(ctx, false)
		return err
	})
}
