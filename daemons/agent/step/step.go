// Package step is the agent's step function: what to do to each task, a
// pure function of the tasks the managers assign and what the runtime shows
// (no I/O; a test keeps it so).
package step

import (
	"fmt"
	"sort"
	"time"

	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
)

// ActionKind is what the agent does to one task.
type ActionKind int

const (
	// ActStart prepares and starts the task's container.
	ActStart ActionKind = iota
	// ActStop stops the running container (SIGTERM, grace, SIGKILL), then
	// reports and removes it.
	ActStop
	// ActRemove deletes a container that is not running, and its network.
	ActRemove
	// ActReport only reports a status.
	ActReport
	// ActDrain starts the drain of a task told to stop that other nodes
	// may still send traffic to (api.ServiceSpec.StopDrain): the agent
	// records Until (Observed.Draining), and the task is stopped then.
	ActDrain
)

func (k ActionKind) String() string {
	return [...]string{"start", "stop", "remove", "report", "drain"}[k]
}

// Action is one thing to do for one task.
type Action struct {
	Kind   ActionKind
	TaskID string
	Task   *api.Task // nil when the task is gone from the manager
	// Status to report (ActReport, and after ActStop/ActRemove when set).
	Status *api.TaskStatus
	Grace  time.Duration
	// Local (ActStart): the node restarts the task in place on its own,
	// cut off from the managers; Ended is the end it restarts after (nil:
	// the container was lost, as in a reboot, which does not count
	// against the restart policy).
	Local bool
	Ended *Ended
	// Withdraw (ActStart): the end was reported but the report has not
	// reached a manager; take it back first, and restart only if that
	// works (a manager that saw the end replaces the task itself).
	Withdraw bool
	// Quiet (ActStop): a break-glass hold, not the task's end: nothing is
	// reported.
	Quiet bool
	// Until (ActDrain): when the drain ends and the task is stopped.
	Until time.Time
}

func (a Action) String() string {
	s := fmt.Sprintf("%s %s", a.Kind, a.TaskID)
	if a.Status != nil {
		s += " → " + string(a.Status.State)
	}
	return s
}

// Observed is what the agent knows of the node's containers.
type Observed struct {
	// Containers by task ID.
	Containers map[string]runtime.Container
	// Busy tasks have an action running; Step leaves them alone.
	Busy map[string]bool
	// Reported is the last state the agent reported per task, so that a
	// report is not repeated while the manager has yet to show it.
	Reported map[string]api.TaskState
	// Synced: the task list is complete (the watch has synced), so a
	// container without a task is really an orphan.
	Synced bool
	// Draining: when the drain of each task being drained ends (ActDrain).
	Draining map[string]time.Time

	// Now is the clock's value for this step.
	Now time.Time
	// CutOff: no manager has taken this node's heartbeat lately; since
	// CutOffAt (the last one taken). The node then owns the slots it
	// holds (api/offline.go).
	CutOff   bool
	CutOffAt time.Time
	// Local is what the node did with each task on its own.
	Local map[string]*Local
	// Undelivered says whether a task's last report has not reached a
	// manager yet.
	Undelivered func(taskID string) bool
}

// Local is the node's own record of a task: its restarts in place while
// cut off, and its last end. The agent keeps it in its checkpoint.
type Local struct {
	// Count is where the task stands under its restart policy, counted
	// here (seeded from the task's own count).
	Count    api.RestartCount `json:"count"`
	Restarts uint64           `json:"restarts,omitempty"`
	// Ended is the task's last end seen here.
	Ended *Ended `json:"ended,omitempty"`
	// StoppedCutOff: the node stopped it, cut off past offline.maxOffline.
	StoppedCutOff bool `json:"stoppedCutOff,omitempty"`
	// Override is a break-glass override made on the node
	// (api.TaskOverride): a held stop is kept while cut off.
	Override *api.TaskOverride `json:"override,omitempty"`
}

// Ended is one end of a task's container.
type Ended struct {
	State     api.TaskState `json:"state"`
	Code      *int          `json:"code,omitempty"`
	StartedAt time.Time     `json:"startedAt,omitzero"`
	At        time.Time     `json:"at"`
}

// endOf is the end a stopped container shows (at: now, when the runtime
// does not say).
func endOf(c runtime.Container, now time.Time) *Ended {
	st := exitStatus(c)
	e := &Ended{State: st.State, Code: st.ExitCode, StartedAt: c.StartedAt, At: now}
	if c.Exit != nil && !c.Exit.At.IsZero() {
		e.At = c.Exit.At
	}
	return e
}

// exitStatus turns a container's exit into the task status to report.
func exitStatus(c runtime.Container) api.TaskStatus {
	st := api.TaskStatus{State: api.TaskFailed, ContainerID: c.ID, StartedAt: c.StartedAt}
	if c.Exit == nil {
		st.Err = "the container stopped; its exit status is unknown"
		return st
	}
	code := c.Exit.Code
	st.ExitCode = &code
	switch {
	case c.Exit.OOMKilled:
		st.OOMKilled = true
		st.Err = "killed by the kernel: out of memory (raise resources.limits.memory)"
	case code == 0:
		st.State, st.Message = api.TaskComplete, "exited 0"
	default:
		st.Err = fmt.Sprintf("exited with code %d", code)
	}
	return st
}

// Step compares desired tasks with observed containers and returns what to
// do, in a stable order, and when to step again even if nothing changes
// (zero: no need). It is pure: the agent's loop does the I/O.
func Step(tasks map[string]*api.Task, obs Observed) ([]Action, time.Time) {
	ids := map[string]bool{}
	for id := range tasks {
		ids[id] = true
	}
	for id := range obs.Containers {
		ids[id] = true
	}
	sorted := make([]string, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Strings(sorted)

	var out []Action
	var wake time.Time
	wakeAt := func(t time.Time) {
		if wake.IsZero() || t.Before(wake) {
			wake = t
		}
	}
	report := func(t *api.Task, st api.TaskStatus) {
		if obs.Reported[t.ID] == st.State || t.Status.State == st.State || !t.Status.State.CanMoveTo(st.State) {
			return
		}
		out = append(out, Action{Kind: ActReport, TaskID: t.ID, Task: t, Status: &st})
	}
	for _, id := range sorted {
		if obs.Busy[id] {
			continue
		}
		t := tasks[id]
		c, hasC := obs.Containers[id]
		if t == nil {
			if !obs.Synced || !hasC {
				continue
			}
			if c.State == runtime.StateRunning {
				out = append(out, Action{Kind: ActStop, TaskID: id, Grace: api.DefaultStopGracePeriod.D()})
			} else {
				out = append(out, Action{Kind: ActRemove, TaskID: id})
			}
			continue
		}
		if t.DesiredState == api.TaskRunning && t.Status.State == api.TaskOrphaned {
			// Written off while this node was cut off, and still wanted:
			// a copy that runs claims it back; the managers choose which
			// copy of the slot stays (api/offline.go).
			switch {
			case hasC && c.State == runtime.StateRunning && obs.Reported[id] != api.TaskRunning:
				st := api.TaskStatus{State: api.TaskRunning, Message: "running; claimed back on reconnect", ContainerID: c.ID, PID: c.Pid, StartedAt: c.StartedAt}
				out = append(out, Action{Kind: ActReport, TaskID: id, Task: t, Status: &st})
			case hasC && c.State != runtime.StateRunning:
				out = append(out, Action{Kind: ActRemove, TaskID: id, Task: t})
			}
			continue
		}
		wanted := t.DesiredState == api.TaskRunning && !t.Status.State.Terminal()
		if wanted && obs.CutOff {
			if act, ok := offline(t, c, hasC, obs, wakeAt); ok {
				if act != nil {
					out = append(out, *act)
				}
				continue
			}
		}
		if !hasC && obs.Reported[id].Terminal() {
			continue // we reported its end; the manager has yet to show it
		}
		switch {
		case wanted && !hasC:
			switch t.Status.State {
			case api.TaskAssigned, api.TaskPreparing, api.TaskStarting:
				out = append(out, Action{Kind: ActStart, TaskID: id, Task: t})
			case api.TaskRunning:
				report(t, api.TaskStatus{State: api.TaskFailed, Err: "the container is gone (removed outside warren, or lost with the node's runtime state)"})
			}
		case wanted && c.State == runtime.StateRunning:
			if t.Status.State != api.TaskRunning && obs.Reported[id] != api.TaskRunning {
				st := api.TaskStatus{State: api.TaskRunning, Message: "running", ContainerID: c.ID, PID: c.Pid, StartedAt: c.StartedAt}
				if t.Spec.HealthCheck != nil {
					st.Health = api.HealthStarting
				}
				report(t, st)
			} else if untold(t, obs) {
				// Restarted here while cut off, and the managers have not
				// heard (the report died with an earlier agent): say so.
				st := t.Status
				st.Message, st.ContainerID, st.PID, st.StartedAt, st.Offline = "running", c.ID, c.Pid, c.StartedAt, nil
				out = append(out, Action{Kind: ActReport, TaskID: id, Task: t, Status: &st})
			}
		case wanted && c.State == runtime.StateStopped:
			st := exitStatus(c)
			out = append(out, Action{Kind: ActRemove, TaskID: id, Task: t, Status: &st})
		case wanted && c.State == runtime.StateCreated:
			// Made but never started (the agent stopped half-way): start over.
			out = append(out, Action{Kind: ActStart, TaskID: id, Task: t})
		case !wanted && hasC && c.State == runtime.StateRunning:
			if until, draining := drain(t, obs); draining {
				if _, ok := obs.Draining[id]; !ok {
					out = append(out, Action{Kind: ActDrain, TaskID: id, Task: t, Until: until})
				}
				wakeAt(until)
				break
			}
			grace := t.Spec.EffectiveStopGrace().D()
			out = append(out, Action{Kind: ActStop, TaskID: id, Task: t, Grace: grace})
		case !wanted && hasC:
			var st *api.TaskStatus
			if !t.Status.State.Terminal() {
				st = &api.TaskStatus{State: api.TaskShutdown, Message: "stopped"}
			}
			out = append(out, Action{Kind: ActRemove, TaskID: id, Task: t, Status: st})
		case !wanted && !t.Status.State.Terminal() && t.Status.State != api.TaskAssigned:
			report(t, api.TaskStatus{State: api.TaskShutdown, Message: "stopped"})
		case !wanted && t.Status.State == api.TaskAssigned:
			report(t, api.TaskStatus{State: api.TaskShutdown, Message: "never started"})
		}
	}
	return out, wake
}

// drain says whether a running task told to stop is (still) to be drained
// first, and until when: other nodes route to it as long as they have yet
// to see the stop and the status they hold says it is reachable. The drain
// starts when the agent first sees the stop. A task whose status the
// managers have ended is stopped at once.
func drain(t *api.Task, obs Observed) (time.Time, bool) {
	if t.DesiredState == api.TaskRunning || !t.Reachable() {
		return time.Time{}, false
	}
	until, ok := obs.Draining[t.ID]
	if !ok {
		until = obs.Now.Add(t.Spec.EffectiveStopDrain().D())
	}
	return until, obs.Now.Before(until)
}

// untold says whether the node restarted t in place more often than the
// managers know, with no report of it on its way.
func untold(t *api.Task, obs Observed) bool {
	loc := obs.Local[t.ID]
	if loc == nil || loc.Restarts == 0 || (obs.Undelivered != nil && obs.Undelivered(t.ID)) {
		return false
	}
	return t.Status.Offline == nil || t.Status.Offline.Restarts < loc.Restarts
}

// offline decides for a wanted task while the node is cut off: ok says the
// decision is made here (act nil: nothing to do now), !ok that the
// connected rules apply.
func offline(t *api.Task, c runtime.Container, hasC bool, obs Observed, wakeAt func(time.Time)) (act *Action, ok bool) {
	id := t.ID
	loc := obs.Local[id]
	if loc != nil && loc.Override != nil && loc.Override.Stopped {
		// Held stopped by an operator on site (break-glass).
		if hasC && c.State == runtime.StateRunning && !obs.Busy[id] {
			return &Action{Kind: ActStop, TaskID: id, Task: t, Grace: t.Spec.EffectiveStopGrace().D(), Quiet: true}, true
		}
		return nil, true
	}
	if limit := t.Spec.Offline.MaxOffline.D(); limit > 0 {
		until := obs.CutOffAt.Add(limit)
		if !obs.Now.Before(until) {
			if hasC && c.State == runtime.StateRunning {
				st := api.TaskStatus{State: api.TaskShutdown, Message: fmt.Sprintf("stopped: cut off from the managers for longer than offline.maxOffline (%s)", t.Spec.Offline.MaxOffline)}
				return &Action{Kind: ActStop, TaskID: id, Task: t, Grace: t.Spec.EffectiveStopGrace().D(), Status: &st}, true
			}
			// Not started again until a manager answers.
			return nil, true
		}
		wakeAt(until)
	}
	if t.Spec.EffectiveOfflineRestart() != api.OfflineRestartLocal {
		return nil, false
	}
	count := t.Count()
	if loc != nil {
		count = loc.Count
	}
	restartAfter := func(e *Ended, withdraw bool) (*Action, bool) {
		at, may := t.Spec.RestartPolicy.Restart(count, e.State, e.StartedAt, e.At, obs.Now)
		switch {
		case may && !obs.Now.Before(at):
			return &Action{Kind: ActStart, TaskID: id, Task: t, Local: true, Ended: e, Withdraw: withdraw}, true
		case !at.IsZero():
			wakeAt(at)
			return nil, true
		}
		return nil, false // the policy says no more: the end stands
	}
	switch {
	case obs.Busy[id]:
		return nil, true
	case hasC && c.State == runtime.StateStopped && c.Exit == nil,
		!hasC && t.Status.State == api.TaskRunning && !obs.Reported[id].Terminal():
		// Lost with the runtime's state (a reboot): start it again at once.
		return &Action{Kind: ActStart, TaskID: id, Task: t, Local: true}, true
	case hasC && c.State == runtime.StateCreated:
		// Made, and started or about to be, before the runtime lost its
		// process (a reboot): start it again at once. (The checkpoint may
		// be a status behind: it is not written for running.)
		return &Action{Kind: ActStart, TaskID: id, Task: t, Local: true}, true
	case hasC && c.State == runtime.StateStopped:
		return restartAfter(endOf(c, obs.Now), false)
	case !hasC && obs.Reported[id].Terminal() && loc != nil && loc.Ended != nil && !loc.StoppedCutOff &&
		obs.Undelivered != nil && obs.Undelivered(id):
		// It ended just before the node found itself cut off: its end
		// never reached a manager, so its slot is still this node's.
		return restartAfter(loc.Ended, true)
	}
	return nil, false
}
