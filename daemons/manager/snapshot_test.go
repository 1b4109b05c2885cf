package manager_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

// TestFollowerCatchesUpFromASnapshot: a manager that was down while the
// leader's snapshot dropped the entries it lacks catches up from the
// snapshot (Raft's InstallSnapshot), then takes the entries after it. With
// the log in raft-wal, which takes no gap between indexes, Raft empties
// the follower's log first (raft.MonotonicLogStore): a log store that hid
// that would leave the follower refusing every append. Both stores.
func TestFollowerCatchesUpFromASnapshot(t *testing.T) {
	for _, logStore := range []string{"wal", "bbolt"} {
		t.Run(logStore, func(t *testing.T) {
			// Small raft-wal files: it drops a file only when the
			// snapshot covers all of it.
			o := managertest.Options{RaftLogStore: logStore, RaftTrailingLogs: 5, RaftWALSegmentBytes: 16 << 10}
			cl := managertest.StartCluster(t, 3, o)
			c := ctx(t)
			leader := cl.WaitLeader()
			if _, err := leader.Client.CreateService(c, small("first")); err != nil {
				t.Fatal(err)
			}
			behind := cl.Followers()[0]
			behind.Stop()
			for i := range 40 {
				if _, err := cl.WaitLeader().Client.CreateService(c, small(fmt.Sprintf("while-down-%d", i))); err != nil {
					t.Fatal(err)
				}
			}
			for _, m := range cl.Managers {
				if m != behind {
					if err := m.Manager.Snapshot(); err != nil {
						t.Fatalf("%s: snapshot: %v", m.ID, err)
					}
				}
			}
			behind.Restart(o)
			for i := range 5 {
				if _, err := cl.WaitLeader().Client.CreateService(c, small(fmt.Sprintf("after-%d", i))); err != nil {
					t.Fatal(err)
				}
			}
			eventually(t, behind.ID+" holds every service", 20*time.Second, func() error {
				svcs, err := behind.Client.Services(c, client.ReadOptions{})
				if err != nil {
					return err
				}
				if len(svcs) != 46 {
					return fmt.Errorf("%d services, want 46", len(svcs))
				}
				return nil
			})
			// It caught up from the leader's snapshot: it took none itself.
			if snaps, _ := filepath.Glob(filepath.Join(behind.DataDir, "raft", "snapshots", "*", "meta.json")); len(snaps) == 0 {
				t.Errorf("%s caught up without a snapshot: the test did not make it need one", behind.ID)
			}
		})
	}
}
