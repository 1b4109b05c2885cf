package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// The follower's defaults, in one place.
const (
	defaultMinBackoff     = 100 * time.Millisecond
	defaultMaxBackoff     = 2 * time.Second
	defaultConnectTimeout = 10 * time.Second
	// Managers ping an idle watch every api.WatchPing: three and a half
	// missed pings mean the stream is dead.
	defaultIdleTimeout = api.WatchPing * 7 / 2
	defaultMaxBatch    = 1024
	// eventBuffer is how far the reader decodes ahead of the consumer.
	eventBuffer = 256
)

// ErrStopFollowing, wrapped in an error an apply function returns, makes
// Follower.Run return that error instead of reading the batch again.
var ErrStopFollowing = errors.New("client: stop following the watch")

// FollowOptions configure a Follower. Zero durations take the defaults.
type FollowOptions struct {
	// Client is the manager followed.
	Client *Client
	// Pick, when set, is used instead of Client: it chooses the client
	// each session opens its stream on (a worker turning through its
	// managers). An error counts as a failed session.
	Pick func() (*Client, error)
	// Query selects the watch. Query.Index is where the first session
	// starts (0: with a full resend); later sessions resume after the
	// last whole index handed out.
	Query WatchQuery
	// MinBackoff and MaxBackoff bound the wait between sessions
	// (defaults 100ms and 2s). It doubles after each session that made
	// no progress and drops back to MinBackoff after one that did (the
	// stream said it was whole at some index).
	MinBackoff, MaxBackoff time.Duration
	// ConnectTimeout bounds opening a stream, until the response headers
	// (default 10s; managers send them at once).
	ConnectTimeout time.Duration
	// IdleTimeout ends a session that brought no line, event or ping,
	// for that long (default 35s; managers ping every 10s).
	IdleTimeout time.Duration
	// MaxBatch is the number of events past which the changes read are
	// handed out without draining what else has arrived (default 1024).
	// A batch holds at least one whole index, so it may be larger; a
	// full resend is never split.
	MaxBatch int
	Logger   *slog.Logger
}

func (o FollowOptions) withDefaults() FollowOptions {
	if o.MinBackoff <= 0 {
		o.MinBackoff = defaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = defaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = defaultConnectTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = defaultIdleTimeout
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = defaultMaxBatch
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// FollowStatus is what a Follower shows of itself, for STATUS= lines and
// watchdogs.
type FollowStatus struct {
	// Connected says a stream is open; Host is its Client's Host then.
	Connected bool
	Host      string
	// Since is when the open stream opened or, when none is open, when
	// the last one ended (the Follower's making before any opened).
	Since time.Time
	// Index is the last whole index handed out: the resume point.
	Index uint64
	// Alive is the loop's last sign of life: a line read, a batch
	// applied, a session begun. A loop retrying an absent manager is
	// alive; one stuck in apply is not.
	Alive time.Time
	// Err is why the last session ended or failed (nil while the first
	// one runs).
	Err error
}

// Follower follows one watch: it opens the stream, cuts it into whole
// batches (api.WatchBatcher) and hands them to an apply function, resumes
// after the last whole index when the stream ends, fails or goes silent,
// and reconnects with exponential backoff.
//
//	Run ─▶ session: Watch(index) ─▶ reader (decodes) ─events─▶ batcher ─▶ apply(batch)
//	 ▲           ends: stream closed, idle, connect timeout, apply error  │
//	 └──────────── backoff ◀───────────────────────────────────────────────┘
//
// A batch is handed out once whole: a full resend at its synced line,
// changes at the ping (or later event) that closes their index; the
// changes already read when one arrives are merged into it, up to
// MaxBatch events, so a burst costs one apply. Changes of an index the
// stream did not finish are never handed out: the next session reads them
// again.
type Follower struct {
	o   FollowOptions
	log *slog.Logger

	alive   atomic.Int64 // unix nanos
	running atomic.Bool
	mu      sync.Mutex
	st      FollowStatus // Alive unused: see alive
	ever    bool         // a stream opened once
}

// NewFollower makes a Follower; Run starts it.
func NewFollower(o FollowOptions) *Follower {
	o = o.withDefaults()
	f := &Follower{o: o, log: o.Logger}
	now := time.Now()
	f.alive.Store(now.UnixNano())
	f.st = FollowStatus{Since: now, Index: o.Query.Index}
	return f
}

// Status returns the follower's state now.
func (f *Follower) Status() FollowStatus {
	f.mu.Lock()
	st := f.st
	f.mu.Unlock()
	st.Alive = time.Unix(0, f.alive.Load())
	return st
}

// Run follows the watch until ctx ends, then returns ctx's error. apply
// gets the batches one at a time, from Run's goroutine, and owns their
// events; a batch without events is always a Reset (an index reached
// without changes only moves Status().Index). It must take a batch whole or not at all: an error ends the
// session and the batch is read again in the next one (after the
// backoff), unless the error wraps ErrStopFollowing, which Run returns.
// Run is called once.
func (f *Follower) Run(ctx context.Context, apply func(api.WatchBatch) error) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("client: follow: Run called twice")
	}
	if f.o.Client == nil && f.o.Pick == nil {
		return errors.New("client: follow: no Client nor Pick to follow")
	}
	backoff := f.o.MinBackoff
	for {
		f.touch()
		progressed, err := f.session(ctx, apply)
		if progressed {
			backoff = f.o.MinBackoff
		}
		f.ended(ctx, err, backoff)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, ErrStopFollowing) {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, f.o.MaxBackoff)
	}
}

// session reads one stream until it ends. progressed says the stream said
// it was whole at some index and no apply failed.
func (f *Follower) session(ctx context.Context, apply func(api.WatchBatch) error) (progressed bool, err error) {
	c := f.o.Client
	if f.o.Pick != nil {
		if c, err = f.o.Pick(); err != nil {
			return false, fmt.Errorf("client: watch: pick a manager: %w", err)
		}
	}
	q := f.o.Query
	q.Index = f.Status().Index
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	slow := time.AfterFunc(f.o.ConnectTimeout, cancel)
	w, err := c.Watch(wctx, q)
	late := !slow.Stop()
	switch {
	case ctx.Err() != nil:
		if err == nil {
			w.Close()
		}
		return false, ctx.Err()
	case late:
		if err == nil {
			w.Close()
		}
		return false, fmt.Errorf("client: watch %s after index %d: not open after %s", c.Host(), q.Index, f.o.ConnectTimeout)
	case err != nil:
		return false, fmt.Errorf("client: watch %s after index %d: %w", c.Host(), q.Index, err)
	}
	defer w.Close()
	f.connected(c.Host(), q.Index)

	events := make(chan api.Event, eventBuffer)
	var readErr error // set before events closes
	go func() {
		defer close(events)
		for {
			ev, err := w.Next()
			if err != nil {
				readErr = err
				return
			}
			select {
			case events <- ev:
			case <-wctx.Done():
				readErr = wctx.Err()
				return
			}
		}
	}()

	b := api.WatchBatcher{MaxEvents: f.o.MaxBatch}
	add := func(ev api.Event) {
		if err := b.Add(ev); err != nil {
			f.log.Warn("watch line left out", "host", c.Host(), "err", err)
		}
		if ev.Op == api.OpPing || ev.Op == api.OpSynced {
			progressed = true
		}
	}
	idle := time.NewTimer(f.o.IdleTimeout)
	defer idle.Stop()
	for {
		var ev api.Event
		ok := true
		select {
		case <-ctx.Done():
			return progressed, ctx.Err()
		case <-idle.C:
			return progressed, fmt.Errorf("client: watch %s: no event nor ping for %s", c.Host(), f.o.IdleTimeout)
		case ev, ok = <-events:
		}
		if ok {
			f.touch()
			add(ev)
		drain: // what else has arrived joins the batch
			for !b.Full() {
				select {
				case ev, ok = <-events:
					if !ok {
						break drain
					}
					add(ev)
				default:
					break drain
				}
			}
		}
		for {
			batch, more := b.Take()
			if !more {
				break
			}
			if batch.Reset || len(batch.Events) > 0 {
				if err := apply(batch); err != nil {
					return false, fmt.Errorf("client: watch %s: apply the batch up to index %d: %w", c.Host(), batch.Index, err)
				}
				f.touch()
			}
			f.mu.Lock()
			f.st.Index = batch.Index
			f.mu.Unlock()
		}
		// Idle counts from the last line handled: a slow apply is not
		// a silent manager.
		idle.Reset(f.o.IdleTimeout)
		if !ok {
			if ctx.Err() != nil {
				return progressed, ctx.Err()
			}
			return progressed, fmt.Errorf("client: watch %s: %w", c.Host(), readErr)
		}
	}
}

func (f *Follower) touch() { f.alive.Store(time.Now().UnixNano()) }

// connected records and logs a stream that opened.
func (f *Follower) connected(host string, index uint64) {
	f.mu.Lock()
	downFor := time.Since(f.st.Since)
	again := f.ever
	f.ever = true
	f.st.Connected, f.st.Host, f.st.Since, f.st.Err = true, host, time.Now(), nil
	f.mu.Unlock()
	if again {
		f.log.Info("watch open again", "host", host, "after_index", index, "down_for", downFor.Round(time.Millisecond))
	} else {
		f.log.Info("watch open", "host", host, "after_index", index)
	}
}

// ended records and logs a session that ended.
func (f *Follower) ended(ctx context.Context, err error, retryIn time.Duration) {
	f.mu.Lock()
	was := f.st.Connected
	host := f.st.Host
	if was {
		f.st.Connected, f.st.Host, f.st.Since = false, "", time.Now()
	}
	f.st.Err = err
	index := f.st.Index
	f.mu.Unlock()
	switch {
	case ctx.Err() != nil:
	case errors.Is(err, ErrStopFollowing):
		f.log.Warn("watch stopped by its consumer", "host", host, "index", index, "err", err)
	case was:
		f.log.Warn("watch ended; reconnecting", "host", host, "index", index, "err", err, "retry_in", retryIn)
	default:
		f.log.Debug("watch failed", "index", index, "err", err, "retry_in", retryIn)
	}
}
