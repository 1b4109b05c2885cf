package manager

import (
	"fmt"
	"net/http"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/store"
)

func (m *Manager) listNodes(w http.ResponseWriter, r *http.Request) {
	if err := m.consistent(r); err != nil {
		writeError(w, err)
		return
	}
	var nodes []*api.Node
	m.state.View(func(v *store.View) error { nodes = v.Nodes(); return nil })
	for _, n := range nodes {
		m.decorate(n)
	}
	if nodes == nil {
		nodes = []*api.Node{}
	}
	writeJSON(w, http.StatusOK, nodes)
}

// decorate fills in the manager status of manager nodes.
func (m *Manager) decorate(n *api.Node) {
	if n.Spec.Role != api.RoleManager || m.isWorker() {
		return
	}
	_, leader := m.raft.r.LeaderWithID()
	reach := "unknown"
	if string(leader) == n.ID || n.ID == m.nodeID {
		reach = "reachable"
	}
	n.Manager = &api.ManagerStatus{Leader: string(leader) == n.ID, Reachability: reach}
}

// nodeOf resolves the request's {ref} (ID, prefix or hostname) to a node.
func (m *Manager) nodeOf(r *http.Request) (n *api.Node, err error) {
	m.state.View(func(v *store.View) error { n, err = v.Node(r.PathValue("ref")); return nil })
	return n, err
}

func (m *Manager) getNode(w http.ResponseWriter, r *http.Request) {
	if err := m.consistent(r); err != nil {
		writeError(w, err)
		return
	}
	n, err := m.nodeOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	m.decorate(n)
	writeJSON(w, http.StatusOK, n)
}

func (m *Manager) updateNodeSpec(w http.ResponseWriter, r *http.Request) {
	version, err := queryVersion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var spec api.NodeSpec
	if err := decodeBody(w, r, &spec); err != nil {
		writeError(w, err)
		return
	}
	if err := api.ValidateNodeSpec(&spec); err != nil {
		writeError(w, err)
		return
	}
	n, err := m.nodeOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := m.propose(store.CmdNodeSpec, store.NodeSpec{ID: n.ID, Spec: spec, ExpectVersion: version, At: time.Now().UTC()})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (m *Manager) deleteNode(w http.ResponseWriter, r *http.Request) {
	n, err := m.nodeOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if n.ID == m.nodeID {
		writeError(w, api.Errorf(api.CodeConflict, "node %s is this manager: a manager cannot remove itself", n.Description.Hostname))
		return
	}
	if n.Status.State == api.NodeReady && !queryBool(r, "force") {
		writeError(w, api.Errorf(api.CodeConflict, "node %s is ready: drain and stop it first, or remove it with --force", n.Description.Hostname))
		return
	}
	if n.Spec.Role == api.RoleManager {
		if err := m.leaveRaft(n.ID); err != nil {
			writeError(w, api.Errorf(api.CodeUnavailable, "remove manager %s from raft: %v", n.Description.Hostname, err))
			return
		}
	}
	if _, err := m.propose(store.CmdNodeRemove, store.NodeRemove{ID: n.ID, Force: queryBool(r, "force"), At: time.Now().UTC()}); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (m *Manager) postHeartbeat(w http.ResponseWriter, r *http.Request) {
	var hb api.Heartbeat
	if err := decodeBody(w, r, &hb); err != nil {
		writeError(w, err)
		return
	}
	if p, ok := peerOf(r); ok && p.Role != api.RoleManager && r.PathValue("ref") != p.NodeID {
		writeError(w, api.Errorf(api.CodeForbidden, "a worker sends its own node's heartbeats only"))
		return
	}
	n, err := m.heartbeat(r.PathValue("ref"), hb)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (m *Manager) listTasks(w http.ResponseWriter, r *http.Request) {
	if err := m.consistent(r); err != nil {
		writeError(w, err)
		return
	}
	var items [][]byte
	var err error
	m.state.View(func(v *store.View) error {
		var f store.TaskFilter
		if f.ServiceID, f.NodeID, err = refsOf(v, r); err != nil {
			return nil
		}
		return v.TasksRaw(f, func(raw []byte) error {
			items = append(items, append([]byte(nil), raw...))
			return nil
		})
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeRawList(w, items)
}

func (m *Manager) getTask(w http.ResponseWriter, r *http.Request) {
	if err := m.consistent(r); err != nil {
		writeError(w, err)
		return
	}
	var raw []byte
	var err error
	m.state.View(func(v *store.View) error { raw, err = v.TaskRaw(r.PathValue("ref")); return nil })
	if err != nil {
		writeError(w, err)
		return
	}
	writeRaw(w, http.StatusOK, raw)
}

// Caps on what an agent may write per task.
const (
	maxStatusUpdates = 1000
	maxMessageLen    = 1024
	maxHealthOutput  = 4096
)

func validateStatus(req *api.TaskStatusRequest) error {
	if req.NodeID == "" {
		return api.Errorf(api.CodeInvalid, "nodeID is required")
	}
	if len(req.Updates) > maxStatusUpdates {
		return api.Errorf(api.CodeInvalid, "%d updates in one request; the limit is %d", len(req.Updates), maxStatusUpdates)
	}
	for i, u := range req.Updates {
		st := u.Status.State
		if u.TaskID == "" || !st.Valid() || st == api.TaskRemove || st.Before(api.TaskPreparing) {
			return api.Errorf(api.CodeInvalid, "updates[%d]: task %q state %q: an agent reports preparing, starting, running or an end state", i, u.TaskID, st)
		}
		if len(u.Status.Message) > maxMessageLen || len(u.Status.Err) > maxMessageLen || len(u.Status.HealthOutput) > maxHealthOutput {
			return api.Errorf(api.CodeInvalid, "updates[%d]: message, err or health output too long (limits %d, %d, %d bytes)", i, maxMessageLen, maxMessageLen, maxHealthOutput)
		}
	}
	return nil
}

func (m *Manager) postTaskStatus(w http.ResponseWriter, r *http.Request) {
	var req api.TaskStatusRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := validateStatus(&req); err != nil {
		writeError(w, err)
		return
	}
	if p, ok := peerOf(r); ok && p.Role != api.RoleManager && req.NodeID != p.NodeID {
		writeError(w, api.Errorf(api.CodeForbidden, "a worker reports the tasks of its own node only"))
		return
	}
	res, err := m.propose(store.CmdTaskStatus, store.TaskStatus{NodeID: req.NodeID, Updates: req.Updates, At: time.Now().UTC()})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (m *Manager) getInfo(w http.ResponseWriter, r *http.Request) {
	info := api.Info{NodeID: m.nodeID, Role: api.RoleManager, Version: Version, DataDir: m.cfg.DataDir}
	if m.isWorker() {
		info.Role = api.RoleWorker
	} else {
		info.RaftState = m.raft.r.State().String()
		info.Leader = m.leaderID()
		info.RaftVoter = m.isVoter()
	}
	m.state.View(func(v *store.View) error {
		if c := v.Cluster(); c != nil {
			info.ClusterID, info.ClusterCIDR = c.ClusterID, c.ClusterCIDR
		}
		info.Index = v.Index()
		info.Services, info.Tasks, info.Nodes = v.ServiceCount(), v.TaskCount(), v.NodeCount()
		return nil
	})
	writeJSON(w, http.StatusOK, info)
}

func (m *Manager) getHealth(w http.ResponseWriter, r *http.Request) {
	if err := m.Healthy(); err != nil {
		writeError(w, api.Errorf(api.CodeUnavailable, "%v", fmt.Errorf("manager unhealthy: %w", err)))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// refsOf resolves ?service=REF and ?node=REF (names, IDs, prefixes,
// hostnames) to IDs; empty when not asked.
func refsOf(v *store.View, r *http.Request) (serviceID, nodeID string, err error) {
	q := r.URL.Query()
	if ref := q.Get("service"); ref != "" {
		s, err := v.Service(ref)
		if err != nil {
			return "", "", err
		}
		serviceID = s.ID
	}
	if ref := q.Get("node"); ref != "" {
		n, err := v.Node(ref)
		if err != nil {
			return "", "", err
		}
		nodeID = n.ID
	}
	return serviceID, nodeID, nil
}
