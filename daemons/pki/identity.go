package pki

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Role is what a node is allowed to do: a manager (a Raft voter holding
// the whole cluster state) or a worker. A join token's kind is the role it
// grants. The values are those of api.RoleManager and api.RoleWorker.
type Role string

// The roles a node certificate can carry.
const (
	RoleManager Role = "manager"
	RoleWorker  Role = "worker"
)

// The roles an operator certificate can carry (a person, or a daemon
// such as warren-ingress, on the node port): admin, operator, viewer.
// Its identity's NodeID is then the operator's name.
const (
	RoleAdmin    Role = "admin"
	RoleOperator Role = "operator"
	RoleViewer   Role = "viewer"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r.IsNode() || r.IsOperator() }

// IsNode says whether r is a node's role.
func (r Role) IsNode() bool { return r == RoleManager || r == RoleWorker }

// IsOperator says whether r is an operator's role.
func (r Role) IsOperator() bool { return r == RoleAdmin || r == RoleOperator || r == RoleViewer }

// URIScheme is the scheme of the URI SAN that carries a node's identity:
// warren://<cluster>/<role>/<node>.
const URIScheme = "warren"

// maxIDLen bounds cluster and node IDs (X.509's upper bound for a common
// name is 64).
const maxIDLen = 64

// ErrNoIdentity means a certificate does not carry a well-formed warren
// identity: it was not issued by SignNode.
var ErrNoIdentity = errors.New("pki: certificate carries no warren identity")

// Identity is who a node is, as its certificate says: a stable node ID in
// a cluster, and the role it holds. The node's addresses are not part of
// it, so a node whose IP address changes keeps its identity.
type Identity struct {
	ClusterID string
	NodeID    string
	Role      Role
}

// URI is the identity as the certificate's URI SAN carries it,
// warren://<cluster>/<role>/<node>.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: URIScheme, Host: id.ClusterID, Path: "/" + string(id.Role) + "/" + id.NodeID}
}

// String is the URI form, for logs and errors.
func (id Identity) String() string { return id.URI().String() }

// Validate checks the identity can be put in a certificate: both IDs are
// 1 to 64 characters of letters, digits, '.', '_' and '-', and the role is
// known.
func (id Identity) Validate() error {
	if err := id.validate(); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

func (id Identity) validate() error {
	if err := validID("cluster ID", id.ClusterID); err != nil {
		return err
	}
	if err := validID("node ID", id.NodeID); err != nil {
		return err
	}
	if !id.Role.Valid() {
		return fmt.Errorf("the role %q is not a node's (%q, %q) nor an operator's (%q, %q, %q)", id.Role, RoleManager, RoleWorker, RoleAdmin, RoleOperator, RoleViewer)
	}
	return nil
}

func validID(what, s string) error {
	if s == "" {
		return fmt.Errorf("the %s is empty", what)
	}
	if len(s) > maxIDLen {
		return fmt.Errorf("the %s %q is longer than %d characters", what, s, maxIDLen)
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("the %s %q has the character %q: use letters, digits, '.', '_' and '-'", what, s, c)
		}
	}
	return nil
}

// IdentityOf reads the identity a node certificate carries: its one
// warren:// URI SAN, which must agree with the subject (CN = node ID,
// O = cluster ID, OU = role). It does not verify the certificate: use
// VerifyPeer for a certificate a peer presented.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrNoIdentity)
	}
	if cert.IsCA {
		return Identity{}, fmt.Errorf("%w: %q is a CA certificate, not a node's", ErrNoIdentity, cert.Subject.CommonName)
	}
	var found *url.URL
	for _, u := range cert.URIs {
		if u.Scheme != URIScheme {
			continue
		}
		if found != nil {
			return Identity{}, fmt.Errorf("%w: it has two %s:// URIs", ErrNoIdentity, URIScheme)
		}
		found = u
	}
	if found == nil {
		return Identity{}, fmt.Errorf("%w: no %s:// URI SAN in the certificate of %q", ErrNoIdentity, URIScheme, cert.Subject.CommonName)
	}
	id, err := parseIdentityURI(found)
	if err != nil {
		return Identity{}, err
	}
	s := cert.Subject
	if s.CommonName != id.NodeID || !slices.Equal(s.Organization, []string{id.ClusterID}) ||
		!slices.Equal(s.OrganizationalUnit, []string{string(id.Role)}) {
		return Identity{}, fmt.Errorf("%w: the subject (CN=%s O=%v OU=%v) disagrees with the URI %s",
			ErrNoIdentity, s.CommonName, s.Organization, s.OrganizationalUnit, found)
	}
	return id, nil
}

func parseIdentityURI(u *url.URL) (Identity, error) {
	bad := func(why string) (Identity, error) {
		return Identity{}, fmt.Errorf("%w: URI %s: %s", ErrNoIdentity, u, why)
	}
	if u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return bad("want warren://<cluster>/<role>/<node> and nothing else")
	}
	role, node, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if !ok || !strings.HasPrefix(u.Path, "/") {
		return bad("want warren://<cluster>/<role>/<node>")
	}
	id := Identity{ClusterID: u.Host, NodeID: node, Role: Role(role)}
	if err := id.validate(); err != nil {
		return bad(err.Error())
	}
	return id, nil
}

// RequireRole returns a check for ClientConfig and ServerConfig that lets
// through peers holding one of roles, for example RequireRole(RoleManager)
// on a worker dialling a manager, or on the Raft listener.
func RequireRole(roles ...Role) func(Identity) error {
	return func(id Identity) error {
		if slices.Contains(roles, id.Role) {
			return nil
		}
		return fmt.Errorf("%w: %s is a %s; only a %s may connect here", ErrNotAllowed, id.NodeID, id.Role, joinRoles(roles))
	}
}

func joinRoles(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}
