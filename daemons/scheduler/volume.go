package scheduler

import (
	"strings"

	"github.com/warren-edge/warren/daemons/api"
)

// Volumes maps the name of each volume of the cluster to the ID of the
// node it lives on ("" while it has none: the node of the first task
// placed that mounts it becomes its home, which the FSM records when the
// plan is committed). A name that is not in the map has no volume.
type Volumes map[string]string

// volumeHome is where a task that mounts volumes must go.
type volumeHome struct {
	node   string // the node's ID
	volume string // the volume that lives there (named in reasons)
}

// volumeHomes holds what one Schedule call decided about volumes.
type volumeHomes struct {
	// pinned are the tasks that must go to their volumes' node, by ID.
	pinned map[string]*volumeHome
	// claimed are the volumes without a node that a task of this call
	// may bind: the others that mount it wait until it is bound, so that
	// two tasks placed at once do not take it to two nodes.
	claimed map[string]string // volume → task ID
}

// of says where task t, which has mounts, may go: nowhere (why is the
// reason), its volumes' node (pin), or anywhere (neither: no volume, or
// only volumes it is the first to bind).
func (h *volumeHomes) of(t *api.Task, vols Volumes, s *scheduler) (pin *volumeHome, why string) {
	names := t.Spec.VolumeNames()
	if len(names) == 0 {
		return nil, ""
	}
	var home *volumeHome
	var unbound []string
	for _, name := range names {
		node, ok := vols[name]
		switch {
		case !ok:
			return nil, "no volume " + name + ": create it with warrenctl volume create " + name
		case node == "":
			unbound = append(unbound, name)
		case home == nil:
			home = &volumeHome{node: node, volume: name}
		case home.node != node:
			return nil, "no node can run it: volume " + home.volume + " lives on node " + s.name(home.node) +
				" and volume " + name + " on node " + s.name(node)
		}
	}
	if home != nil && t.NodeID != "" && t.NodeID != home.node {
		return nil, "no node can run it: volume " + home.volume + " lives on node " + s.name(home.node) + ", not on node " + s.name(t.NodeID)
	}
	if h.claimed == nil {
		h.claimed = map[string]string{}
	}
	for _, name := range unbound {
		if by, ok := h.claimed[name]; ok && by != t.ID {
			return nil, "waiting for volume " + name + " to be bound to the node of the first task placed with it"
		}
	}
	for _, name := range unbound {
		h.claimed[name] = t.ID
	}
	if home == nil {
		return nil, ""
	}
	if h.pinned == nil {
		h.pinned = map[string]*volumeHome{}
	}
	h.pinned[t.ID] = home
	return home, ""
}

// name is how reasons name a node: "HOSTNAME (SHORTID)" when known.
func (s *scheduler) name(id string) string {
	if i, ok := s.byID[id]; ok {
		return nodeName(s.nodes[i].n)
	}
	return shortID(id)
}

// placeOnVolumeNode places task t on the node its volumes live on, as
// placePinned does for a task pinned by NodeID, and says why not in terms
// of the volume: "no node can run it: volume data lives on node edge-3
// (…), which is down".
func (s *scheduler) placeOnVolumeNode(t *api.Task, h *volumeHome) outcome {
	c := *t
	c.NodeID = h.node
	o := s.placePinned(&c)
	if o.nodeID != "" {
		return o
	}
	lead := "no node can run it: volume " + h.volume + " lives on node " + s.name(h.node)
	if _, ok := s.byID[h.node]; !ok {
		return outcome{reason: lead + ", which is not in the cluster"}
	}
	if rest, ok := strings.CutPrefix(o.reason, "node "+s.name(h.node)+" "); ok {
		return outcome{reason: lead + ", which " + rest}
	}
	return outcome{reason: lead + ": " + o.reason}
}
