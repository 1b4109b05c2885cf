package api

import (
	"fmt"
	"net/netip"
	"time"
)

// TaskState is where a task is in its life. States only move forward: the
// order of the constants below is the order of the life cycle, and every
// state from TaskComplete on is terminal.
//
//	new → pending → assigned → preparing → starting → running → complete
//	                                                          ↘ failed
//	                                                          ↘ shutdown
//	(any non-terminal state may also end in rejected or orphaned)
//
// The manager writes new, pending and assigned; the node's agent writes the
// rest. Desired states are written by the manager only.
type TaskState string

const (
	TaskNew       TaskState = "new"       // made by the orchestrator
	TaskPending   TaskState = "pending"   // waiting for a node; Status.Message says why
	TaskAssigned  TaskState = "assigned"  // given to a node
	TaskPreparing TaskState = "preparing" // the agent is getting the image and network
	TaskStarting  TaskState = "starting"  // the container is being started
	TaskRunning   TaskState = "running"
	TaskComplete  TaskState = "complete" // exited 0
	TaskShutdown  TaskState = "shutdown" // stopped because it was asked to
	TaskFailed    TaskState = "failed"   // exited non-zero, was killed, or could not start
	TaskRejected  TaskState = "rejected" // the node could not run it at all
	TaskOrphaned  TaskState = "orphaned" // its node went away
	// TaskRemove is only a desired state: stop the task, then delete it.
	TaskRemove TaskState = "remove"
)

var taskStateOrder = map[TaskState]int{
	TaskNew: 0, TaskPending: 1, TaskAssigned: 2, TaskPreparing: 3, TaskStarting: 4,
	TaskRunning: 5, TaskComplete: 6, TaskShutdown: 7, TaskFailed: 8, TaskRejected: 9,
	TaskOrphaned: 10, TaskRemove: 11,
}

// Valid says whether s is a known state.
func (s TaskState) Valid() bool { _, ok := taskStateOrder[s]; return ok }

// Terminal says whether a task in state s has ended for good.
func (s TaskState) Terminal() bool { return taskStateOrder[s] >= taskStateOrder[TaskComplete] }

// Before says whether s comes strictly before t in the life cycle.
func (s TaskState) Before(t TaskState) bool { return taskStateOrder[s] < taskStateOrder[t] }

// CanMoveTo says whether a task in state s may be moved to state t: forward
// only, and never out of a terminal state.
func (s TaskState) CanMoveTo(t TaskState) bool {
	if !t.Valid() || t == TaskRemove {
		return false
	}
	if s.Terminal() {
		return false
	}
	return !t.Before(s)
}

// Task is one instance of a service on one node: a container.
type Task struct {
	Meta        `yaml:",inline"`
	ServiceID   string `json:"serviceID" yaml:"serviceID"`
	ServiceName string `json:"serviceName" yaml:"serviceName"`
	// Slot is the replica number of a replicated service (1-based); 0 for a
	// global service, whose tasks are keyed by NodeID.
	Slot uint64 `json:"slot,omitempty" yaml:"slot,omitempty"`
	// NodeID is the node the task is assigned to; empty until scheduled.
	NodeID string `json:"nodeID,omitempty" yaml:"nodeID,omitempty"`
	// Spec is a copy of the service spec the task was made from.
	Spec ServiceSpec `json:"spec" yaml:"spec"`
	// SpecVersion is the service's SpecVersion when the task was made.
	SpecVersion uint64 `json:"specVersion" yaml:"specVersion"`
	// Attempt counts the tasks before this one in its slot that ended and
	// were replaced under the restart policy.
	Attempt uint64 `json:"attempt,omitempty" yaml:"attempt,omitempty"`
	// WindowStart and WindowAttempts count restarts for MaxAttempts.
	WindowStart    time.Time `json:"windowStart,omitzero" yaml:"windowStart,omitempty"`
	WindowAttempts uint64    `json:"windowAttempts,omitempty" yaml:"windowAttempts,omitempty"`
	// DesiredState is written by the manager: running, shutdown or remove.
	DesiredState TaskState  `json:"desiredState" yaml:"desiredState"`
	Status       TaskStatus `json:"status" yaml:"status"`
	// Standby marks a task that runs but gets no traffic (Serving): the
	// new set of a blue/green update before its switch, and the old set
	// after it, until KeepUntil.
	Standby bool `json:"standby,omitempty" yaml:"standby,omitempty"`
	// KeepUntil is when a set switched away from by a blue/green update
	// is stopped; until then a rollback switches back to it at once.
	KeepUntil time.Time `json:"keepUntil,omitzero" yaml:"keepUntil,omitempty"`
}

// TaskStatus is the observed state of a task, written by its node's agent
// (and by the manager up to assigned).
type TaskStatus struct {
	State TaskState `json:"state" yaml:"state"`
	// Timestamp is when State was entered, by the clock of the manager that
	// recorded it.
	Timestamp time.Time `json:"timestamp" yaml:"timestamp"`
	// Message is a one-line human description ("started", "no suitable node: ...").
	Message string `json:"message,omitempty" yaml:"message,omitempty"`
	// Err is set when the task failed or could not be placed or started.
	Err         string `json:"err,omitempty" yaml:"err,omitempty"`
	ExitCode    *int   `json:"exitCode,omitempty" yaml:"exitCode,omitempty"`
	OOMKilled   bool   `json:"oomKilled,omitempty" yaml:"oomKilled,omitempty"`
	ContainerID string `json:"containerID,omitempty" yaml:"containerID,omitempty"`
	PID         int    `json:"pid,omitempty" yaml:"pid,omitempty"`
	// Addr is the task's address on its node's container network.
	Addr string `json:"addr,omitempty" yaml:"addr,omitempty"`
	// Health is "", "starting", "healthy" or "unhealthy".
	Health string `json:"health,omitempty" yaml:"health,omitempty"`
	// HealthyAt is when the task last turned healthy, by the clock of the
	// manager that recorded it (a rolling update's monitor counts from
	// it); zero while it is not healthy. Agents do not set it.
	HealthyAt time.Time `json:"healthyAt,omitzero" yaml:"healthyAt,omitempty"`
	// HealthOutput is the output of the last health probe, capped.
	HealthOutput string `json:"healthOutput,omitempty" yaml:"healthOutput,omitempty"`
	// StartedAt is when the container's process started.
	StartedAt time.Time `json:"startedAt,omitzero" yaml:"startedAt,omitempty"`
	// Offline is what the node did with the task on its own while cut off
	// from the managers (restarts in place), or nil.
	Offline *OfflineRun `json:"offline,omitempty" yaml:"offline,omitempty"`
}

// Name is the task's display name: SERVICE.SLOT for a replicated service,
// SERVICE.NODEID for a global one (as in Docker Swarm).
func (t *Task) Name() string {
	if t.Slot > 0 {
		return fmt.Sprintf("%s.%d", t.ServiceName, t.Slot)
	}
	return fmt.Sprintf("%s.%s", t.ServiceName, t.NodeID)
}

// ContainerName is unique per task: NAME.TASKID.
func (t *Task) ContainerName() string { return t.Name() + "." + t.ID }

// Live says whether the task is meant to run and has not ended.
func (t *Task) Live() bool {
	return t.DesiredState == TaskRunning && !t.Status.State.Terminal()
}

// RunningAddr is the task's address on its node's container network while
// it runs (Status.Addr, an address or an address with its prefix length),
// or the zero Addr.
func (t *Task) RunningAddr() netip.Addr {
	if t.Status.State != TaskRunning || t.Status.Addr == "" {
		return netip.Addr{}
	}
	a, err := netip.ParseAddr(t.Status.Addr)
	if err != nil {
		p, err := netip.ParsePrefix(t.Status.Addr)
		if err != nil {
			return netip.Addr{}
		}
		a = p.Addr()
	}
	return a.Unmap().WithZone("")
}

// Serving says whether a task should get traffic: warren-dns answers it
// under its service's name and ingress ports balance over it. It runs, is
// meant to, is not on standby, has an address, and is not failing or
// still starting its health check (Health "" means the service has no
// check, or the agent did not report one: it counts as healthy).
func (t *Task) Serving() bool {
	return t.DesiredState == TaskRunning && !t.Standby && t.Reachable()
}

// Reachable says whether the task could take a connection a node sends
// it: it runs with an address and passes its health check (or has none).
// A reachable task told to stop may still get traffic from a node that
// has yet to hear of the stop: it drains before its SIGTERM
// (ServiceSpec.StopDrain).
func (t *Task) Reachable() bool {
	if !t.RunningAddr().IsValid() {
		return false
	}
	if t.Spec.HealthCheck != nil {
		return t.Status.Health == HealthHealthy // not before its first passing probe
	}
	return t.Status.Health == "" || t.Status.Health == HealthHealthy
}

// TaskStatusUpdate is what an agent sends about one task.
type TaskStatusUpdate struct {
	TaskID string     `json:"taskID"`
	Status TaskStatus `json:"status"`
}
