// Package authz says who called the manager and whether they may call a
// route. Every route of the API declares who may call it (a Rule); one
// middleware checks it on every hop, from the caller the request names:
//
//	local socket ─▶ Caller{local, admin}      (root or group warren)
//	read socket  ─▶ Caller{local, viewer}     (warren-dns, warren-ingress)
//	node port    ─▶ the certificate's identity, checked against the
//	                cluster's records on every request: a removed node, a
//	                demoted manager, a revoked operator lose their rights at once
//	              ─▶ from a manager only: the caller it passes on (Header)
//
// A forwarded request carries its original caller, and only a manager is
// trusted to vouch for one: a worker relaying its agent's writes is the
// caller itself.
package authz

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/warren-edge/warren/daemons/api"
)

// Kind is what sort of caller a request comes from.
type Kind string

const (
	// Anonymous callers have no certificate: they may only join.
	Anonymous Kind = ""
	// Local callers use a node's unix socket.
	Local Kind = "local"
	// Operator callers present an operator certificate.
	Operator Kind = "operator"
	// Manager callers are manager nodes acting for themselves.
	Manager Kind = "manager"
	// Worker callers are worker nodes acting for themselves.
	Worker Kind = "worker"
)

// Role is what a person (a local or operator caller) may do.
type Role string

// The roles: admin does everything; operator deploys and changes services
// and nodes but not the CA, the tokens or the operators; viewer reads.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleViewer   Role = "viewer"
)

// Roles lists the roles, strongest first.
var Roles = []Role{RoleAdmin, RoleOperator, RoleViewer}

// Valid says whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleOperator || r == RoleViewer }

// Caller is who a request comes from.
type Caller struct {
	Kind Kind
	// Role is a local or operator caller's.
	Role Role
	// NodeID is a manager's or worker's own ID, or the node whose socket a
	// local caller used.
	NodeID string
	// Name is an operator's name.
	Name string
	// Via is the manager that passed the request on ("" when the caller
	// reached this manager itself).
	Via string
}

// String names the caller for logs and errors.
func (c Caller) String() string {
	s := ""
	switch c.Kind {
	case Anonymous:
		s = "an anonymous caller"
	case Local:
		s = fmt.Sprintf("local %s on node %s", c.Role, c.NodeID)
	case Operator:
		s = fmt.Sprintf("operator %s (%s)", c.Name, c.Role)
	case Manager, Worker:
		s = fmt.Sprintf("%s %s", c.Kind, c.NodeID)
	default:
		s = string(c.Kind)
	}
	if c.Via != "" {
		s += " via manager " + c.Via
	}
	return s
}

// Who is a set of callers.
type Who uint16

const (
	// Admin: local callers of the API socket, admin operators.
	Admin Who = 1 << iota
	// Operators: operator certificates of role operator.
	Operators
	// Viewers: viewer certificates, the read-only socket.
	Viewers
	// Managers: manager nodes, for themselves.
	Managers
	// Workers: worker nodes, for themselves.
	Workers
	// Anyone: no certificate needed (joining).
	Anyone
)

// The usual sets.
const (
	Readers = Admin | Operators | Viewers
	Writers = Admin | Operators
	Nodes   = Managers | Workers
)

func (c Caller) who() Who {
	switch c.Kind {
	case Local, Operator:
		switch c.Role {
		case RoleAdmin:
			return Admin
		case RoleOperator:
			return Operators
		case RoleViewer:
			return Viewers
		}
	case Manager:
		return Managers
	case Worker:
		return Workers
	}
	return 0
}

// Rule is who may call a route.
type Rule struct {
	Who Who
	// Self holds node callers (managers and workers) to their own node:
	// the route's {ref} path value must be the caller's node ID.
	Self bool
	// Audit has every call logged (who, the route, the request) where the
	// caller enters the cluster, i.e. by the manager that authenticated
	// it first-hand (not one it was passed on to).
	Audit bool
}

// Check says whether c may call the route of r under the rule, with an
// error a person can act on (CodeForbidden) when not.
func (rule Rule) Check(c Caller, r *http.Request) error {
	if rule.Who&Anyone != 0 {
		return nil
	}
	w := c.who()
	if rule.Who&w == 0 {
		return refusal(c, r, rule)
	}
	if rule.Self && w&Nodes != 0 && r.PathValue("ref") != c.NodeID {
		return api.Errorf(api.CodeForbidden, "a %s certificate may not call %s %s: a node acts only for itself (node %s)", c.Kind, r.Method, r.URL.Path, c.NodeID)
	}
	return nil
}

func refusal(c Caller, r *http.Request, rule Rule) error {
	route := r.Method + " " + r.URL.Path
	switch c.Kind {
	case Anonymous:
		return api.Errorf(api.CodeForbidden, "the node port needs a node certificate of this cluster: join the node first (warren manager --join ADDR --token-file FILE)")
	case Worker:
		return api.Errorf(api.CodeForbidden, "a worker certificate may not call %s: that is for operators (warrenctl on a manager, or an operator certificate)", route)
	case Manager:
		return api.Errorf(api.CodeForbidden, "a manager certificate may not call %s for itself: managers pass operators' requests on with the operator named", route)
	}
	need := "the admin role"
	if rule.Who&Operators != 0 {
		need = "the operator or admin role"
	}
	return api.Errorf(api.CodeForbidden, "%s may not call %s: it needs %s", c, route, need)
}

type callerKey struct{}

// WithCaller records the caller on a request's context.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf returns the caller recorded on ctx (Anonymous if none).
func CallerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey{}).(Caller)
	return c
}

// Header carries the original caller of a request a manager passes on.
// It is believed only from a manager; from anyone else it is ignored.
const Header = "X-Warren-Caller"

// Encode is the caller as Header carries it.
func (c Caller) Encode() string {
	v := url.Values{}
	v.Set("kind", string(c.Kind))
	if c.Role != "" {
		v.Set("role", string(c.Role))
	}
	if c.NodeID != "" {
		v.Set("node", c.NodeID)
	}
	if c.Name != "" {
		v.Set("name", c.Name)
	}
	return v.Encode()
}

// Decode reads a caller from Header's value, as vouched for by the
// manager via.
func Decode(s, via string) (Caller, error) {
	v, err := url.ParseQuery(s)
	if err != nil {
		return Caller{}, fmt.Errorf("authz: %s: %w", Header, err)
	}
	c := Caller{Kind: Kind(v.Get("kind")), Role: Role(v.Get("role")), NodeID: v.Get("node"), Name: v.Get("name"), Via: via}
	switch c.Kind {
	case Local:
		if !c.Role.Valid() || c.NodeID == "" {
			return Caller{}, fmt.Errorf("authz: %s: a local caller needs a role and a node", Header)
		}
	case Operator:
		if !c.Role.Valid() || c.Name == "" {
			return Caller{}, fmt.Errorf("authz: %s: an operator needs a role and a name", Header)
		}
	case Manager, Worker:
		if c.NodeID == "" || c.Role != "" {
			return Caller{}, fmt.Errorf("authz: %s: a node caller needs its node ID, and no role", Header)
		}
	default:
		return Caller{}, fmt.Errorf("authz: %s: kind %q is not a caller a manager passes on", Header, c.Kind)
	}
	return c, nil
}
