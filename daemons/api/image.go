package api

// Image is an image present on a node.
type Image struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	// Node is the ID of the node that has it.
	Node string `json:"node,omitempty"`
}

// AgentStatus is what a node's agent says about itself on its local socket.
type AgentStatus struct {
	NodeID     string `json:"nodeID"`
	Tasks      int    `json:"tasks"`
	Containers int    `json:"containers"`
	Running    int    `json:"running"`
	Engine     string `json:"engine"`
	Healthy    bool   `json:"healthy"`
	Message    string `json:"message,omitempty"`
}
