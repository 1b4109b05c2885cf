package membership

import (
	"context"
	"time"

	"github.com/warren-edge/warren/daemons/wake"
)

// Background checks that follow the state (the CA, the keyring) run at
// most once per checkBusy while the state changes, and once per checkIdle
// when it does not: an idle manager then wakes for them every few
// seconds, not every second.
const (
	checkBusy = time.Second
	checkIdle = 10 * time.Second
)

// pace waits before a background check's next pass: until the next
// multiple of checkBusy (aligned with the manager's other periodic
// wakeups), then, unless the state changed meanwhile, until the state
// changes or the next multiple of checkIdle. A signal on kick (nil: none)
// ends the wait at once. It returns ctx's error when ctx ends first.
func (m *Membership) pace(ctx context.Context, kick <-chan struct{}) error {
	changed := m.store.Hub().Wait()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-kick:
		return nil
	case <-time.After(wake.Until(checkBusy)):
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-kick:
	case <-changed:
	case <-time.After(wake.Until(checkIdle)):
	}
	return nil
}

// paceCheck waits before the next pass of a check that follows the
// state: pace when the last pass left things in step, else the next
// multiple of checkBusy (a fetch failed, a file is missing).
func (m *Membership) paceCheck(ctx context.Context, inStep bool) error {
	if inStep {
		return m.pace(ctx, nil)
	}
	return wake.Sleep(ctx, checkBusy)
}
