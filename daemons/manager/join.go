package manager

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// Joining (DESIGN.md §6):
//
//	device                                   any manager (→ the leader)
//	  key, CSR (key stays) ──TLS, CA pinned by the token──▶ check token
//	                                         sign: new node ID, role = token kind
//	                                         register node; a manager: Raft non-voter
//	  ◀── certificate, trust bundle, managers, index ──
//	a manager: catch up to index, then ask to vote (/v1/internal/promote)
//	a worker:  follow a manager's watch of its scope

// tokenFor returns the current token of a kind, making one if there is
// none (or the current one has expired or been revoked).
func (m *Manager) tokenFor(kind string, rotate bool, ttl time.Duration) (store.JoinToken, error) {
	// One at a time: each writes the whole list it read.
	m.tokenMu.Lock()
	defer m.tokenMu.Unlock()
	var tokens []store.JoinToken
	m.state.View(func(v *store.View) error { tokens = v.JoinTokens(); return nil })
	now := time.Now().UTC()
	if !rotate {
		for _, t := range tokens {
			if string(t.Kind) == kind && !t.Revoked && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt)) {
				return t, nil
			}
		}
	}
	ca, err := m.clusterCA()
	if err != nil {
		return store.JoinToken{}, api.Errorf(api.CodeUnavailable, "no token yet: %v", err)
	}
	tok, rec, err := pki.NewToken(pki.Role(kind), ca.Digest(), ttl, now)
	if err != nil {
		return store.JoinToken{}, api.Errorf(api.CodeInternal, "%v", err)
	}
	// Rotation revokes the kind's older tokens; expired ones are dropped.
	var keep []store.JoinToken
	for _, t := range tokens {
		if !t.ExpiresAt.IsZero() && now.After(t.ExpiresAt) {
			continue
		}
		if string(t.Kind) == kind && rotate {
			t.Revoked = true
		}
		keep = append(keep, t)
	}
	nt := store.JoinToken{TokenRecord: rec, Token: tok}
	keep = append(keep, nt)
	if _, err := m.propose(store.CmdJoinTokens, store.JoinTokens{Tokens: keep}); err != nil {
		return store.JoinToken{}, err
	}
	return nt, nil
}

// getJoinToken answers GET /v1/join-tokens/{kind}, and POST with ?rotate.
func (m *Manager) joinToken(w http.ResponseWriter, r *http.Request) {
	if !peerIsManager(r) {
		writeError(w, api.Errorf(api.CodeForbidden, "join tokens are for managers' operators"))
		return
	}
	kind := r.PathValue("kind")
	if kind != api.RoleWorker && kind != api.RoleManager {
		writeError(w, api.Errorf(api.CodeInvalid, "%q: ask for a worker or a manager token", kind))
		return
	}
	var ttl time.Duration
	if s := r.URL.Query().Get("ttl"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < time.Minute {
			writeError(w, api.Errorf(api.CodeInvalid, "ttl %q: give a duration of a minute or more, like 24h", s))
			return
		}
		ttl = d
	}
	rotate := r.Method == http.MethodPost
	t, err := m.tokenFor(kind, rotate || ttl > 0, ttl)
	if err != nil {
		writeError(w, err)
		return
	}
	info := api.JoinTokenInfo{Kind: kind, Token: t.Token, ExpiresAt: t.ExpiresAt}
	m.state.View(func(v *store.View) error {
		for _, n := range v.Nodes() {
			if n.Spec.Role == api.RoleManager && n.Description.Addr != "" {
				info.Managers = append(info.Managers, n.Description.Addr)
			}
		}
		return nil
	})
	writeJSON(w, http.StatusOK, info)
}

// postJoin takes a device into the cluster.
func (m *Manager) postJoin(w http.ResponseWriter, r *http.Request) {
	var req api.JoinRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	res, err := m.join(r.Context(), &req)
	if err != nil {
		m.log.Warn("join refused", "hostname", req.Description.Hostname, "err", err)
		writeError(w, err)
		return
	}
	m.log.Info("node joined", "node", res.NodeID, "role", res.Role, "hostname", req.Description.Hostname)
	writeJSON(w, http.StatusOK, res)
}

func (m *Manager) join(ctx context.Context, req *api.JoinRequest) (*api.JoinResponse, error) {
	tok, err := pki.ParseToken(req.Token)
	if err != nil {
		return nil, api.Errorf(api.CodeForbidden, "%v", err)
	}
	if req.Description.Hostname == "" {
		return nil, api.Errorf(api.CodeInvalid, "the joining node must say its hostname")
	}
	ca, bundle, err := m.caAndTrust()
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "%v", err)
	}
	var rec pki.TokenRecord
	var stale []*api.Node
	var managers []api.PeerAddr
	var clusterID string
	m.state.View(func(v *store.View) error {
		for _, t := range v.JoinTokens() {
			if t.ID == tok.ID {
				rec = t.TokenRecord
			}
		}
		for _, n := range v.Nodes() {
			if n.Description.Hostname == req.Description.Hostname && n.Status.State != api.NodeReady {
				stale = append(stale, n)
			}
			if n.Spec.Role == api.RoleManager {
				managers = append(managers, api.PeerAddr{ID: n.ID, Addr: n.Description.Addr})
			}
		}
		clusterID = v.Cluster().ClusterID
		return nil
	})
	// This manager is one to reach, registered yet or not.
	self := false
	for i, p := range managers {
		if p.ID == m.nodeID {
			self = true
			if p.Addr == "" {
				managers[i].Addr = m.cfg.AdvertiseAddr
			}
		}
	}
	if !self {
		managers = append(managers, api.PeerAddr{ID: m.nodeID, Addr: m.cfg.AdvertiseAddr})
	}
	if err := pki.CheckToken(rec, tok, bundle.Digests(), time.Now()); err != nil {
		return nil, api.Errorf(api.CodeForbidden, "%v", err)
	}
	id := api.NewID()
	role := string(tok.Kind)
	certPEM, err := ca.SignNode(req.CSR, pki.Identity{ClusterID: clusterID, NodeID: id, Role: tok.Kind}, nodeCertTTL, time.Now())
	if err != nil {
		return nil, api.Errorf(api.CodeInvalid, "certificate request: %v", err)
	}
	// A reinstalled device joins as a new node; its old entry, silent since,
	// is removed so its tasks move (no "duplicate hostname" error).
	now := time.Now().UTC()
	for _, n := range stale {
		if n.Spec.Role == api.RoleManager {
			continue // a manager leaves Raft through node rm
		}
		if _, err := m.propose(store.CmdNodeRemove, store.NodeRemove{ID: n.ID, Force: true, At: now}); err == nil {
			m.log.Info("removed the earlier entry of a rejoining device", "node", n.ID, "hostname", n.Description.Hostname)
		}
	}
	desc := req.Description
	if _, err := m.propose(store.CmdNodeRegister, store.NodeRegister{ID: id, Role: role, Description: desc, At: now}); err != nil {
		return nil, err
	}
	if role == api.RoleManager {
		m.book.set(id, desc.Addr)
		if err := m.raft.r.AddNonvoter(raft.ServerID(id), raft.ServerAddress(id), 0, 10*time.Second).Error(); err != nil {
			return nil, api.Errorf(api.CodeUnavailable, "add manager %s to raft: %v", id, err)
		}
	}
	return &api.JoinResponse{NodeID: id, ClusterID: clusterID, Role: role, CertPEM: string(certPEM),
		BundlePEM: string(bundle.PEM()), Managers: managers, Index: m.hub.Last()}, nil
}

// errJoinUnreachable: the manager to join through did not answer.
var errJoinUnreachable = errors.New("cannot reach a manager")

// joinCluster is the device's side: it asks a manager at addr to let it
// in with token, and returns its identity and credentials.
func joinCluster(ctx context.Context, addr, token string, desc api.NodeDescription) (*api.JoinResponse, []byte, error) {
	tok, err := pki.ParseToken(token)
	if err != nil {
		return nil, nil, fmt.Errorf("join: %w", err)
	}
	key, keyPEM, err := pki.NewKey()
	if err != nil {
		return nil, nil, err
	}
	csr, err := pki.NewCSR(key, "joining")
	if err != nil {
		return nil, nil, err
	}
	cfg := pki.BootstrapClientConfig(tok.CADigest)
	cfg.NextProtos = []string{alpnHTTP}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialTLSContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			d := &tls.Dialer{Config: cfg}
			return d.DialContext(ctx, "tcp", addr)
		}}}
	body, _ := json.Marshal(api.JoinRequest{Token: token, CSR: csr, Description: desc})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://manager/v1/join", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		var verr *tls.CertificateVerificationError
		if errors.Is(err, pki.ErrPinMismatch) || errors.As(err, &verr) {
			return nil, nil, fmt.Errorf("join: the manager at %s is not of the cluster this token was made for (another cluster, or a CA rotated since): ask an operator for a new token (warrenctl join-token): %w", addr, err)
		}
		return nil, nil, fmt.Errorf("join: %w at %s: %v", errJoinUnreachable, addr, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		var e api.Error
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			if resp.StatusCode == http.StatusServiceUnavailable {
				// No leader there yet: not a refusal, try again.
				return nil, nil, fmt.Errorf("join: %w: %s: %v", errJoinUnreachable, addr, &e)
			}
			return nil, nil, fmt.Errorf("join refused by %s: %w", addr, &e)
		}
		return nil, nil, fmt.Errorf("join refused by %s: %s", addr, resp.Status)
	}
	var jr api.JoinResponse
	if err := json.Unmarshal(b, &jr); err != nil {
		return nil, nil, fmt.Errorf("join: bad answer from %s: %w", addr, err)
	}
	return &jr, keyPEM, nil
}

// postPromote lets a manager that has caught up vote.
func (m *Manager) postPromote(w http.ResponseWriter, r *http.Request) {
	p, ok := peerOf(r)
	id := p.NodeID
	if !ok {
		id = r.URL.Query().Get("node") // local: tests and recovery
	}
	if ok && p.Role != api.RoleManager {
		writeError(w, api.Errorf(api.CodeForbidden, "only a manager certificate may ask to vote"))
		return
	}
	var n *api.Node
	var err error
	m.state.View(func(v *store.View) error { n, err = v.Node(id); return nil })
	if err != nil {
		writeError(w, err)
		return
	}
	if n.Spec.Role != api.RoleManager {
		writeError(w, api.Errorf(api.CodeForbidden, "node %s is a %s", id, n.Spec.Role))
		return
	}
	srv, in, err := m.raftServer(id)
	if err != nil {
		writeError(w, api.Errorf(api.CodeUnavailable, "%v", err))
		return
	}
	if in && srv.Suffrage == raft.Voter {
		writeJSON(w, http.StatusOK, map[string]string{"status": "voter"})
		return
	}
	if err := m.raft.r.AddVoter(raft.ServerID(id), raft.ServerAddress(id), 0, 10*time.Second).Error(); err != nil {
		writeError(w, api.Errorf(api.CodeUnavailable, "add voter %s: %v", id, err))
		return
	}
	m.log.Info("manager votes now", "node", id)
	writeJSON(w, http.StatusOK, map[string]string{"status": "voter"})
}

// askToVote runs on a manager that joined: once it has applied what the
// leader had when it joined, it asks to become a voter.
func (m *Manager) askToVote(ctx context.Context, index uint64) {
	if err := m.hub.WaitFor(ctx, index); err != nil {
		return
	}
	for ctx.Err() == nil {
		if m.isVoter() {
			return
		}
		if err := m.leaderCall(ctx, http.MethodPost, "/v1/internal/promote"); err == nil {
			return
		} else {
			m.log.Debug("ask to vote", "err", err)
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
}

func (m *Manager) isVoter() bool {
	srv, in, err := m.raftServer(m.nodeID)
	return err == nil && in && srv.Suffrage == raft.Voter
}

// raftServer finds a node in the Raft configuration.
func (m *Manager) raftServer(id string) (srv raft.Server, in bool, err error) {
	f := m.raft.r.GetConfiguration()
	if err := f.Error(); err != nil {
		return raft.Server{}, false, err
	}
	for _, s := range f.Configuration().Servers {
		if string(s.ID) == id {
			return s, true, nil
		}
	}
	return raft.Server{}, false, nil
}

// leaderCall makes a bodiless internal call on the leader.
func (m *Manager) leaderCall(ctx context.Context, method, path string) error {
	leader := m.leaderID()
	if leader == "" || m.cfg.Peers == nil {
		return errors.New("no leader to call")
	}
	hc, base, err := m.cfg.Peers.Client(leader)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		return fmt.Errorf("%s %s on %s: %s %s", method, path, leader, resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

// postRenew signs a new certificate for the calling node, with the role
// its node record has now (promotion and demotion change it).
func (m *Manager) postRenew(w http.ResponseWriter, r *http.Request) {
	p, ok := peerOf(r)
	if !ok || p.NodeID == "" {
		writeError(w, api.Errorf(api.CodeForbidden, "renewal needs the node's current certificate"))
		return
	}
	var req api.RenewRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	var n *api.Node
	var err error
	m.state.View(func(v *store.View) error { n, err = v.Node(p.NodeID); return nil })
	if err != nil {
		writeError(w, api.Errorf(api.CodeForbidden, "node %s is not in the cluster any more: join it again", p.NodeID))
		return
	}
	ca, bundle, err := m.caAndTrust()
	if err != nil {
		writeError(w, api.Errorf(api.CodeUnavailable, "%v", err))
		return
	}
	certPEM, err := ca.SignNode(req.CSR, pki.Identity{ClusterID: ca.ClusterID(), NodeID: n.ID, Role: pki.Role(n.Spec.Role)}, nodeCertTTL, time.Now())
	if err != nil {
		writeError(w, api.Errorf(api.CodeInvalid, "certificate request: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, api.RenewResponse{Role: n.Spec.Role, CertPEM: string(certPEM), BundlePEM: string(bundle.PEM())})
}
