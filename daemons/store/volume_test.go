package store

import (
	"slices"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func (h *harness) createVolume(name, node string) *api.Volume {
	h.t.Helper()
	return h.mustApply(CmdVolumeCreate, VolumeCreate{Volume: api.Volume{
		Meta: api.Meta{ID: "v-" + name, CreatedAt: t0}, Spec: api.VolumeSpec{Name: name}, NodeID: node}}).(*api.Volume)
}

func volumeSpec(name string, vols ...string) api.ServiceSpec {
	s := spec(name, 1)
	for _, v := range vols {
		s.Mounts = append(s.Mounts, api.Mount{Type: api.MountVolume, Source: v, Target: "/" + v})
	}
	return s
}

func TestVolumeCreateInspectRemove(t *testing.T) {
	h := newHarness(t)
	h.registerNode("n1")
	h.createVolume("data", "n1")
	h.createVolume("logs", "")
	if err := asErr(h.apply(CmdVolumeCreate, VolumeCreate{Volume: api.Volume{Spec: api.VolumeSpec{Name: "data"}}})); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("create volume data again = %v, want a conflict", err)
	}
	if err := asErr(h.apply(CmdVolumeCreate, VolumeCreate{Volume: api.Volume{Spec: api.VolumeSpec{Name: "x"}, NodeID: "nope"}})); !api.NotFound(err) {
		t.Errorf("create volume on a missing node = %v, want not found", err)
	}
	h.view(func(v *View) {
		vs := v.Volumes()
		if len(vs) != 2 || vs[0].Spec.Name != "data" || vs[0].NodeID != "n1" || vs[1].Spec.Name != "logs" || vs[1].NodeID != "" {
			t.Errorf("Volumes() = %+v, want data on n1 and logs unbound", vs)
		}
	})
	h.createVolume("more", "n1")
	h.view(func(v *View) {
		if n, _ := v.NodeByID("n1"); !slices.Equal(n.Volumes, []string{"data", "more"}) {
			t.Errorf("node n1's volumes = %v, want [data more]", n.Volumes)
		}
	})
	h.mustApply(CmdVolumeRemove, VolumeRemove{Name: "more", At: t0})
	h.mustApply(CmdVolumeRemove, VolumeRemove{Name: "logs", At: t0})
	h.view(func(v *View) {
		if n, _ := v.NodeByID("n1"); !slices.Equal(n.Volumes, []string{"data"}) || !n.VolumesKnown {
			t.Errorf("node n1's volumes after rm more = %v (known %t), want [data], known", n.Volumes, n.VolumesKnown)
		}
		if _, err := v.Volume("logs"); !api.NotFound(err) {
			t.Errorf("Volume(logs) after rm = %v, want not found", err)
		}
	})
	if err := asErr(h.apply(CmdVolumeRemove, VolumeRemove{Name: "logs", At: t0})); !api.NotFound(err) {
		t.Errorf("rm of a removed volume = %v, want not found", err)
	}
}

func TestServiceMountingAMissingVolumeIsRefused(t *testing.T) {
	h := newHarness(t)
	err := asErr(h.apply(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "s1"}, Spec: volumeSpec("web", "data")}}))
	if err == nil || !strings.Contains(err.Error(), "no volume data: create it with warrenctl volume create data") {
		t.Fatalf("create a service that mounts a missing volume = %v, want the no-volume error", err)
	}
	h.view(func(v *View) {
		if n := v.ServiceCount(); n != 0 {
			t.Errorf("after the refused create: %d services, want 0", n)
		}
	})
}

func TestVolumeRemoveRefusedWhileInUse(t *testing.T) {
	h := newHarness(t)
	h.registerNode("n1")
	h.createVolume("data", "")
	h.createService("s1", volumeSpec("web", "data"))
	h.createService("s2", volumeSpec("api", "data"))
	t1, t2 := task("t1", "s1", 1, ""), task("t2", "s2", 1, "")
	t1.ServiceName, t1.Spec = "web", volumeSpec("web", "data")
	t2.ServiceName, t2.Spec = "api", volumeSpec("api", "data")
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{t1, t2}, At: t0})

	err := asErr(h.apply(CmdVolumeRemove, VolumeRemove{Name: "data", At: t0}))
	if !api.IsCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "in use by service api, web") {
		t.Fatalf("rm of a volume two services use = %v, want a conflict naming api, web", err)
	}
	h.view(func(v *View) {
		if _, err := v.Volume("data"); err != nil {
			t.Errorf("the refused rm changed the volume: %v", err)
		}
	})
	// Once the tasks have ended and are no longer wanted, it goes.
	h.mustApply(CmdServiceDelete, ServiceDelete{ID: "s1", At: t0})
	h.mustApply(CmdServiceDelete, ServiceDelete{ID: "s2", At: t0})
	h.mustApply(CmdVolumeRemove, VolumeRemove{Name: "data", At: t0})
}

func TestFirstPlacementBindsVolume(t *testing.T) {
	h := newHarness(t)
	h.registerNode("n1")
	h.registerNode("n2")
	h.createVolume("data", "")
	h.createService("s1", volumeSpec("web", "data"))
	t1, t2 := task("t1", "s1", 1, ""), task("t2", "s1", 2, "")
	t1.Spec, t2.Spec = volumeSpec("web", "data"), volumeSpec("web", "data")
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{t1, t2}, At: t0})
	h.mustApply(CmdTaskPlan, api.TaskPlan{Updates: []api.TaskChange{{ID: "t1", NodeID: "n2", State: api.TaskAssigned}}, At: t0})
	h.view(func(v *View) {
		if vol, _ := v.Volume("data"); vol.NodeID != "n2" {
			t.Errorf("volume data after its first task went to n2: node %q, want n2", vol.NodeID)
		}
		if n, _ := v.NodeByID("n2"); !slices.Equal(n.Volumes, []string{"data"}) {
			t.Errorf("node n2's volumes after the binding = %v, want [data]", n.Volumes)
		}
	})
	// A plan that puts the second task elsewhere (raced the binding) is
	// refused for that task.
	res := h.mustApply(CmdTaskPlan, api.TaskPlan{Updates: []api.TaskChange{{ID: "t2", NodeID: "n1", State: api.TaskAssigned}}, At: t0})
	if sk, _ := res.([]string); len(sk) != 1 || !strings.Contains(sk[0], "volume data lives on node n2") {
		t.Errorf("placing t2 on n1 when data lives on n2: skipped %v, want t2 refused", res)
	}
	h.view(func(v *View) {
		if t2, _ := v.Task("t2"); t2.NodeID != "" {
			t.Errorf("t2 went to node %q, want none", t2.NodeID)
		}
		if vol, _ := v.Volume("data"); vol.NodeID != "n2" {
			t.Errorf("volume data moved to %q", vol.NodeID)
		}
	})
}

func TestWorkersWatchNoVolumes(t *testing.T) {
	c := &Change{Kind: api.KindVolume, ID: "data", NodeID: "n1"}
	if (&Filter{Worker: "n1"}).Match(c) {
		t.Errorf("a worker's watch (n1) matches a change of volume data on n1, want not: its replica keeps no volumes")
	}
	if !(&Filter{}).Match(c) || !(&Filter{Kinds: map[string]bool{api.KindVolume: true}}).Match(c) {
		t.Errorf("a manager-side watch does not match a change of volume data, want it to (the leader's loop follows volumes)")
	}
}
