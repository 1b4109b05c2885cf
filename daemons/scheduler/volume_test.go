package scheduler

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

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

// TestPropertyVolumeAffinity: over random clusters whose pending tasks
// mount random volumes (on a node, on none yet, on a node not in the
// cluster, or missing), a task is only ever assigned to the node of each
// bound volume it mounts, no volume without a node is taken by two tasks
// of one call, and every pending task gets an answer.
func TestPropertyVolumeAffinity(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genCluster(t)
		homes := []string{"", "", "gone"}
		for _, n := range c.nodes {
			homes = append(homes, n.ID)
		}
		vols := Volumes{}
		for _, name := range []string{"va", "vb", "vc"} {
			if rapid.IntRange(0, 4).Draw(t, name+".exists") > 0 {
				vols[name] = rapid.SampledFrom(homes).Draw(t, name+".node")
			}
		}
		for i, p := range c.pending {
			names := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"va", "vb", "vc"}), 0, 2, rapid.ID[string]).Draw(t, fmt.Sprintf("pending%d.volumes", i))
			cp := *p
			cp.Spec.Mounts = nil
			mounts(names...)(&cp)
			c.pending[i] = &cp
		}
		r := Schedule(c.nodes, c.placed, c.pending, vols)
		if n := len(r.Assigned) + len(r.Unplaced); n != len(c.pending) {
			t.Fatalf("Schedule(%v, volumes %v) answered for %d tasks, want %d", c, vols, n, len(c.pending))
		}
		byID := map[string]*api.Task{}
		for _, p := range c.pending {
			byID[p.ID] = p
		}
		takenBy := map[string]string{}
		for _, a := range r.Assigned {
			for _, name := range byID[a.TaskID].Spec.VolumeNames() {
				home, ok := vols[name]
				switch {
				case !ok:
					t.Fatalf("Schedule(%v, volumes %v) assigned %s, which mounts missing volume %s", c, vols, a.TaskID, name)
				case home != "" && home != a.NodeID:
					t.Fatalf("Schedule(%v, volumes %v) put %s on %s, but volume %s lives on %s", c, vols, a.TaskID, a.NodeID, name, home)
				case home == "" && takenBy[name] != "":
					t.Fatalf("Schedule(%v, volumes %v) assigned %s and %s, which both bind volume %s", c, vols, takenBy[name], a.TaskID, name)
				case home == "":
					takenBy[name] = a.TaskID
				}
			}
		}
	})
}
