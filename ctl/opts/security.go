package opts

import (
	"fmt"
	"slices"
	"strings"

	"github.com/warren-edge/warren/daemons/api"
)

// SecurityOpt is what one --security-opt value sets: Seccomp (a mode of
// api.ServiceSpec.Seccomp) or, when NewPrivileges is set, whether new
// privileges are allowed.
type SecurityOpt struct {
	Seccomp       string
	NewPrivileges *bool
}

// ParseSecurityOpt reads a --security-opt value as docker does, with "="
// or ":": seccomp=unconfined, seccomp=default, no-new-privileges (or
// =true), no-new-privileges=false.
func ParseSecurityOpt(s string) (SecurityOpt, error) {
	k, v, hasVal := strings.Cut(s, "=")
	if !hasVal {
		k, v, hasVal = strings.Cut(s, ":")
	}
	switch k {
	case "seccomp":
		switch v {
		case api.SeccompDefault, api.SeccompUnconfined:
			return SecurityOpt{Seccomp: v}, nil
		case "":
			return SecurityOpt{}, fmt.Errorf("security-opt %q: give a mode: seccomp=unconfined or seccomp=default", s)
		}
		return SecurityOpt{}, fmt.Errorf("security-opt %q: Warren runs Docker's default seccomp profile or none; custom profiles are not supported: use seccomp=unconfined or seccomp=default", s)
	case "no-new-privileges":
		allow := false
		switch v {
		case "true":
		case "false":
			allow = true
		default:
			if hasVal {
				return SecurityOpt{}, fmt.Errorf("security-opt %q: use no-new-privileges=true (the default) or no-new-privileges=false", s)
			}
		}
		return SecurityOpt{NewPrivileges: &allow}, nil
	}
	return SecurityOpt{}, fmt.Errorf("security-opt %q is not supported: use seccomp=unconfined, seccomp=default or no-new-privileges=false", s)
}

// Capabilities returns the capability lists of a spec after --cap-add,
// --cap-drop, --cap-add-rm and --cap-drop-rm, by docker service update's
// rules: a capability added leaves the drop list and one dropped leaves
// the add list, and when a capability is both added and dropped the add
// wins; -rm forgets a capability from its list (the default applies to it
// again). Names are normalized (api.NormalizeCapability: CAP_NET_ADMIN,
// ALL); an unknown one is an error naming the flag. Empty lists are nil.
func Capabilities(add, drop []string, addFlag, dropFlag, addRmFlag, dropRmFlag []string) (newAdd, newDrop []string, err error) {
	norm := func(flag string, names []string) ([]string, error) {
		var out []string
		for _, n := range names {
			c, err := api.NormalizeCapability(n)
			if err != nil {
				return nil, fmt.Errorf("--%s: %w", flag, err)
			}
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
		return out, nil
	}
	var adds, drops, addRms, dropRms []string
	for _, l := range []struct {
		flag  string
		names []string
		dst   *[]string
	}{{"cap-add", addFlag, &adds}, {"cap-drop", dropFlag, &drops}, {"cap-add-rm", addRmFlag, &addRms}, {"cap-drop-rm", dropRmFlag, &dropRms}} {
		if *l.dst, err = norm(l.flag, l.names); err != nil {
			return nil, nil, err
		}
	}
	drops = slices.DeleteFunc(drops, func(c string) bool { return slices.Contains(adds, c) })
	// keep normalizes have (a spec's own names may be in another case or
	// lack CAP_), without duplicates and without what forget holds.
	keep := func(have []string, forget ...[]string) []string {
		var out []string
		for _, h := range have {
			c, err := api.NormalizeCapability(h)
			if err != nil {
				c = h
			}
			gone := false
			for _, f := range forget {
				gone = gone || slices.Contains(f, c)
			}
			if !gone && !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
		return out
	}
	newAdd = keep(slices.Concat(add, adds), addRms, drops)
	newDrop = keep(slices.Concat(drop, drops), dropRms, adds)
	if len(newAdd) == 0 {
		newAdd = nil
	}
	if len(newDrop) == 0 {
		newDrop = nil
	}
	return newAdd, newDrop, nil
}
