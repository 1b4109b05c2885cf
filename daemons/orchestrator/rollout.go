package orchestrator

import (
	"fmt"
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

// rollout paces the replacement of tasks made from an older spec, and
// judges the update: a slot counts as updated once its new task has passed
// the monitor (api.UpdateConfig.MonitorFor), as failed when a task of the
// update failed in it. Too many failed slots, or no slot updated for the
// progress deadline, is a failed update, and the failure action follows.
type rollout struct {
	cfg        api.UpdateConfig // the update's, or the rollback's
	active     bool             // an update or rollback is in progress
	outdated   int              // live tasks made from an older spec
	inflight   int              // slots between an old task and a settled new one
	budget     int              // how many more slots may start updating in this pass (-1: any)
	paused     bool             // by the operator's policy or a failure
	message    string
	startFirst bool

	updated, failed int  // slots updated (monitor passed), slots failed
	rollback        bool // the failure action rolls the service back
	reason          string
}

func newRollout(s *api.Service, groups map[key][]*api.Task, wanted map[key]bool, r *reconciler) *rollout {
	cfg := s.ActiveUpdateConfig()
	u := &rollout{cfg: cfg, startFirst: cfg.Order == api.OrderStartFirst}
	st := s.UpdateStatus
	u.active = st != nil && (st.State == UpdateUpdating || st.State == UpdateRollingBack)
	u.paused = st != nil && st.State == UpdatePaused
	var started, progressAt time.Time
	if st != nil {
		started, _ = time.Parse(time.RFC3339, st.StartedAt)
		progressAt, _ = time.Parse(time.RFC3339, st.ProgressAt)
		if progressAt.IsZero() {
			progressAt = started
		}
	}
	monitor := cfg.MonitorFor(s.Spec.HealthCheck)
	var lastSettled time.Time
	for _, k := range sortedKeys(wanted) {
		var oldLive, newLive, settled, failed bool
		for _, t := range groups[k] {
			current := s.IsCurrent(t)
			ofUpdate := current && !started.IsZero() && !t.CreatedAt.Before(started)
			switch {
			case r.live(t) && !current:
				oldLive = true
				u.outdated++
			case r.live(t) && current:
				newLive = true
				at, ok, bad := settleTime(t, r.state(t), monitor, r.in.Now)
				switch {
				case bad && ofUpdate:
					failed = true
				case ok && !r.in.Now.Before(at):
					settled = true
					if ofUpdate && at.After(lastSettled) {
						lastSettled = at
					}
				case !at.IsZero() && u.active:
					r.wakeAt(at) // to settle it, or to give up on its check
				}
			case ofUpdate && (r.state(t) == api.TaskFailed || r.state(t) == api.TaskRejected):
				failed = true
			}
		}
		if failed {
			u.failed++
		}
		if settled {
			u.updated++
		}
		if !settled && (newLive || !oldLive) {
			u.inflight++
		}
	}
	if u.active && !u.paused {
		u.judge(s, len(wanted), progressAt, monitor, r)
	}
	if u.outdated == 0 || u.paused || u.rollback {
		return u
	}
	u.budget = -1
	if p := cfg.EffectiveParallelism(); p > 0 {
		u.budget = max(0, int(p)-u.inflight)
	}
	if d := cfg.Delay.D(); d > 0 && !lastSettled.IsZero() && r.in.Now.Before(lastSettled.Add(d)) {
		u.budget = 0
		r.wakeAt(lastSettled.Add(d))
	}
	return u
}

// settleTime says when a running task of the current spec has passed the
// monitor: monitor after it started running or, with a health check,
// after it turned healthy. ok is false while that time is not known yet
// (not running, not healthy yet); bad says the task has had its check's
// whole window and never turned healthy (the agent normally fails such a
// task itself: this holds if its report never comes).
func settleTime(t *api.Task, state api.TaskState, monitor time.Duration, now time.Time) (at time.Time, ok, bad bool) {
	if state != api.TaskRunning {
		return time.Time{}, false, false
	}
	hc := t.Spec.HealthCheck
	if hc == nil {
		return t.Status.Timestamp.Add(monitor), true, false
	}
	if t.Status.Health == api.HealthHealthy {
		since := t.Status.HealthyAt
		if since.IsZero() { // recorded by a manager older than HealthyAt
			since = t.Status.Timestamp
		}
		return since.Add(monitor), true, false
	}
	h := hc.Effective()
	giveUp := t.Status.Timestamp.Add(h.Window() + h.Detection())
	return giveUp, false, !now.Before(giveUp) || t.Status.Health == api.HealthUnhealthy
}

// judge decides whether the update failed: more than the tolerated share
// of slots failed, or no slot was updated for the progress deadline.
// The deadline is never shorter than a batch can take when all goes
// well: the monitor and the delay.
func (u *rollout) judge(s *api.Service, slots int, progressAt time.Time, monitor time.Duration, r *reconciler) {
	limit := max(u.cfg.EffectiveDeadline(), monitor+u.cfg.Delay.D())
	switch {
	case u.failed > 0 && u.cfg.FailureAction != api.FailureContinue &&
		float64(u.failed)/float64(max(1, slots)) > u.cfg.MaxFailureRatio:
		u.reason = fmt.Sprintf("%d of %d tasks of the new spec failed (max failure ratio %g)", u.failed, slots, u.cfg.MaxFailureRatio)
	case !progressAt.IsZero() && (u.outdated > 0 || u.inflight > 0):
		deadline := progressAt.Add(limit)
		if r.in.Now.Before(deadline) {
			r.wakeAt(deadline)
			return
		}
		u.reason = fmt.Sprintf("no task was updated for %s (progress deadline)", limit)
	default:
		return
	}
	if u.cfg.FailureAction == api.FailureRollback && !s.Rolling() && s.PreviousSpec != nil {
		u.rollback = true
		return
	}
	what := "update"
	if s.Rolling() {
		what = "rollback"
	}
	u.paused = true
	u.message = what + " paused: " + u.reason + "; fix the spec and update again, or roll back with warrenctl service rollback"
}

// consider updates t, the one live task of slot k, if it is outdated and
// the rollout allows one more.
func (u *rollout) consider(r *reconciler, s *api.Service, k key, t *api.Task) {
	if s.IsCurrent(t) || u.paused || u.rollback || u.budget == 0 {
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

// finish records the rollout's state on the service when it changes, or
// asks for the rollback the failure action wants.
func (u *rollout) finish(r *reconciler, s *api.Service) {
	st := s.UpdateStatus
	if !u.active {
		return
	}
	next := *st
	next.SpecVersion = s.SpecVersion
	switch {
	case u.rollback:
		r.plan.Rollbacks = append(r.plan.Rollbacks, api.Rollback{ServiceID: s.ID, SpecVersion: s.SpecVersion, Reason: u.reason})
		return
	case u.paused:
		next.State, next.Message = UpdatePaused, u.message
	case u.outdated == 0 && u.inflight == 0:
		next.State = UpdateCompleted
		if st.State == UpdateRollingBack {
			next.State = api.UpdateRolledBack
		}
		next.CompletedAt = r.in.Now.UTC().Format(time.RFC3339)
	}
	if u.updated > st.Updated {
		next.ProgressAt = r.in.Now.UTC().Format(time.RFC3339Nano)
	}
	next.Updated, next.Failed = u.updated, u.failed
	if next != *st {
		r.setStatus(s, next)
	}
}

func (r *reconciler) setStatus(s *api.Service, st api.UpdateStatus) {
	if r.plan.ServiceStatus == nil {
		r.plan.ServiceStatus = map[string]api.UpdateStatus{}
	}
	r.plan.ServiceStatus[s.ID] = st
}
