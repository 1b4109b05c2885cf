package wake

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestUntilLandsOnAMultiple(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, d := range []time.Duration{75 * time.Millisecond, time.Second, 10 * time.Second} {
			time.Sleep(123 * time.Millisecond) // some offset into a period
			u := Until(d)
			if u <= 0 || u > d {
				t.Fatalf("Until(%v) = %v, want in (0, %v]", d, u, d)
			}
			if at := time.Now().Add(u); at.Truncate(d) != at {
				t.Fatalf("Until(%v) ends at %v, not a multiple of %v", d, at, d)
			}
		}
	})
}

func TestSleepWakesTogetherAndEndsWithCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		if err := Sleep(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
		a := time.Now()
		time.Sleep(300 * time.Millisecond)
		if err := Sleep(ctx, time.Second); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(a); got != time.Second {
			t.Fatalf("a 1 s sleep begun 300 ms into a second ended after %v since its start, want 1 s", got)
		}
		ctx, cancel := context.WithCancel(ctx)
		go func() { time.Sleep(10 * time.Millisecond); cancel() }()
		if err := Sleep(ctx, time.Hour); err != context.Canceled {
			t.Fatalf("Sleep after cancel = %v, want context.Canceled", err)
		}
	})
}
