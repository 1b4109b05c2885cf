package membership

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/authz"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/manager/peer"
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
//
// Joining again (warren rejoin, for a worker whose certificate expired
// beyond the managers' grace): the device also presents its old
// certificate in the handshake. The router authenticates it as that node
// (not removed, the same role; its certificate may have expired), and
// with a worker token the node keeps its ID, its record and its tasks.
// postJoin takes a device into the cluster.
func (m *Membership) postJoin(w http.ResponseWriter, r *http.Request) {
	var req api.JoinRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.Error(w, err)
		return
	}
	res, err := m.join(r.Context(), &req)
	if err != nil {
		m.log.Warn("join refused", "hostname", req.Description.Hostname, "err", err)
		httpx.Error(w, err)
		return
	}
	m.log.Info("node joined", "node", res.NodeID, "role", res.Role, "hostname", req.Description.Hostname)
	httpx.JSON(w, http.StatusOK, res)
}

func (m *Membership) join(ctx context.Context, req *api.JoinRequest) (*api.JoinResponse, error) {
	tok, err := pki.ParseToken(req.Token)
	if err != nil {
		return nil, api.Errorf(api.CodeForbidden, "%v", err)
	}
	ca, bundle, err := m.caAndTrust()
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "%v", err)
	}
	var rec pki.TokenRecord
	var managers []api.PeerAddr
	var clusterID, clusterCIDR string
	m.store.View(func(v *store.View) error {
		for _, t := range v.JoinTokens() {
			if t.ID == tok.ID {
				rec = t.TokenRecord
			}
		}
		for _, n := range v.Nodes() {
			if n.Spec.Role == api.RoleManager {
				managers = append(managers, api.PeerAddr{ID: n.ID, Addr: n.Description.Addr})
			}
		}
		clusterID, clusterCIDR = v.Cluster().ClusterID, v.Cluster().ClusterCIDR
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
	if c := authz.CallerOf(ctx); c.Kind == authz.Worker {
		return m.rejoin(ctx, c, tok, req, ca, bundle, clusterID, clusterCIDR, managers)
	}
	if req.Description.Hostname == "" {
		return nil, api.Errorf(api.CodeInvalid, "the joining node must say its hostname")
	}
	id := api.NewID()
	role := string(tok.Kind)
	certPEM, err := ca.SignNode(req.CSR, pki.Identity{ClusterID: clusterID, NodeID: id, Role: tok.Kind}, nodeCertTTL, time.Now())
	if err != nil {
		return nil, api.Errorf(api.CodeInvalid, "certificate request: %v", err)
	}
	// A node's identity is the ID made here, never its hostname: a device
	// joining under the name of another node (a reinstalled one, or an
	// impostor) is a new node beside it, and removes nothing. The old
	// entry goes with node rm; both show in node ls meanwhile.
	now := time.Now().UTC()
	desc := req.Description
	desc.Certificate = nil
	if role == api.RoleWorker {
		if desc.Certificate, err = certRecord(certPEM); err != nil {
			return nil, api.Errorf(api.CodeInternal, "%v", err)
		}
	}
	if _, err := m.propose(ctx, store.CmdNodeRegister, store.NodeRegister{ID: id, Role: role, Description: desc, At: now}); err != nil {
		return nil, err
	}
	if role == api.RoleManager {
		m.book.set(id, desc.Addr)
		if err := m.core.AddNonvoter(id); err != nil {
			return nil, api.Errorf(api.CodeUnavailable, "add manager %s to raft: %v", id, err)
		}
	}
	resp := &api.JoinResponse{NodeID: id, ClusterID: clusterID, ClusterCIDR: clusterCIDR, Role: role, CertPEM: string(certPEM),
		BundlePEM: string(bundle.PEM()), Managers: managers, Index: m.store.Hub().Last()}
	if role == api.RoleManager {
		// The token proved the caller may be a manager; without the KEK
		// now, it fetches it later (keepKEK).
		resp.KEK, _ = m.kekFile()
	}
	return resp, nil
}

// rejoin takes worker c back with its ID: it proved it holds the key of
// a certificate of that node (the handshake, see Authenticate), which may
// have expired, and brings a worker token. The record keeps what it says
// (the hostname a node.hostname constraint matches, the subnet, the
// tasks); only the certificate and the address change.
func (m *Membership) rejoin(ctx context.Context, c authz.Caller, tok pki.Token, req *api.JoinRequest, ca *pki.CA, bundle *pki.Bundle,
	clusterID, clusterCIDR string, managers []api.PeerAddr) (*api.JoinResponse, error) {
	if tok.Kind != pki.RoleWorker {
		return nil, api.Errorf(api.CodeForbidden, "node %s joins again as the worker it is: use a worker token (warrenctl join-token worker), or join it as a new node with a fresh data dir", c.NodeID)
	}
	var n *api.Node
	m.store.View(func(v *store.View) error { n, _ = v.NodeByID(c.NodeID); return nil })
	if n == nil || n.Spec.Role != api.RoleWorker {
		return nil, api.Errorf(api.CodeForbidden, "node %s is not a worker of the cluster: join it as a new node with a fresh data dir", c.NodeID)
	}
	certPEM, err := ca.SignNode(req.CSR, pki.Identity{ClusterID: clusterID, NodeID: n.ID, Role: pki.RoleWorker}, nodeCertTTL, time.Now())
	if err != nil {
		return nil, api.Errorf(api.CodeInvalid, "certificate request: %v", err)
	}
	if err := m.recordCertificate(ctx, n, certPEM, req.Description.Addr); err != nil {
		return nil, err
	}
	m.log.Info("node joined again with its ID", "node", n.ID, "hostname", n.Description.Hostname, "old_certificate", c.Expired != nil)
	return &api.JoinResponse{NodeID: n.ID, ClusterID: clusterID, ClusterCIDR: clusterCIDR, Role: api.RoleWorker, CertPEM: string(certPEM),
		BundlePEM: string(bundle.PEM()), Managers: managers, Index: m.store.Hub().Last()}, nil
}

// recordCertificate writes in node n's record when the certificate just
// signed for it ends (and its address, if addr is not empty): warrenctl
// node ls tells from it a node cut off past its certificate's expiry.
func (m *Membership) recordCertificate(ctx context.Context, n *api.Node, certPEM []byte, addr string) error {
	rec, err := certRecord(certPEM)
	if err != nil {
		return api.Errorf(api.CodeInternal, "%v", err)
	}
	d := n.Description
	d.Certificate = rec
	if addr != "" {
		d.Addr = addr
	}
	_, err = m.propose(ctx, store.CmdNodeRegister, store.NodeRegister{ID: n.ID, Description: d, At: time.Now().UTC()})
	return err
}

// certRecord is what a node's record says of the chain SignNode made.
func certRecord(chainPEM []byte) (*api.NodeCertificate, error) {
	b, _ := pem.Decode(chainPEM)
	if b == nil {
		return nil, errors.New("manager: the signed certificate is not PEM")
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("manager: the signed certificate: %w", err)
	}
	return &api.NodeCertificate{NotAfter: leaf.NotAfter.UTC()}, nil
}

// errJoinUnreachable: the manager to join through did not answer.
var errJoinUnreachable = errors.New("cannot reach a manager")

// joinCluster is the device's side: it asks a manager at addr to let it
// in with token, and returns its identity and credentials. A device
// joining again presents its old certificate, prev, to keep its node ID.
func joinCluster(ctx context.Context, addr, token string, desc api.NodeDescription, prev *tls.Certificate) (*api.JoinResponse, []byte, error) {
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
	if prev != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return prev, nil }
	}
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
		if prev != nil && strings.Contains(err.Error(), "bad certificate") {
			// The manager refused the old certificate at the handshake
			// (a TLS alert says no more).
			return nil, nil, fmt.Errorf("join again: the manager at %s refused this node's certificate (its CA was rotated out since, or it is another cluster's): the node's ID cannot be kept; join it as a new node (a fresh data dir): %w", addr, err)
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

// postPromote lets a manager that has caught up vote: the calling
// manager itself, or (a local admin: tests and recovery) ?node=ID.
func (m *Membership) postPromote(w http.ResponseWriter, r *http.Request) {
	c := authz.CallerOf(r.Context())
	id := c.NodeID
	if c.Kind == authz.Local {
		id = r.URL.Query().Get("node")
	}
	var n *api.Node
	var err error
	m.store.View(func(v *store.View) error { n, err = v.Node(id); return nil })
	if err != nil {
		httpx.Error(w, err)
		return
	}
	if n.Spec.Role != api.RoleManager {
		httpx.Error(w, api.Errorf(api.CodeForbidden, "node %s is a %s", id, n.Spec.Role))
		return
	}
	member, err := m.core.Member(n.ID)
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", err))
		return
	}
	if member.Voter {
		httpx.JSON(w, http.StatusOK, map[string]string{"status": "voter"})
		return
	}
	if err := m.core.AddVoter(n.ID); err != nil {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "add voter %s: %v", n.ID, err))
		return
	}
	m.log.Info("manager votes now", "node", n.ID)
	httpx.JSON(w, http.StatusOK, map[string]string{"status": "voter"})
}

// askToVote runs on a manager that joined: once it has applied what the
// leader had when it joined, it asks to become a voter.
func (m *Membership) askToVote(ctx context.Context, index uint64) {
	if err := m.store.Hub().WaitFor(ctx, index); err != nil {
		return
	}
	for ctx.Err() == nil {
		if m.core.IsVoter() {
			return
		}
		leader := m.leaderID()
		if leader == "" {
			core.Sleep(ctx, 500*time.Millisecond)
			continue
		}
		err := m.peers.Do(ctx, leader, peer.Request{Method: http.MethodPost, Path: "/v1/internal/promote"}, nil)
		if err == nil {
			return
		}
		m.log.Debug("ask to vote", "err", err)
		core.Sleep(ctx, 500*time.Millisecond)
	}
}

// postRenew signs a new certificate for the calling node, with the role
// its node record has now (promotion and demotion change it), and records
// when it ends in the node's record. It runs on the leader. A node whose
// certificate expired reaches it within the grace only, and with the role
// it had (Authenticate, authz.Rule.Expired).
func (m *Membership) postRenew(w http.ResponseWriter, r *http.Request) {
	c := authz.CallerOf(r.Context())
	var req api.RenewRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.Error(w, err)
		return
	}
	var n *api.Node
	m.store.View(func(v *store.View) error { n, _ = v.NodeByID(c.NodeID); return nil })
	if n == nil {
		httpx.Error(w, api.Errorf(api.CodeForbidden, "node %s is not in the cluster any more: join it again", c.NodeID))
		return
	}
	ca, bundle, err := m.caAndTrust()
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", err))
		return
	}
	certPEM, err := ca.SignNode(req.CSR, pki.Identity{ClusterID: ca.ClusterID(), NodeID: n.ID, Role: pki.Role(n.Spec.Role)}, nodeCertTTL, time.Now())
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "certificate request: %v", err))
		return
	}
	if n.Spec.Role == api.RoleWorker {
		if err := m.recordCertificate(r.Context(), n, certPEM, ""); err != nil {
			httpx.Error(w, err)
			return
		}
	}
	if c.Expired != nil {
		m.log.Info("renewed the certificate of a node that was cut off past its expiry", "node", n.ID, "expired", c.Expired.At)
	}
	httpx.JSON(w, http.StatusOK, api.RenewResponse{Role: n.Spec.Role, CertPEM: string(certPEM), BundlePEM: string(bundle.PEM())})
}
