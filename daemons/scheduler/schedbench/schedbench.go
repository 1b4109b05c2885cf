// Package schedbench builds synthetic clusters to measure the scheduler,
// for the figure "10,000 tasks scheduled on 1,000 simulated nodes" of
// DESIGN.md §8. make bench (qa/bench) calls Bench10k; the scheduler's own
// benchmarks use Cluster.
package schedbench

import (
	"fmt"
	"slices"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/scheduler"
)

var zones = []string{"east", "west", "north", "south"}

// Cluster builds nodeCount nodes (IDs node-0000 …) in 4 zones, 5 of them
// managers, 1 in 50 drained and 1 in 100 down, each with 4 CPUs, 8GiB and
// a /24 container subnet (253 tasks);
// 2 placed tasks per node of 20 other services, half of them reserving 0.1
// CPU and 128MiB; and services × replicas pending tasks, in service order,
// where 1 service in 3 is constrained to a zone, 1 in 7 avoids managers,
// 1 in 5 reserves 0.25 CPU and 256MiB and 1 in 10 publishes a port. The
// same arguments always give the same cluster.
func Cluster(nodeCount, services, replicas int) (nodes []*api.Node, placed, pending []*api.Task) {
	for i := range nodeCount {
		n := &api.Node{
			Meta: api.Meta{ID: fmt.Sprintf("node-%04d", i)},
			Spec: api.NodeSpec{
				Labels:       map[string]string{"zone": zones[i%len(zones)]},
				Role:         api.RoleWorker,
				Availability: api.AvailabilityActive,
			},
			Description: api.NodeDescription{Hostname: fmt.Sprintf("pi-%04d", i), NanoCPUs: 4e9, MemoryBytes: 8 << 30},
			Status:      api.NodeStatus{State: api.NodeReady},
			Subnet:      fmt.Sprintf("10.%d.%d.0/24", 240+i>>8, i&0xff),
		}
		if i < 5 {
			n.Spec.Role = api.RoleManager
		}
		if i%50 == 49 {
			n.Spec.Availability = api.AvailabilityDrain
		}
		if i%100 == 7 {
			n.Status.State = api.NodeDown
		}
		nodes = append(nodes, n)
	}
	for i := range 2 * nodeCount {
		svc := fmt.Sprintf("old-%02d", i%20)
		t := task(fmt.Sprintf("old-%05d", i), svc)
		t.NodeID = nodes[i%nodeCount].ID
		t.Status.State = api.TaskRunning
		if i%2 == 0 {
			t.Spec.Resources.Reservations = api.ResourceAmounts{NanoCPUs: 1e8, MemoryBytes: 128 << 20}
		}
		placed = append(placed, t)
	}
	for s := range services {
		svc := fmt.Sprintf("svc-%03d", s)
		var spec api.ServiceSpec
		if s%3 == 0 {
			spec.Placement.Constraints = append(spec.Placement.Constraints, "node.labels.zone=="+zones[s%len(zones)])
		}
		if s%7 == 0 {
			spec.Placement.Constraints = append(spec.Placement.Constraints, "node.role!=manager")
		}
		if s%5 == 0 {
			spec.Resources.Reservations = api.ResourceAmounts{NanoCPUs: 25e7, MemoryBytes: 256 << 20}
		}
		if s%10 == 3 {
			spec.Ports = []api.PortConfig{{Target: 80, Published: uint16(8000 + s)}}
		}
		for r := 1; r <= replicas; r++ {
			t := task(fmt.Sprintf("%s.%d", svc, r), svc)
			t.Slot = uint64(r)
			t.Spec.Placement, t.Spec.Resources, t.Spec.Ports = spec.Placement, spec.Resources, spec.Ports
			pending = append(pending, t)
		}
	}
	return nodes, placed, pending
}

func task(id, svc string) *api.Task {
	return &api.Task{
		Meta:         api.Meta{ID: id},
		ServiceID:    svc,
		ServiceName:  svc,
		Spec:         api.ServiceSpec{Name: svc, Image: "busybox", Replicas: 100},
		DesiredState: api.TaskRunning,
		Status:       api.TaskStatus{State: api.TaskPending},
	}
}

// Bench10k schedules 100 services × 100 replicas on a Cluster of 1,000
// nodes five times and returns the median time. It fails if a task is left
// unplaced: the cluster has room for all of them.
func Bench10k() (time.Duration, error) {
	nodes, placed, pending := Cluster(1000, 100, 100)
	var times []time.Duration
	for range 5 {
		start := time.Now()
		r := scheduler.Schedule(nodes, placed, pending, nil)
		times = append(times, time.Since(start))
		if len(r.Unplaced) > 0 {
			return 0, fmt.Errorf("schedbench: %d of %d tasks unplaced, e.g. %s: %s", len(r.Unplaced), len(pending), r.Unplaced[0].TaskID, r.Unplaced[0].Reason)
		}
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}
