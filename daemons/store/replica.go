package store

import (
	"fmt"

	json "github.com/segmentio/encoding/json"
	bolt "go.etcd.io/bbolt"

	"github.com/warren-edge/warren/daemons/api"
)

// Replica keeps a worker's node-scoped copy of the cluster state, fed by a
// manager's watch stream (its own tasks in full, the rest as public
// projections), in a State of its own. It writes objects as the managers
// sent them, versions included, and publishes each change to its own hub,
// so the node's agent and dns watch it exactly as they would a manager.
// It persists: after a reboot without managers, the node still knows what
// it runs.
type Replica struct {
	state *State
	hub   *Hub
}

// NewReplica makes a replica over state, publishing to hub.
func NewReplica(state *State, hub *Hub) *Replica { return &Replica{state: state, hub: hub} }

// Index is the manager index the replica has applied.
func (r *Replica) Index() uint64 { return r.state.AppliedIndex() }

// ApplyBatch folds one batch of a watch stream (client.Follower's) in, in
// one transaction. A Reset batch replaces the whole replica and makes the
// local watchers resync; changes are published to the local hub together,
// so a local watcher never reads part of an index.
func (r *Replica) ApplyBatch(b api.WatchBatch) error {
	if b.Reset {
		return r.replaceAll(b.Events, b.Index)
	}
	var cs []Change
	err := r.state.update(func(tx *bolt.Tx) error {
		for _, ev := range b.Events {
			c, err := replicaPut(tx, ev)
			if err != nil {
				return err
			}
			if c != nil {
				cs = append(cs, *c)
			}
		}
		return writeIndex(tx, max(readIndex(tx), b.Index))
	})
	if err != nil {
		return fmt.Errorf("store: replica: apply up to index %d: %w", b.Index, err)
	}
	r.hub.publish(cs, b.Index)
	return nil
}

// replicaKeys are the fields the indexes need.
type replicaKeys struct {
	ID        string `json:"id"`
	ServiceID string `json:"serviceID"`
	NodeID    string `json:"nodeID"`
	Spec      struct {
		Name string `json:"name"`
	} `json:"spec"`
}

func keysOf(raw []byte) (replicaKeys, error) {
	var k replicaKeys
	err := json.Unmarshal(raw, &k)
	return k, err
}

// replaceAll swaps the whole replica for a resend.
func (r *Replica) replaceAll(evs []api.Event, index uint64) error {
	err := r.state.update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bServices, bServiceNames, bPorts, bIngressRoutes, bTasks, bTasksBySvc, bTasksByNode, bNodes} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		for _, ev := range evs {
			if _, err := replicaPut(tx, ev); err != nil {
				return err
			}
		}
		return writeIndex(tx, index)
	})
	if err != nil {
		return fmt.Errorf("store: replica: replace all at index %d: %w", index, err)
	}
	r.hub.Reset(index) // local watchers resync from the new state
	return nil
}

// replicaPut writes or deletes one object as the event has it, keeping the
// secondary indexes, and returns the change to publish.
func replicaPut(tx *bolt.Tx, ev api.Event) (*Change, error) {
	var bucket []byte
	switch ev.Kind {
	case api.KindService:
		bucket = bServices
	case api.KindTask:
		bucket = bTasks
	case api.KindNode:
		bucket = bNodes
	default:
		return nil, nil // a kind this version does not keep
	}
	b := tx.Bucket(bucket)
	id := []byte(ev.ID)
	var prev *replicaKeys
	if raw := b.Get(id); raw != nil {
		k, err := keysOf(raw)
		if err != nil {
			return nil, err
		}
		prev = &k
	}
	// Drop the old index entries.
	if prev != nil {
		switch ev.Kind {
		case api.KindService:
			if err := tx.Bucket(bServiceNames).Delete([]byte(prev.Spec.Name)); err != nil {
				return nil, err
			}
		case api.KindTask:
			if err := tx.Bucket(bTasksBySvc).Delete(indexKey(prev.ServiceID, prev.ID)); err != nil {
				return nil, err
			}
			if prev.NodeID != "" {
				if err := tx.Bucket(bTasksByNode).Delete(indexKey(prev.NodeID, prev.ID)); err != nil {
					return nil, err
				}
			}
		}
	}
	var k replicaKeys
	if ev.Op == api.OpDelete {
		if err := b.Delete(id); err != nil {
			return nil, err
		}
		if prev != nil {
			k = *prev
		}
	} else {
		var err error
		if k, err = keysOf(ev.Object); err != nil {
			return nil, fmt.Errorf("object %s: %w", ev.ID, err)
		}
		if err := b.Put(id, append([]byte(nil), ev.Object...)); err != nil {
			return nil, err
		}
		switch ev.Kind {
		case api.KindService:
			if err := tx.Bucket(bServiceNames).Put([]byte(k.Spec.Name), id); err != nil {
				return nil, err
			}
		case api.KindTask:
			if err := tx.Bucket(bTasksBySvc).Put(indexKey(k.ServiceID, k.ID), nil); err != nil {
				return nil, err
			}
			if k.NodeID != "" {
				if err := tx.Bucket(bTasksByNode).Put(indexKey(k.NodeID, k.ID), nil); err != nil {
					return nil, err
				}
			}
		}
	}
	line := encodeChange(ev.Index, ev.Op, ev.Kind, ev.ID, ev.Object)
	obj := line[len(line)-2-len(ev.Object) : len(line)-2]
	return &Change{Index: ev.Index, Op: ev.Op, Kind: ev.Kind, ID: ev.ID, NodeID: k.NodeID,
		ServiceID: k.ServiceID, Line: line, Object: obj}, nil
}
