package store

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/netcfg/nodesubnet"
)

func applyNodeRegister(w *wtx, c *NodeRegister) any {
	if n := w.node(c.ID); n != nil {
		// The manager knows the node's address, the agent its engine,
		// mesh and disk: each leaves the other's fields empty, and empty
		// fields are kept.
		d := c.Description
		if d.Addr == "" {
			d.Addr = n.Description.Addr
		}
		if d.EngineVersion == "" {
			d.EngineVersion = n.Description.EngineVersion
		}
		if d.RaftCommands == 0 {
			d.RaftCommands = n.Description.RaftCommands
		}
		if !c.ImagesSet {
			d.Images = n.Description.Images
		} else if len(d.Images) == 0 {
			d.Images = nil
		}
		if d.Disk == nil {
			d.Disk = n.Description.Disk
		}
		if d.Mesh == nil {
			d.Mesh = n.Description.Mesh
		} else if err := w.checkMeshKey(n.ID, d.Mesh); err != nil {
			return err
		}
		if n.Description.Equal(d) {
			return n
		}
		n.Description = d
		n.UpdatedAt = c.At
		w.putNode(n, api.OpUpdate)
		return n
	}
	if w.view().Revoked(RevokedNode, c.ID, c.At) {
		return api.Errorf(api.CodeForbidden, "node %s was removed from the cluster: a device joins again with a new token, as a new node", c.ID)
	}
	subnet, err := w.allocateSubnet()
	if err != nil {
		return err
	}
	role := c.Role
	if role == "" {
		role = api.RoleWorker
	}
	n := &api.Node{
		Meta:        api.Meta{ID: c.ID, CreatedAt: c.At, UpdatedAt: c.At},
		Spec:        api.NodeSpec{Role: role, Availability: api.AvailabilityActive, Labels: c.Labels},
		Description: c.Description,
		Status:      api.NodeStatus{State: api.NodeUnknown, Timestamp: c.At, Message: "registered; waiting for its agent"},
		Subnet:      subnet,
	}
	w.putNode(n, api.OpCreate)
	return n
}

// checkMeshKey refuses a mesh that is not valid or whose public key another
// node holds: every node's peers are keyed by public key, so a node that
// claimed another's key would take that node's place in every peer list.
func (w *wtx) checkMeshKey(id string, m *api.NodeMesh) error {
	if err := m.Validate(); err != nil {
		return err
	}
	for _, o := range w.view().Nodes() {
		if o.ID != id && o.Description.Mesh != nil && o.Description.Mesh.PublicKey == m.PublicKey {
			return api.Errorf(api.CodeConflict, "mesh: node %s already has public key %s: each node makes its own key pair", o.Description.Hostname, m.PublicKey)
		}
	}
	return nil
}

// allocateSubnet gives a new node the lowest free subnet of the cluster
// range. It is deterministic, as everything in the FSM must be.
func (w *wtx) allocateSubnet() (string, error) {
	cl := w.view().Cluster()
	if cl == nil {
		return "", nil
	}
	nodes, err := CheckNodeSubnets(cl.ClusterCIDR, cl.SubnetBits)
	if err != nil {
		return "", api.Errorf(api.CodeInternal, "cluster range %q /%d is not usable: %v", cl.ClusterCIDR, cl.SubnetBits, err)
	}
	rng := netip.MustParsePrefix(cl.ClusterCIDR) // CheckNodeSubnets parsed it
	used := map[netip.Prefix]bool{}
	for _, n := range w.view().Nodes() {
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			used[p] = true
		}
	}
	size := uint32(1) << (32 - cl.SubnetBits)
	count := uint32(nodes)
	base := rng.Masked().Addr().As4()
	start := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	for i := uint32(0); i < count; i++ {
		a := start + i*size
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), cl.SubnetBits)
		if !used[p] {
			return p.String(), nil
		}
	}
	return "", api.Errorf(api.CodeConflict, "the cluster range %s has no free /%d subnet for another node", cl.ClusterCIDR, cl.SubnetBits)
}

// CheckNodeSubnets says whether a cluster range (--cluster-cidr) split into
// node subnets of prefix length bits (--subnet-bits) is usable and, if so,
// how many nodes it allows. Each node subnet must hold at least one
// container (nodesubnet.MaxBits) and fit in the range. The manager checks a
// new cluster's flags with it before it creates anything; the FSM checks the
// cluster's record again before it carves a node's subnet out of it.
func CheckNodeSubnets(clusterCIDR string, bits int) (nodes int, err error) {
	rng, err := netip.ParsePrefix(clusterCIDR)
	if err != nil || !rng.Addr().Is4() {
		return 0, fmt.Errorf("--cluster-cidr %q is not an IPv4 range: give one such as 10.240.0.0/12", clusterCIDR)
	}
	lo, hi := rng.Bits(), nodesubnet.MaxBits
	if lo > hi {
		return 0, fmt.Errorf("--cluster-cidr %s leaves no address for a container: give a /%d or larger range, such as 10.240.0.0/12", clusterCIDR, hi)
	}
	example := min(max(24, lo), hi) // a /24 unless the range rules it out
	perNode := nodesubnet.Capacity(netip.PrefixFrom(netip.IPv4Unspecified(), example))
	switch {
	case bits > hi:
		return 0, fmt.Errorf("--subnet-bits %d leaves no address for a container: use %d to %d (%d gives %d containers per node)", bits, lo, hi, example, perNode)
	case bits < lo:
		n, word := 1<<(example-lo), "nodes"
		if n == 1 {
			word = "node"
		}
		return 0, fmt.Errorf("--subnet-bits %d is larger than --cluster-cidr %s: use %d to %d (%d gives %d %s of %d containers)", bits, clusterCIDR, lo, hi, example, n, word, perNode)
	}
	return 1 << (bits - lo), nil
}

func applyNodeSpec(w *wtx, c *NodeSpec) any {
	n := w.node(c.ID)
	if n == nil {
		return api.Errorf(api.CodeNotFound, "no node %q", c.ID)
	}
	if c.ExpectVersion != 0 && c.ExpectVersion != n.Version {
		return versionConflict("node", n.Description.Hostname, n.Version, c.ExpectVersion)
	}
	if c.Spec.Role != n.Spec.Role {
		return api.Errorf(api.CodeInvalid, "node %s is a %s: change roles with warrenctl node promote or demote", n.Description.Hostname, n.Spec.Role)
	}
	n.Spec = c.Spec
	n.UpdatedAt = c.At
	w.putNode(n, api.OpUpdate)
	return n
}

func applyNodeStatus(w *wtx, c *NodeStatus) any {
	n := w.node(c.ID)
	if n == nil {
		return api.Errorf(api.CodeNotFound, "no node %q", c.ID)
	}
	if n.Status.State == c.Status.State && n.Status.Message == c.Status.Message {
		return n
	}
	n.Status = c.Status
	w.putNode(n, api.OpUpdate)
	return n
}

func applyNodeRemove(w *wtx, c *NodeRemove) any {
	n := w.node(c.ID)
	if n == nil {
		return api.Errorf(api.CodeNotFound, "no node %q", c.ID)
	}
	if n.Status.State == api.NodeReady && !c.Force {
		return api.Errorf(api.CodeConflict, "node %s is ready: drain and stop it first, or remove it with --force", n.Description.Hostname)
	}
	w.must(w.tx.Bucket(bNodes).Delete([]byte(n.ID)))
	if !c.RevokeUntil.IsZero() {
		w.revoke(Revocation{Kind: RevokedNode, ID: n.ID, Until: c.RevokeUntil}, c.At)
	}
	raw := fmt.Appendf(nil, `{"id":%q}`, n.ID)
	w.record(api.OpDelete, api.KindNode, n.ID, "", "", raw, nil)
	for _, t := range w.view().Tasks(TaskFilter{NodeID: n.ID}) {
		prev := *t
		changed := moveDesired(t, api.TaskShutdown)
		if !t.Status.State.Terminal() {
			t.Status = api.TaskStatus{State: api.TaskOrphaned, Timestamp: c.At, Message: "node removed"}
			changed = true
		}
		if changed {
			t.UpdatedAt = c.At
			w.putTask(&prev, t)
		}
	}
	return nil
}

func applyNodeRole(w *wtx, c *NodeRole) any {
	n := w.node(c.ID)
	if n == nil {
		return api.Errorf(api.CodeNotFound, "no node %q", c.ID)
	}
	if c.Role != api.RoleManager && c.Role != api.RoleWorker {
		return api.Errorf(api.CodeInvalid, "%q is not a role", c.Role)
	}
	if n.Spec.Role == c.Role {
		return n
	}
	n.Spec.Role = c.Role
	n.UpdatedAt = c.At
	w.putNode(n, api.OpUpdate)
	return n
}

// The kinds of identity on the deny list.
const (
	RevokedNode     = "node"
	RevokedOperator = "operator"
)

// revoke puts an identity on the deny list, dropping the entries that
// have expired by now.
func (w *wtx) revoke(r Revocation, now time.Time) {
	keep := []Revocation{r}
	for _, old := range w.view().Revocations() {
		if now.Before(old.Until) && (old.Kind != r.Kind || old.ID != r.ID) {
			keep = append(keep, old)
		}
	}
	b, _ := json.Marshal(keep)
	w.must(w.tx.Bucket(bMeta).Put(kRevoked, b))
}

func applyOperatorPut(w *wtx, c *OperatorPut) any {
	o := c.Operator
	if w.view().Revoked(RevokedOperator, o.Name, o.CreatedAt) {
		return api.Errorf(api.CodeConflict, "operator %q was removed and stays revoked until its old certificates expire: choose another name", o.Name)
	}
	if old, ok := w.view().Operator(o.Name); ok && old.ExpiresAt.After(o.ExpiresAt) {
		o.ExpiresAt = old.ExpiresAt // its older certificate outlives the new one
	}
	ops := slices.DeleteFunc(w.view().Operators(), func(x api.Operator) bool { return x.Name == o.Name })
	ops = append(ops, o)
	slices.SortFunc(ops, func(a, b api.Operator) int { return strings.Compare(a.Name, b.Name) })
	b, _ := json.Marshal(ops)
	w.must(w.tx.Bucket(bMeta).Put(kOperators, b))
	return &o
}

func applyOperatorDrop(w *wtx, c *OperatorDrop) any {
	ops := w.view().Operators()
	n := len(ops)
	ops = slices.DeleteFunc(ops, func(x api.Operator) bool { return x.Name == c.Name })
	if len(ops) == n {
		return api.Errorf(api.CodeNotFound, "no operator %q: list them with warrenctl operator ls", c.Name)
	}
	b, _ := json.Marshal(ops)
	w.must(w.tx.Bucket(bMeta).Put(kOperators, b))
	w.revoke(Revocation{Kind: RevokedOperator, ID: c.Name, Until: c.RevokeUntil}, c.At)
	return nil
}

// CommandGate says whether the leader may propose a command of type t
// now: every manager must apply it, or it would stop at the entry (a
// rolling upgrade of the managers, with the leader upgraded first). An
// error says which manager to upgrade.
func (v *View) CommandGate(t CommandType) error {
	if t < FirstGatedCommand {
		return nil
	}
	for _, n := range v.Nodes() {
		if n.Spec.Role != api.RoleManager {
			continue
		}
		if have := CommandType(n.Description.RaftCommands); have < t {
			name := n.Description.Hostname
			if name == "" {
				name = n.ID
			}
			if have == 0 {
				return api.Errorf(api.CodeUnavailable, "manager %s has not said which commands it applies, and this write is a %s (%d), which a manager older than this warren would stop at: retry in a moment (a manager says it once it runs); if this persists, that manager runs an older warren: upgrade it", name, t, int(t))
			}
			return api.Errorf(api.CodeUnavailable, "manager %s applies commands up to %d, and this write is a %s (%d), which it would stop at: upgrade every manager to this warren's version, then retry", name, have, t, int(t))
		}
	}
	return nil
}
