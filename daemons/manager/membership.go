package manager

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/store"
)

// Membership. A node's role is in its node record; Raft's configuration
// follows it. Promotion and demotion change the record first, then Raft;
// the node itself sees its new role in its state (a manager's) or replica
// (a worker's), gets a certificate for it, and restarts its manager in the
// new mode (RoleChanged):
//
//	promote: role=manager ─▶ Raft non-voter ─▶ node restarts as a manager,
//	         catches up ─▶ asks to vote (/v1/internal/promote) ─▶ voter
//	demote:  role=worker ─▶ removed from Raft ─▶ node drops the full state,
//	         restarts as a worker following the managers
//	rm:      a manager leaves Raft first; any node's tasks move on

func (m *Manager) nodeAction(w http.ResponseWriter, r *http.Request, fn func(n *api.Node) error) {
	n, err := m.nodeOf(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := fn(n); err != nil {
		writeError(w, err)
		return
	}
	m.state.View(func(v *store.View) error { n, _ = v.Node(n.ID); return nil })
	writeJSON(w, http.StatusOK, n)
}

func (m *Manager) promoteNode(w http.ResponseWriter, r *http.Request) {
	m.nodeAction(w, r, func(n *api.Node) error {
		if n.Spec.Role == api.RoleManager {
			return nil
		}
		if _, err := m.propose(store.CmdNodeRole, store.NodeRole{ID: n.ID, Role: api.RoleManager, At: time.Now().UTC()}); err != nil {
			return err
		}
		m.book.set(n.ID, n.Description.Addr)
		if err := m.raft.r.AddNonvoter(raft.ServerID(n.ID), raft.ServerAddress(n.ID), 0, 10*time.Second).Error(); err != nil {
			return api.Errorf(api.CodeUnavailable, "add %s to raft: %v", n.Description.Hostname, err)
		}
		m.log.Info("node promoted; it will vote once it has caught up", "node", n.ID)
		return nil
	})
}

func (m *Manager) demoteNode(w http.ResponseWriter, r *http.Request) {
	m.nodeAction(w, r, func(n *api.Node) error {
		if n.Spec.Role == api.RoleWorker {
			return nil
		}
		f := m.raft.r.GetConfiguration()
		if err := f.Error(); err != nil {
			return api.Errorf(api.CodeUnavailable, "%v", err)
		}
		voters := 0
		for _, s := range f.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		if voters <= 1 {
			return api.Errorf(api.CodeConflict, "node %s is the last manager: promote another node first", n.Description.Hostname)
		}
		if n.ID == m.nodeID {
			return api.Errorf(api.CodeConflict, "node %s leads the cluster: demote it from another manager (this one hands over first)", n.Description.Hostname)
		}
		// The record first, while the node still receives the log; the node
		// waits until it is out of the configuration before it restarts.
		if _, err := m.propose(store.CmdNodeRole, store.NodeRole{ID: n.ID, Role: api.RoleWorker, At: time.Now().UTC()}); err != nil {
			return err
		}
		if err := m.raft.r.RemoveServer(raft.ServerID(n.ID), 0, 10*time.Second).Error(); err != nil {
			return api.Errorf(api.CodeUnavailable, "remove %s from raft: %v", n.Description.Hostname, err)
		}
		m.log.Info("node demoted", "node", n.ID)
		return nil
	})
}

// leaveRaft removes a manager from the Raft configuration (node rm).
func (m *Manager) leaveRaft(id string) error {
	srv, in, err := m.raftServer(id)
	if err != nil || !in {
		return err
	}
	return m.raft.r.RemoveServer(srv.ID, 0, 10*time.Second).Error()
}

// RoleChanged is closed when this node's role changed and its manager must
// be restarted in the new mode (the daemon does so).
func (m *Manager) RoleChanged() <-chan struct{} { return m.roleChanged }

// watchOwnRole notices the node's role changing in its state or replica,
// fetches a certificate for the new role, records it, and signals.
func (m *Manager) watchOwnRole(ctx context.Context) {
	mine := api.RoleManager
	if m.isWorker() {
		mine = api.RoleWorker
	}
	f := &store.Filter{Kinds: map[string]bool{api.KindNode: true}}
	index := uint64(0)
	for {
		wait := m.hub.Wait()
		var n *api.Node
		m.state.View(func(v *store.View) error { n, _ = v.Node(m.nodeID); return nil })
		if n != nil && n.Spec.Role != mine && (n.Spec.Role == api.RoleManager || n.Spec.Role == api.RoleWorker) {
			if mine == api.RoleManager {
				// Leave Raft to the leader's RemoveServer: stopping before it
				// would take a vote away from the quorum.
				m.waitRemoved(ctx, 10*time.Second)
			}
			if err := m.switchRole(ctx, n.Spec.Role); err != nil {
				m.log.Warn("switch role", "to", n.Spec.Role, "err", err)
				if sleepCtx(ctx, time.Second) != nil {
					return
				}
				continue
			}
			m.roleOnce.Do(func() { close(m.roleChanged) })
			return
		}
		_, up, _ := m.hub.Read(index, f, 1, nil)
		index = up
		select {
		case <-ctx.Done():
			return
		case <-wait:
		}
	}
}

// switchRole gets a certificate for role and rewrites the node's identity;
// a demoted manager also drops the cluster's full state.
func (m *Manager) switchRole(ctx context.Context, role string) error {
	res, keyPEM, err := m.renewFromManagers(ctx)
	if err != nil {
		return fmt.Errorf("no manager renewed the certificate: %v", err)
	}
	if res.Role != role {
		return fmt.Errorf("the managers still say %s", res.Role)
	}
	if err := m.saveCredentials([]byte(res.CertPEM), keyPEM, []byte(res.BundlePEM)); err != nil {
		return err
	}
	id := m.identity
	id.Role = role
	if role == api.RoleWorker {
		id.Managers = nil
		m.state.View(func(v *store.View) error {
			for _, n := range v.Nodes() {
				if n.Spec.Role == api.RoleManager && n.ID != m.nodeID {
					id.Managers = append(id.Managers, api.PeerAddr{ID: n.ID, Addr: n.Description.Addr})
				}
			}
			return nil
		})
	}
	// The state this node holds was made for its old role: a worker's is a
	// replica (a manager would take it for its own), a manager's the whole
	// cluster (a worker must not keep it). The new mode rebuilds its own.
	m.dropState = true
	if err := saveIdentity(filepath.Join(m.cfg.DataDir, "node.json"), id); err != nil {
		return err
	}
	m.identity = id
	m.log.Info("this node's role changed; restarting its manager", "role", role)
	return nil
}

// renewTargets lists managers to ask for a certificate.
func (m *Manager) renewTargets() []string {
	if l := m.leaderID(); l != "" && l != m.nodeID {
		return []string{l}
	}
	return m.managerIDs()
}

func (m *Manager) renew(ctx context.Context, id string, csr []byte) (*api.RenewResponse, error) {
	hc, base, err := m.cfg.Peers.Client(id)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(api.RenewRequest{CSR: csr})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/certs/renew", bytesReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("renew on %s: %s", id, resp.Status)
	}
	var out api.RenewResponse
	return &out, json.NewDecoder(resp.Body).Decode(&out)
}

// dropFullState removes the node's Raft log and state before it restarts
// in another role.
func (m *Manager) dropFullState() {
	os.RemoveAll(filepath.Join(m.cfg.DataDir, "raft"))
	for _, f := range []string{"state.db", "state.db.boot", "state.db.clean", "state.db.untrusted"} {
		os.Remove(filepath.Join(m.cfg.DataDir, f))
	}
}

// waitRemoved waits until this manager is out of the Raft configuration,
// or d passes.
func (m *Manager) waitRemoved(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, in, err := m.raftServer(m.nodeID); err == nil && !in {
			return
		}
		sleepCtx(ctx, 50*time.Millisecond)
	}
}
