package api

import (
	"fmt"
	"strings"
	"time"
)

// Offline policy (ServiceSpec.Offline): what a node cut off from every
// manager does with the service's tasks. DESIGN.md §3 states who owns a
// slot when:
//
//   - While the node is connected, the managers own its slots: a task that
//     ends is reported and the managers replace it (a new task).
//   - While it is cut off, the node owns the slots it holds: with restart
//     "local" it restarts a task that ends in place (the same task, under
//     the restart policy, its restarts counted) and after a reboot starts
//     its checkpointed tasks again; with "wait" it leaves an ended task
//     ended until a manager answers. After MaxOffline cut off (0: never) it
//     stops them.
//   - The managers write off the tasks of a node down longer than the
//     reschedule grace (state orphaned) and fill their slots elsewhere. The
//     written-off task stays wanted (desired running) so that its node may
//     claim it back on reconnect.
//   - On reconnect the node reports what it ran. A task still running is
//     taken back (orphaned → running, Status.Offline.Readopted). If its slot
//     was refilled meanwhile, OnReconnect picks the copy that stays: keep
//     (the node's) or replace (the managers'). The other is stopped only
//     once the one kept runs and, with a health check, is healthy.
//
// Global services always restart locally: their task has nowhere else to go.
const (
	OfflineRestartLocal = "local"
	OfflineRestartWait  = "wait"
	OnReconnectKeep     = "keep"
	OnReconnectReplace  = "replace"
)

// MaxOfflineLimit bounds OfflinePolicy.MaxOffline (a year).
const MaxOfflineLimit = Duration(366 * 24 * 3600e9)

// OfflinePolicy is a service's offline block.
type OfflinePolicy struct {
	// Restart is "local" (the default) or "wait".
	Restart string `json:"restart,omitempty" yaml:"restart,omitempty"`
	// MaxOffline is how long a cut-off node keeps the tasks running; 0
	// (the default) is forever.
	MaxOffline Duration `json:"maxOffline,omitempty" yaml:"maxOffline,omitempty"`
	// OnReconnect is "keep" (the default) or "replace".
	OnReconnect string `json:"onReconnect,omitempty" yaml:"onReconnect,omitempty"`
}

// EffectiveOfflineRestart is the offline restart with its default; a global
// service always restarts locally.
func (s *ServiceSpec) EffectiveOfflineRestart() string {
	if s.IsGlobal() || s.Offline.Restart == "" {
		return OfflineRestartLocal
	}
	return s.Offline.Restart
}

// EffectiveOnReconnect is the policy's onReconnect with its default.
func (p OfflinePolicy) EffectiveOnReconnect() string {
	if p.OnReconnect == "" {
		return OnReconnectKeep
	}
	return p.OnReconnect
}

func validateOffline(fe *fieldErrs, p OfflinePolicy) {
	switch p.Restart {
	case "", OfflineRestartLocal, OfflineRestartWait:
	default:
		fe.add("offline.restart", "%q is not an offline restart: use local or wait", p.Restart)
	}
	switch p.OnReconnect {
	case "", OnReconnectKeep, OnReconnectReplace:
	default:
		fe.add("offline.onReconnect", "%q is not a reconnect rule: use keep or replace", p.OnReconnect)
	}
	if p.MaxOffline < 0 {
		fe.add("offline.maxOffline", "must not be negative (0 keeps the tasks running however long the node is cut off)")
	} else if p.MaxOffline > MaxOfflineLimit {
		fe.add("offline.maxOffline", "%s is more than the limit of %s (use 0 for no limit)", p.MaxOffline, MaxOfflineLimit)
	}
}

// OfflineRun is what a node did with a task on its own while cut off from
// the managers, reported when it reconnects (TaskStatus.Offline).
type OfflineRun struct {
	// CutOffAt is when the node last lost the managers, by its clock.
	CutOffAt time.Time `json:"cutOffAt,omitzero" yaml:"cutOffAt,omitempty"`
	// Restarts counts the restarts the node made in place while cut off.
	Restarts uint64 `json:"restarts,omitempty" yaml:"restarts,omitempty"`
	// LastExitCode and LastExitAt are the last end the node restarted
	// after.
	LastExitCode *int      `json:"lastExitCode,omitempty" yaml:"lastExitCode,omitempty"`
	LastExitAt   time.Time `json:"lastExitAt,omitzero" yaml:"lastExitAt,omitempty"`
	// Readopted: the managers had written the task off (its node was down
	// past the reschedule grace) and took it back when the node reported
	// it running. Set by the managers.
	Readopted bool `json:"readopted,omitempty" yaml:"readopted,omitempty"`
	// Override is a sticky break-glass override the task runs with
	// (breakglass.go).
	Override *TaskOverride `json:"override,omitempty" yaml:"override,omitempty"`
}

// String is a one-line summary for service ps.
func (o *OfflineRun) String() string {
	if o == nil {
		return ""
	}
	var parts []string
	switch {
	case o.Restarts == 1:
		parts = append(parts, "1 local restart")
	case o.Restarts > 1:
		parts = append(parts, fmt.Sprintf("%d local restarts", o.Restarts))
	}
	if o.LastExitCode != nil {
		parts = append(parts, fmt.Sprintf("last exit %d", *o.LastExitCode))
	}
	if o.Readopted {
		parts = append(parts, "readopted")
	}
	if o.Override != nil {
		parts = append(parts, o.Override.String())
	}
	return strings.Join(parts, ", ")
}

// RestartCount is where a slot stands under its restart policy: the
// orchestrator carries it from task to task, a cut-off agent within one.
type RestartCount struct {
	// Attempt counts the quick ends in a row (the backoff).
	Attempt uint64
	// WindowStart and WindowAttempts count restarts for MaxAttempts.
	WindowStart    time.Time
	WindowAttempts uint64
}

// stableRun is how long a task must have run for its end not to count
// towards the restart backoff.
const stableRun = 10 * time.Second

// Consecutive is how many ends in a row were quick, counting this one
// (started at startedAt, ended at endedAt).
func (c RestartCount) Consecutive(startedAt, endedAt time.Time) uint64 {
	if !startedAt.IsZero() && endedAt.Sub(startedAt) >= stableRun {
		return 1
	}
	return c.Attempt + 1
}

// Restart applies the policy to a task that ended in state ended (complete
// or failed), having started at startedAt, at endedAt: may it be
// restarted, and from when? ok false with a zero at is never; with an at,
// not before at (the window reopens). Next gives the count after the
// restart.
func (p RestartPolicy) Restart(c RestartCount, ended TaskState, startedAt, endedAt, now time.Time) (at time.Time, ok bool) {
	switch p.EffectiveCondition() {
	case RestartNone:
		return time.Time{}, false
	case RestartOnFailure:
		if ended == TaskComplete {
			return time.Time{}, false
		}
	}
	if p.MaxAttempts > 0 && c.WindowAttempts >= p.MaxAttempts {
		if p.Window == 0 {
			return time.Time{}, false
		}
		if reopen := c.WindowStart.Add(p.Window.D()); now.Before(reopen) {
			return reopen, false
		}
	}
	return endedAt.Add(p.delay(c.Consecutive(startedAt, endedAt))), true
}

// delay is the policy's delay doubled for each consecutive quick end, up
// to ten times the delay.
func (p RestartPolicy) delay(consecutive uint64) time.Duration {
	base := p.EffectiveDelay().D()
	d := base
	for i := uint64(1); i < consecutive && d < 10*base; i++ {
		d *= 2
	}
	return min(d, 10*base)
}

// Next is the count after a restart at now of a task that started at
// startedAt and ended at endedAt.
func (p RestartPolicy) Next(c RestartCount, startedAt, endedAt, now time.Time) RestartCount {
	n := RestartCount{Attempt: c.Consecutive(startedAt, endedAt)}
	w := p.Window.D()
	if c.WindowStart.IsZero() || (w > 0 && now.Sub(c.WindowStart) >= w) {
		n.WindowStart, n.WindowAttempts = now, 1
	} else {
		n.WindowStart, n.WindowAttempts = c.WindowStart, c.WindowAttempts+1
	}
	return n
}

// Count is the task's place under its restart policy.
func (t *Task) Count() RestartCount {
	return RestartCount{Attempt: t.Attempt, WindowStart: t.WindowStart, WindowAttempts: t.WindowAttempts}
}
