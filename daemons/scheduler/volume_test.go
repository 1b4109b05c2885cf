package scheduler

import (
	"slices"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func mounts(vols ...string) func(*api.Task) {
	return func(t *api.Task) {
		for _, v := range vols {
			t.Spec.Mounts = append(t.Spec.Mounts, api.Mount{Type: api.MountVolume, Source: v, Target: "/" + v})
		}
	}
}

func TestScheduleVolumeAffinity(t *testing.T) {
	three := []*api.Node{mkNode("a"), mkNode("b"), mkNode("c")}
	tests := []struct {
		name         string
		nodes        []*api.Node
		vols         Volumes
		placed       []*api.Task
		pending      []*api.Task
		wantAssigned []Assignment
		wantUnplaced []Unplaced
	}{
		{
			name:         "tasks of a bound volume all go to its node, spread or not",
			nodes:        three,
			vols:         Volumes{"data": "b"},
			pending:      replicas("web", 3, mounts("data")),
			wantAssigned: []Assignment{{"web.1", "b"}, {"web.2", "b"}, {"web.3", "b"}},
		},
		{
			name:         "an unbound volume: the first task is placed freely, the others wait for the binding",
			nodes:        three,
			vols:         Volumes{"data": ""},
			pending:      replicas("web", 2, mounts("data")),
			wantAssigned: []Assignment{{"web.1", "a"}},
			wantUnplaced: []Unplaced{{"web.2", "waiting for volume data to be bound to the node of the first task placed with it"}},
		},
		{
			name:         "the volume's node is down",
			nodes:        []*api.Node{mkNode("a"), mkNode("b", state(api.NodeDown))},
			vols:         Volumes{"data": "b"},
			pending:      []*api.Task{mkTask("t1", "web", mounts("data"))},
			wantUnplaced: []Unplaced{{"t1", "no node can run it: volume data lives on node pi-b (b), which is down"}},
		},
		{
			name:         "the volume's node is drained",
			nodes:        []*api.Node{mkNode("a"), mkNode("b", availability(api.AvailabilityDrain))},
			vols:         Volumes{"data": "b"},
			pending:      []*api.Task{mkTask("t1", "web", mounts("data"))},
			wantUnplaced: []Unplaced{{"t1", "no node can run it: volume data lives on node pi-b (b), which is drained"}},
		},
		{
			name:         "constraints rule out the volume's node",
			nodes:        []*api.Node{mkNode("a"), mkNode("b")},
			vols:         Volumes{"data": "b"},
			pending:      []*api.Task{mkTask("t1", "web", mounts("data"), constraints("node.hostname==pi-a"))},
			wantUnplaced: []Unplaced{{"t1", "no node can run it: volume data lives on node pi-b (b), which does not match node.hostname==pi-a"}},
		},
		{
			name:         "two volumes on two nodes",
			nodes:        three,
			vols:         Volumes{"data": "a", "logs": "c"},
			pending:      []*api.Task{mkTask("t1", "web", mounts("data", "logs"))},
			wantUnplaced: []Unplaced{{"t1", "no node can run it: volume data lives on node pi-a (a) and volume logs on node pi-c (c)"}},
		},
		{
			name:         "a volume that does not exist",
			nodes:        three,
			vols:         Volumes{},
			pending:      []*api.Task{mkTask("t1", "web", mounts("data"))},
			wantUnplaced: []Unplaced{{"t1", "no volume data: create it with warrenctl volume create data"}},
		},
		{
			name:         "a global task on another node than the volume's",
			nodes:        three,
			vols:         Volumes{"data": "c"},
			pending:      []*api.Task{mkTask("t1", "web", mounts("data"), on("a")), mkTask("t2", "web", mounts("data"), on("c"))},
			wantAssigned: []Assignment{{"t2", "c"}},
			wantUnplaced: []Unplaced{{"t1", "no node can run it: volume data lives on node pi-c (c), not on node pi-a (a)"}},
		},
		{
			name:         "a bound and an unbound volume: the bound one decides",
			nodes:        three,
			vols:         Volumes{"data": "c", "logs": ""},
			pending:      []*api.Task{mkTask("t1", "web", mounts("data", "logs"))},
			wantAssigned: []Assignment{{"t1", "c"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Schedule(tt.nodes, tt.placed, tt.pending, tt.vols)
			c := call(tt.nodes, tt.placed, tt.pending)
			if !slices.Equal(got.Assigned, tt.wantAssigned) {
				t.Errorf("Schedule(%s, volumes %v) assigned %v, want %v", c, tt.vols, got.Assigned, tt.wantAssigned)
			}
			if !slices.Equal(got.Unplaced, tt.wantUnplaced) {
				t.Errorf("Schedule(%s, volumes %v) left unplaced %q, want %q", c, tt.vols, got.Unplaced, tt.wantUnplaced)
			}
		})
	}
}
