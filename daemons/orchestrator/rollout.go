package orchestrator

import (
	"fmt"
	"sort"
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

	// order is the order in which slots are updated: by slot, or for a
	// global service updated in waves, by the wave label.
	order []key
	// canary holds the canary slots while the update waits on its
	// canaries (api.Service.InCanary); they run old and new side by side.
	canary map[key]bool
	wave   int // the wave the update is in (1-based), with waves
	// blueGreen: the update (or rollback) runs its new set on standby
	// beside the old one (api.OrderBlueGreen); switching says this pass
	// moves traffic to it, every slot's new task having settled.
	blueGreen, switching bool
}

func newRollout(s *api.Service, groups map[key][]*api.Task, wanted map[key]bool, r *reconciler) *rollout {
	cfg := s.ActiveUpdateConfig()
	u := &rollout{cfg: cfg, startFirst: cfg.Order == api.OrderStartFirst}
	st := s.UpdateStatus
	u.active = st != nil && (st.State == UpdateUpdating || st.State == UpdateRollingBack)
	u.paused = st != nil && st.State == UpdatePaused
	u.order = sortedKeys(wanted)
	u.blueGreen = cfg.Order == api.OrderBlueGreen && (u.active || u.paused)
	needSwitch := false
	waves := u.active && !s.Rolling() && len(cfg.Waves) > 0 && s.Spec.IsGlobal()
	if waves && cfg.WaveLabel != "" {
		u.order = r.byLabel(u.order, cfg.WaveLabel)
	}
	if u.active && s.InCanary() {
		u.canary = map[key]bool{}
		for _, k := range u.order[:min(st.Canaries, len(u.order))] {
			u.canary[k] = true
		}
		if cfg.CanaryHealthyFor > 0 {
			cfg.Monitor = cfg.CanaryHealthyFor
		}
	}
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
	for _, k := range u.order {
		var oldLive, newLive, settled, failed bool
		for _, t := range groups[k] {
			current := s.IsCurrent(t)
			if r.live(t) && t.Standby && !current {
				continue // a set switched away from, or a failed blue/green set (slot)
			}
			if r.live(t) && (t.Standby == current) {
				needSwitch = true // a new task on standby, or an old one serving
			}
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
		slots := len(wanted)
		if u.canary != nil {
			slots = len(u.canary)
		}
		u.judge(s, slots, progressAt, monitor, r)
	}
	// A blue/green update switches once every slot has a settled new task.
	u.switching = u.blueGreen && u.active && !u.paused && !u.rollback && needSwitch && u.updated == len(wanted)
	if u.outdated == 0 || u.paused || u.rollback {
		return u
	}
	u.budget = -1
	if p := cfg.EffectiveParallelism(); p > 0 {
		u.budget = max(0, int(p)-u.inflight)
	}
	if waves {
		// The wave is the first whose count is not yet updated; no slot
		// beyond it starts before it is.
		targets := cfg.WaveTargets(len(wanted))
		u.wave = len(targets)
		for i, n := range targets {
			if u.updated < n {
				u.wave = i + 1
				break
			}
		}
		room := max(0, targets[u.wave-1]-u.updated-u.inflight)
		if u.budget < 0 || room < u.budget {
			u.budget = room
		}
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
	case u.canary != nil && u.updated >= len(u.canary) && !u.cfg.AutoPromote:
		return // the canaries passed: the operator promotes, no deadline
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
	// A failed canary or wave rolls back whatever the failure action:
	// rolling back what was tried is what they are for.
	// A service a deployment created has no previous spec, but the
	// deployment's other services do (store autoRollback).
	staged := u.canary != nil || (len(u.cfg.Waves) > 0 && s.Spec.IsGlobal())
	created := s.PreviousSpec == nil && s.UpdateStatus != nil && s.UpdateStatus.Deployment != ""
	if (u.cfg.FailureAction == api.FailureRollback || staged) && !s.Rolling() && (s.PreviousSpec != nil || created) {
		u.rollback = true
		return
	}
	what := "update"
	if s.Rolling() {
		what = "rollback"
	}
	u.paused = true
	u.message = what + " paused: " + u.reason + "; fix the spec and update again"
	if s.PreviousSpec != nil {
		u.message += ", or roll back with warrenctl service rollback"
	}
}

// consider updates t, the one live task of slot k, if it is outdated and
// the rollout allows one more.
func (u *rollout) consider(r *reconciler, s *api.Service, k key, t *api.Task) {
	if s.IsCurrent(t) || u.paused || u.rollback {
		return
	}
	if u.canary != nil {
		// A canary starts beside the old task, which keeps serving.
		if u.canary[k] && r.state(t) == api.TaskRunning {
			r.create(s, k, nil, false, false)
		}
		return
	}
	if u.budget == 0 {
		return
	}
	if u.budget > 0 {
		u.budget--
	}
	// Start-first keeps a running old task until its successor runs; an old
	// task that never ran has nothing to keep.
	if u.startFirst && r.state(t) == api.TaskRunning {
		r.create(s, k, nil, false, false)
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
	case u.switching:
		keep := r.in.Now.Add(u.cfg.EffectiveKeepOld())
		next.Message = fmt.Sprintf("traffic moved to the new set; the old set stays on standby until %s (warrenctl service rollback %s switches back at once)",
			keep.UTC().Format(time.RFC3339), s.Spec.Name)
	case u.canary != nil && u.updated >= len(u.canary):
		if u.cfg.AutoPromote {
			next.Promoted, next.Message = true, ""
			next.ProgressAt = r.in.Now.UTC().Format(time.RFC3339Nano)
		} else {
			next.Message = fmt.Sprintf("%d canaries healthy: promote them with warrenctl service promote %s, or roll back with warrenctl service rollback %s", len(u.canary), s.Spec.Name, s.Spec.Name)
		}
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
	if u.wave > 0 {
		next.Wave = u.wave
	}
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

// byLabel orders global slots by the value of a node label, lowest first
// (nodes without it last), then by node ID.
func (r *reconciler) byLabel(keys []key, label string) []key {
	out := append([]key(nil), keys...)
	val := func(k key) (string, bool) {
		if n := r.nodes[k.node]; n != nil {
			v, ok := n.Spec.Labels[label]
			return v, ok
		}
		return "", false
	}
	sort.SliceStable(out, func(i, j int) bool {
		vi, oki := val(out[i])
		vj, okj := val(out[j])
		if oki != okj {
			return oki
		}
		return vi < vj
	})
	return out
}

// blueGreenSlot runs one slot of a blue/green update: a new task on
// standby beside the old one, which keeps serving; at the switch, the new
// one serves and the old one goes on standby, in the same plan for every
// slot. A slot with no live task is refilled as any other (slot).
func (u *rollout) blueGreenSlot(r *reconciler, s *api.Service, k key, live []*api.Task) bool {
	if len(live) == 0 {
		return false
	}
	var green, old []*api.Task
	for _, t := range live {
		if s.IsCurrent(t) {
			green = append(green, t)
		} else {
			old = append(old, t)
		}
	}
	if len(green) > 1 {
		green = r.dedupe(s, green)
	}
	switch {
	case u.switching:
		for _, t := range green {
			r.setStandby(t, false, time.Time{})
		}
		until := r.in.Now.Add(u.cfg.EffectiveKeepOld())
		for _, t := range old {
			r.setStandby(t, true, until)
		}
	case len(green) == 0 && u.active && !u.paused && !u.rollback:
		r.create(s, k, nil, false, true)
	}
	return true
}

// standbyOld keeps a task of a set switched away from until its
// KeepUntil, so that a rollback can switch back to it, and stops it then,
// or when a new switch makes it older than the set kept. A task of a
// blue/green set that never served (KeepUntil zero) stops at once.
func (r *reconciler) standbyOld(t *api.Task, u *rollout) {
	if !u.switching && !t.KeepUntil.IsZero() && r.in.Now.Before(t.KeepUntil) {
		r.wakeAt(t.KeepUntil)
		return
	}
	why := "the set it belonged to is no longer kept"
	if t.KeepUntil.IsZero() {
		why = "its blue/green update was abandoned"
	}
	r.stop(t, api.TaskShutdown, why)
}

// setStandby puts a task on standby (until: when to stop it) or back in
// service.
func (r *reconciler) setStandby(t *api.Task, on bool, until time.Time) {
	if t.Standby == on && t.KeepUntil.Equal(until) {
		return
	}
	c := r.change(t.ID)
	c.Standby, c.KeepUntil = &on, until
}
