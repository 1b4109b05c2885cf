package agent

import (
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

func TestHealthTracker(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	hc := api.HealthCheck{Type: api.HealthExec, Command: []string{"true"}, Retries: 3, StartPeriod: api.Duration(10 * time.Second)}.Effective()
	type step struct {
		at          time.Duration // after the container started
		ok          bool
		wantStatus  string
		wantChanged bool
		wantKill    bool
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"healthy on the first pass", []step{{1 * time.Second, true, api.HealthHealthy, true, false}}},
		{"failures in the start period do not count", []step{
			{1 * time.Second, false, api.HealthStarting, false, false},
			{5 * time.Second, false, api.HealthStarting, false, false},
			{9 * time.Second, false, api.HealthStarting, false, false},
			{11 * time.Second, false, api.HealthStarting, false, false},
			{12 * time.Second, false, api.HealthStarting, false, false},
			{13 * time.Second, false, api.HealthUnhealthy, true, true},
		}},
		{"the first pass ends the start period", []step{
			{1 * time.Second, true, api.HealthHealthy, true, false},
			{2 * time.Second, false, api.HealthHealthy, false, false},
			{3 * time.Second, false, api.HealthHealthy, false, false},
			{4 * time.Second, false, api.HealthUnhealthy, true, true},
		}},
		{"a pass resets the count", []step{
			{11 * time.Second, true, api.HealthHealthy, true, false},
			{12 * time.Second, false, api.HealthHealthy, false, false},
			{13 * time.Second, false, api.HealthHealthy, false, false},
			{14 * time.Second, true, api.HealthHealthy, false, false},
			{15 * time.Second, false, api.HealthHealthy, false, false},
			{16 * time.Second, false, api.HealthHealthy, false, false},
			{17 * time.Second, false, api.HealthUnhealthy, true, true},
		}},
	}
	for _, c := range cases {
		tr := healthTracker{status: api.HealthStarting, started: t0}
		for i, s := range c.steps {
			changed, kill := tr.observe(s.ok, t0.Add(s.at), hc)
			if tr.status != s.wantStatus || changed != s.wantChanged || kill != s.wantKill {
				t.Errorf("%s: step %d observe(ok=%v at +%s) → %s changed=%v kill=%v; want %s changed=%v kill=%v",
					c.name, i, s.ok, s.at, tr.status, changed, kill, s.wantStatus, s.wantChanged, s.wantKill)
			}
		}
	}
}
