package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/warren-edge/warren/daemons/api"
)

const (
	mib = 1 << 20
	gib = 1 << 30
	cpu = 1e9 // one CPU in nano-CPUs
)

// mkNode returns an active, ready worker named pi-ID with 4 CPUs and 4GiB,
// changed by opts.
func mkNode(id string, opts ...func(*api.Node)) *api.Node {
	n := &api.Node{
		Meta:        api.Meta{ID: id},
		Spec:        api.NodeSpec{Role: api.RoleWorker, Availability: api.AvailabilityActive},
		Description: api.NodeDescription{Hostname: "pi-" + id, NanoCPUs: 4 * cpu, MemoryBytes: 4 * gib},
		Status:      api.NodeStatus{State: api.NodeReady},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func availability(a string) func(*api.Node) {
	return func(n *api.Node) { n.Spec.Availability = a }
}

func state(s string) func(*api.Node) {
	return func(n *api.Node) { n.Status.State = s }
}

func role(r string) func(*api.Node) {
	return func(n *api.Node) { n.Spec.Role = r }
}

func label(k, v string) func(*api.Node) {
	return func(n *api.Node) {
		if n.Spec.Labels == nil {
			n.Spec.Labels = map[string]string{}
		}
		n.Spec.Labels[k] = v
	}
}

// capacity sets what the node reports; 0 means it did not report.
func capacity(nanoCPUs, memory int64) func(*api.Node) {
	return func(n *api.Node) {
		n.Description.NanoCPUs, n.Description.MemoryBytes = nanoCPUs, memory
	}
}

// subnet sets the node's container subnet; each task on the node takes one
// of its addresses.
func subnet(prefix string) func(*api.Node) {
	return func(n *api.Node) { n.Subnet = prefix }
}

// disk sets what the node reports of its Warren data partition.
func disk(total, free int64) func(*api.Node) {
	return func(n *api.Node) {
		n.Description.Disk = &api.NodeDisk{Path: "/var/lib/warren/agent", TotalBytes: total, FreeBytes: free}
	}
}

// mkTask returns a task of service svc, changed by opts.
func mkTask(id, svc string, opts ...func(*api.Task)) *api.Task {
	t := &api.Task{
		Meta:         api.Meta{ID: id},
		ServiceID:    svc,
		ServiceName:  svc,
		DesiredState: api.TaskRunning,
		Spec:         api.ServiceSpec{Name: svc, Image: "busybox"},
	}
	for _, o := range opts {
		o(t)
	}
	return t
}

// on sets the task's node: where a placed task is, or where a pending task
// must go.
func on(nodeID string) func(*api.Task) {
	return func(t *api.Task) { t.NodeID = nodeID }
}

func reserve(nanoCPUs, memory int64) func(*api.Task) {
	return func(t *api.Task) {
		t.Spec.Resources.Reservations = api.ResourceAmounts{NanoCPUs: api.CPUs(nanoCPUs), MemoryBytes: api.Bytes(memory)}
	}
}

// publish sets the task's published ports.
func publish(ports ...api.PortConfig) func(*api.Task) {
	return func(t *api.Task) { t.Spec.Ports = ports }
}

func constraints(cs ...string) func(*api.Task) {
	return func(t *api.Task) { t.Spec.Placement.Constraints = cs }
}

// replicas returns n tasks of service svc, IDs svc.1 … svc.N.
func replicas(svc string, n int, opts ...func(*api.Task)) []*api.Task {
	var ts []*api.Task
	for i := 1; i <= n; i++ {
		ts = append(ts, mkTask(fmt.Sprintf("%s.%d", svc, i), svc, opts...))
	}
	return ts
}

// call writes a Schedule call compactly for test messages:
// nodes=[a b:drain c:down:10.240.0.0/30] placed=[x@a] pending=[t1 t2@b].
func call(nodes []*api.Node, placed, pending []*api.Task) string {
	var b strings.Builder
	b.WriteString("nodes=[")
	for i, n := range nodes {
		if i > 0 {
			b.WriteByte(' ')
		}
		if n == nil {
			b.WriteString("nil")
			continue
		}
		b.WriteString(n.ID)
		if n.Spec.Availability != api.AvailabilityActive {
			b.WriteString(":" + n.Spec.Availability)
		}
		if n.Status.State != api.NodeReady {
			b.WriteString(":" + n.Status.State)
		}
		if d := n.Description.Disk; d != nil {
			fmt.Fprintf(&b, ":disk=%d/%d", d.FreeBytes, d.TotalBytes)
		}
		for _, k := range slices.Sorted(maps.Keys(n.Spec.Labels)) {
			b.WriteString(":" + k + "=" + n.Spec.Labels[k])
		}
		if n.Subnet != "" {
			b.WriteString(":" + n.Subnet)
		}
	}
	writeTasks := func(name string, ts []*api.Task) {
		b.WriteString("] " + name + "=[")
		for i, t := range ts {
			if i > 0 {
				b.WriteByte(' ')
			}
			if t == nil {
				b.WriteString("nil")
				continue
			}
			b.WriteString(t.ID)
			if t.NodeID != "" {
				b.WriteString("@" + t.NodeID)
			}
		}
	}
	writeTasks("placed", placed)
	writeTasks("pending", pending)
	b.WriteByte(']')
	return b.String()
}

// perNode counts the assignments per node.
func perNode(r Result) map[string]int {
	m := map[string]int{}
	for _, a := range r.Assigned {
		m[a.NodeID]++
	}
	return m
}
