package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/store"
)

// Core is a manager's Store with the Raft node that changes it.
type Core struct {
	*Store
	nodeID string
	log    *slog.Logger
	fsm    *store.FSM
	// raft is the running Raft instance (a new one after a stop for a full
	// disk: disk.go), over stores.
	raft   atomic.Pointer[raftNode]
	stores *raftStores
	disk   disk
	// quit ends the disk supervisor, which closes superDone.
	quit, superDone chan struct{}
	// onCommit observes how long a proposal took to commit and apply.
	onCommit func(time.Duration)

	leaderMu   sync.Mutex
	leaderWake chan struct{} // closed and replaced when the leader changes
	leaderCh   chan bool     // LeaderCh, whichever Raft instance runs
	observer   *raft.Observer
	observed   chan raft.Observation
}

// Start starts Raft over the store (bootstrapping a new cluster on a
// fresh data dir when cfg.Bootstrap says so).
func Start(s *Store, cfg Config) (*Core, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &Core{Store: s, nodeID: cfg.NodeID, log: cfg.Logger, onCommit: cfg.OnCommit,
		leaderWake: make(chan struct{}), leaderCh: make(chan bool, 1),
		disk: disk{dir: cfg.DataDir, kick: make(chan struct{}, 1)}, quit: make(chan struct{}), superDone: make(chan struct{})}
	c.fsm = store.NewFSM(s.state, s.hub)
	c.fsm.OnApply = cfg.OnApply
	c.fsm.OnEvents = cfg.OnEvents
	c.fsm.OnDiskFull = c.diskFull
	obs := make(chan raft.Observation, 16)
	c.observed = obs
	c.observer = raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	st, rn, err := openRaft(c, cfg)
	if err != nil {
		return nil, err
	}
	c.stores = st
	c.raft.Store(rn)
	rn.r.RegisterObserver(c.observer)
	go func() {
		for range obs {
			c.wakeLeaderWaiters()
			c.notifyLeader()
		}
	}()
	cfg.ForceNewCluster = false // a restart after a full disk keeps the cluster
	go c.superviseDisk(cfg)
	return c, nil
}

// r is the running Raft instance.
func (c *Core) r() *raft.Raft { return c.raft.Load().r }

// notifyLeader tells LeaderCh's reader whether this manager leads now,
// dropping a value it has not read.
func (c *Core) notifyLeader() {
	leader := c.IsLeader()
	select {
	case <-c.leaderCh:
	default:
	}
	select {
	case c.leaderCh <- leader:
	default:
	}
}

func (c *Core) wakeLeaderWaiters() {
	c.leaderMu.Lock()
	close(c.leaderWake)
	c.leaderWake = make(chan struct{})
	c.leaderMu.Unlock()
}

// NodeID is this manager's node ID (its Raft server ID).
func (c *Core) NodeID() string { return c.nodeID }

// IsLeader says whether this manager leads the cluster now.
func (c *Core) IsLeader() bool { return c.r().State() == raft.Leader }

// LeaderID is the current leader's node ID, or "" when there is none.
func (c *Core) LeaderID() string {
	_, id := c.r().LeaderWithID()
	return string(id)
}

// LeaderChanged is closed the next time Raft sees the leader change (or
// lose its leader).
func (c *Core) LeaderChanged() <-chan struct{} {
	c.leaderMu.Lock()
	defer c.leaderMu.Unlock()
	return c.leaderWake
}

// WaitLeader returns the leader's ID, waiting for an election to end if
// there is none now, until ctx ends.
func (c *Core) WaitLeader(ctx context.Context) (string, error) {
	for {
		wake := c.LeaderChanged()
		if id := c.LeaderID(); id != "" {
			return id, nil
		}
		// The observer misses nothing, but a short tick also covers a
		// leader learned before this waiter subscribed.
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// LeaderCh delivers true when this manager becomes leader and false when
// it stops being one (a value not read is replaced by the next).
func (c *Core) LeaderCh() <-chan bool { return c.leaderCh }

// State is Raft's state as a number (0 follower, 1 candidate, 2 leader,
// 3 shutdown, as the warren_raft_state metric has it) and a name.
func (c *Core) State() (int, string) {
	s := c.r().State()
	return int(s), s.String()
}

// request is the API request a proposal is made for: its ID, and how many
// proposals it has made (a handler may make several).
type request struct {
	id string
	n  atomic.Int32
}

type requestKey struct{}

// WithRequestID marks ctx as the context of the request id: the
// proposals made under it are applied once each, however often the
// request is sent (see store.Once).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestKey{}, &request{id: id})
}

// Replaying says whether ctx's request was applied before (it is being
// sent again): a handler then leaves out the checks against the state
// that its first run passed, and gets the first run's results from
// Propose.
func (c *Core) Replaying(ctx context.Context) bool {
	req, ok := ctx.Value(requestKey{}).(*request)
	if !ok {
		return false
	}
	seen := false
	c.View(func(v *store.View) error { seen = v.OnceApplied(req.id + "/1"); return nil })
	return seen
}

// applyTimeout bounds how long a write waits to be committed.
const applyTimeout = 10 * time.Second

// Propose commits a command and returns the FSM's result. A refused
// command comes back as its *api.Error. It waits for the commit at most
// until ctx's deadline, and at most applyTimeout. While this manager's
// disk is full, every command is refused with DiskFull's error: the one
// place the manager's writes, its own loops' included, are refused. So is
// a command some manager would not apply (store.View.CommandGate).
func (c *Core) Propose(ctx context.Context, t store.CommandType, payload any) (any, error) {
	if err := c.DiskFull(); err != nil {
		return nil, err
	}
	var gate error
	c.View(func(v *store.View) error { gate = v.CommandGate(t); return nil })
	if gate != nil {
		return nil, gate
	}
	b, err := store.Encode(t, payload)
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "%v", err)
	}
	if req, ok := ctx.Value(requestKey{}).(*request); ok {
		// The n-th proposal of the request is the same command each time
		// the request is handled again.
		id := fmt.Sprintf("%s/%d", req.id, req.n.Add(1))
		if b, err = store.EncodeOnce(store.Once{RequestID: id, At: time.Now().UTC(), Command: b}); err != nil {
			return nil, api.Errorf(api.CodeInternal, "%v", err)
		}
	}
	timeout := applyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(min(timeout, time.Until(d)), time.Millisecond)
	}
	start := time.Now()
	f := c.r().Apply(b, timeout)
	if err := f.Error(); err != nil {
		switch {
		case store.IsDiskFull(err): // this manager's log could not take it
			return nil, store.DiskFullError(c.disk.dir, store.DiskFullRefused)
		case c.DiskFull() != nil: // Raft stopped for a full disk meanwhile
			return nil, store.DiskFullError(c.disk.dir, store.DiskFullInDoubt)
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return nil, api.Errorf(api.CodeNotLeader, "this manager cannot take writes now (%v): retry in a moment; if it persists, check warrenctl node ls for a manager quorum", err)
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, api.Errorf(api.CodeUnavailable, "the cluster did not commit the write within %s: it may have lost its quorum", timeout.Round(time.Millisecond))
		default:
			return nil, api.Errorf(api.CodeUnavailable, "raft: %v", err)
		}
	}
	if c.onCommit != nil {
		c.onCommit(time.Since(start))
	}
	if err, ok := f.Response().(error); ok {
		return nil, err
	}
	return f.Response(), nil
}

// Barrier waits until every write committed before it is applied here
// (this manager must lead).
func (c *Core) Barrier(timeout time.Duration) error { return c.r().Barrier(timeout).Error() }

// Alive checks that Raft's main loop answers (a configuration read goes
// through it), whatever the cluster's state. While Raft is stopped for a
// full disk the core is alive: it waits for space (DiskStatus says so).
func (c *Core) Alive(ctx context.Context) error {
	if c.DiskFull() != nil {
		return nil
	}
	f := c.r().GetConfiguration()
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("raft: %w", err)
		}
		return nil
	case <-ctx.Done():
		return errors.New("raft's main loop does not answer")
	}
}

// Shutdown says whether Raft has stopped.
func (c *Core) Shutdown() bool { return c.r().State() == raft.Shutdown }

// Voting is a node's place in the Raft configuration.
type Voting struct {
	In    bool // in the configuration at all
	Voter bool // and votes
}

// Member finds a node in the Raft configuration.
func (c *Core) Member(id string) (Voting, error) {
	f := c.r().GetConfiguration()
	if err := f.Error(); err != nil {
		return Voting{}, err
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return Voting{In: true, Voter: s.Suffrage == raft.Voter}, nil
		}
	}
	return Voting{}, nil
}

// Voters counts the voters of the Raft configuration.
func (c *Core) Voters() (int, error) {
	f := c.r().GetConfiguration()
	if err := f.Error(); err != nil {
		return 0, err
	}
	n := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			n++
		}
	}
	return n, nil
}

// IsVoter says whether this manager votes.
func (c *Core) IsVoter() bool {
	m, err := c.Member(c.nodeID)
	return err == nil && m.Voter
}

// voterOpTimeout bounds a change of the Raft configuration.
const voterOpTimeout = 10 * time.Second

// AddNonvoter adds a manager that receives the log but does not vote yet.
func (c *Core) AddNonvoter(id string) error {
	return c.r().AddNonvoter(raft.ServerID(id), raft.ServerAddress(id), 0, voterOpTimeout).Error()
}

// AddVoter makes a manager a voter.
func (c *Core) AddVoter(id string) error {
	return c.r().AddVoter(raft.ServerID(id), raft.ServerAddress(id), 0, voterOpTimeout).Error()
}

// RemoveServer takes a manager out of the Raft configuration; one that is
// not in it is left alone.
func (c *Core) RemoveServer(id string) error {
	m, err := c.Member(id)
	if err != nil || !m.In {
		return err
	}
	return c.r().RemoveServer(raft.ServerID(id), 0, voterOpTimeout).Error()
}

// closeWait bounds how long Close waits for a Raft instance to stop while
// the disk is full: its loop may be waiting to save its term.
const closeWait = 5 * time.Second

// Close stops Raft (a leader steps down) and closes the stores.
func (c *Core) Close() error {
	close(c.quit)
	<-c.superDone
	rn := c.raft.Load()
	rn.r.DeregisterObserver(c.observer)
	close(c.observed) // raft sends to it no more
	var bound <-chan time.Time
	if c.DiskFull() != nil {
		bound = time.After(closeWait)
	}
	select {
	case <-rn.stop():
	case <-bound:
		// Closing the stores under it would make Raft panic; the process
		// exits anyway, and the state database is trusted after a crash
		// in the same boot (store/durability.go).
		c.log.Warn("Raft did not stop within "+closeWait.String()+" (its disk is full): leaving its files open", "dir", c.disk.dir)
		return nil
	}
	var err error
	if cerr := c.stores.close(); err == nil {
		err = cerr
	}
	if cerr := c.Store.Close(); err == nil {
		err = cerr
	}
	return err
}

// TransferLeadership asks Raft to hand leadership to another voter.
func (c *Core) TransferLeadership() error { return c.r().LeadershipTransfer().Error() }

// Snapshot takes a Raft snapshot now (the state database as of the last
// applied entry), and compacts the log behind it.
func (c *Core) Snapshot() error { return c.r().Snapshot().Error() }
