package api

import (
	"fmt"
	"strings"
)

// Constraint is one parsed placement expression: node.ATTR==VALUE or
// node.ATTR!=VALUE.
type Constraint struct {
	// Key is "node.id", "node.hostname", "node.role", "node.platform.os",
	// "node.platform.arch" or "node.labels.NAME".
	Key   string
	Equal bool
	Value string
}

var constraintKeys = map[string]bool{
	"node.id": true, "node.hostname": true, "node.role": true,
	"node.platform.os": true, "node.platform.arch": true,
}

// ParseConstraint reads "node.labels.zone==east" and its kin.
func ParseConstraint(expr string) (Constraint, error) {
	var c Constraint
	var key, val string
	if k, v, ok := strings.Cut(expr, "!="); ok {
		key, val = k, v
	} else if k, v, ok := strings.Cut(expr, "=="); ok {
		key, val, c.Equal = k, v, true
	} else {
		return c, fmt.Errorf("%q has no == or !=: write e.g. node.labels.zone==east or node.role!=manager", expr)
	}
	c.Key, c.Value = strings.TrimSpace(key), strings.TrimSpace(val)
	if c.Value == "" {
		return c, fmt.Errorf("%q has no value after the operator", expr)
	}
	if strings.HasPrefix(c.Key, "node.labels.") {
		if !labelKeyRe.MatchString(strings.TrimPrefix(c.Key, "node.labels.")) {
			return c, fmt.Errorf("%q names an invalid label key", expr)
		}
		return c, nil
	}
	if !constraintKeys[c.Key] {
		return c, fmt.Errorf("%q: unknown attribute %q: use node.id, node.hostname, node.role, node.platform.os, node.platform.arch or node.labels.NAME", expr, c.Key)
	}
	if c.Key == "node.role" && c.Value != RoleManager && c.Value != RoleWorker {
		return c, fmt.Errorf("%q: node.role is manager or worker", expr)
	}
	return c, nil
}

// Matches says whether node n satisfies the constraint.
func (c Constraint) Matches(n *Node) bool {
	var have string
	var ok = true
	switch c.Key {
	case "node.id":
		have = n.ID
	case "node.hostname":
		have = n.Description.Hostname
	case "node.role":
		have = n.Spec.Role
	case "node.platform.os":
		have = n.Description.OS
	case "node.platform.arch":
		have = n.Description.Arch
	default:
		have, ok = n.Spec.Labels[strings.TrimPrefix(c.Key, "node.labels.")]
	}
	if c.Equal {
		return ok && have == c.Value
	}
	return !ok || have != c.Value
}

func (c Constraint) String() string {
	op := "!="
	if c.Equal {
		op = "=="
	}
	return c.Key + op + c.Value
}
