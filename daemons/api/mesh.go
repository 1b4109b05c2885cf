package api

import (
	"fmt"
	"slices"

	json "github.com/segmentio/encoding/json"
)

// MeshStatusFile is where a node's agent says which of the other nodes its
// mesh reaches now, for the node's warren-dns and warren-ingress: they
// answer only with addresses the node can reach. It has a directory of
// its own, which anyone may list: the two daemons run as users of their
// own and watch the directory for changes (inotify), which needs the
// right to list it, and /run/warren may only be passed through.
const MeshStatusFile = "/run/warren/mesh/status.json"

// MeshReach is the content of MeshStatusFile.
type MeshReach struct {
	// Unreachable are the nodes whose mesh peer has gone silent (no
	// handshake within WireGuard's session lifetime, or nothing heard for
	// two keepalives), or has never shaken hands.
	Unreachable []string `json:"unreachable"`
	// NotPeers are the other nodes the mesh has no peer for: no mesh key
	// yet (a node joining, or one whose agent runs without the mesh),
	// or a record the mesh cannot use. Their tasks are out of reach too;
	// only the silent peers are worth an operator's attention.
	NotPeers []string `json:"not_peers,omitempty"`
}

// Out is every node whose tasks this node cannot reach: the one rule
// warren-dns and warren-ingress leave tasks out by, as the agent's ports
// do.
func (r MeshReach) Out() []string {
	out := slices.Concat(r.Unreachable, r.NotPeers)
	slices.Sort(out)
	return slices.Compact(out)
}

// ParseMeshReach decodes MeshStatusFile's content.
func ParseMeshReach(b []byte) (MeshReach, error) {
	var r MeshReach
	if err := json.Unmarshal(b, &r); err != nil {
		return MeshReach{}, fmt.Errorf("mesh status: %w (the agent rewrites it every few seconds; remove it if it persists)", err)
	}
	slices.Sort(r.Unreachable)
	slices.Sort(r.NotPeers)
	return r, nil
}
