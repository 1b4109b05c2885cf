package api

import "time"

// TaskPlan is what the orchestrator and scheduler decided in one pass:
// tasks to make, desired-state and placement changes, and tasks to delete.
type TaskPlan struct {
	Creates []Task       `json:"creates,omitempty"`
	Updates []TaskChange `json:"updates,omitempty"`
	Deletes []string     `json:"deletes,omitempty"`
	// ServiceStatus records rolling-update progress per service ID.
	ServiceStatus map[string]UpdateStatus `json:"serviceStatus,omitempty"`
	// Rollbacks return services whose update failed to their previous
	// spec (failureAction rollback).
	Rollbacks []Rollback `json:"rollbacks,omitempty"`
	At        time.Time  `json:"at"`
}

// Rollback asks the FSM to roll a service back on its own. It applies
// only if the service is still at SpecVersion: an operator's newer update
// wins.
type Rollback struct {
	ServiceID   string `json:"serviceID"`
	SpecVersion uint64 `json:"specVersion"`
	Reason      string `json:"reason"`
}

// TaskChange is a manager-side change to one task. Empty fields are left as
// they are; states only move forward (changes that would move one back are
// skipped, not failed: the world moved on since the plan was made).
type TaskChange struct {
	ID           string    `json:"id"`
	NodeID       string    `json:"nodeID,omitempty"`
	DesiredState TaskState `json:"desiredState,omitempty"`
	// State, Message and Err set the observed status for the states the
	// manager owns: pending (with the reason), assigned, and the terminal
	// states of tasks no agent will ever report on (orphaned, shutdown of a
	// never-assigned task).
	State   TaskState `json:"state,omitempty"`
	Message string    `json:"message,omitempty"`
	Err     string    `json:"err,omitempty"`
	// Standby, if set, puts the task on standby or back in service
	// (Task.Standby), with KeepUntil; the changes of one plan apply
	// together, which is how a blue/green update switches in one step.
	Standby   *bool     `json:"standby,omitempty"`
	KeepUntil time.Time `json:"keepUntil,omitzero"`
}
