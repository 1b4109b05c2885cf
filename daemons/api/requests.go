package api

// Request and response bodies of the endpoints that are not plain objects.

// ScaleRequest is the body of POST /v1/services/{ref}/scale.
type ScaleRequest struct {
	Replicas *uint64 `json:"replicas"`
}

// TaskStatusRequest is the body of POST /v1/tasks/status: what one node's
// agent observed about its tasks.
type TaskStatusRequest struct {
	NodeID  string             `json:"nodeID"`
	Updates []TaskStatusUpdate `json:"updates"`
}

// TaskStatusResult reports, per update, whether it was applied.
type TaskStatusResult struct {
	Applied int      `json:"applied"`
	Skipped []string `json:"skipped,omitempty"` // "taskID: why"
}

// DryRun is what a service create or update with ?dry-run returns: the
// service as it would be stored and what the orchestrator would do first.
type DryRun struct {
	Service *Service `json:"service"`
	// Tasks are the tasks that would be made, with the node each would go
	// to, or a pending state and the reason it could not be placed.
	Tasks []Task `json:"tasks,omitempty"`
	// Stops are the IDs of tasks that would be stopped.
	Stops []string `json:"stops,omitempty"`
}
