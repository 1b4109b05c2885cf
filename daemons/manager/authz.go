package manager

import (
	"bytes"
	"context"
	"net/http"

	"github.com/warren-edge/warren/daemons/api"
)

// Callers. A request on the local unix socket comes from root or group
// warren on this node: it may do anything. A request on the node port
// carries a node certificate: managers may do anything (they are the
// cluster), workers only what their own node needs.

// Peer is the node at the other end of a node-port connection, as its
// certificate says.
type Peer struct {
	ClusterID string
	NodeID    string
	Role      string
}

type peerKey struct{}

// withPeer records the caller's certificate identity on a request context.
func withPeer(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// peerOf returns the node-port caller, if the request came that way.
func peerOf(r *http.Request) (Peer, bool) {
	p, ok := r.Context().Value(peerKey{}).(Peer)
	return p, ok
}

// peerIsManager: the local socket, or a manager certificate.
func peerIsManager(r *http.Request) bool {
	p, ok := peerOf(r)
	return !ok || p.Role == api.RoleManager
}

// peerNodeID is the caller's node ID on the node port, "" locally.
func peerNodeID(r *http.Request) string {
	p, _ := peerOf(r)
	return p.NodeID
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
