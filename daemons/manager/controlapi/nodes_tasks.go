package controlapi

import (
	"fmt"
	"net/http"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
)

func (s *Server) listNodes(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r); err != nil {
		httpx.Error(w, err)
		return
	}
	var nodes []*api.Node
	s.store.View(func(v *store.View) error { nodes = v.Nodes(); return nil })
	for _, n := range nodes {
		s.decorate(n)
	}
	if nodes == nil {
		nodes = []*api.Node{}
	}
	httpx.JSON(w, http.StatusOK, nodes)
}

// decorate fills in the manager status of manager nodes.
func (s *Server) decorate(n *api.Node) {
	if n.Spec.Role != api.RoleManager || s.isWorker() {
		return
	}
	leader := s.raft.LeaderID()
	reach := "unknown"
	if leader == n.ID || n.ID == s.cfg.NodeID {
		reach = "reachable"
	}
	n.Manager = &api.ManagerStatus{Leader: leader == n.ID, Reachability: reach}
	if n.ID == s.cfg.NodeID {
		n.Manager.DiskFull = s.raft.DiskStatus() != ""
		n.Manager.Locked = s.locked()
	}
}

// nodeOf resolves the request's {ref} (ID, prefix or hostname) to a node.
func (s *Server) nodeOf(r *http.Request) (n *api.Node, err error) {
	s.store.View(func(v *store.View) error { n, err = v.Node(r.PathValue("ref")); return nil })
	return n, err
}

func (s *Server) getNode(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r); err != nil {
		httpx.Error(w, err)
		return
	}
	n, err := s.nodeOf(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	s.decorate(n)
	httpx.JSON(w, http.StatusOK, n)
}

func (s *Server) updateNodeSpec(w http.ResponseWriter, r *http.Request) {
	version, err := httpx.Version(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	var spec api.NodeSpec
	if err := httpx.Decode(w, r, &spec); err != nil {
		httpx.Error(w, err)
		return
	}
	if err := api.ValidateNodeSpec(&spec); err != nil {
		httpx.Error(w, err)
		return
	}
	n, err := s.nodeOf(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	res, err := s.raft.Propose(r.Context(), store.CmdNodeSpec, store.NodeSpec{ID: n.ID, Spec: spec, ExpectVersion: version, At: time.Now().UTC()})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, res)
}

func (s *Server) deleteNode(w http.ResponseWriter, r *http.Request) {
	n, err := s.nodeOf(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	if n.ID == s.cfg.NodeID {
		httpx.Error(w, api.Errorf(api.CodeConflict, "node %s is this manager: a manager cannot remove itself", n.Description.Hostname))
		return
	}
	if n.Status.State == api.NodeReady && !httpx.Bool(r, "force") {
		httpx.Error(w, api.Errorf(api.CodeConflict, "node %s is ready: drain and stop it first, or remove it with --force", n.Description.Hostname))
		return
	}
	if n.Spec.Role == api.RoleManager {
		if err := s.raft.RemoveServer(n.ID); err != nil {
			httpx.Error(w, api.Errorf(api.CodeUnavailable, "remove manager %s from raft: %v", n.Description.Hostname, err))
			return
		}
	}
	now := time.Now().UTC()
	if _, err := s.raft.Propose(r.Context(), store.CmdNodeRemove, store.NodeRemove{ID: n.ID, Force: httpx.Bool(r, "force"),
		At: now, RevokeUntil: now.Add(s.cfg.RevokeFor)}); err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, n)
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r); err != nil {
		httpx.Error(w, err)
		return
	}
	var items [][]byte
	var err error
	s.store.View(func(v *store.View) error {
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
		httpx.Error(w, err)
		return
	}
	httpx.RawList(w, items)
}

func (s *Server) getTask(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r); err != nil {
		httpx.Error(w, err)
		return
	}
	var raw []byte
	var err error
	s.store.View(func(v *store.View) error { raw, err = v.TaskRaw(r.PathValue("ref")); return nil })
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.Raw(w, http.StatusOK, raw)
}

// postTaskStatus records what the agent of node {ref} observed about its
// tasks. The FSM applies only the updates of tasks assigned to that node,
// with addresses inside its subnet (store.TaskStatus).
func (s *Server) postTaskStatus(w http.ResponseWriter, r *http.Request) {
	var req api.TaskStatusRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.Error(w, err)
		return
	}
	if req.NodeID == "" {
		req.NodeID = r.PathValue("ref")
	}
	if err := api.ValidateTaskStatusRequest(&req); err != nil {
		httpx.Error(w, err)
		return
	}
	n, err := s.nodeOf(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	if req.NodeID != n.ID && req.NodeID != r.PathValue("ref") {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "the body names node %s, the path node %s: report a node's tasks under its own path", req.NodeID, n.ID))
		return
	}
	res, err := s.raft.Propose(r.Context(), store.CmdTaskStatus, store.TaskStatus{NodeID: n.ID, Updates: req.Updates, At: time.Now().UTC()})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, res)
}

func (s *Server) getInfo(w http.ResponseWriter, r *http.Request) {
	info := api.Info{NodeID: s.cfg.NodeID, Role: api.RoleManager, Version: s.cfg.Version, DataDir: s.cfg.DataDir}
	if s.isWorker() {
		info.Role = api.RoleWorker
	} else {
		_, info.RaftState = s.raft.State()
		info.Leader = s.raft.LeaderID()
		info.RaftVoter = s.raft.IsVoter()
		info.DiskFull = s.raft.DiskStatus()
		info.Locked = s.locked()
	}
	s.store.View(func(v *store.View) error {
		if c := v.Cluster(); c != nil {
			info.ClusterID, info.ClusterCIDR = c.ClusterID, c.ClusterCIDR
		} else { // a worker: what its join said
			info.ClusterID, info.ClusterCIDR = s.cfg.ClusterID, s.cfg.ClusterCIDR
		}
		info.Index = v.Index()
		info.Services, info.Tasks, info.Nodes = v.ServiceCount(), v.TaskCount(), v.NodeCount()
		return nil
	})
	httpx.JSON(w, http.StatusOK, info)
}

func (s *Server) getHealth(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Health(); err != nil {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", fmt.Errorf("manager unhealthy: %w", err)))
		return
	}
	httpx.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
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

// locked says whether this manager is autolocked (it has no KEK).
func (s *Server) locked() bool { return s.cfg.Autolocked != nil && s.cfg.Autolocked() }
