package membership

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/authz"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// Who calls on the node port. A certificate says who its holder was when
// it was issued; the cluster's records say who they are now. Both are
// read on every request, so that `node rm`, `node demote` and `operator
// rm` take effect at once, on every manager, while the certificate is
// still valid:
//
//	certificate      record now           caller
//	manager          manager              manager
//	manager          worker (demoted)     worker
//	worker           worker or manager    worker (a promoted node renews first)
//	node             none, or denied      refused
//	operator ROLE    operator, same role  operator ROLE
//	operator         none, or denied      refused
//
// A node certificate that has expired (the node port lets it through its
// handshake on the API, never on Raft) is judged on every request by
// this manager's clock:
//
//	node, expired    same role            the node, Expired: it may renew
//	                                      (authz.Rule.Expired) within the
//	                                      grace, or join again after it
//	node, expired    another role         refused: it cannot renew into
//	                                      the role it was given meanwhile
//	operator, expired                     refused: an admin makes a new one
//	manager, expired, passing a caller on refused: it vouches for nobody

type tlsIdentityKey struct{}

// tlsIdentity is the verified certificate of a node-port connection.
type tlsIdentity struct {
	id       pki.Identity
	notAfter time.Time
}

func withTLSIdentity(ctx context.Context, id pki.Identity, notAfter time.Time) context.Context {
	return context.WithValue(ctx, tlsIdentityKey{}, tlsIdentity{id, notAfter})
}

// TLSIdentity is the verified certificate identity of the node-port
// connection r came on, if it had a certificate.
func TLSIdentity(r *http.Request) (pki.Identity, bool) {
	t, ok := r.Context().Value(tlsIdentityKey{}).(tlsIdentity)
	return t.id, ok
}

// Authenticate says who called r on the node port: the anonymous caller
// when there was no certificate (only joining is open to it), the
// certificate's holder as the cluster's records say (marked Expired when
// its certificate has expired), or, from a manager, the caller that
// manager passes the request on for (authz.Header), checked against the
// records again.
func (m *Membership) Authenticate(r *http.Request) (authz.Caller, error) {
	t, ok := r.Context().Value(tlsIdentityKey{}).(tlsIdentity)
	return m.authenticate(r, t.id, ok, t.notAfter)
}

// AuthenticateAs is Authenticate for a transport that establishes the
// peer's identity itself (ok false: no identity), with a certificate that
// has not expired.
func (m *Membership) AuthenticateAs(r *http.Request, id pki.Identity, ok bool) (authz.Caller, error) {
	return m.authenticate(r, id, ok, time.Time{})
}

// authenticate is Authenticate for a certificate identity that ends at
// notAfter (zero: not known to have ended).
func (m *Membership) authenticate(r *http.Request, id pki.Identity, ok bool, notAfter time.Time) (authz.Caller, error) {
	if !ok {
		// Anonymous: a device joining (nothing else is open to it). Joins
		// are bounded per address, here at the first manager they reach.
		if ok, wait := m.joins.allow(hostOfRemote(r.RemoteAddr), time.Now()); !ok {
			return authz.Caller{}, api.Errorf(api.CodeTooMany, "too many joins from %s: try again in %s", hostOfRemote(r.RemoteAddr), wait.Round(time.Second)+time.Second)
		}
		return authz.Caller{}, nil
	}
	now := time.Now()
	expired := !notAfter.IsZero() && now.After(notAfter)
	if expired && !id.Role.IsNode() {
		return authz.Caller{}, api.Errorf(api.CodeForbidden, "the certificate of operator %q expired on %s: ask an admin for a new one (warrenctl operator add)", id.NodeID, notAfter.UTC().Format(time.DateOnly))
	}
	c, err := m.callerOf(id)
	if err != nil {
		return authz.Caller{}, err
	}
	h := r.Header.Get(authz.Header)
	if expired {
		if c.Expired, err = m.expiry(id, notAfter, now); err != nil {
			return authz.Caller{}, err
		}
		if h != "" {
			return authz.Caller{}, api.Errorf(api.CodeForbidden, "the certificate of manager %s expired on %s: it passes nobody's request on", id.NodeID, notAfter.UTC().Format(time.DateOnly))
		}
	}
	if h == "" || c.Kind != authz.Manager {
		return c, nil // only a manager vouches for another caller
	}
	v, err := authz.Decode(h, c.NodeID)
	if err != nil {
		return authz.Caller{}, api.Errorf(api.CodeInvalid, "%v", err)
	}
	switch v.Kind {
	case authz.Manager, authz.Worker:
		role := pki.RoleWorker
		if v.Kind == authz.Manager {
			role = pki.RoleManager
		}
		nc, err := m.checkNode(pki.Identity{NodeID: v.NodeID, Role: role}, false)
		if err != nil {
			return authz.Caller{}, err
		}
		if nc.Kind != v.Kind {
			return authz.Caller{}, api.Errorf(api.CodeForbidden, "manager %s passed on a request of %s, which the cluster knows as a %s", c.NodeID, v, nc.Kind)
		}
	case authz.Operator:
		if m.isWorker() {
			// A worker holds no operator records (they are not in its
			// scope): the manager that vouches checked this operator
			// against the cluster's records on its own hop, and only a
			// manager, checked above against this node's records, may
			// vouch.
			break
		}
		if _, err := m.checkOperator(v.Name, v.Role); err != nil {
			return authz.Caller{}, err
		}
	}
	return v, nil
}

// expiry judges a node certificate that expired at notAfter, at now: the
// node must hold the role the certificate says (a node promoted or
// demoted meanwhile cannot renew into its new role with it), and may
// renew it until the grace ends.
func (m *Membership) expiry(id pki.Identity, notAfter, now time.Time) (*authz.Expiry, error) {
	n, _ := m.nodeRecord(id.NodeID)
	if n == nil || n.Spec.Role != string(id.Role) {
		role := "no role"
		if n != nil {
			role = "the role " + n.Spec.Role
		}
		return nil, api.Errorf(api.CodeForbidden, "the %s certificate of node %s expired on %s, and the node has %s now: it cannot be renewed; join the node again as a new node (a fresh data dir and a token)",
			id.Role, id.NodeID, notAfter.UTC().Format(time.DateOnly), role)
	}
	e := &authz.Expiry{At: notAfter, GraceEnds: notAfter.Add(m.certGrace())}
	e.Lapsed = !now.Before(e.GraceEnds)
	return e, nil
}

// callerOf is the caller a verified certificate's identity stands for now.
func (m *Membership) callerOf(id pki.Identity) (authz.Caller, error) {
	if id.Role.IsOperator() {
		return m.checkOperator(id.NodeID, authz.Role(id.Role))
	}
	return m.checkNode(id, false)
}

// checkNode looks a node's identity up in the records: refused when the
// node is gone or denied, a worker unless both the certificate and the
// record say manager (wantManager refuses anything less).
func (m *Membership) checkNode(id pki.Identity, wantManager bool) (authz.Caller, error) {
	n, revoked := m.nodeRecord(id.NodeID)
	if n == nil && !revoked {
		// Not removed (that leaves it denied): not registered yet, as a
		// manager of a new cluster is for a moment after it starts.
		return authz.Caller{}, api.Errorf(api.CodeUnavailable, "node %s is not in this manager's records yet: retry in a moment (a node that was removed joins again with a new token)", id.NodeID)
	}
	if n == nil || revoked {
		return authz.Caller{}, api.Errorf(api.CodeForbidden, "node %s is not in the cluster any more (it was removed): its certificate is no longer accepted; join the device again with a new token", id.NodeID)
	}
	c := authz.Caller{Kind: authz.Worker, NodeID: n.ID}
	if id.Role == pki.RoleManager && n.Spec.Role == api.RoleManager {
		c.Kind = authz.Manager
	}
	if wantManager && c.Kind != authz.Manager {
		return authz.Caller{}, api.Errorf(api.CodeForbidden, "node %s is a %s now: its manager certificate is no longer accepted for what only managers do", n.ID, n.Spec.Role)
	}
	return c, nil
}

// checkOperator looks an operator up in the records.
func (m *Membership) checkOperator(name string, role authz.Role) (authz.Caller, error) {
	var o api.Operator
	found, revoked := false, false
	m.store.View(func(v *store.View) error {
		o, found = v.Operator(name)
		revoked = v.Revoked(store.RevokedOperator, name, time.Now())
		return nil
	})
	if !found || revoked {
		return authz.Caller{}, api.Errorf(api.CodeForbidden, "operator %q is not known to the cluster (it was removed): ask an admin for a new certificate (warrenctl operator add)", name)
	}
	if authz.Role(o.Role) != role {
		return authz.Caller{}, api.Errorf(api.CodeForbidden, "operator %q holds a %s certificate but is a %s now: ask an admin for a new certificate", name, role, o.Role)
	}
	return authz.Caller{Kind: authz.Operator, Role: role, Name: name}, nil
}

func hostOfRemote(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

// checkRaftPeer decides whether a manager certificate may open a Raft
// connection. Unlike an API call, a node whose state is behind (a manager
// that has just joined and whose state is empty) must let the leader in
// before it knows it: so only what the state says against the peer
// counts — on the deny list (removed), or a record that says it is not a
// manager (demoted).
func (m *Membership) checkRaftPeer(id pki.Identity) error {
	if id.Role != pki.RoleManager {
		return api.Errorf(api.CodeForbidden, "%s is a %s certificate: Raft is for managers", id.NodeID, id.Role)
	}
	n, revoked := m.nodeRecord(id.NodeID)
	switch {
	case revoked:
		return api.Errorf(api.CodeForbidden, "node %s was removed from the cluster", id.NodeID)
	case n != nil && n.Spec.Role != api.RoleManager:
		return api.Errorf(api.CodeForbidden, "node %s is a %s now", id.NodeID, n.Spec.Role)
	}
	return nil
}

// nodeRecord is what the state says of a node now: its record (nil when
// there is none) and whether it is on the deny list.
func (m *Membership) nodeRecord(id string) (n *api.Node, revoked bool) {
	m.store.View(func(v *store.View) error {
		n, _ = v.NodeByID(id)
		revoked = v.Revoked(store.RevokedNode, id, time.Now())
		return nil
	})
	return n, revoked
}
