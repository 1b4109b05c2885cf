package store

import (
	"slices"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

// VolumeCreate stores a new volume. The proposer resolves Spec.Node to
// the node's ID in NodeID; the FSM checks that the node still exists.
type VolumeCreate struct {
	Volume api.Volume `json:"volume"`
}

// VolumeRemove deletes a volume that no task uses.
type VolumeRemove struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
}

func (w *wtx) putVolume(v *api.Volume, op string) {
	v.Version = w.index
	raw := w.put(bVolumes, v.Spec.Name, v)
	w.record(op, api.KindVolume, v.Spec.Name, v.NodeID, "", raw, nil)
	w.refreshNodeVolumes(v.NodeID)
}

// refreshNodeVolumes keeps api.Node.Volumes of node id equal to the
// volumes that live on it: its agent learns from it (in the answer to
// its heartbeat, which a worker gets too) which data to keep.
func (w *wtx) refreshNodeVolumes(id string) {
	if id == "" {
		return
	}
	n, ok := w.view().NodeByID(id)
	if !ok {
		return
	}
	var names []string
	for _, v := range w.view().Volumes() {
		if v.NodeID == id {
			names = append(names, v.Spec.Name)
		}
	}
	if slices.Equal(names, n.Volumes) && n.VolumesKnown {
		return
	}
	n.Volumes, n.VolumesKnown = names, true
	w.putNode(n, api.OpUpdate)
}

func applyVolumeCreate(w *wtx, c *VolumeCreate) any {
	v := c.Volume
	if w.tx.Bucket(bVolumes).Get([]byte(v.Spec.Name)) != nil {
		return api.Errorf(api.CodeConflict, "a volume named %q exists: choose another name", v.Spec.Name)
	}
	if v.NodeID != "" {
		if _, ok := w.view().NodeByID(v.NodeID); !ok {
			return api.Errorf(api.CodeNotFound, "no node %q: list them with warrenctl node ls", v.NodeID)
		}
	}
	w.putVolume(&v, api.OpCreate)
	return &v
}

func applyVolumeRemove(w *wtx, c *VolumeRemove) any {
	v := w.view()
	vol, err := v.Volume(c.Name)
	if err != nil {
		return err
	}
	if err := v.CheckVolumeUnused(c.Name); err != nil {
		return err
	}
	w.must(w.tx.Bucket(bVolumes).Delete([]byte(c.Name)))
	raw, _ := json.Marshal(vol)
	w.record(api.OpDelete, api.KindVolume, vol.Spec.Name, vol.NodeID, "", raw, nil)
	w.refreshNodeVolumes(vol.NodeID)
	return nil
}

// Volume returns a volume by name.
func (v *View) Volume(name string) (*api.Volume, error) {
	raw := v.tx.Bucket(bVolumes).Get([]byte(name))
	if raw == nil {
		return nil, api.Errorf(api.CodeNotFound, "no volume %q: list them with warrenctl volume ls", name)
	}
	var vol api.Volume
	mustDecode(raw, &vol)
	return &vol, nil
}

// Volumes returns every volume, sorted by name.
func (v *View) Volumes() []*api.Volume {
	var out []*api.Volume
	v.tx.Bucket(bVolumes).ForEach(func(_, raw []byte) error {
		var vol api.Volume
		mustDecode(raw, &vol)
		out = append(out, &vol)
		return nil
	})
	return out
}

// VolumeUsers returns the names of the services whose live tasks (not
// ended, or still meant to run) mount the volume, sorted.
func (v *View) VolumeUsers(name string) []string {
	var out []string
	for _, t := range v.Tasks(TaskFilter{}) {
		if t.Status.State.Terminal() && t.DesiredState != api.TaskRunning {
			continue
		}
		if slices.Contains(t.Spec.VolumeNames(), name) && !slices.Contains(out, t.ServiceName) {
			out = append(out, t.ServiceName)
		}
	}
	slices.Sort(out)
	return out
}

// CheckVolumeUnused refuses, naming the services, to remove a volume that
// a live task mounts.
func (v *View) CheckVolumeUnused(name string) error {
	if users := v.VolumeUsers(name); len(users) > 0 {
		return api.Errorf(api.CodeConflict, "volume %s is in use by service %s: remove the service or its mount (warrenctl service update --mount-rm DST) first",
			name, strings.Join(users, ", "))
	}
	return nil
}

// checkVolumesExist says whether every volume a spec mounts exists.
func (v *View) checkVolumesExist(spec *api.ServiceSpec) error {
	for _, name := range spec.VolumeNames() {
		if v.tx.Bucket(bVolumes).Get([]byte(name)) == nil {
			return api.VolumeNotFound(name)
		}
	}
	return nil
}

// bindVolumes records node as the home of the unbound volumes task t
// mounts, when t is placed there. It refuses (with the reason) a
// placement on another node than a bound volume's: the scheduler keeps
// them apart, so this only happens when a plan raced a volume's binding.
func (w *wtx) bindVolumes(t *api.Task, node string) string {
	names := t.Spec.VolumeNames()
	if len(names) == 0 || node == "" {
		return ""
	}
	v := w.view()
	var unbound []*api.Volume
	for _, name := range names {
		vol, err := v.Volume(name)
		if err != nil {
			continue // removed meanwhile: the agent reports the failure
		}
		switch vol.NodeID {
		case "":
			unbound = append(unbound, vol)
		case node:
		default:
			return "volume " + name + " lives on node " + vol.NodeID
		}
	}
	for _, vol := range unbound {
		vol.NodeID = node
		w.putVolume(vol, api.OpUpdate)
	}
	return ""
}
