package compose

import (
	"maps"
	"slices"
	"strings"
)

// keys is the part of the Compose model Warren honours: each key maps to
// what is honoured under it; all is everything under it, anyName stands for
// every name (a service's, a secret's).
type keys map[string]keys

var all = keys{"*all*": nil}

const anyName = "*any*"

var (
	updateKeys = keys{"parallelism": all, "delay": all, "failure_action": all, "monitor": all, "max_failure_ratio": all, "order": all}
	fileRef    = keys{"source": all, "target": all, "uid": all, "gid": all, "mode": all}
	service    = keys{
		"image": all, "command": all, "entrypoint": all, "environment": all, "env_file": all,
		"working_dir": all, "user": all, "read_only": all, "cap_add": all, "cap_drop": all,
		"pids_limit": all, "stop_grace_period": all, "labels": all,
		"ports":       {"target": all, "published": all, "protocol": all, "mode": all, "host_ip": all},
		"healthcheck": {"test": all, "interval": all, "timeout": all, "retries": all, "start_period": all, "disable": all},
		"deploy": {
			"mode": all, "replicas": all, "labels": all,
			"placement": {"constraints": all},
			"resources": {
				"limits":       {"cpus": all, "memory": all, "pids": all},
				"reservations": {"cpus": all, "memory": all},
			},
			"restart_policy":  {"condition": all, "delay": all, "max_attempts": all, "window": all},
			"update_config":   updateKeys,
			"rollback_config": updateKeys,
		},
		"secrets": fileRef,
		"configs": fileRef,
		// The loader writes bind.create_host_path and an empty volume: {}
		// into every mount: they say nothing.
		"volumes": {"type": all, "source": all, "target": all, "read_only": all,
			"bind": {"create_host_path": all}, "volume": {}, "tmpfs": {"size": all, "mode": all}},
	}
	fileDef = keys{"file": all, "external": all, "name": all}
	model   = keys{
		// version is obsolete in Compose itself; name is the stack's.
		"version": all, "name": all,
		"services": {anyName: service},
		"secrets":  {anyName: fileDef},
		"configs":  {anyName: fileDef},
		"volumes":  {anyName: {"external": all, "name": all}},
	}
)

// unsupported lists the key paths the model sets that Warren does not
// honour, once each (list items share their list's path), sorted.
// Extension keys (x-...) are Compose's own way to be ignored.
func unsupported(m map[string]any) []string {
	found := map[string]bool{}
	walk(m, model, "", found)
	return slices.Sorted(maps.Keys(found))
}

func walk(v any, k keys, path string, found map[string]bool) {
	if _, ok := k["*all*"]; ok {
		return
	}
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			walk(e, k, path, found)
		}
	case map[string]any:
		for name, sub := range v {
			if strings.HasPrefix(name, "x-") {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			next, ok := k[name]
			if !ok {
				next, ok = k[anyName]
			}
			switch {
			case ok:
				walk(sub, next, p, found)
			case set(sub):
				found[p] = true
			}
		}
	}
}

// set says whether a value says something: not null, not {} or [].
func set(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case map[string]any:
		return len(v) > 0
	case []any:
		return len(v) > 0
	}
	return true
}
