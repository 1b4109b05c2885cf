package scheduler_test

import (
	"fmt"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/scheduler"
	"github.com/warren-edge/warren/daemons/scheduler/schedbench"
)

func BenchmarkSchedule10kTasks1kNodes(b *testing.B) {
	nodes, placed, pending := schedbench.Cluster(1000, 100, 100)
	b.ReportAllocs()
	for b.Loop() {
		scheduler.Schedule(nodes, placed, pending, nil)
	}
}

// BenchmarkSchedule10kServices1kNodes is the worst shape for grouping:
// every task is a service of its own.
func BenchmarkSchedule10kServices1kNodes(b *testing.B) {
	nodes, placed, pending := schedbench.Cluster(1000, 10000, 1)
	b.ReportAllocs()
	for b.Loop() {
		scheduler.Schedule(nodes, placed, pending, nil)
	}
}

// BenchmarkScheduleGlobal1kNodes places a global service: 1,000 tasks, each
// pinned to its node.
func BenchmarkScheduleGlobal1kNodes(b *testing.B) {
	nodes, placed, _ := schedbench.Cluster(1000, 0, 0)
	var pending []*api.Task
	for _, n := range nodes {
		t := &api.Task{Meta: api.Meta{ID: "mon." + n.ID}, ServiceID: "mon", NodeID: n.ID, DesiredState: api.TaskRunning}
		t.Spec.Placement.Constraints = []string{"node.role!=manager"}
		t.Spec.Resources.Reservations = api.ResourceAmounts{NanoCPUs: 1e8, MemoryBytes: 64 << 20}
		pending = append(pending, t)
	}
	b.ReportAllocs()
	for b.Loop() {
		scheduler.Schedule(nodes, placed, pending, nil)
	}
}

// TestSchedule10kTasks1kNodes checks the benchmark's cluster is placed
// whole, within memory and spread, and logs the time schedbench.Bench10k
// measures (go test -v -run Schedule10k prints it). The time is not
// asserted: the machines are shared.
func TestSchedule10kTasks1kNodes(t *testing.T) {
	nodes, placed, pending := schedbench.Cluster(1000, 100, 100)
	r := scheduler.Schedule(nodes, placed, pending, nil)
	c := fmt.Sprintf("%d nodes, %d placed, %d pending", len(nodes), len(placed), len(pending))
	if len(r.Assigned) != len(pending) {
		t.Fatalf("Schedule(%s) placed %d, want %d; first unplaced: %v", c, len(r.Assigned), len(pending), r.Unplaced[0])
	}
	capacity := map[string]int64{}
	for _, n := range nodes {
		capacity[n.ID] = n.Description.MemoryBytes
	}
	mem := map[string]int64{}
	for _, p := range placed {
		mem[p.NodeID] += int64(p.Spec.Resources.Reservations.MemoryBytes)
	}
	perSvc := map[string]map[string]int{}
	for i, a := range r.Assigned {
		task := pending[i]
		mem[a.NodeID] += int64(task.Spec.Resources.Reservations.MemoryBytes)
		if perSvc[task.ServiceID] == nil {
			perSvc[task.ServiceID] = map[string]int{}
		}
		perSvc[task.ServiceID][a.NodeID]++
	}
	for id, m := range mem {
		if m > capacity[id] {
			t.Errorf("Schedule(%s) reserved %s on %s, which has %s", c, api.FormatBytes(m), id, api.FormatBytes(capacity[id]))
		}
	}
	// 100 replicas over hundreds of nodes: spread puts at most one per node.
	for svc, m := range perSvc {
		for id, n := range m {
			if n > 1 {
				t.Errorf("Schedule(%s) put %d tasks of %s on %s, want at most 1", c, n, svc, id)
			}
		}
	}
	took, err := schedbench.Bench10k()
	if err != nil {
		t.Fatalf("schedbench.Bench10k() = %v", err)
	}
	t.Logf("Schedule(%s) took %v (median of 5)", c, took)
}
