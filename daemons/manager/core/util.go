package core

import (
	"context"
	"time"
)

// Sleep waits d, or until ctx ends (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// SleepAligned waits until the next multiple of d on the wall clock, or
// until ctx ends. Periodic loops that use it wake at the same instants as
// each other and as Raft's heartbeats (aligned the same way), so an idle
// manager pays one timer wakeup for all of them: each separate wakeup
// costs more CPU in thread switches than the checks it runs.
func SleepAligned(ctx context.Context, d time.Duration) error {
	return Sleep(ctx, UntilAligned(d))
}

// UntilAligned is how long until the next multiple of d on the wall clock
// (never zero): the wait SleepAligned does, for loops that select on more.
func UntilAligned(d time.Duration) time.Duration {
	now := time.Now()
	return now.Truncate(d).Add(d).Sub(now)
}
