package acme

import (
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

func TestNextHold(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	h := hold{}
	var got []time.Duration
	for range 9 {
		h = nextHold(h, acme.Problem{Type: acme.ProblemTypeConnection, Detail: "refused"}, now)
		got = append(got, h.Until.Sub(now))
	}
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour, time.Hour}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("hold after failure %d = %s, want %s (all: %v)", i+1, got[i], want[i], got)
		}
	}

	rl := acme.Problem{Type: acme.ProblemTypeRateLimited, Status: 429,
		Detail: "too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2026-12-08 21:35:04 UTC: see https://letsencrypt.org/docs/rate-limits/"}
	h = nextHold(hold{}, rl, now)
	if wantUntil := time.Date(2026, 12, 8, 21, 35, 4, 0, time.UTC); !h.Until.Equal(wantUntil) || !h.RateLimited {
		t.Errorf("hold after a rate limit that says when = until %s, rate limited %v; want %s, true", h.Until, h.RateLimited, wantUntil)
	}
	h = nextHold(hold{}, acme.Problem{Type: acme.ProblemTypeRateLimited, Detail: "slow down"}, now)
	if h.Until.Sub(now) != rateLimitHold {
		t.Errorf("hold after a rate limit that does not say when = %s, want %s", h.Until.Sub(now), rateLimitHold)
	}
	h = nextHold(hold{}, acme.Problem{Type: acme.ProblemTypeRateLimited, Detail: "retry after 2030-01-01T00:00:00Z"}, now)
	if h.Until.Sub(now) != maxRateLimitHold {
		t.Errorf("hold after a rate limit years away = %s, want at most %s", h.Until.Sub(now), maxRateLimitHold)
	}
}
