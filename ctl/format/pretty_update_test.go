package format

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// TestPrettyRollback: inspect --pretty shows the rollback policy, the
// progress deadline, the monitor a health check makes, and an automatic
// rollback with its progress, deployment and reason.
func TestPrettyRollback(t *testing.T) {
	services, _, _ := fixture()
	s := services[0]
	zero := uint64(0)
	s.Spec.UpdateConfig = api.UpdateConfig{FailureAction: api.FailureRollback, Monitor: api.Duration(time.Second), ProgressDeadline: api.Duration(2 * time.Minute)}
	s.Spec.RollbackConfig = &api.UpdateConfig{Parallelism: &zero, FailureAction: api.FailureContinue, Order: api.OrderStartFirst}
	s.Spec.HealthCheck = &api.HealthCheck{Type: api.HealthHTTP, Port: 80, Interval: api.Duration(2 * time.Second), Retries: 2}
	s.UpdateStatus = &api.UpdateStatus{State: api.UpdateRollingBack, SpecVersion: 42, StartedAt: "2025-06-01T11:58:00Z",
		ProgressAt: "2025-06-01T11:59:00Z", Updated: 1, Failed: 2, Deployment: "shop", Automatic: true,
		Message: "rolling back: 2 of 3 tasks failed (web.2: task: non-zero exit (1))"}
	var b bytes.Buffer
	if err := PrettyService(&b, &s, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "service_pretty_rollback", b.Bytes())
	// With the defaults: 2s×2 window and 2s×2+5s detection on a 1s monitor.
	if got := b.String(); !strings.Contains(got, "1s (with the health check: 13s healthy)") {
		t.Errorf("inspect --pretty with a health check does not show the effective monitor of 13s:\n%s", got)
	}

	// A rollback by hand, finished.
	s.UpdateStatus = &api.UpdateStatus{State: api.UpdateRolledBack, StartedAt: "2025-06-01T11:58:00Z", CompletedAt: "2025-06-01T11:59:30Z", Updated: 3}
	b.Reset()
	PrettyService(&b, &s, now)
	if got := b.String(); !strings.Contains(got, " State:              rolled-back (by an operator)\n") || !strings.Contains(got, " Updated:            3 tasks\n") {
		t.Errorf("inspect --pretty of a rollback by hand:\n%s", got)
	}
}
