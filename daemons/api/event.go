package api

import "encoding/json"

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
