package membership

import (
	"net/http"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/authz"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// Operators are people (and daemons such as warren-ingress) who reach the
// API on the node port with a certificate of their own, with a role:
// admin, operator or viewer (authz). The key stays with the operator;
// the cluster signs a request for it and keeps a record, and removing the
// record revokes the certificate at once, on every manager.

// maxOperatorTTL bounds an operator certificate's life.
const maxOperatorTTL = 365 * 24 * time.Hour

// postOperator answers POST /v1/operators: a certificate for an
// operator's key, with a role.
func (m *Membership) postOperator(w http.ResponseWriter, r *http.Request) {
	var req api.OperatorRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.Error(w, err)
		return
	}
	role := authz.Role(req.Role)
	if !role.Valid() {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "role %q: give admin, operator or viewer", req.Role))
		return
	}
	id := pki.Identity{NodeID: req.Name, Role: pki.Role(role)}
	ttl := req.TTL.D()
	switch {
	case ttl == 0:
		ttl = nodeCertTTL
	case ttl < time.Hour || ttl > maxOperatorTTL:
		httpx.Error(w, api.Errorf(api.CodeInvalid, "ttl %s: give an hour to a year", ttl))
		return
	}
	ca, bundle, err := m.caAndTrust()
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "%v", err))
		return
	}
	id.ClusterID = ca.ClusterID()
	if err := id.Validate(); err != nil {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "operator name %q: %v", req.Name, err))
		return
	}
	now := time.Now().UTC()
	certPEM, err := ca.SignNode(req.CSR, id, ttl, now)
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "certificate request: %v", err))
		return
	}
	op := api.Operator{Name: req.Name, Role: req.Role, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if _, err := m.propose(r.Context(), store.CmdOperatorPut, store.OperatorPut{Operator: op}); err != nil {
		httpx.Error(w, err)
		return
	}
	m.log.Info("operator certificate issued", "operator", op.Name, "role", op.Role, "expires", op.ExpiresAt, "by", authz.CallerOf(r.Context()).String())
	httpx.JSON(w, http.StatusOK, api.OperatorResponse{Operator: op, CertPEM: string(certPEM), BundlePEM: string(bundle.PEM()), Managers: m.managerAddrs()})
}

// listOperators answers GET /v1/operators.
func (m *Membership) listOperators(w http.ResponseWriter, r *http.Request) {
	ops := []api.Operator{}
	m.store.View(func(v *store.View) error { ops = append(ops, v.Operators()...); return nil })
	httpx.JSON(w, http.StatusOK, ops)
}

// deleteOperator answers DELETE /v1/operators/{name}: the operator's
// certificates are refused from now on, on every manager.
func (m *Membership) deleteOperator(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	now := time.Now().UTC()
	// Denied until its last certificate expires, and no longer.
	until := now
	m.store.View(func(v *store.View) error {
		if o, ok := v.Operator(name); ok && o.ExpiresAt.After(until) {
			until = o.ExpiresAt
		}
		return nil
	})
	if _, err := m.propose(r.Context(), store.CmdOperatorDrop, store.OperatorDrop{Name: name, At: now, RevokeUntil: until}); err != nil {
		httpx.Error(w, err)
		return
	}
	m.log.Info("operator removed", "operator", name, "by", authz.CallerOf(r.Context()).String())
	httpx.JSON(w, http.StatusOK, map[string]string{"removed": name})
}

// managerAddrs are the managers' node ports.
func (m *Membership) managerAddrs() []string {
	var out []string
	m.store.View(func(v *store.View) error {
		for _, n := range v.Nodes() {
			if n.Spec.Role == api.RoleManager && n.Description.Addr != "" {
				out = append(out, n.Description.Addr)
			}
		}
		return nil
	})
	return out
}
