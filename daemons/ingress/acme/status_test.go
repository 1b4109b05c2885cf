package acme

import (
	"testing"
	"time"
)

func TestCertState(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(90 * 24 * time.Hour)
	for _, c := range []struct {
		st   CertStatus
		now  time.Time
		want string
	}{
		{CertStatus{}, nb, "pending"},
		{CertStatus{Error: "boom"}, nb, "error"},
		{CertStatus{NotBefore: nb, NotAfter: na}, nb.Add(59 * 24 * time.Hour), "valid"},
		{CertStatus{NotBefore: nb, NotAfter: na, Error: "renewal failed"}, nb.Add(61 * 24 * time.Hour), "expiring"},
		{CertStatus{NotBefore: nb, NotAfter: na}, na, "expired"},
	} {
		if got := certState(c.st, c.now, DefaultRenewalRatio); got != c.want {
			t.Errorf("certState(%+v, %s) = %s, want %s", c.st, c.now, got, c.want)
		}
	}
}
