package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
)

// VolumesDir is the folder under the agent's data dir that holds the
// data of the volumes that live on this node, one folder per volume.
const VolumesDir = "volumes"

// volumeDir is where volume name keeps its data on this node.
func (a *Agent) volumeDir(name string) (string, error) {
	if err := api.ValidateName(name); err != nil {
		return "", fmt.Errorf("volume name: %w", err) // never a path outside the folder
	}
	return filepath.Join(a.cfg.DataDir, VolumesDir, name), nil
}

// taskMounts turns a task's mounts into the runtime's: a volume's folder
// (made on first use), a bind source the node allows (CheckBind), or a
// tmpfs. Its error says what to change, and rejects the task.
func (a *Agent) taskMounts(t *api.Task) ([]rt.Mount, error) {
	var out []rt.Mount
	for _, m := range t.Spec.Mounts {
		switch m.Type {
		case api.MountVolume:
			dir, err := a.volumeDir(m.Source)
			if err != nil {
				return nil, err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return nil, fmt.Errorf("volume %s: %w", m.Source, err)
			}
			out = append(out, rt.Mount{Type: "bind", Source: dir, Destination: m.Target, ReadOnly: m.ReadOnly})
		case api.MountBind:
			src, err := CheckBind(a.cfg.AllowBind, m.Source)
			if err != nil {
				return nil, err
			}
			out = append(out, rt.Mount{Type: "bind", Source: src, Destination: m.Target, ReadOnly: m.ReadOnly})
		case api.MountTmpfs:
			var mode uint32
			if m.Mode != "" {
				v, err := api.ParseMode(m.Mode)
				if err != nil {
					return nil, fmt.Errorf("tmpfs at %s: %w", m.Target, err)
				}
				mode = v
			}
			out = append(out, rt.Mount{Type: "tmpfs", Destination: m.Target, Size: int64(m.Size), Mode: mode})
		default:
			return nil, fmt.Errorf("mount at %s: type %q is not volume, bind or tmpfs", m.Target, m.Type)
		}
	}
	return out, nil
}

// CheckBind says whether a bind mount's source lies under one of the
// host paths allow (warren agent --allow-bind; none by default, so every
// bind is refused), and returns the path to mount: the source with its
// symbolic links resolved. It checks the path as written and again after
// resolving links, so a link cannot lead out of an allowed folder; a path
// with ".." is refused.
func CheckBind(allow []string, src string) (string, error) {
	refuse := func(why string) error {
		allowed := "none allowed by default"
		if len(allow) > 0 {
			allowed = "allowed: " + strings.Join(allow, ", ")
		}
		return fmt.Errorf("bind source %s %s: add it with warren agent --allow-bind (%s)", src, why, allowed)
	}
	if !filepath.IsAbs(src) {
		return "", refuse("is not an absolute path")
	}
	for _, e := range strings.Split(src, "/") {
		if e == ".." {
			return "", fmt.Errorf("bind source %s holds '..': name the folder itself", src)
		}
	}
	clean := filepath.Clean(src)
	if !under(allow, clean, false) {
		return "", refuse("is not under a path this node allows")
	}
	real, err := filepath.EvalSymlinks(clean)
	if err != nil {
		return "", fmt.Errorf("bind source %s: %w", src, err)
	}
	if !under(allow, real, true) {
		return "", refuse("leads to " + real + ", which is not under a path this node allows")
	}
	return real, nil
}

// under says whether p is one of the folders in allow or inside one.
// With resolve, each allowed folder's own links are resolved first.
func under(allow []string, p string, resolve bool) bool {
	for _, a := range allow {
		a = filepath.Clean(a)
		if resolve {
			if r, err := filepath.EvalSymlinks(a); err == nil {
				a = r
			}
		}
		if p == a || a == "/" || strings.HasPrefix(p, a+"/") {
			return true
		}
	}
	return false
}

// dropVolumes deletes the data of the volumes this node holds that are
// not in kept (the volumes the managers say live here: api.Node.Volumes)
// and that no task of the node mounts. It waits until the agent knows the
// node's tasks (synced) and owns every container it runs, and acts only on
// a list the managers say they keep (VolumesKnown): data is never deleted
// on a guess.
func (a *Agent) dropVolumes(self *api.Node) {
	if self == nil || !self.VolumesKnown {
		return
	}
	kept := self.Volumes
	dir := filepath.Join(a.cfg.DataDir, VolumesDir)
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return
	}
	used := map[string]bool{}
	a.mu.Lock()
	sure := a.synced
	for _, t := range a.tasks {
		for _, name := range t.Spec.VolumeNames() {
			used[name] = true
		}
	}
	for id := range a.containers {
		if _, ok := a.tasks[id]; !ok {
			sure = false // a container of a task the agent no longer knows
		}
	}
	a.mu.Unlock()
	if !sure {
		return
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || used[name] || slices.Contains(kept, name) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			a.log.Warn("delete a removed volume's data", "volume", name, "err", err)
			continue
		}
		a.log.Info("deleted the data of a removed volume", "volume", name)
	}
}
