package store

import (
	"fmt"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
	"github.com/warren-edge/warren/daemons/pki"
)

// CommandType is the first byte of every Raft log entry Warren writes. The
// list is append-only: a value, once released, keeps its meaning forever.
type CommandType byte

const (
	CmdClusterInit   CommandType = 1
	CmdServiceCreate CommandType = 2
	CmdServiceUpdate CommandType = 3
	CmdServiceScale  CommandType = 4
	CmdServiceDelete CommandType = 5
	CmdNodeRegister  CommandType = 6
	CmdNodeSpec      CommandType = 7
	CmdNodeStatus    CommandType = 8
	CmdNodeRemove    CommandType = 9
	CmdTaskPlan      CommandType = 10
	CmdTaskStatus    CommandType = 11
	CmdJoinTokens    CommandType = 12
	CmdNodeRole      CommandType = 13
	CmdCA            CommandType = 14
	CmdOperatorPut   CommandType = 15
	CmdOperatorDrop  CommandType = 16
	CmdOnce          CommandType = 17
	CmdNodeJournal   CommandType = 18
	CmdVolumeCreate  CommandType = 19
	CmdVolumeRemove  CommandType = 20
	CmdSecretPut     CommandType = 21
	CmdSecretRemove  CommandType = 22
	// 23: a secret's reseal, never shipped: CmdReseal reseals every kind.
	CmdConfigPut    CommandType = 24
	CmdConfigRemove CommandType = 25
	CmdKeyring      CommandType = 26
	CmdReseal       CommandType = 27
	// CmdEvent records an event no change of state stands for (an exec,
	// events.go); the others are derived by the FSM.
	CmdEvent CommandType = 28
	// CmdDeploy applies a deployment: several services, all or nothing.
	CmdDeploy         CommandType = 29
	CmdServicePromote CommandType = 30
	// The ingress store (apply_ingress.go): a key put, a key and those
	// under it deleted, a lock taken or renewed, a lock released.
	CmdIngressPut    CommandType = 31
	CmdIngressDelete CommandType = 32
	CmdIngressLock   CommandType = 33
	CmdIngressUnlock CommandType = 34
)

// LastCommand is the newest command type this warren applies; a manager
// says it in its description (api.NodeDescription.RaftCommands).
const LastCommand = CmdIngressUnlock

// FirstGatedCommand is the oldest command type the leader proposes only
// once every manager says it applies it (CommandGate). Managers older than
// the gate say nothing, and are taken to apply the commands before it.
const FirstGatedCommand = CmdEvent

var commandNames = map[CommandType]string{
	CmdClusterInit: "cluster-init", CmdServiceCreate: "service-create",
	CmdServiceUpdate: "service-update", CmdServiceScale: "service-scale",
	CmdServiceDelete: "service-delete", CmdNodeRegister: "node-register",
	CmdNodeSpec: "node-spec", CmdNodeStatus: "node-status", CmdNodeRemove: "node-remove",
	CmdTaskPlan: "task-plan", CmdTaskStatus: "task-status",
	CmdJoinTokens: "join-tokens", CmdNodeRole: "node-role", CmdCA: "ca",
	CmdOperatorPut: "operator-put", CmdOperatorDrop: "operator-drop", CmdOnce: "once",
	CmdNodeJournal: "node-journal", CmdVolumeCreate: "volume-create", CmdVolumeRemove: "volume-remove", CmdKeyring: "keyring", CmdReseal: "reseal",
	CmdSecretPut: "secret-put", CmdSecretRemove: "secret-remove",
	CmdConfigPut: "config-put", CmdConfigRemove: "config-remove",
	CmdServicePromote: "service-promote",
	CmdEvent:          "event",
	CmdDeploy:         "deploy",
	CmdIngressPut:     "ingress-put", CmdIngressDelete: "ingress-delete",
	CmdIngressLock: "ingress-lock", CmdIngressUnlock: "ingress-unlock",
}

func (t CommandType) String() string {
	if n, ok := commandNames[t]; ok {
		return n
	}
	return fmt.Sprintf("command-%d", byte(t))
}

// Encode makes a Raft log entry from a command.
func Encode(t CommandType, payload any) ([]byte, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("store: encode %s: %w", t, err)
	}
	out := make([]byte, 1+len(b))
	out[0] = byte(t)
	copy(out[1:], b)
	return out, nil
}

// ClusterInit is the first entry of a new cluster.
type ClusterInit struct {
	ClusterID   string    `json:"clusterID"`
	ClusterCIDR string    `json:"clusterCIDR"` // the range node subnets come from
	SubnetBits  int       `json:"subnetBits"`  // prefix length of each node's subnet
	CreatedAt   time.Time `json:"createdAt"`
	// The cluster CA. Only managers hold the state database; the key never
	// reaches a worker (the watch hub carries no cluster metadata). The
	// key is sealed under the cluster's data key (CAKey, at PlaceCAKey):
	// CAKeyPEM, the key in the clear, is only read from clusters made
	// before encryption at rest, until the leader seals it.
	CACertPEM string      `json:"caCert,omitempty"`
	CAKeyPEM  string      `json:"caKey,omitempty"`
	CAKey     keys.Sealed `json:"caKeySealed,omitzero"`
	// Keyring is the cluster's first data key, wrapped by its KEK.
	Keyring *Keyring `json:"keyring,omitempty"`
}

// JoinTokens replaces the cluster's join tokens (rotation, revocation).
type JoinTokens struct {
	Tokens []JoinToken `json:"tokens"`
}

// JoinToken is one join token as the managers keep it: the record the
// pki package checks tokens against, with a hash of the secret only. A
// token is shown once, to the operator who asked for it.
type JoinToken struct {
	pki.TokenRecord
}

// CA replaces the cluster's CA: the active one (its certificate chain
// and key: during a rotation the new CA, cross-signed by the old) and the
// roots every node trusts.
type CA struct {
	CertPEM string `json:"cert"`
	// Key is the CA's private key (PKCS #8 PEM) sealed at PlaceCAKey;
	// KeyPEM, the key in the clear, is only read from older clusters.
	Key       keys.Sealed `json:"keySealed,omitzero"`
	KeyPEM    string      `json:"key,omitempty"`
	BundlePEM string      `json:"bundle"`
	Rotating  bool        `json:"rotating,omitempty"`
	At        time.Time   `json:"at"`
}

// NodeRole changes a node's role (promote, demote).
type NodeRole struct {
	ID   string    `json:"id"`
	Role string    `json:"role"`
	At   time.Time `json:"at"`
}

// ServiceCreate stores a new service. ID and timestamps are set by the
// proposer; Version and SpecVersion by the FSM.
type ServiceCreate struct {
	Service api.Service `json:"service"`
}

// ServiceUpdate replaces a service's spec. If ExpectVersion is not zero and
// the service's Version differs, the update is refused with a conflict.
type ServiceUpdate struct {
	ID            string          `json:"id"`
	Spec          api.ServiceSpec `json:"spec"`
	ExpectVersion uint64          `json:"expectVersion,omitempty"`
	At            time.Time       `json:"at"`
	// Rollback marks an update that returns to PreviousSpec.
	Rollback bool `json:"rollback,omitempty"`
	// Deployment, if set, names the deployment this update is part of
	// (UpdateStatus.Deployment).
	Deployment string `json:"deployment,omitempty"`
}

// ServicePromote promotes the canaries of a service's update at
// SpecVersion (0: whatever update runs).
type ServicePromote struct {
	ID          string    `json:"id"`
	SpecVersion uint64    `json:"specVersion,omitempty"`
	At          time.Time `json:"at"`
}

// ServiceScale sets the replica count of a replicated service.
type ServiceScale struct {
	ID       string    `json:"id"`
	Replicas uint64    `json:"replicas"`
	At       time.Time `json:"at"`
}

// ServiceDelete removes a service; its tasks are marked for removal.
type ServiceDelete struct {
	ID            string    `json:"id"`
	ExpectVersion uint64    `json:"expectVersion,omitempty"`
	At            time.Time `json:"at"`
}

// NodeRegister creates a node or refreshes what it says about itself.
type NodeRegister struct {
	ID          string              `json:"id"`
	Role        string              `json:"role"` // used when the node is new
	Labels      map[string]string   `json:"labels,omitempty"`
	Description api.NodeDescription `json:"description"`
	// ImagesSet: Description.Images is the node's whole list (none if
	// empty); otherwise the images recorded are kept.
	ImagesSet bool      `json:"imagesSet,omitempty"`
	At        time.Time `json:"at"`
}

// NodeSpec replaces a node's spec (labels, availability, role).
type NodeSpec struct {
	ID            string       `json:"id"`
	Spec          api.NodeSpec `json:"spec"`
	ExpectVersion uint64       `json:"expectVersion,omitempty"`
	At            time.Time    `json:"at"`
}

// NodeStatus records a change of a node's state (ready, down).
type NodeStatus struct {
	ID     string         `json:"id"`
	Status api.NodeStatus `json:"status"`
}

// NodeRemove deletes a node from the cluster. Its identity goes on the
// deny list until RevokeUntil (when every certificate it may hold has
// expired): it can neither call the managers nor be registered again.
type NodeRemove struct {
	ID          string    `json:"id"`
	Force       bool      `json:"force,omitempty"`
	At          time.Time `json:"at"`
	RevokeUntil time.Time `json:"revokeUntil,omitzero"`
}

// Revocation is an identity on the deny list: a removed node or operator,
// refused until its certificates have expired.
type Revocation struct {
	Kind  string    `json:"kind"` // "node" or "operator"
	ID    string    `json:"id"`   // the node ID or the operator's name
	Until time.Time `json:"until"`
}

// OperatorPut records an operator (a new certificate was issued to it).
type OperatorPut struct {
	Operator api.Operator `json:"operator"`
}

// OperatorDrop removes an operator; its name goes on the deny list until
// RevokeUntil.
type OperatorDrop struct {
	Name        string    `json:"name"`
	At          time.Time `json:"at"`
	RevokeUntil time.Time `json:"revokeUntil"`
}

// TaskStatus records what an agent observed about its tasks.
type TaskStatus struct {
	NodeID  string                 `json:"nodeID"`
	Updates []api.TaskStatusUpdate `json:"updates"`
	At      time.Time              `json:"at"`
}
