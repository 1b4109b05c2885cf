// Package wake times the daemons' periodic loops on wall-clock multiples
// of their period, so the loops of one process (a 1 s, a 2 s and a 5 s
// loop) wake at the same instants: an idle daemon's CPU goes mostly to
// separate wakeups (thread switches, Go's sysmon), not to the checks they
// run. The manager's copy of Raft aligns its heartbeats the same way
// (third_party/raft, alignedTimeout).
package wake

import (
	"context"
	"time"
)

// Until is how long until the next multiple of d on the wall clock, never
// zero: the wait of a loop that runs every d and selects on more.
func Until(d time.Duration) time.Duration {
	now := time.Now()
	return now.Truncate(d).Add(d).Sub(now)
}

// Sleep waits until the next multiple of d on the wall clock, or until
// ctx ends (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error { return For(ctx, Until(d)) }

// For waits d, unaligned, or until ctx ends (then it returns ctx's
// error): for waits that follow an event (a retry, a backoff), not the
// clock.
func For(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
