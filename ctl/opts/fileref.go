package opts

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/warren-edge/warren/daemons/api"
)

// ParseFileRef reads --secret and --config (kind api.KindSecret or
// api.KindConfig): NAME[,target=PATH][,uid=N][,gid=N][,mode=0400], or
// Docker's source=NAME,target=PATH form. Defaults (the target, the mode)
// and the checks of the whole spec are the API's (api.NormalizeSpec,
// api.ValidateServiceSpec).
func ParseFileRef(kind, s string) (api.FileRef, error) {
	var r api.FileRef
	for i, f := range strings.Split(s, ",") {
		k, v, hasEq := strings.Cut(f, "=")
		if !hasEq {
			if i > 0 {
				return r, fmt.Errorf("%q: %q is not KEY=VALUE: give NAME[,target=PATH,uid=N,gid=N,mode=0400]", s, f)
			}
			r.Name = f
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "source", "src":
			r.Name = v
		case "target", "dst", "destination":
			r.Target = v
		case "uid", "gid":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return r, fmt.Errorf("%q: %s %q is not a number", s, k, v)
			}
			if k == "uid" {
				r.UID = uint32(n)
			} else {
				r.GID = uint32(n)
			}
		case "mode":
			m, err := api.ParseFileMode(v)
			if err != nil {
				return r, fmt.Errorf("%q: %v", s, err)
			}
			r.Mode = m
		default:
			return r, fmt.Errorf("%q: unknown option %q: use target, uid, gid or mode", s, k)
		}
	}
	if err := api.ValidateSecretName(kind, r.Name); err != nil {
		return r, fmt.Errorf("%q: %s", s, err.(*api.Error).Message)
	}
	return r, nil
}

// RemoveFileRefs drops the secrets or configs named in names from refs;
// a name refs does not have is an error.
func RemoveFileRefs(kind string, refs []api.FileRef, names []string) ([]api.FileRef, error) {
	for _, n := range names {
		if !slices.ContainsFunc(refs, func(r api.FileRef) bool { return r.Name == n }) {
			return nil, fmt.Errorf("the service has no %s %q", kind, n)
		}
	}
	return slices.DeleteFunc(slices.Clone(refs), func(r api.FileRef) bool { return slices.Contains(names, r.Name) }), nil
}

// AddFileRef adds r to refs, replacing one of the same name.
func AddFileRef(refs []api.FileRef, r api.FileRef) []api.FileRef {
	refs = slices.DeleteFunc(slices.Clone(refs), func(x api.FileRef) bool { return x.Name == r.Name })
	return append(refs, r)
}
