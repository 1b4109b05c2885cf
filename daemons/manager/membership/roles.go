package membership

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/manager/peer"
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

func (m *Membership) nodeAction(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, n *api.Node) error) {
	var n *api.Node
	var err error
	m.store.View(func(v *store.View) error { n, err = v.Node(r.PathValue("ref")); return nil })
	if err != nil {
		httpx.Error(w, err)
		return
	}
	if err := fn(r.Context(), n); err != nil {
		httpx.Error(w, err)
		return
	}
	m.store.View(func(v *store.View) error { n, _ = v.Node(n.ID); return nil })
	httpx.JSON(w, http.StatusOK, n)
}

func (m *Membership) promoteNode(w http.ResponseWriter, r *http.Request) {
	m.nodeAction(w, r, func(ctx context.Context, n *api.Node) error {
		if n.Spec.Role == api.RoleManager {
			return nil
		}
		if _, err := m.propose(ctx, store.CmdNodeRole, store.NodeRole{ID: n.ID, Role: api.RoleManager, At: time.Now().UTC()}); err != nil {
			return err
		}
		m.book.set(n.ID, n.Description.Addr)
		if err := m.core.AddNonvoter(n.ID); err != nil {
			return api.Errorf(api.CodeUnavailable, "add %s to raft: %v", n.Description.Hostname, err)
		}
		m.log.Info("node promoted; it will vote once it has caught up", "node", n.ID)
		return nil
	})
}

func (m *Membership) demoteNode(w http.ResponseWriter, r *http.Request) {
	m.nodeAction(w, r, func(ctx context.Context, n *api.Node) error {
		if n.Spec.Role == api.RoleWorker {
			return nil
		}
		voters, err := m.core.Voters()
		if err != nil {
			return api.Errorf(api.CodeUnavailable, "%v", err)
		}
		if voters <= 1 {
			return api.Errorf(api.CodeConflict, "node %s is the last manager: promote another node first", n.Description.Hostname)
		}
		if n.ID == m.nodeID {
			return api.Errorf(api.CodeConflict, "node %s leads the cluster: demote it from another manager (this one hands over first)", n.Description.Hostname)
		}
		// The record first, while the node still receives the log; the node
		// waits until it is out of the configuration before it restarts.
		if _, err := m.propose(ctx, store.CmdNodeRole, store.NodeRole{ID: n.ID, Role: api.RoleWorker, At: time.Now().UTC()}); err != nil {
			return err
		}
		if err := m.core.RemoveServer(n.ID); err != nil {
			return api.Errorf(api.CodeUnavailable, "remove %s from raft: %v", n.Description.Hostname, err)
		}
		m.log.Info("node demoted", "node", n.ID)
		return nil
	})
}

// RoleChanged is closed when this node's role changed and its manager must
// be restarted in the new mode (the daemon does so).
func (m *Membership) RoleChanged() <-chan struct{} { return m.roleChanged }

// watchOwnRole notices the node's role changing in its state or replica,
// fetches a certificate for the new role, records it, and signals.
func (m *Membership) watchOwnRole(ctx context.Context) {
	mine := api.RoleManager
	if m.isWorker() {
		mine = api.RoleWorker
	}
	f := &store.Filter{Kinds: map[string]bool{api.KindNode: true}}
	index := uint64(0)
	for {
		wait := m.store.Hub().Wait()
		var n *api.Node
		m.store.View(func(v *store.View) error { n, _ = v.Node(m.nodeID); return nil })
		if n != nil && n.Spec.Role != mine && (n.Spec.Role == api.RoleManager || n.Spec.Role == api.RoleWorker) {
			if mine == api.RoleManager {
				// Leave Raft to the leader's RemoveServer: stopping before it
				// would take a vote away from the quorum.
				m.waitRemoved(ctx, 10*time.Second)
			}
			if err := m.switchRole(ctx, n.Spec.Role); err != nil {
				m.log.Warn("switch role", "to", n.Spec.Role, "err", err)
				if core.Sleep(ctx, time.Second) != nil {
					return
				}
				continue
			}
			m.roleOnce.Do(func() { close(m.roleChanged) })
			return
		}
		_, up, _ := m.store.Hub().Read(index, f, 1, nil)
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
func (m *Membership) switchRole(ctx context.Context, role string) error {
	m.keyMu.Lock()
	defer m.keyMu.Unlock()
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
	id := m.Identity()
	id.Role = role
	if role == api.RoleWorker {
		id.Managers = nil
		m.store.View(func(v *store.View) error {
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
	if err := SaveIdentity(m.cfg.DataDir, id); err != nil {
		return err
	}
	m.idMu.Lock()
	m.identity = id
	m.idMu.Unlock()
	m.log.Info("this node's role changed; restarting its manager", "role", role)
	return nil
}

// renewTargets lists managers to ask for a certificate.
func (m *Membership) renewTargets() []string {
	if l := m.leaderID(); l != "" && l != m.nodeID {
		return []string{l}
	}
	return m.managerIDs()
}

func (m *Membership) renew(ctx context.Context, id string, csr []byte) (*api.RenewResponse, error) {
	var out api.RenewResponse
	err := m.peers.Do(ctx, id, peer.Request{Method: http.MethodPost, Path: "/v1/certs/renew", Body: api.RenewRequest{CSR: csr}}, &out)
	return &out, err
}

// dropFullState removes the node's Raft log and state before it restarts
// in another role.
func (m *Membership) dropFullState() {
	os.RemoveAll(filepath.Join(m.cfg.DataDir, "raft"))
	// A worker holds no KEK: it has nothing the KEK opens.
	os.RemoveAll(filepath.Dir(keys.KEKFile(m.cfg.DataDir)))
	for _, f := range []string{"state.db", "state.db.boot", "state.db.clean", "state.db.untrusted"} {
		os.Remove(filepath.Join(m.cfg.DataDir, f))
	}
}

// waitRemoved waits until this manager is out of the Raft configuration,
// or d passes.
func (m *Membership) waitRemoved(ctx context.Context, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if member, err := m.core.Member(m.nodeID); err == nil && !member.In {
			return
		}
		core.Sleep(ctx, 50*time.Millisecond)
	}
}
