package opts

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/warren-edge/warren/daemons/api"
)

// ParseMount reads a --mount value, comma-separated KEY=VALUE fields as
// docker's --mount takes them:
//
//	type=volume,src=data,dst=/data[,readonly]
//	type=tmpfs,dst=/cache[,size=64m][,mode=1777]
//	type=bind,src=/srv/www,dst=/www[,readonly]
//
// source and target (or destination) are the long names of src and dst;
// ro and readonly=true|false also work. The type defaults to volume. What
// needs no node or store (absolute paths, no "..", the size and mode) is
// checked by the API (api.ValidateServiceSpec), not here: here only what
// the text itself says.
func ParseMount(s string) (api.Mount, error) {
	var m api.Mount
	s = strings.TrimSpace(s)
	if s == "" {
		return m, fmt.Errorf("empty mount: use type=volume|bind|tmpfs,src=...,dst=/path")
	}
	m.Type = api.MountVolume
	for _, f := range strings.Split(s, ",") {
		k, v, hasVal := strings.Cut(strings.TrimSpace(f), "=")
		switch strings.ToLower(k) {
		case "type":
			m.Type = strings.ToLower(v)
		case "src", "source":
			m.Source = v
		case "dst", "destination", "target":
			m.Target = v
		case "readonly", "ro":
			switch strings.ToLower(v) {
			case "", "true", "1":
				if hasVal && v == "" {
					return m, fmt.Errorf("mount %q: %s= needs true or false", s, k)
				}
				m.ReadOnly = true
			case "false", "0":
				m.ReadOnly = false
			default:
				return m, fmt.Errorf("mount %q: %s=%s: use true or false", s, k, v)
			}
		case "size", "tmpfs-size":
			n, err := api.ParseBytes(v)
			if err != nil || n <= 0 {
				return m, fmt.Errorf("mount %q: size %q is not a size such as 64m or 1g", s, v)
			}
			m.Size = api.Bytes(n)
		case "mode", "tmpfs-mode":
			if _, err := api.ParseMode(v); err != nil {
				return m, fmt.Errorf("mount %q: %v", s, err)
			}
			m.Mode = v
		case "":
			return m, fmt.Errorf("mount %q: an empty field; fields are KEY=VALUE separated by ','", s)
		default:
			return m, fmt.Errorf("mount %q: unknown field %q: use type, src, dst, readonly, size or mode", s, k)
		}
	}
	switch m.Type {
	case api.MountVolume, api.MountBind, api.MountTmpfs:
	default:
		return m, fmt.Errorf("mount %q: type %q is not volume, bind or tmpfs", s, m.Type)
	}
	if m.Target == "" {
		return m, fmt.Errorf("mount %q: a destination in the container is required: dst=/path", s)
	}
	return m.Normalized(), nil
}

// SetMounts applies --mount-rm (destinations) then --mount/--mount-add to
// mounts: a mount at a destination that one already has replaces it.
func SetMounts(mounts []api.Mount, rm, add []string) ([]api.Mount, error) {
	out := slices.Clone(mounts)
	for _, dst := range rm {
		clean := path.Clean(dst)
		n := len(out)
		out = slices.DeleteFunc(out, func(m api.Mount) bool { return m.Target == dst || m.Target == clean })
		if len(out) == n {
			return nil, fmt.Errorf("--mount-rm %s: the service mounts nothing there", dst)
		}
	}
	for _, a := range add {
		m, err := ParseMount(a)
		if err != nil {
			return nil, err
		}
		out = slices.DeleteFunc(out, func(have api.Mount) bool { return have.Target == m.Target })
		out = append(out, m)
	}
	if len(out) == 0 {
		out = nil
	}
	return out, nil
}
