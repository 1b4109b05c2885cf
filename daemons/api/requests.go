package api

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// Request and response bodies of the endpoints that are not plain objects.

// ScaleRequest is the body of POST /v1/services/{ref}/scale.
type ScaleRequest struct {
	Replicas *uint64 `json:"replicas"`
}

// TaskStatusRequest is the body of POST /v1/nodes/{node}/tasks/status:
// what one node's agent observed about its tasks. NodeID, if given, must
// be the node of the path.
type TaskStatusRequest struct {
	NodeID  string             `json:"nodeID,omitempty"`
	Updates []TaskStatusUpdate `json:"updates"`
}

// Caps on what an agent may write per task.
const (
	MaxStatusUpdates = 1000
	maxMessageLen    = 1024
	maxHealthOutput  = 4096
)

// ValidateTaskStatusRequest checks what an agent reports: the states an
// agent owns, and bounded texts.
func ValidateTaskStatusRequest(req *TaskStatusRequest) error {
	if req.NodeID == "" {
		return Errorf(CodeInvalid, "nodeID is required")
	}
	if len(req.Updates) > MaxStatusUpdates {
		return Errorf(CodeInvalid, "%d updates in one request; the limit is %d", len(req.Updates), MaxStatusUpdates)
	}
	for i, u := range req.Updates {
		st := u.Status.State
		if u.TaskID == "" || !st.Valid() || st == TaskRemove || st.Before(TaskPreparing) {
			return Errorf(CodeInvalid, "updates[%d]: task %q state %q: an agent reports preparing, starting, running or an end state", i, u.TaskID, st)
		}
		if len(u.Status.Message) > maxMessageLen || len(u.Status.Err) > maxMessageLen || len(u.Status.HealthOutput) > maxHealthOutput {
			return Errorf(CodeInvalid, "updates[%d]: message, err or health output too long (limits %d, %d, %d bytes)", i, maxMessageLen, maxMessageLen, maxHealthOutput)
		}
	}
	return nil
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

// JoinRequest is the body of POST /v1/join: a device asking to join with a
// token. The key stays on the device; only its certificate request is sent.
type JoinRequest struct {
	Token       string          `json:"token"`
	CSR         []byte          `json:"csr"` // DER, base64 in JSON
	Description NodeDescription `json:"description"`
}

// JoinResponse is what a joining device gets: its identity and the
// cluster's managers.
type JoinResponse struct {
	NodeID    string `json:"nodeID"`
	ClusterID string `json:"clusterID"`
	// ClusterCIDR is the range node subnets come from: a worker, which
	// holds no cluster record, tells its agent from it.
	ClusterCIDR string `json:"clusterCIDR,omitempty"`
	Role        string `json:"role"`
	CertPEM     string `json:"cert"`
	BundlePEM   string `json:"bundle"`
	// Managers and their node-port addresses.
	Managers []PeerAddr `json:"managers"`
	// Index is the leader's applied index: a joining manager asks to vote
	// once it has applied this far.
	Index uint64 `json:"index"`
	// KEK is, for a manager, the cluster's key-encryption key file (sealed
	// under the unlock key with autolock), so that it opens the cluster's
	// sealed values from its first start.
	KEK []byte `json:"kek,omitempty"`
}

// PeerAddr is a manager and its node port.
type PeerAddr struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// JoinTokenInfo is what warrenctl join-token prints. Token is set only
// in the answer that made it: the cluster keeps a hash of the secret.
type JoinTokenInfo struct {
	ID        string    `json:"id,omitempty" yaml:"id,omitempty"`
	Kind      string    `json:"kind" yaml:"kind"`
	Token     string    `json:"token,omitempty" yaml:"token,omitempty"`
	CreatedAt time.Time `json:"createdAt,omitzero" yaml:"createdAt,omitempty"`
	ExpiresAt time.Time `json:"expiresAt,omitzero" yaml:"expiresAt,omitempty"`
	Revoked   bool      `json:"revoked,omitempty" yaml:"revoked,omitempty"`
	// Managers are the addresses to join through.
	Managers []string `json:"managers,omitempty" yaml:"managers,omitempty"`
}

// RenewRequest is the body of POST /v1/certs/renew.
type RenewRequest struct {
	CSR []byte `json:"csr"`
}

// RenewResponse carries a renewed (or re-roled) certificate.
type RenewResponse struct {
	Role      string `json:"role"`
	CertPEM   string `json:"cert"`
	BundlePEM string `json:"bundle"`
}

// CAInfo is the cluster's CA as nodes see it (GET /v1/ca).
type CAInfo struct {
	// Digest is the active CA's, the one new tokens pin.
	Digest string `json:"digest"`
	// Digests are every trusted CA's (two during a rotation).
	Digests  []string `json:"digests"`
	Rotating bool     `json:"rotating"`
	// BundlePEM holds the trusted CA certificates, the active one first.
	BundlePEM string `json:"bundle"`
	// CertGrace is how long after a node's certificate expired this
	// manager still renews it (a node cut off meanwhile); after it the
	// node joins again with a token.
	CertGrace Duration `json:"certGrace,omitempty"`
}

// RequestIDHeader names a write request, so that sending it again (a
// client retrying after a timeout, a manager re-sending it to a new
// leader) applies it once: the cluster answers the first result.
const RequestIDHeader = "X-Warren-Request"

// TimeoutHeader says how long the caller waits for the answer (a Go
// duration, such as 4.5s): a write that waits for an election gives up in
// time to answer why, rather than be cut off. Without it a manager waits
// at most 5 s.
const TimeoutHeader = "X-Warren-Timeout"

// NewRequestID names a new request: the time in hex, then random bits.
// Time first, so that the requests a manager remembers are stored in
// the order they come (cheap to add, cheap to forget).
func NewRequestID() string {
	var b [8 + 6]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

// ValidRequestID says whether s can name a request: 1 to 48 letters,
// digits, '-', '_' and '.'.
func ValidRequestID(s string) bool {
	if len(s) == 0 || len(s) > 48 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}
