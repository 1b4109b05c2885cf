package api

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
)

// KindVolume is the watch kind of volumes.
const KindVolume = "volume"

// Volume is a named directory of data that lives on one node: the tasks
// that mount it run on that node, and its data outlives them.
type Volume struct {
	Meta `yaml:",inline"`
	Spec VolumeSpec `json:"spec" yaml:"spec"`
	// NodeID is the node the volume lives on: the one named at create,
	// or else the node of the first task placed with it ("" until then).
	NodeID string `json:"nodeID,omitempty" yaml:"nodeID,omitempty"`
}

// VolumeSpec is what an operator declares of a volume.
type VolumeSpec struct {
	Name   string            `json:"name" yaml:"name"`
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// Node pins the volume to a node (ID, ID prefix or hostname) at
	// create; the manager stores the node's ID in Volume.NodeID.
	Node string `json:"node,omitempty" yaml:"node,omitempty"`
}

// ValidateVolumeSpec checks a volume spec on its own (the node it names
// is looked up in the store). The name is a DNS label, like a service's:
// it becomes a directory name on the node.
func ValidateVolumeSpec(s *VolumeSpec) error {
	var fe fieldErrs
	if err := ValidateName(s.Name); err != nil {
		fe.add("name", "%v", err)
	}
	validateLabels(&fe, "labels", s.Labels)
	return fe.err("volume spec")
}

// Mount types.
const (
	MountVolume = "volume"
	MountBind   = "bind"
	MountTmpfs  = "tmpfs"
)

// MaxMounts bounds the mounts of a spec.
const MaxMounts = 64

// Mount is a filesystem a task's container gets at Target: a volume (its
// Source is the volume's name), a directory of the host (Source is an
// absolute path under one the node allows, agent --allow-bind), or a
// fresh tmpfs.
type Mount struct {
	Type     string `json:"type" yaml:"type"`
	Source   string `json:"source,omitempty" yaml:"source,omitempty"`
	Target   string `json:"target" yaml:"target"`
	ReadOnly bool   `json:"readOnly,omitempty" yaml:"readOnly,omitempty"`
	// Size caps a tmpfs (0: the kernel's default, half the memory).
	Size Bytes `json:"size,omitempty" yaml:"size,omitempty"`
	// Mode is a tmpfs's permission bits in octal, e.g. "1777".
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
}

// String is the mount in the form warrenctl --mount reads.
func (m Mount) String() string {
	var b strings.Builder
	b.WriteString("type=" + m.Type)
	if m.Source != "" {
		b.WriteString(",src=" + m.Source)
	}
	b.WriteString(",dst=" + m.Target)
	if m.ReadOnly {
		b.WriteString(",readonly")
	}
	if m.Size != 0 {
		b.WriteString(",size=" + strconv.FormatInt(int64(m.Size), 10))
	}
	if m.Mode != "" {
		b.WriteString(",mode=" + m.Mode)
	}
	return b.String()
}

// Normalized is m with clean paths (path.Clean of the target and of a
// bind source), so that the same mount compares equal however it was
// written. A path that holds ".." is left as written, for validation to
// refuse: cleaning it would hide where it points.
func (m Mount) Normalized() Mount {
	if m.Target != "" && !hasDotDot(m.Target) {
		m.Target = path.Clean(m.Target)
	}
	if m.Type == MountBind && m.Source != "" && !hasDotDot(m.Source) {
		m.Source = path.Clean(m.Source)
	}
	return m
}

// ParseMode reads a tmpfs mode: octal permission bits, at most 07777.
func ParseMode(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return 0, fmt.Errorf("mode %q is not octal permission bits such as 1777 or 0755", s)
	}
	return uint32(v), nil
}

// hasDotDot says whether a path written by a person names a ".." element.
func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// pathProblem says what is wrong with a mount's path, or "".
func pathProblem(p string) string {
	switch {
	case !path.IsAbs(p) || strings.ContainsRune(p, 0):
		return "must be an absolute path"
	case hasDotDot(p):
		return "must not hold '..'"
	}
	return ""
}

// validateMounts checks the mounts of a spec on their own: what does not
// need the node (a bind source's allow-list is the node's) or the store
// (a volume's existence).
func validateMounts(fe *fieldErrs, mounts []Mount) {
	if len(mounts) > MaxMounts {
		fe.add("mounts", "%d mounts; the limit is %d", len(mounts), MaxMounts)
		return
	}
	seen := map[string]int{}
	for i, m := range mounts {
		f := fmt.Sprintf("mounts[%d]", i)
		switch why := pathProblem(m.Target); {
		case m.Target == "":
			fe.add(f+".target", "a destination is required: dst=/path in the container")
		case why != "":
			fe.add(f+".target", "%q: %s (a path in the container)", m.Target, why)
		case path.Clean(m.Target) == "/":
			fe.add(f+".target", "cannot mount over the container's root /")
		default:
			t := path.Clean(m.Target)
			if j, ok := seen[t]; ok {
				fe.add(f+".target", "%s is already the destination of mounts[%d]", t, j)
			} else {
				seen[t] = i
			}
		}
		switch m.Type {
		case MountVolume:
			if err := ValidateName(m.Source); err != nil {
				fe.add(f+".source", "a volume mount names its volume (src=NAME): %v", err)
			}
		case MountBind:
			if m.Source == "" {
				fe.add(f+".source", "a bind mount needs a host path: src=/host/path")
			} else if why := pathProblem(m.Source); why != "" {
				fe.add(f+".source", "bind source %q: %s (a path on the host)", m.Source, why)
			}
		case MountTmpfs:
			if m.Source != "" {
				fe.add(f+".source", "a tmpfs mount has no source")
			}
			if m.ReadOnly {
				fe.add(f+".readOnly", "a read-only tmpfs is always empty: leave readonly out")
			}
		case "":
			fe.add(f+".type", "a mount type is required: volume, bind or tmpfs")
		default:
			fe.add(f+".type", "%q is not a mount type: use volume, bind or tmpfs", m.Type)
		}
		if m.Type != MountTmpfs && (m.Size != 0 || m.Mode != "") {
			fe.add(f, "size and mode are for tmpfs mounts only")
		}
		if m.Size < 0 {
			fe.add(f+".size", "must not be negative")
		}
		if m.Mode != "" {
			if _, err := ParseMode(m.Mode); err != nil {
				fe.add(f+".mode", "%v", err)
			}
		}
	}
}

// VolumeNames returns the names of the volumes the spec mounts, each
// once, in the order of the mounts.
func (s *ServiceSpec) VolumeNames() []string {
	var out []string
	for _, m := range s.Mounts {
		if m.Type == MountVolume && !slices.Contains(out, m.Source) {
			out = append(out, m.Source)
		}
	}
	return out
}

// VolumeNotFound is the error for a mount of a volume that does not exist.
func VolumeNotFound(name string) error {
	return Errorf(CodeNotFound, "no volume %s: create it with warrenctl volume create %s", name, name)
}
