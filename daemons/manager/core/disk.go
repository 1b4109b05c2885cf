package core

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/store"
)

// A full disk.
//
// When the state database or the Raft log cannot be written for lack of
// space (store.IsDiskFull), the manager does not panic: it stops its Raft
// instance and refuses writes until there is space, then starts a new Raft
// instance over the same stores, without a restart of the process.
//
//	writing ──write fails: disk full──▶ stopping ──Raft stopped──▶ waiting
//	   ▲                                                              │
//	   └────────── new Raft instance started ◀── space probe passes ───┘
//
// In detail:
//
//   - The FSM stops at the batch it could not write and applies nothing
//     more (store.FSM.OnDiskFull); the Raft log store reports its failed
//     appends and returns them to Raft (a leader steps down, a follower
//     answers the append as failed). Either report stops this manager's
//     Raft instance: it no longer leads or votes, like a stopped manager,
//     and the other managers go on without it.
//   - Raft panics when it cannot save its term, so the stable store retries
//     such a write until it succeeds (guardedStable): Raft's loop waits
//     there, doing nothing, until there is space.
//   - Every write is refused meanwhile, with the disk-full API error
//     (DiskFull: Propose and the router's writes), and Info, node ls and
//     the daemon's STATUS= say so.
//   - When a probe file of probeBytes can be written and synced in the data
//     dir and in its raft dir, the FSM resumes and a new Raft instance starts. Like a restarted
//     manager it replays the log after its last snapshot, skipping what the
//     state database has applied, and catches up with the other managers:
//     no entry is skipped or applied twice. If the disk is still too full,
//     the cycle repeats, probing less often (up to maxProbeWait).
//   - While no instance runs, the transport's requests are answered with
//     an error (a network transport would otherwise hold each one open).
//
// disk is the core's record of it.
type disk struct {
	dir string

	mu sync.Mutex
	// err is the write error that stopped Raft, since when; nil while
	// writing.
	err   error
	since time.Time
	// failures counts the failed writes, so that a restart does not
	// clear a failure of the new Raft instance.
	failures uint64
	// kick wakes the supervisor after a failure.
	kick chan struct{}
}

// probeBytes is how much the data dir must take again before Raft
// restarts: enough for a few batches of the state database and the log
// (a raft-wal log needs room for its next file too: raftStores.logSpace).
const probeBytes = 1 << 20

// Probe waits: the first probe comes firstProbeWait after Raft stopped;
// each probe that fails doubles the wait, up to maxProbeWait.
const (
	firstProbeWait = 250 * time.Millisecond
	maxProbeWait   = 5 * time.Second
)

// diskFull records a write that failed for lack of space and wakes the
// supervisor, which stops Raft. It does not block (Raft's goroutines call
// it).
func (c *Core) diskFull(err error) {
	c.disk.mu.Lock()
	if c.disk.err == nil {
		c.disk.err, c.disk.since = err, time.Now()
	}
	c.disk.failures++
	c.disk.mu.Unlock()
	select {
	case c.disk.kick <- struct{}{}:
	default:
	}
}

// DiskFull is the API error a write on this manager gets while its disk is
// full (and Raft stopped), or nil.
func (c *Core) DiskFull() *api.Error {
	c.disk.mu.Lock()
	failed := c.disk.err != nil
	c.disk.mu.Unlock()
	if !failed {
		return nil
	}
	return store.DiskFullError(c.disk.dir, store.DiskFullRefused)
}

// DiskStatus says, in one line, why and since when this manager stopped
// Raft for a full disk; "" while it writes.
func (c *Core) DiskStatus() string {
	c.disk.mu.Lock()
	err, since := c.disk.err, c.disk.since
	c.disk.mu.Unlock()
	if err == nil {
		return ""
	}
	free := "?"
	if n, ferr := store.FreeBytes(c.disk.dir); ferr == nil {
		free = api.FormatBytes(max(n, 0))
	}
	return fmt.Sprintf("disk full since %s (%s: %s free): Raft stopped and writes refused until space is freed", since.UTC().Format(time.RFC3339), c.disk.dir, free)
}

// superviseDisk stops Raft after a disk-full failure and starts it again
// once there is space, until quit.
func (c *Core) superviseDisk(cfg Config) {
	defer close(c.superDone)
	for {
		select {
		case <-c.quit:
			return
		case <-c.disk.kick:
		}
		c.disk.mu.Lock()
		err := c.disk.err
		c.disk.mu.Unlock()
		if err == nil {
			continue // a report the last restart saw already
		}
		c.log.Error("disk full: stopping Raft until space is freed; writes are refused meanwhile", "dir", c.disk.dir, "err", err)
		old := c.raft.Load()
		stopped := old.stop()
		// From now on no Raft instance answers the transport's requests
		// (the old one may wait, for space, to save its term).
		stopDrain := c.stores.trans.drain()
		select {
		case <-stopped:
		case <-c.quit:
			stopDrain()
			return
		}
		c.wakeLeaderWaiters() // LeaderID is "" now
		c.notifyLeader()
		if !c.restartWhenSpace(cfg, stopDrain) {
			return
		}
	}
}

// restartWhenSpace starts a new Raft instance once the data dir has space
// (stopDrain stops answering the transport's requests for it); it returns
// false if quit came first.
func (c *Core) restartWhenSpace(cfg Config, stopDrain func()) bool {
	defer func() { stopDrain() }()
	wait := firstProbeWait
	for {
		select {
		case <-c.quit:
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, maxProbeWait)
		// The Raft log may be on a partition of its own.
		if probeSpace(c.disk.dir, probeBytes) != nil || probeSpace(filepath.Join(c.disk.dir, "raft"), c.stores.logSpace()) != nil {
			continue
		}
		c.disk.mu.Lock()
		failures := c.disk.failures
		c.disk.mu.Unlock()
		if err := c.stores.reopenLog(); err != nil {
			c.log.Warn("open the Raft log again after a full disk", "err", err)
			continue
		}
		stopDrain()
		c.fsm.Resume()
		rn, err := c.newRaftNode(c.stores, cfg, false)
		if err != nil {
			c.log.Warn("restart Raft after a full disk", "err", err)
			stopDrain = c.stores.trans.drain()
			continue
		}
		rn.r.RegisterObserver(c.observer)
		c.raft.Store(rn)
		c.disk.mu.Lock()
		again := c.disk.failures != failures // the new instance failed already: stop it
		if !again {
			c.disk.err = nil
		}
		c.disk.mu.Unlock()
		if !again {
			c.log.Info("the disk has space again: Raft restarted", "dir", c.disk.dir)
		}
		return true
	}
}

// probeSpace checks that dir takes n bytes again: statfs says so, and a
// file of probeBytes is written, synced and removed.
func probeSpace(dir string, n int64) error {
	free, err := store.FreeBytes(dir)
	if err != nil {
		return err
	}
	if free < n {
		return fmt.Errorf("%d bytes free", free)
	}
	f, err := os.CreateTemp(dir, ".space-probe-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(make([]byte, probeBytes))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// guardedLog is the Raft log store under the log cache (which keeps only
// the message of an error). A write that fails for lack of space is
// reported (the core stops Raft) and returned to Raft: a leader steps
// down, a follower answers the append as failed.
type guardedLog struct {
	raft.LogStore
	full func(error)
}

func (g guardedLog) check(err error) error {
	if store.IsDiskFull(err) {
		g.full(err)
	}
	return err
}

func (g guardedLog) StoreLog(l *raft.Log) error      { return g.check(g.LogStore.StoreLog(l)) }
func (g guardedLog) StoreLogs(ls []*raft.Log) error  { return g.check(g.LogStore.StoreLogs(ls)) }
func (g guardedLog) DeleteRange(lo, hi uint64) error { return g.check(g.LogStore.DeleteRange(lo, hi)) }

// IsMonotonic passes on the store's answer (raft.MonotonicLogStore).
func (g guardedLog) IsMonotonic() bool {
	m, ok := g.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// stableRetry is how often guardedStable tries a write again.
const stableRetry = time.Second

// guardedStable is Raft's stable store (its term and vote). Raft panics
// when it cannot save its term, so a write that fails for lack of space is
// reported and tried again until it succeeds; Raft's loop waits meanwhile.
type guardedStable struct {
	raft.StableStore
	full func(error)
}

func (g guardedStable) retry(write func() error) error {
	for {
		err := write()
		if !store.IsDiskFull(err) {
			return err
		}
		g.full(err)
		time.Sleep(stableRetry)
	}
}

func (g guardedStable) Set(k, v []byte) error {
	return g.retry(func() error { return g.StableStore.Set(k, v) })
}

func (g guardedStable) SetUint64(k []byte, v uint64) error {
	return g.retry(func() error { return g.StableStore.SetUint64(k, v) })
}

// keptTransport is the transport every Raft instance of the core shares:
// Raft closes a transport that can be closed when it shuts down, so this
// one hides Close (the core closes it last).
type keptTransport struct {
	raft.Transport
}

// preVoteTransport is a kept transport that offers pre-vote, as both of
// raft's transports do.
type preVoteTransport struct {
	keptTransport
	pv raft.WithPreVote
}

func (t preVoteTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.pv.RequestPreVote(id, target, args, resp)
}

// kept wraps a transport for sharing.
type kept interface {
	raft.Transport
	close() error
	drain() (stop func())
}

func keep(t raft.Transport) kept {
	if pv, ok := t.(raft.WithPreVote); ok {
		return preVoteTransport{keptTransport{t}, pv}
	}
	return keptTransport{t}
}

func (t keptTransport) close() error {
	if t.Transport == nil {
		return nil
	}
	if c, ok := t.Transport.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// errStopped answers the Raft requests of a manager whose Raft is stopped.
var errStopped = errors.New("this manager's Raft is stopped: its disk is full")

// drain answers every request the transport receives with errStopped,
// until stop (while no Raft instance consumes them).
func (t keptTransport) drain() (stop func()) {
	t.SetHeartbeatHandler(nil) // heartbeats come through Consumer too
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case rpc := <-t.Consumer():
				rpc.Respond(nil, errStopped)
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(quit)
			<-done
		})
	}
}
