package api

import "time"

// Node roles.
const (
	RoleManager = "manager"
	RoleWorker  = "worker"
)

// Node availabilities.
const (
	AvailabilityActive = "active" // takes new tasks
	AvailabilityPause  = "pause"  // keeps its tasks, takes no new ones
	AvailabilityDrain  = "drain"  // its tasks move elsewhere
)

// Node states, as the managers see them.
const (
	NodeUnknown = "unknown" // no agent has reported yet
	NodeReady   = "ready"
	NodeDown    = "down" // its agent stopped reporting
)

// Node is one device of the fleet.
type Node struct {
	Meta        `yaml:",inline"`
	Spec        NodeSpec        `json:"spec" yaml:"spec"`
	Description NodeDescription `json:"description" yaml:"description"`
	Status      NodeStatus      `json:"status" yaml:"status"`
	// Subnet is the node's container subnet, from the cluster range.
	Subnet string `json:"subnet,omitempty" yaml:"subnet,omitempty"`
	// Manager is set on manager nodes and filled in on reads.
	Manager *ManagerStatus `json:"manager,omitempty" yaml:"manager,omitempty"`
}

// NodeSpec is what an operator sets on a node.
type NodeSpec struct {
	Labels       map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	Role         string            `json:"role" yaml:"role"`
	Availability string            `json:"availability" yaml:"availability"`
}

// NodeDescription is what the node says about itself.
type NodeDescription struct {
	Hostname      string `json:"hostname" yaml:"hostname"`
	OS            string `json:"os,omitempty" yaml:"os,omitempty"`
	Arch          string `json:"arch,omitempty" yaml:"arch,omitempty"`
	NanoCPUs      int64  `json:"nanoCPUs" yaml:"nanoCPUs"`
	MemoryBytes   int64  `json:"memoryBytes" yaml:"memoryBytes"`
	EngineVersion string `json:"engineVersion,omitempty" yaml:"engineVersion,omitempty"`
	// Addr is the node's address as the cluster reaches it.
	Addr string `json:"addr,omitempty" yaml:"addr,omitempty"`
}

// NodeStatus is the managers' view of the node's health.
type NodeStatus struct {
	State     string    `json:"state" yaml:"state"`
	Message   string    `json:"message,omitempty" yaml:"message,omitempty"`
	Timestamp time.Time `json:"timestamp" yaml:"timestamp"`
}

// ManagerStatus describes a manager node's place in the Raft cluster.
type ManagerStatus struct {
	Leader       bool   `json:"leader" yaml:"leader"`
	Reachability string `json:"reachability" yaml:"reachability"`
	Addr         string `json:"addr,omitempty" yaml:"addr,omitempty"`
}

// Heartbeat is what an agent sends its manager periodically. The manager
// keeps it in memory; only a change of the node's state is written to Raft.
type Heartbeat struct {
	Description NodeDescription `json:"description"`
}

// Info describes the manager answering the call.
type Info struct {
	ClusterID string `json:"clusterID"`
	NodeID    string `json:"nodeID"`
	Role      string `json:"role"`
	RaftState string `json:"raftState"`
	// RaftVoter: this manager votes (a new one votes once caught up).
	RaftVoter   bool   `json:"raftVoter,omitempty"`
	Leader      string `json:"leader"`
	Index       uint64 `json:"index"`
	Version     string `json:"version"`
	Services    int    `json:"services"`
	Tasks       int    `json:"tasks"`
	Nodes       int    `json:"nodes"`
	DataDir     string `json:"dataDir,omitempty"`
	ClusterCIDR string `json:"clusterCIDR,omitempty"`
}
