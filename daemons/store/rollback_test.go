package store

import (
	"slices"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// TestAutoRollback: a plan's rollback returns the service to its previous
// spec, keeps the tasks the update never reached (SameAsVersions), and is
// dropped if an operator updated the service since the plan was made. A
// status for a replaced update is stale and dropped too.
func TestAutoRollback(t *testing.T) {
	h := newHarness(t)
	v1 := spec("web", 3)
	s := h.createService("web", v1)
	first := s.SpecVersion
	v2 := v1
	v2.Image = "localhost/busybox:broken"
	v2.UpdateConfig.FailureAction = api.FailureRollback
	s = h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "web", Spec: v2, At: t0}).(*api.Service)
	second := s.SpecVersion
	if s.PreviousSpecVersion != first || s.UpdateStatus.SpecVersion != second || s.UpdateStatus.State != api.UpdateUpdating {
		t.Fatalf("after an update: previous version %d (want %d), status %+v", s.PreviousSpecVersion, first, s.UpdateStatus)
	}

	// A stale rollback (planned against another version) changes nothing.
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Rollbacks: []api.Rollback{{ServiceID: "web", SpecVersion: second - 1, Reason: "x"}}})
	if got := h.service("web"); got.SpecVersion != second || got.Spec.Image != v2.Image {
		t.Fatalf("a stale rollback changed the service: %+v", got)
	}

	at := t0.Add(time.Minute)
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: at, Rollbacks: []api.Rollback{{ServiceID: "web", SpecVersion: second, Reason: "1 of 3 tasks failed"}}})
	got := h.service("web")
	st := got.UpdateStatus
	if got.Spec.Image != v1.Image || got.SpecVersion <= second || !slices.Equal(got.SameAsVersions, []uint64{first}) || got.PreviousSpec != nil ||
		st.State != api.UpdateRollingBack || !st.Automatic || st.Message != "rolling back: 1 of 3 tasks failed" || st.SpecVersion != got.SpecVersion {
		t.Fatalf("after the rollback: %+v, status %+v", got, st)
	}
	if !got.IsCurrent(&api.Task{SpecVersion: first}) || got.IsCurrent(&api.Task{SpecVersion: second}) {
		t.Errorf("IsCurrent: tasks of the first spec must be current again, of the failed one not")
	}

	// A status written for the failed update no longer applies.
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: at, ServiceStatus: map[string]api.UpdateStatus{
		"web": {State: api.UpdateCompleted, SpecVersion: second}}})
	if got := h.service("web"); got.UpdateStatus.State != api.UpdateRollingBack {
		t.Errorf("a stale status replaced the rollback's: %+v", got.UpdateStatus)
	}
	// A second rollback has nothing to go back to.
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: at, Rollbacks: []api.Rollback{{ServiceID: "web", SpecVersion: got.SpecVersion, Reason: "again"}}})
	if again := h.service("web"); again.SpecVersion != got.SpecVersion {
		t.Errorf("a rollback of a rollback changed the spec version %d → %d", got.SpecVersion, again.SpecVersion)
	}
}

// TestAutoRollbackDeployment: the services updated by one deployment roll
// back together; a service updated since by another deployment stays.
func TestAutoRollbackDeployment(t *testing.T) {
	h := newHarness(t)
	for _, n := range []string{"a", "b", "c", "d"} {
		h.createService(n, spec(n, 1))
	}
	for _, n := range []string{"a", "b", "c", "d"} {
		sp := spec(n, 1)
		sp.Image = "localhost/busybox:2"
		dep := "stack@1"
		if n == "d" {
			dep = "other@1"
		}
		h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: n, Spec: sp, At: t0, Deployment: dep})
	}
	a := h.service("a")
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Rollbacks: []api.Rollback{{ServiceID: "a", SpecVersion: a.SpecVersion, Reason: "a failed"}}})
	for _, n := range []string{"a", "b", "c"} {
		s := h.service(n)
		if s.Spec.Image != "localhost/busybox" || !s.Rolling() || s.UpdateStatus.Deployment != "stack@1" {
			t.Errorf("service %s of the deployment: image %s, status %+v; want rolled back", n, s.Spec.Image, s.UpdateStatus)
		}
	}
	if d := h.service("d"); d.Spec.Image != "localhost/busybox:2" || d.Rolling() {
		t.Errorf("service d of another deployment was rolled back: %+v", d.UpdateStatus)
	}
}

// TestRollbackChainKeepsTasks: update, roll back, update again, roll back
// again: the tasks made before the first update, which neither update
// reached, are still current after the second rollback.
func TestRollbackChainKeepsTasks(t *testing.T) {
	h := newHarness(t)
	v1 := spec("web", 3)
	first := h.createService("web", v1).SpecVersion
	for i, img := range []string{"localhost/busybox:2", "localhost/busybox:3"} {
		v := v1
		v.Image = img
		s := h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "web", Spec: v, At: t0}).(*api.Service)
		h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Rollbacks: []api.Rollback{{ServiceID: "web", SpecVersion: s.SpecVersion, Reason: "failed"}}})
		got := h.service("web")
		if !got.IsCurrent(&api.Task{SpecVersion: first}) {
			t.Fatalf("after rollback %d: tasks of version %d are not current (spec version %d, same as %v)", i+1, first, got.SpecVersion, got.SameAsVersions)
		}
		if got.IsCurrent(&api.Task{SpecVersion: s.SpecVersion}) {
			t.Fatalf("after rollback %d: tasks of the failed version %d are current", i+1, s.SpecVersion)
		}
	}
}
