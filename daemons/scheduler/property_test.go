package scheduler

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
	"pgregory.net/rapid"
)

// cluster is one random input of Schedule.
type cluster struct {
	nodes           []*api.Node
	placed, pending []*api.Task
}

func (c cluster) String() string { return call(c.nodes, c.placed, c.pending) }

// spec is what decides where a task may go.
type spec struct {
	cons  []string
	res   api.ResourceAmounts
	ports []api.PortConfig
}

var portPool = [][]api.PortConfig{
	nil, nil, nil,
	{{Target: 80, Published: 8080, Mode: api.PortModeHost}},
	{{Target: 8080, Protocol: api.ProtoUDP, Mode: api.PortModeHost}},
	{{Target: 53, Protocol: api.ProtoUDP, Mode: api.PortModeHost}},
	{{Target: 53, Protocol: api.ProtoUDP, HostAddr: "10.0.0.1"}}, // host mode by its address
	{{Target: 80, Published: 8080}},                              // ingress: no constraint
	{{Target: 53, Protocol: api.ProtoUDP, Mode: api.PortModeIngress}, {Target: 443, Mode: api.PortModeHost}},
}

var constraintPool = []string{
	"node.labels.zone==east",
	"node.labels.zone!=west",
	"node.role==worker",
	"node.role!=manager",
	"node.hostname==pi-n1",
	"node.id!=n2",
}

// genCluster draws up to 6 nodes of every availability, state, role, zone,
// capacity (including unreported), disk (unreported, roomy, low by bytes
// or by share, just at the mark) and subnet (none, room for 1, 5 or 13
// tasks, or one that does not parse), a few placed tasks, and up to 20
// pending tasks of up to 4 services, some pinned to a node (or to one that
// does not exist), some with two specs (a rolling update), some with an
// invalid constraint.
func genCluster(t *rapid.T) cluster {
	var c cluster
	var ids []string
	for i := range rapid.IntRange(0, 6).Draw(t, "nodes") {
		id := fmt.Sprintf("n%d", i)
		ids = append(ids, id)
		n := mkNode(id,
			availability(rapid.SampledFrom([]string{api.AvailabilityActive, api.AvailabilityActive, api.AvailabilityActive, api.AvailabilityPause, api.AvailabilityDrain}).Draw(t, id+".availability")),
			state(rapid.SampledFrom([]string{api.NodeReady, api.NodeReady, api.NodeReady, api.NodeDown, api.NodeUnknown}).Draw(t, id+".state")),
			role(rapid.SampledFrom([]string{api.RoleWorker, api.RoleManager}).Draw(t, id+".role")),
			capacity(rapid.SampledFrom([]int64{0, cpu, 2 * cpu}).Draw(t, id+".cpus"), rapid.SampledFrom([]int64{0, 256 * mib, gib}).Draw(t, id+".memory")),
		)
		// Disks: not reported, roomy, under 256MiB free, under 5% free,
		// and just at what each keeps.
		switch rapid.IntRange(0, 5).Draw(t, id+".disk") {
		case 1:
			disk(8*gib, 4*gib)(n)
		case 2:
			disk(2*gib, 255*mib)(n)
		case 3:
			disk(100*gib, 4*gib)(n)
		case 4:
			disk(2*gib, 256*mib)(n)
		case 5:
			disk(100*gib, 5*gib)(n)
		}
		if zone := rapid.SampledFrom([]string{"", "east", "west"}).Draw(t, id+".zone"); zone != "" {
			label("zone", zone)(n)
		}
		switch bits := rapid.SampledFrom([]int{0, 0, 30, 29, 28, 33}).Draw(t, id+".subnet"); bits {
		case 0: // none
		case 33:
			subnet("10.240.0.0/33")(n)
		default:
			subnet(fmt.Sprintf("10.240.%d.0/%d", i, bits))(n)
		}
		c.nodes = append(c.nodes, n)
	}
	c.nodes = rapid.Permutation(c.nodes).Draw(t, "node order")

	genRes := func(name string) api.ResourceAmounts {
		return api.ResourceAmounts{
			NanoCPUs:    api.CPUs(rapid.SampledFrom([]int64{0, 0, cpu / 2, cpu}).Draw(t, name+".cpus")),
			MemoryBytes: api.Bytes(rapid.SampledFrom([]int64{0, 0, 100 * mib, 128 * mib, 300 * mib}).Draw(t, name+".memory")),
		}
	}
	services := make([][]spec, rapid.IntRange(1, 4).Draw(t, "services"))
	for s := range services {
		for v := range rapid.IntRange(1, 2).Draw(t, fmt.Sprintf("s%d.specs", s)) {
			name := fmt.Sprintf("s%d.spec%d", s, v)
			sp := spec{
				cons:  rapid.SliceOfN(rapid.SampledFrom(constraintPool), 0, 2).Draw(t, name+".constraints"),
				res:   genRes(name),
				ports: rapid.SampledFrom(portPool).Draw(t, name+".ports"),
			}
			if v > 0 {
				// A rolling update often changes one thing only.
				prev := services[s][0]
				switch rapid.IntRange(0, 3).Draw(t, name+".changes") {
				case 0: // the ports
					sp.cons, sp.res = prev.cons, prev.res
				case 1: // the reservations
					sp.cons, sp.ports = prev.cons, prev.ports
				case 2: // the constraints
					sp.res, sp.ports = prev.res, prev.ports
				}
			}
			if rapid.IntRange(0, 19).Draw(t, name+".invalid") == 0 {
				sp.cons = append(sp.cons, "zone=east")
			}
			services[s] = append(services[s], sp)
		}
	}

	where := append([]string{"", "ghost"}, ids...)
	for i := range rapid.IntRange(0, 8).Draw(t, "placed") {
		name := fmt.Sprintf("p%d", i)
		svc := rapid.IntRange(0, len(services)).Draw(t, name+".service") // len(services) is a service with nothing pending
		c.placed = append(c.placed, mkTask(name, fmt.Sprintf("s%d", svc),
			on(rapid.SampledFrom(where).Draw(t, name+".node")),
			publish(rapid.SampledFrom(portPool).Draw(t, name+".ports")...),
			func(t *api.Task) { t.Spec.Resources.Reservations = genRes(name) }))
	}
	c.placed = rapid.Permutation(c.placed).Draw(t, "placed order")

	for i := range rapid.IntRange(0, 20).Draw(t, "pending") {
		name := fmt.Sprintf("t%d", i)
		svc := rapid.IntRange(0, len(services)-1).Draw(t, name+".service")
		sp := rapid.SampledFrom(services[svc]).Draw(t, name+".spec")
		task := mkTask(name, fmt.Sprintf("s%d", svc), constraints(sp.cons...), publish(sp.ports...), func(t *api.Task) { t.Spec.Resources.Reservations = sp.res })
		if rapid.IntRange(0, 4).Draw(t, name+".pinned") == 0 {
			task.NodeID = rapid.SampledFrom(where[1:]).Draw(t, name+".node")
		}
		c.pending = append(c.pending, task)
	}
	return c
}

// Oracles, written apart from the scheduler's own code.

func findNode(nodes []*api.Node, id string) *api.Node {
	for _, n := range nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

func findTask(tasks []*api.Task, id string) *api.Task {
	for _, t := range tasks {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func takesNewTasks(n *api.Node) bool {
	return n.Spec.Availability == api.AvailabilityActive && n.Status.State == api.NodeReady && !lowOnDisk(n)
}

// lowOnDisk: less than 256MiB or 5% of the Warren partition free.
func lowOnDisk(n *api.Node) bool {
	d := n.Description.Disk
	return d != nil && (d.FreeBytes < 256*mib || d.FreeBytes*100 < d.TotalBytes*5)
}

// matchesAll says whether n meets every constraint; ok is false when one
// does not parse.
func matchesAll(n *api.Node, cons []string) (match, ok bool) {
	match = true
	for _, expr := range cons {
		c, err := api.ParseConstraint(expr)
		if err != nil {
			return false, false
		}
		match = match && c.Matches(n)
	}
	return match, true
}

// use is what the tasks on a node reserve, placed and assigned, whether an
// assigned task reserves CPU or memory, the ports the tasks publish, and
// how many tasks there are and were assigned.
type use struct {
	cpu, mem                 int64
	assignedCPU, assignedMem bool
	ports                    []taskPort
	tasks, assigned          int
}

// holds is how many tasks a node's subnet has addresses for: all but the
// network, gateway and broadcast addresses; -1 for no limit (no subnet).
func holds(n *api.Node) int {
	if n.Subnet == "" {
		return -1
	}
	p, err := netip.ParsePrefix(n.Subnet)
	if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
		return 0
	}
	return 1<<(32-p.Bits()) - 3
}

type taskPort struct {
	task     string
	svc      string
	key      api.PortKey
	assigned bool
}

func (u *use) publish(t *api.Task, assigned bool) {
	for _, p := range t.Spec.Ports {
		if p.Ingress() {
			continue // on every node: not a node's port
		}
		u.ports = append(u.ports, taskPort{t.ID, t.ServiceID, p.Key(), assigned})
	}
}

func usage(c cluster, r Result) map[string]*use {
	u := map[string]*use{}
	get := func(id string) *use {
		if u[id] == nil {
			u[id] = &use{}
		}
		return u[id]
	}
	for _, t := range c.placed {
		if t.NodeID != "" {
			x := get(t.NodeID)
			x.cpu += int64(t.Spec.Resources.Reservations.NanoCPUs)
			x.mem += int64(t.Spec.Resources.Reservations.MemoryBytes)
			x.publish(t, false)
			x.tasks++
		}
	}
	for _, a := range r.Assigned {
		t := findTask(c.pending, a.TaskID)
		x := get(a.NodeID)
		res := t.Spec.Resources.Reservations
		x.cpu += int64(res.NanoCPUs)
		x.mem += int64(res.MemoryBytes)
		x.assignedCPU = x.assignedCPU || res.NanoCPUs > 0
		x.assignedMem = x.assignedMem || res.MemoryBytes > 0
		x.publish(t, true)
		x.tasks++
		x.assigned++
	}
	return u
}

// fitsNow says whether node n, with the use u, could take task t.
func fitsNow(n *api.Node, u *use, t *api.Task) bool {
	if !takesNewTasks(n) {
		return false
	}
	if m, _ := matchesAll(n, t.Spec.Placement.Constraints); !m {
		return false
	}
	if u == nil {
		u = &use{}
	}
	for _, p := range t.Spec.Ports {
		for _, q := range u.ports {
			if !p.Ingress() && q.svc != t.ServiceID && p.Key().Clashes(q.key) {
				return false
			}
		}
	}
	res := t.Spec.Resources.Reservations
	if c := int64(res.NanoCPUs); c > 0 && (n.Description.NanoCPUs == 0 || u.cpu+c > n.Description.NanoCPUs) {
		return false
	}
	if m := int64(res.MemoryBytes); m > 0 && (n.Description.MemoryBytes == 0 || u.mem+m > n.Description.MemoryBytes) {
		return false
	}
	if h := holds(n); h >= 0 && u.tasks+1 > h {
		return false
	}
	return true
}

func TestPropertyEveryPendingTaskOnceInOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		r := Schedule(c.nodes, c.placed, c.pending, nil)
		if n := len(r.Assigned) + len(r.Unplaced); n != len(c.pending) {
			t.Fatalf("Schedule(%v) answered for %d tasks (%d assigned, %d unplaced), want %d", c, n, len(r.Assigned), len(r.Unplaced), len(c.pending))
		}
		pos := map[string]int{}
		for i, p := range c.pending {
			pos[p.ID] = i
		}
		seen := map[string]bool{}
		last := -1
		for _, a := range r.Assigned {
			i, ok := pos[a.TaskID]
			if !ok || seen[a.TaskID] || i < last {
				t.Fatalf("Schedule(%v) assigned %v: task %s unknown, repeated or out of pending order", c, r.Assigned, a.TaskID)
			}
			seen[a.TaskID], last = true, i
		}
		last = -1
		for _, u := range r.Unplaced {
			i, ok := pos[u.TaskID]
			if !ok || seen[u.TaskID] || i < last {
				t.Fatalf("Schedule(%v) left unplaced %v: task %s unknown, repeated or out of pending order", c, r.Unplaced, u.TaskID)
			}
			if u.Reason == "" {
				t.Fatalf("Schedule(%v) left %s unplaced with no reason", c, u.TaskID)
			}
			seen[u.TaskID], last = true, i
		}
	})
}

func TestPropertyOnlyActiveReadyNodes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		r := Schedule(c.nodes, c.placed, c.pending, nil)
		for _, a := range r.Assigned {
			n := findNode(c.nodes, a.NodeID)
			if n == nil {
				t.Fatalf("Schedule(%v) put %s on %s, which is not in the cluster", c, a.TaskID, a.NodeID)
			}
			if !takesNewTasks(n) {
				t.Fatalf("Schedule(%v) put %s on %s, which is %s and %s (low on disk: %v)", c, a.TaskID, a.NodeID, n.Spec.Availability, n.Status.State, lowOnDisk(n))
			}
		}
	})
}

func TestPropertyConstraintsHold(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		r := Schedule(c.nodes, c.placed, c.pending, nil)
		for _, a := range r.Assigned {
			task := findTask(c.pending, a.TaskID)
			if m, ok := matchesAll(findNode(c.nodes, a.NodeID), task.Spec.Placement.Constraints); !m || !ok {
				t.Fatalf("Schedule(%v) put %s on %s, against its constraints %q (valid: %v)", c, a.TaskID, a.NodeID, task.Spec.Placement.Constraints, ok)
			}
		}
	})
}

func TestPropertyReservationsWithinCapacity(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		r := Schedule(c.nodes, c.placed, c.pending, nil)
		for id, u := range usage(c, r) {
			n := findNode(c.nodes, id)
			if n == nil {
				continue // placed on a node that is gone
			}
			// Placed tasks may overcommit a node already; what matters is
			// that Schedule adds no reservation it cannot hold.
			if u.assignedCPU && u.cpu > n.Description.NanoCPUs {
				t.Fatalf("Schedule(%v) reserved %s CPUs on %s, which has %s", c, api.FormatCPUs(u.cpu), id, api.FormatCPUs(n.Description.NanoCPUs))
			}
			if u.assignedMem && u.mem > n.Description.MemoryBytes {
				t.Fatalf("Schedule(%v) reserved %s on %s, which has %s", c, api.FormatBytes(u.mem), id, api.FormatBytes(n.Description.MemoryBytes))
			}
		}
	})
}

// TestPropertyNeverMoreTasksThanSubnetHolds: each task takes an address
// of its node's subnet, so Schedule never assigns a task to a node whose
// subnet has no address left for it.
func TestPropertyNeverMoreTasksThanSubnetHolds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		r := Schedule(c.nodes, c.placed, c.pending, nil)
		for id, u := range usage(c, r) {
			n := findNode(c.nodes, id)
			if n == nil || u.assigned == 0 {
				continue // placed tasks may already overfill a subnet; Schedule must add none
			}
			if h := holds(n); h >= 0 && u.tasks > h {
				t.Fatalf("Schedule(%v) put %d tasks (%d of them assigned now) on %s, whose subnet %s holds %d", c, u.tasks, u.assigned, id, n.Subnet, h)
			}
		}
	})
}

func TestPropertyNoPortClash(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		r := Schedule(c.nodes, c.placed, c.pending, nil)
		for id, u := range usage(c, r) {
			for i, p := range u.ports {
				for _, q := range u.ports[:i] {
					if (p.assigned || q.assigned) && p.svc != q.svc && p.key.Clashes(q.key) {
						t.Fatalf("Schedule(%v) put %s (%s) and %s (%s) on %s", c, p.task, p.key, q.task, q.key, id)
					}
				}
			}
		}
	})
}

func TestPropertyPinnedTasksStayOnTheirNode(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		r := Schedule(c.nodes, c.placed, c.pending, nil)
		for _, a := range r.Assigned {
			if want := findTask(c.pending, a.TaskID).NodeID; want != "" && a.NodeID != want {
				t.Fatalf("Schedule(%v) put %s on %s, want its preset node %s", c, a.TaskID, a.NodeID, want)
			}
		}
	})
}

// TestPropertyNothingLeftThatFits checks that no task is left pending while
// a node it is allowed on could still take it.
func TestPropertyNothingLeftThatFits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		r := Schedule(c.nodes, c.placed, c.pending, nil)
		u := usage(c, r)
		for _, un := range r.Unplaced {
			task := findTask(c.pending, un.TaskID)
			for _, n := range c.nodes {
				if task.NodeID != "" && n.ID != task.NodeID {
					continue
				}
				if fitsNow(n, u[n.ID], task) {
					t.Fatalf("Schedule(%v) left %s unplaced (%q), but %s can take it", c, un.TaskID, un.Reason, n.ID)
				}
			}
		}
	})
}

var (
	reasonHead = regexp.MustCompile(`^no suitable node \((\d+) nodes?: `)
	reasonPart = regexp.MustCompile(`(?:: |, )(\d+) (?:drained|paused|not active|down|not ready|low on disk|does not match|do not match|has port|have port|did not report|lacks|lack)\b`)
)

// TestPropertyReasonsCountEveryNode checks that a "no suitable node" reason
// names the number of nodes and accounts for each of them once.
func TestPropertyReasonsCountEveryNode(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		r := Schedule(c.nodes, c.placed, c.pending, nil)
		for _, un := range r.Unplaced {
			task := findTask(c.pending, un.TaskID)
			_, valid := matchesAll(mkNode("x"), task.Spec.Placement.Constraints)
			switch {
			case !valid:
				if !strings.HasPrefix(un.Reason, "unplaceable: invalid constraint: ") {
					t.Fatalf("Schedule(%v) gave %s, whose constraint is invalid, the reason %q", c, un.TaskID, un.Reason)
				}
			case len(c.nodes) == 0:
				if un.Reason != "no nodes in the cluster" {
					t.Fatalf("Schedule(%v) gave %s the reason %q, want %q", c, un.TaskID, un.Reason, "no nodes in the cluster")
				}
			case task.NodeID != "":
				if !strings.HasPrefix(un.Reason, "node ") {
					t.Fatalf("Schedule(%v) gave %s, pinned to %s, the reason %q, which does not name the node", c, un.TaskID, task.NodeID, un.Reason)
				}
			default:
				m := reasonHead.FindStringSubmatch(un.Reason)
				if m == nil || m[1] != strconv.Itoa(len(c.nodes)) {
					t.Fatalf("Schedule(%v) gave %s the reason %q, want \"no suitable node (%d nodes: ...)\"", c, un.TaskID, un.Reason, len(c.nodes))
				}
				sum := 0
				for _, p := range reasonPart.FindAllStringSubmatch(un.Reason, -1) {
					n, _ := strconv.Atoi(p[1])
					sum += n
				}
				if sum != len(c.nodes) {
					t.Fatalf("Schedule(%v) gave %s the reason %q, whose counts add up to %d, want %d", c, un.TaskID, un.Reason, sum, len(c.nodes))
				}
			}
		}
	})
}

// TestPropertyDeterministic checks that the same input gives the same
// output, whatever the order of nodes and placed tasks, and that Schedule
// leaves its input alone.
func TestPropertyDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		before, err := json.Marshal(c.nodes)
		if err != nil {
			t.Fatal(err)
		}
		tasksBefore, _ := json.Marshal([][]*api.Task{c.placed, c.pending})
		r1 := Schedule(c.nodes, c.placed, c.pending, nil)
		r2 := Schedule(c.nodes, c.placed, c.pending, nil)
		if !reflect.DeepEqual(r1, r2) {
			t.Fatalf("Schedule(%v) gave %v, then %v", c, r1, r2)
		}
		shuffled := cluster{
			nodes:   rapid.Permutation(c.nodes).Draw(t, "node order 2"),
			placed:  rapid.Permutation(c.placed).Draw(t, "placed order 2"),
			pending: c.pending,
		}
		if r3 := Schedule(shuffled.nodes, shuffled.placed, shuffled.pending, nil); !reflect.DeepEqual(r1, r3) {
			t.Fatalf("Schedule(%v) gave %v, but with nodes and placed reordered, Schedule(%v) gave %v", c, r1, shuffled, r3)
		}
		after, _ := json.Marshal(c.nodes)
		tasksAfter, _ := json.Marshal([][]*api.Task{c.placed, c.pending})
		if string(before) != string(after) || string(tasksBefore) != string(tasksAfter) {
			t.Fatalf("Schedule(%v) changed its input", c)
		}
	})
}

// TestPropertySpreadBalanced checks that on identical nodes, with no
// constraints, reservations or placed tasks, each service's tasks differ
// by at most one between any two nodes.
func TestPropertySpreadBalanced(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var nodes []*api.Node
		for i := range rapid.IntRange(1, 12).Draw(t, "nodes") {
			nodes = append(nodes, mkNode(fmt.Sprintf("n%02d", i)))
		}
		nodes = rapid.Permutation(nodes).Draw(t, "node order")
		var pending []*api.Task
		nsvc := rapid.IntRange(1, 4).Draw(t, "services")
		for i := range rapid.IntRange(0, 60).Draw(t, "pending") {
			svc := fmt.Sprintf("s%d", rapid.IntRange(0, nsvc-1).Draw(t, fmt.Sprintf("t%d.service", i)))
			pending = append(pending, mkTask(fmt.Sprintf("t%d", i), svc))
		}
		r := Schedule(nodes, nil, pending, nil)
		if len(r.Unplaced) > 0 {
			t.Fatalf("Schedule(%s) left %v unplaced", call(nodes, nil, pending), r.Unplaced)
		}
		per := map[string]map[string]int{} // service → node → tasks
		for _, a := range r.Assigned {
			svc := findTask(pending, a.TaskID).ServiceID
			if per[svc] == nil {
				per[svc] = map[string]int{}
			}
			per[svc][a.NodeID]++
		}
		for svc, m := range per {
			lo, hi := len(pending), 0
			for _, n := range nodes {
				lo, hi = min(lo, m[n.ID]), max(hi, m[n.ID])
			}
			if hi-lo > 1 {
				t.Fatalf("Schedule(%s) put between %d and %d tasks of %s on a node: %v", call(nodes, nil, pending), lo, hi, svc, m)
			}
		}
	})
}
