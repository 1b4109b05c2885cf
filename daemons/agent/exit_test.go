package agent

import (
	"testing"
	"time"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
)

func TestStaleExit(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	c := rt.Container{ID: "x", State: rt.StateRunning, StartedAt: t0}
	for _, tc := range []struct {
		at    time.Time
		c     rt.Container
		stale bool
	}{
		{t0.Add(-time.Millisecond), c, true},                 // the container before the restart
		{t0.Add(time.Millisecond), c, false},                 // this one's own exit
		{time.Time{}, c, false},                              // an exit with no time is believed
		{t0.Add(-time.Second), rt.Container{ID: "x"}, false}, // a container that never started
	} {
		if got := staleExit(rt.Exit{ID: "x", At: tc.at}, tc.c); got != tc.stale {
			t.Errorf("staleExit(exit at %v, started %v) = %v, want %v", tc.at, tc.c.StartedAt, got, tc.stale)
		}
	}
}
