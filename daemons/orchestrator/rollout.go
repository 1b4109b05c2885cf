package orchestrator

import (
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// Update states in api.UpdateStatus.
const (
	UpdateUpdating    = api.UpdateUpdating
	UpdatePaused      = api.UpdatePaused
	UpdateCompleted   = api.UpdateCompleted
	UpdateRollingBack = api.UpdateRollingBack
)

// rollout paces the replacement of tasks made from an older spec.
type rollout struct {
	outdated   int  // live tasks made from an older spec
	inflight   int  // slots between an old task and a running new one
	budget     int  // how many more slots may start updating in this pass (-1: any)
	paused     bool // by the operator's policy or a failure
	message    string
	startFirst bool
}

func newRollout(s *api.Service, groups map[key][]*api.Task, wanted map[key]bool, r *reconciler) *rollout {
	u := &rollout{startFirst: s.Spec.UpdateConfig.Order == api.OrderStartFirst}
	st := s.UpdateStatus
	u.paused = st != nil && st.State == UpdatePaused
	var started time.Time
	if st != nil {
		started, _ = time.Parse(time.RFC3339, st.StartedAt)
	}
	var failed int
	var lastUp time.Time
	for _, k := range sortedKeys(wanted) {
		var oldLive, newRunning, newStarting bool
		for _, t := range groups[k] {
			current := t.SpecVersion >= s.SpecVersion
			switch {
			case r.live(t) && !current:
				oldLive = true
				u.outdated++
			case r.live(t) && current && r.state(t) == api.TaskRunning:
				newRunning = true
				if t.Status.Timestamp.After(lastUp) {
					lastUp = t.Status.Timestamp
				}
			case r.live(t) && current:
				newStarting = true
			case current && (r.state(t) == api.TaskFailed || r.state(t) == api.TaskRejected) &&
				!started.IsZero() && !t.CreatedAt.Before(started):
				failed++
			}
		}
		if !newRunning && (newStarting || !oldLive) {
			u.inflight++
		}
	}
	cfg := s.Spec.UpdateConfig
	// Failures count in the last batch too (a one-replica service has no
	// other).
	if failed > 0 && cfg.FailureAction != api.FailureContinue && st != nil && st.State != UpdatePaused {
		ratio := float64(failed) / float64(max(1, len(wanted)))
		if ratio > cfg.MaxFailureRatio {
			u.paused = true
			u.message = "update paused: a task made from the new spec failed; fix the spec and update again"
		}
	}
	if u.outdated == 0 {
		return u
	}
	u.budget = -1
	if p := cfg.EffectiveParallelism(); p > 0 {
		u.budget = max(0, int(p)-u.inflight)
	}
	if d := cfg.Delay.D(); d > 0 && !lastUp.IsZero() && r.in.Now.Before(lastUp.Add(d)) {
		u.budget = 0
		r.wakeAt(lastUp.Add(d))
	}
	return u
}

// consider updates t, the one live task of slot k, if it is outdated and
// the rollout allows one more.
func (u *rollout) consider(r *reconciler, s *api.Service, k key, t *api.Task) {
	if t.SpecVersion >= s.SpecVersion || u.paused || u.budget == 0 {
		return
	}
	if u.budget > 0 {
		u.budget--
	}
	// Start-first keeps a running old task until its successor runs; an old
	// task that never ran has nothing to keep.
	if u.startFirst && r.state(t) == api.TaskRunning {
		r.create(s, k, nil, false)
		return
	}
	r.stop(t, api.TaskShutdown, "updating to the new spec")
}

// finish records the rollout's state on the service when it changes.
func (u *rollout) finish(r *reconciler, s *api.Service) {
	st := s.UpdateStatus
	if st == nil || (st.State != UpdateUpdating && st.State != UpdateRollingBack) {
		return
	}
	switch {
	case u.paused:
		r.setStatus(s, api.UpdateStatus{State: UpdatePaused, Message: u.message, StartedAt: st.StartedAt})
	case u.outdated == 0 && u.inflight == 0:
		done := UpdateCompleted
		if st.State == UpdateRollingBack {
			done = api.UpdateRolledBack
		}
		r.setStatus(s, api.UpdateStatus{State: done, StartedAt: st.StartedAt, CompletedAt: r.in.Now.UTC().Format(time.RFC3339)})
	}
}

func (r *reconciler) setStatus(s *api.Service, st api.UpdateStatus) {
	if r.plan.ServiceStatus == nil {
		r.plan.ServiceStatus = map[string]api.UpdateStatus{}
	}
	r.plan.ServiceStatus[s.ID] = st
}
