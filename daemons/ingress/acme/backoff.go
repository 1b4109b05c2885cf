package acme

import (
	"errors"
	"regexp"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3/acme"
)

// A hold is the cluster's memory of a name's failed issuances, in the
// ingress store, so that every ingress node backs off together: without
// it, each node of N would retry a failing name on its own schedule and
// the CA would see N times the attempts. certmagic still retries with its
// own backoff; an attempt (issuance or renewal) that starts while the
// name is held is stopped before anything is sent to the CA.
type hold struct {
	Failures    int       `json:"failures"`
	Until       time.Time `json:"until"`
	RateLimited bool      `json:"rateLimited,omitempty"`
	Error       string    `json:"error"`
}

// Hold lengths: after failure n, holdBase·2^(n-1) up to holdMax; after a
// rate limit, until the CA's "retry after" time (or rateLimitHold when
// it gives none), at most maxRateLimitHold.
const (
	holdBase         = time.Minute
	holdMax          = time.Hour
	rateLimitHold    = time.Hour
	maxRateLimitHold = 7 * 24 * time.Hour
)

// holdKey is where the hold of name lives in the ingress store.
func holdKey(name string) string {
	return "warren/holds/" + certmagic.StorageKeys.Safe(name) + ".json"
}

// nextHold is the hold after prev and one more failure err at now.
func nextHold(prev hold, err error, now time.Time) hold {
	h := hold{Failures: prev.Failures + 1, Error: err.Error()}
	d := holdMax
	if h.Failures <= 7 {
		d = min(holdBase<<(h.Failures-1), holdMax)
	}
	h.Until = now.Add(d)
	var prob acme.Problem
	if errors.As(err, &prob) && prob.Type == acme.ProblemTypeRateLimited {
		h.RateLimited = true
		h.Error = prob.Error()
		until := retryAfter(prob.Detail)
		if until.IsZero() || !until.After(now) {
			until = now.Add(rateLimitHold)
		}
		if limit := now.Add(maxRateLimitHold); until.After(limit) {
			until = limit
		}
		if until.After(h.Until) {
			h.Until = until
		}
	}
	return h
}

// retryAfterRE finds the time in a rate limit's detail, as Let's Encrypt
// writes it: "..., retry after 2025-01-15 21:35:04 UTC: see https://...".
var retryAfterRE = regexp.MustCompile(`(?i)retry after (\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:Z| UTC)?)`)

// retryAfter is the time a rate-limit detail names, or zero.
func retryAfter(detail string) time.Time {
	m := retryAfterRE.FindStringSubmatch(detail)
	if m == nil {
		return time.Time{}
	}
	for _, layout := range []string{"2006-01-02 15:04:05 UTC", "2006-01-02T15:04:05Z", "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, m[1]); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
