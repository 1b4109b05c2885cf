package scheduler

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/netcfg/nodesubnet"
)

// Result is the outcome of one Schedule call. Every non-nil pending task is
// in exactly one of the two lists, and both lists keep the order of pending.
type Result struct {
	Assigned []Assignment
	Unplaced []Unplaced
}

// Assignment puts a task on a node.
type Assignment struct {
	TaskID string
	NodeID string
}

// Unplaced is a task that no node can take now. Reason is one line for a
// person (it becomes the pending task's status message), e.g.
// "no suitable node (3 nodes: 1 drained, 1 down, 1 lacks memory: needs
// 512MiB, 100MiB free)".
type Unplaced struct {
	TaskID string
	Reason string
}

// Schedule assigns each task in pending to a node, or explains why it
// cannot.
//
// nodes is every node of the cluster (IDs are unique). placed is the live
// tasks that occupy a node: each counts, whatever its state, toward its
// node's reserved resources and toward spread; a placed task whose NodeID is
// empty or names no node in nodes is ignored. pending is the tasks to place;
// one whose NodeID is set may only go to that node. Nil entries are skipped.
// The package documentation gives the rules. Schedule panics if given more
// than 4,194,303 nodes.
//
// vols are the cluster's volumes: a task that mounts volumes goes only to
// the node they live on (volume.go).
func Schedule(nodes []*api.Node, placed []*api.Task, pending []*api.Task, vols Volumes) Result {
	s := newScheduler(nodes)
	var homes volumeHomes

	// Group the tasks that are not pinned to a node by service and by what
	// decides which nodes fit them, so that nodes are filtered once per
	// group rather than once per task.
	out := make([]outcome, len(pending))
	var pinned []int
	var groups []*group
	index := make(map[groupKey]*group)
	var prev *api.Task // the last task added to a group
	var g *group       // its group
	tasks := 0
	for i, t := range pending {
		if t == nil {
			continue
		}
		tasks++
		if len(t.Spec.Mounts) > 0 {
			pin, why := homes.of(t, vols, s)
			if why != "" {
				out[i] = outcome{reason: why}
				continue
			}
			if pin != nil {
				pinned = append(pinned, i)
				s.pending(t)
				continue
			}
		}
		if t.NodeID != "" {
			pinned = append(pinned, i)
			s.pending(t)
			continue
		}
		// Replicas usually come one after another: skip building the key.
		if prev != nil && sameGroup(prev, t) {
			g.tasks = append(g.tasks, i)
			continue
		}
		s.pending(t)
		prev = t
		k := groupKey{
			svc:   t.ServiceID,
			cons:  constraintsKey(t.Spec.Placement.Constraints),
			res:   reservations(t),
			ports: portsKey(t.Spec.Ports),
		}
		g = index[k]
		if g == nil {
			g = &group{key: k, cons: t.Spec.Placement.Constraints, need: needOf(t)}
			index[k] = g
			groups = append(groups, g)
		}
		g.tasks = append(g.tasks, i)
	}

	s.occupy(placed)
	assigned := 0
	for _, i := range pinned {
		if h := homes.pinned[pending[i].ID]; h != nil {
			out[i] = s.placeOnVolumeNode(pending[i], h)
		} else {
			out[i] = s.placePinned(pending[i])
		}
		if out[i].nodeID != "" {
			assigned++
		}
	}
	for _, g := range groups {
		assigned += s.placeGroup(g, out)
	}

	var r Result
	if assigned > 0 {
		r.Assigned = make([]Assignment, 0, assigned)
	}
	if unplaced := tasks - assigned; unplaced > 0 {
		r.Unplaced = make([]Unplaced, 0, unplaced)
	}
	for i, t := range pending {
		switch {
		case t == nil:
		case out[i].nodeID != "":
			r.Assigned = append(r.Assigned, Assignment{TaskID: t.ID, NodeID: out[i].nodeID})
		default:
			r.Unplaced = append(r.Unplaced, Unplaced{TaskID: t.ID, Reason: out[i].reason})
		}
	}
	return r
}

// pending notes what Schedule needs to know of pending task t before
// counting the placed tasks.
func (s *scheduler) pending(t *api.Task) {
	if _, ok := s.svcNodes[t.ServiceID]; !ok {
		s.svcNodes[t.ServiceID] = nil
	}
	if slices.ContainsFunc(t.Spec.Ports, hostPort) {
		s.trackPorts = true
	}
}

// sameGroup says whether two unpinned tasks have the same groupKey.
func sameGroup(a, b *api.Task) bool {
	return a.ServiceID == b.ServiceID &&
		reservations(a) == reservations(b) &&
		slices.Equal(a.Spec.Placement.Constraints, b.Spec.Placement.Constraints) &&
		slices.Equal(a.Spec.Ports, b.Spec.Ports)
}

// outcome is the decision for one pending task: a node ID or a reason.
type outcome struct {
	nodeID, reason string
}

// groupKey identifies tasks that fit the same nodes and spread together.
type groupKey struct {
	svc   string
	cons  string // constraintsKey of the placement constraints
	res   api.ResourceAmounts
	ports string // portsKey of the published ports
}

// group is pending tasks (indices into pending) with the same groupKey.
type group struct {
	key   groupKey
	cons  []string
	need  need
	tasks []int
}

// need is what a task takes on its node: reserved resources and published
// host-mode ports.
type need struct {
	res   api.ResourceAmounts
	ports []api.PortKey
	// svc is the task's service: its own tasks share their published ports
	// on a node (the node balances the port over them).
	svc string
}

// ownedPort is a node port in use and the service that publishes it.
type ownedPort struct {
	key api.PortKey
	svc string
}

func needOf(t *api.Task) need {
	nd := need{res: reservations(t), svc: t.ServiceID}
	for _, p := range t.Spec.Ports {
		if hostPort(p) {
			nd.ports = append(nd.ports, p.Key())
		}
	}
	return nd
}

// hostPort says whether p takes its port on the task's node only (mode
// host). An ingress port is published on every node whatever runs there,
// and no two services publish clashing ones (the store refuses it): it
// does not constrain placement.
func hostPort(p api.PortConfig) bool { return !p.Ingress() }

// portsKey encodes the node ports a task publishes as one string.
func portsKey(ports []api.PortConfig) string {
	var b strings.Builder
	for _, p := range ports {
		writeField(&b, p.Key().String())
	}
	return b.String()
}

// constraintsKey encodes a list of constraints as one string.
func constraintsKey(cons []string) string {
	if len(cons) == 1 {
		return strconv.Itoa(len(cons[0])) + ":" + cons[0] // the usual case, in one allocation
	}
	var b strings.Builder
	for _, c := range cons {
		writeField(&b, c)
	}
	return b.String()
}

// writeField writes s prefixed with its length, so that a list of fields
// is encoded unambiguously.
func writeField(b *strings.Builder, s string) {
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}

// reservations returns what the task reserves; negative amounts (refused by
// validation) count as none.
func reservations(t *api.Task) api.ResourceAmounts {
	r := t.Spec.Resources.Reservations
	r.NanoCPUs = max(r.NanoCPUs, 0)
	r.MemoryBytes = max(r.MemoryBytes, 0)
	return r
}

// kind is why a node does not take a task, or fits. The order is the order
// of the checks and of the phrases in a reason.
type kind uint8

const (
	fits kind = iota
	drained
	paused
	inactive // availability is none of active, pause and drain
	down
	notReady // state unknown: the node has not reported yet
	lowDisk  // its Warren data partition is low on space (api.NodeDisk.Low)
	mismatch
	portInUse
	noCPUInfo
	noMemInfo
	lackCPU
	lackMem
	lackAddr // every address of the node's subnet is taken
)

// node is the scheduler's view of one node during a call.
type node struct {
	n *api.Node
	// state is drained, paused, inactive, down, notReady or lowDisk when
	// the node takes no new task at all, and fits otherwise.
	state            kind
	cpuCap, memCap   int64
	cpuUsed, memUsed int64
	// addrCap is how many tasks the node's subnet holds (each takes one
	// address); noAddrLimit for a node with no subnet recorded. The
	// addresses in use are tasks.
	addrCap int64
	tasks   int32
	// ports are the node ports published by its tasks; kept only when a
	// pending task publishes ports.
	ports []ownedPort
}

// scheduler holds the state of one Schedule call.
type scheduler struct {
	// nodes are the non-nil nodes sorted by ID: a node's index is its rank
	// in the final tie-break.
	nodes []node
	byID  map[string]int32
	// svcNodes has an entry for each service with pending tasks: the index
	// of the node of each of its tasks, placed or assigned in this call.
	svcNodes map[string][]int32
	// filters caches, by constraintsKey, the nodes that pass the checks that
	// do not depend on resources.
	filters map[string]*filter
	// count is scratch space: the tasks of the service being placed, per
	// node. It is all zeros between groups.
	count []int32
	heap  nodeHeap
	// trackPorts is set when a pending task publishes ports.
	trackPorts bool
	// low is what the nodes low on disk have free, for the reason.
	low lowDisks
}

// lowDisks sums up the nodes low on disk: the most free space among
// them, and the space the one with the most keeps.
type lowDisks struct {
	free, reserve int64
}

func newScheduler(nodes []*api.Node) *scheduler {
	s := &scheduler{
		byID:     make(map[string]int32, len(nodes)),
		svcNodes: make(map[string][]int32),
		filters:  make(map[string]*filter),
	}
	ns := make([]*api.Node, 0, len(nodes))
	for _, n := range nodes {
		if n != nil {
			ns = append(ns, n)
		}
	}
	if len(ns) > maxNodes {
		// rank packs a node's index in 22 bits. An edge fleet is far
		// smaller; failing loudly beats placing tasks on the wrong nodes.
		panic(fmt.Sprintf("scheduler: %d nodes; the limit is %d", len(ns), maxNodes))
	}
	slices.SortStableFunc(ns, func(a, b *api.Node) int { return cmp.Compare(a.ID, b.ID) })
	s.nodes = make([]node, len(ns))
	for i, n := range ns {
		st := fits
		switch n.Spec.Availability {
		case api.AvailabilityActive:
		case api.AvailabilityDrain:
			st = drained
		case api.AvailabilityPause:
			st = paused
		default:
			st = inactive
		}
		if st == fits {
			switch n.Status.State {
			case api.NodeReady:
			case api.NodeDown:
				st = down
			default:
				st = notReady
			}
		}
		if d := n.Description.Disk; st == fits && d.Low() {
			st = lowDisk
			if d.FreeBytes >= s.low.free {
				s.low = lowDisks{free: d.FreeBytes, reserve: api.DiskReserve(d.TotalBytes)}
			}
		}
		s.nodes[i] = node{n: n, state: st, cpuCap: n.Description.NanoCPUs, memCap: n.Description.MemoryBytes, addrCap: addrCap(n.Subnet)}
		if _, dup := s.byID[n.ID]; !dup {
			s.byID[n.ID] = int32(i)
		}
	}
	s.count = make([]int32, len(s.nodes))
	return s
}

// noAddrLimit is the address capacity of a node with no subnet recorded.
const noAddrLimit = math.MaxInt64

// addrCap is how many tasks a node with the given subnet holds. A node has
// no subnet ("") only when it registered before the cluster had a range:
// its agent then runs no container network (a networked agent refuses to
// start without a subnet, so the node never becomes ready), and its tasks
// take no address. A subnet that does not parse holds none.
func addrCap(subnet string) int64 {
	if subnet == "" {
		return noAddrLimit
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return 0
	}
	return int64(nodesubnet.Capacity(p))
}

// occupy counts the placed tasks on their nodes.
func (s *scheduler) occupy(placed []*api.Task) {
	for _, t := range placed {
		if t == nil || t.NodeID == "" {
			continue
		}
		i, ok := s.byID[t.NodeID]
		if !ok {
			continue
		}
		nd := need{res: reservations(t)}
		if s.trackPorts {
			nd = needOf(t)
		}
		s.add(i, &nd)
		if list, ok := s.svcNodes[t.ServiceID]; ok {
			s.svcNodes[t.ServiceID] = append(list, i)
		}
	}
}

// add counts one more task, taking nd, on node i.
func (s *scheduler) add(i int32, nd *need) {
	n := &s.nodes[i]
	n.tasks++
	n.cpuUsed += int64(nd.res.NanoCPUs)
	n.memUsed += int64(nd.res.MemoryBytes)
	for _, p := range nd.ports {
		n.ports = append(n.ports, ownedPort{p, nd.svc})
	}
}

// room checks whether node i has room for a task that takes nd: its ports
// free, then its reservations. For a port in use it also returns the index
// of the first such port in nd.ports.
func (s *scheduler) room(i int32, nd *need) (kind, int) {
	if len(nd.ports) > 0 {
		if pi := s.portInUse(i, nd); pi >= 0 {
			return portInUse, pi
		}
	}
	return s.resources(i, nd.res), 0
}

// portInUse returns the index of the first of nd's ports that another
// service holds on node i, or -1.
func (s *scheduler) portInUse(i int32, nd *need) int {
	for pi, p := range nd.ports {
		for _, q := range s.nodes[i].ports {
			if q.svc != nd.svc && p.Clashes(q.key) {
				return pi
			}
		}
	}
	return -1
}

// resources checks whether node i has room for a task reserving r, and
// for its address (every task takes one).
func (s *scheduler) resources(i int32, r api.ResourceAmounts) kind {
	n := &s.nodes[i]
	if cpu := int64(r.NanoCPUs); cpu > 0 {
		if n.cpuCap <= 0 {
			return noCPUInfo
		}
		if n.cpuCap-n.cpuUsed < cpu {
			return lackCPU
		}
	}
	if mem := int64(r.MemoryBytes); mem > 0 {
		if n.memCap <= 0 {
			return noMemInfo
		}
		if n.memCap-n.memUsed < mem {
			return lackMem
		}
	}
	if int64(n.tasks) >= n.addrCap {
		return lackAddr
	}
	return fits
}

// filter is what a list of placement constraints makes of the nodes,
// resources aside.
type filter struct {
	cons []api.Constraint
	err  error // the first constraint that does not parse
	// built says whether the fields below are filled in.
	built bool
	// fit is the nodes that are active, ready and match, in ID order.
	fit []int32
	// refused counts the other nodes by kind (drained … notReady).
	refused [mismatch]int
	// mismatched counts, per constraint, the nodes it is the first
	// constraint not to match.
	mismatched []int
}

// filterFor returns the parsed constraints for key, building the node
// lists too when build is set.
func (s *scheduler) filterFor(key string, cons []string, build bool) *filter {
	f := s.filters[key]
	if f == nil {
		f = &filter{cons: make([]api.Constraint, 0, len(cons))}
		for _, expr := range cons {
			c, err := api.ParseConstraint(expr)
			if err != nil {
				f.err = err
				break
			}
			f.cons = append(f.cons, c)
		}
		s.filters[key] = f
	}
	if !build || f.built || f.err != nil {
		return f
	}
	f.built = true
	f.mismatched = make([]int, len(f.cons))
	for i := range s.nodes {
		k, ci := s.static(int32(i), f.cons)
		switch k {
		case fits:
			f.fit = append(f.fit, int32(i))
		case mismatch:
			f.mismatched[ci]++
		default:
			f.refused[k]++
		}
	}
	return f
}

// static checks node i's availability, state and constraints. For a
// mismatch it also returns the index of the first constraint that fails.
func (s *scheduler) static(i int32, cons []api.Constraint) (kind, int) {
	n := &s.nodes[i]
	if n.state != fits {
		return n.state, 0
	}
	for ci, c := range cons {
		if !c.Matches(n.n) {
			return mismatch, ci
		}
	}
	return fits, 0
}

func invalidConstraint(err error) string {
	return "unplaceable: invalid constraint: " + err.Error()
}

// placePinned checks a task whose NodeID is set against that node only.
func (s *scheduler) placePinned(t *api.Task) outcome {
	f := s.filterFor(constraintsKey(t.Spec.Placement.Constraints), t.Spec.Placement.Constraints, false)
	if f.err != nil {
		return outcome{reason: invalidConstraint(f.err)}
	}
	i, ok := s.byID[t.NodeID]
	if !ok {
		if len(s.nodes) == 0 {
			return outcome{reason: noNodes}
		}
		return outcome{reason: "node " + shortID(t.NodeID) + " is not in the cluster"}
	}
	nd := needOf(t)
	k, ci := s.static(i, f.cons)
	if k == fits {
		k, ci = s.room(i, &nd)
	}
	if k != fits {
		return outcome{reason: pinnedReason(&s.nodes[i], k, f.cons, ci, &nd)}
	}
	s.add(i, &nd)
	s.svcNodes[t.ServiceID] = append(s.svcNodes[t.ServiceID], i)
	return outcome{nodeID: t.NodeID}
}

// placeGroup places the tasks of one group, spreading them over the nodes
// that fit, writes their outcomes and returns how many it assigned.
func (s *scheduler) placeGroup(g *group, out []outcome) (assigned int) {
	f := s.filterFor(g.key.cons, g.cons, true)
	reason := ""
	switch {
	case f.err != nil:
		reason = invalidConstraint(f.err)
	case len(s.nodes) == 0:
		reason = noNodes
	}
	if reason != "" {
		for _, ti := range g.tasks {
			out[ti] = outcome{reason: reason}
		}
		return 0
	}

	nd := &g.need
	list := s.svcNodes[g.key.svc]
	for _, i := range list {
		s.count[i]++
	}
	w := why{f: f, need: nd, low: &s.low, portsInUse: make([]int, len(nd.ports))}
	h := &s.heap
	h.items = h.items[:0]
	for _, i := range f.fit {
		if k, pi := s.room(i, nd); k != fits {
			w.add(k, pi, &s.nodes[i])
			continue
		}
		h.items = append(h.items, s.rank(i))
	}
	h.init()

	for _, ti := range g.tasks {
		// A node's free resources, addresses and ports only shrink during
		// a call, so a node that cannot take this group's next task never
		// will.
		for reason == "" {
			if len(h.items) == 0 {
				reason = w.String(len(s.nodes))
				break
			}
			top := h.top()
			k, pi := s.room(top, nd)
			if k == fits {
				break
			}
			w.add(k, pi, &s.nodes[top])
			h.pop()
		}
		if reason != "" {
			out[ti] = outcome{reason: reason}
			continue
		}
		top := h.top()
		s.add(top, nd)
		s.count[top]++
		list = append(list, top)
		out[ti] = outcome{nodeID: s.nodes[top].n.ID}
		assigned++
		h.items[0] = s.rank(top) // top's rank grew
		h.down(0)
	}

	s.svcNodes[g.key.svc] = list
	for _, i := range list {
		s.count[i] = 0
	}
	return assigned
}

// rank orders the nodes for spread: tasks of the service being placed,
// then tasks in all, then index (the nodes are sorted by ID), packed in one
// integer so that the heap compares plain numbers. The counts saturate at
// 2^21-1, far beyond what a node runs; the index fits below 2^22 nodes.
func (s *scheduler) rank(i int32) uint64 {
	const max21 = 1<<21 - 1
	c := uint64(min(max(s.count[i], 0), max21))
	t := uint64(min(max(s.nodes[i].tasks, 0), max21))
	return c<<43 | t<<22 | uint64(i)
}

// maxNodes is the most nodes Schedule handles (see rank).
const maxNodes = 1<<22 - 1

// nodeHeap is a min-heap of node ranks.
type nodeHeap struct {
	items []uint64
}

// top returns the index of the node with the lowest rank.
func (h *nodeHeap) top() int32 { return int32(h.items[0] & maxNodes) }

func (h *nodeHeap) init() {
	for i := len(h.items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// down moves the item at i down to its place.
func (h *nodeHeap) down(i int) {
	items := h.items
	for {
		l := 2*i + 1
		if l >= len(items) {
			return
		}
		m := l
		if r := l + 1; r < len(items) && items[r] < items[l] {
			m = r
		}
		if items[i] <= items[m] {
			return
		}
		items[i], items[m] = items[m], items[i]
		i = m
	}
}

// pop removes the smallest item.
func (h *nodeHeap) pop() {
	last := len(h.items) - 1
	h.items[0] = h.items[last]
	h.items = h.items[:last]
	h.down(0)
}
