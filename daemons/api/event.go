package api

import (
	"encoding/json"
	"time"
)

// Kinds of objects a watch reports.
const (
	KindService = "service"
	KindTask    = "task"
	KindNode    = "node"
)

// Watch event operations. Create, update and delete describe a change at
// Index. Reset opens a full resend of the watched state (the watcher's index
// was too old to replay): a series of create events at Index follows, then
// Synced. Ping carries no change: it says the stream is complete up to Index.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpDelete = "delete"
	OpReset  = "reset"
	OpSynced = "synced"
	OpPing   = "ping"
)

// Event is one line of a watch stream (NDJSON).
type Event struct {
	Index  uint64          `json:"index"`
	Op     string          `json:"op"`
	Kind   string          `json:"kind,omitempty"`
	ID     string          `json:"id,omitempty"`
	Object json.RawMessage `json:"object,omitempty"`
}

// ClusterEvent is one thing that happened in the cluster (warrenctl events,
// GET /v1/events): a task failed, an update started, a node went down.
// Events are derived by the managers' FSM from the state's own changes (so
// every manager holds the same ones, in the same order) and kept for a
// bounded count and age. It is not the watch stream's Event, which carries
// object changes for the daemons.
type ClusterEvent struct {
	// Seq numbers the cluster's events from 1 without gaps, in the order
	// they happened; GET /v1/events?since=Seq resumes after it.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	// ServiceID and Service (its name) say which service it concerns;
	// NodeID and Node (its hostname, if known) which node; TaskID which task.
	ServiceID string `json:"serviceID,omitempty"`
	Service   string `json:"service,omitempty"`
	NodeID    string `json:"nodeID,omitempty"`
	Node      string `json:"node,omitempty"`
	TaskID    string `json:"taskID,omitempty"`
	// ExitCode is a failed task's exit code, when it has one.
	ExitCode *int   `json:"exitCode,omitempty"`
	Message  string `json:"message,omitempty"`
}

// Types of ClusterEvent.
const (
	EventTaskFailed     = "task.failed"    // a task ended in failed (ExitCode if it exited)
	EventTaskRestarted  = "task.restarted" // a replacement made under the restart policy
	EventUpdateStarted  = "update.started"
	EventUpdatePaused   = "update.paused"
	EventRollbackStart  = "update.rollback-started"
	EventRolledBack     = "update.rolled-back"
	EventUpdateComplete = "update.completed"
	EventCanaryPromoted = "canary.promoted"
	EventNodeDown       = "node.down"
	EventNodeUp         = "node.up"
	EventSecretRotated  = "secret.rotated" // a secret got a new version
	// EventExecRun: warrenctl service exec ran a command in a task. Message
	// names the caller and the command's argv[0] only, never its
	// arguments or environment.
	EventExecRun = "exec.run"
)

// EventTypes lists every ClusterEvent type, for validating filters.
var EventTypes = []string{EventTaskFailed, EventTaskRestarted, EventUpdateStarted, EventUpdatePaused,
	EventRollbackStart, EventRolledBack, EventUpdateComplete, EventCanaryPromoted, EventNodeDown,
	EventNodeUp, EventSecretRotated, EventExecRun}

// KnownEventType says whether t is one of EventTypes.
func KnownEventType(t string) bool {
	for _, k := range EventTypes {
		if k == t {
			return true
		}
	}
	return false
}
