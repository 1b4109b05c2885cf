// Package authz says who called the manager and whether they may call a
// route. Every route of the API declares who may call it (a Rule); one
// middleware checks it on every hop, from the caller the request names:
//
//	local socket ─▶ Caller{local, admin}      (root or group warren)
//	read socket  ─▶ Caller{local, viewer}     (warren-dns)
//	ingress sock ─▶ Caller{local, ingress}    (warren-ingress: a viewer, and
//	                                           the ingress routes of its own node)
//	node port    ─▶ the certificate's identity, checked against the
//	                cluster's records on every request: a removed node, a
//	                demoted manager, a revoked operator lose their rights at once
//	              ─▶ a node's certificate that has expired: the same node,
//	                marked Expired; it may renew (Rule.Expired) within the
//	                managers' grace, and call nothing else
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
	"strconv"
	"time"

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

// RoleIngress is the role of the ingress socket's callers (warren-ingress
// on its node): what a viewer may, and its own node's ingress store,
// locks and route secrets. A local caller's role only: no operator holds
// it.
const RoleIngress Role = "ingress"

// Valid says whether r is a known role of a person (an operator's).
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleOperator || r == RoleViewer }

// validLocal says whether r is a role a local socket gives.
func (r Role) validLocal() bool { return r.Valid() || r == RoleIngress }

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
	// Expired is set when the caller is a node whose certificate has
	// expired (nil: a valid certificate, or no node's).
	Expired *Expiry
}

// Expiry is a node's certificate that has expired, as the manager that
// met its holder judged it, with its own clock. Within the managers'
// grace the node may renew it, and do nothing else; after the grace it
// must join again with a token.
type Expiry struct {
	// At is when the certificate expired.
	At time.Time
	// GraceEnds is when the managers stop renewing it.
	GraceEnds time.Time
	// Lapsed: the grace is over.
	Lapsed bool
}

// Grace is the length of the grace, for messages: "30-day".
func (e *Expiry) Grace() string {
	d := e.GraceEnds.Sub(e.At)
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d-day", d/(24*time.Hour))
	}
	return d.String()
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
	if c.Expired != nil {
		s += " (certificate expired " + c.Expired.At.UTC().Format(time.RFC3339) + ")"
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
	// Ingress: the ingress socket's callers (warren-ingress), who are
	// Viewers too.
	Ingress
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
		case RoleIngress:
			if c.Kind == Local {
				return Viewers | Ingress
			}
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
	// Expired lets in a node whose certificate has expired, within the
	// managers' grace (Caller.Expired): the renewal route, and no other.
	// Every route without it refuses such a caller, whatever Who says.
	Expired bool
	// Own marks a node's own data (its tasks' secret values; what its
	// warren-ingress shares with other ingress nodes): no operator
	// certificate may call the route, whatever Who says, and a local
	// caller (the node's agent or warren-ingress, on its node's socket)
	// only for its own node's {ref}, never passed on by another manager.
	Own bool
	// Scope, if set, is a check against the cluster's state that the
	// caller must pass as well (that node {ref} runs a task that uses the
	// secret it asks for). It runs on every hop, against that hop's state.
	Scope func(c Caller, r *http.Request) error
}

// Check says whether c may call the route of r under the rule, with an
// error a person can act on (CodeForbidden) when not.
func (rule Rule) Check(c Caller, r *http.Request) error {
	if rule.Who&Anyone != 0 {
		return nil
	}
	if e := c.Expired; e != nil {
		if err := rule.checkExpired(c, e, r); err != nil {
			return err
		}
	}
	w := c.who()
	if rule.Who&w == 0 {
		return refusal(c, r, rule)
	}
	if rule.Self && w&Nodes != 0 && r.PathValue("ref") != c.NodeID {
		return api.Errorf(api.CodeForbidden, "a %s certificate may not call %s %s: a node acts only for itself (node %s)", c.Kind, r.Method, r.URL.Path, c.NodeID)
	}
	if rule.Own {
		switch {
		case c.Kind == Operator:
			return api.Errorf(api.CodeForbidden, "%s may not call %s %s: only the node that runs a task using it gets it", c, r.Method, r.URL.Path)
		case c.Kind == Local && (r.PathValue("ref") != c.NodeID || (c.Via != "" && c.Via != c.NodeID)):
			return api.Errorf(api.CodeForbidden, "%s may not call %s %s: a node's socket serves that node's own tasks and data only", c, r.Method, r.URL.Path)
		}
	}
	if rule.Scope != nil {
		return rule.Scope(c, r)
	}
	return nil
}

// checkExpired refuses a caller whose certificate has expired, unless it
// renews within the grace.
func (rule Rule) checkExpired(c Caller, e *Expiry, r *http.Request) error {
	at := e.At.UTC().Format(time.DateOnly)
	switch {
	case e.Lapsed:
		return api.Errorf(api.CodeForbidden, "the certificate of node %s expired on %s, beyond the managers' %s grace (it ended %s): "+
			"re-join the node with a token, which keeps its ID: on the node, warren rejoin --join MANAGER:PORT --token-file FILE (warrenctl join-token worker prints one)",
			c.NodeID, at, e.Grace(), e.GraceEnds.UTC().Format(time.DateOnly))
	case !rule.Expired:
		return api.Errorf(api.CodeForbidden, "the certificate of node %s expired on %s: it may only renew it (POST /v1/certs/renew, which the node does by itself until %s), not call %s %s",
			c.NodeID, at, e.GraceEnds.UTC().Format(time.DateOnly), r.Method, r.URL.Path)
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
	if rule.Who&Ingress != 0 {
		need += ", or warren-ingress on the ingress socket of that node (/run/warren/ingress.sock)"
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
	if e := c.Expired; e != nil {
		v.Set("expired", e.At.UTC().Format(time.RFC3339Nano))
		v.Set("grace-ends", e.GraceEnds.UTC().Format(time.RFC3339Nano))
		v.Set("lapsed", strconv.FormatBool(e.Lapsed))
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
		if !c.Role.validLocal() || c.NodeID == "" {
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
		if v.Has("expired") {
			var e Expiry
			var err1, err2, err3 error
			e.At, err1 = time.Parse(time.RFC3339Nano, v.Get("expired"))
			e.GraceEnds, err2 = time.Parse(time.RFC3339Nano, v.Get("grace-ends"))
			e.Lapsed, err3 = strconv.ParseBool(v.Get("lapsed"))
			if err1 != nil || err2 != nil || err3 != nil {
				return Caller{}, fmt.Errorf("authz: %s: a node whose certificate expired needs when (expired, grace-ends) and lapsed", Header)
			}
			c.Expired = &e
		}
	default:
		return Caller{}, fmt.Errorf("authz: %s: kind %q is not a caller a manager passes on", Header, c.Kind)
	}
	return c, nil
}
