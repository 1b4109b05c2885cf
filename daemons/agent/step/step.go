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
)

func (k ActionKind) String() string {
	return [...]string{"start", "stop", "remove", "report"}[k]
}

// Action is one thing to do for one task.
type Action struct {
	Kind   ActionKind
	TaskID string
	Task   *api.Task // nil when the task is gone from the manager
	// Status to report (ActReport, and after ActStop/ActRemove when set).
	Status *api.TaskStatus
	Grace  time.Duration
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
// do, in a stable order. It is pure: the agent's loop does the I/O.
func Step(tasks map[string]*api.Task, obs Observed) []Action {
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
		wanted := t.DesiredState == api.TaskRunning && !t.Status.State.Terminal()
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
			}
		case wanted && c.State == runtime.StateStopped:
			st := exitStatus(c)
			out = append(out, Action{Kind: ActRemove, TaskID: id, Task: t, Status: &st})
		case wanted && c.State == runtime.StateCreated:
			// Made but never started (the agent stopped half-way): start over.
			out = append(out, Action{Kind: ActStart, TaskID: id, Task: t})
		case !wanted && hasC && c.State == runtime.StateRunning:
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
	return out
}
