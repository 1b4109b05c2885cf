package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/warren-edge/warren"

// The project packages warrenctl may use: its own, the API, and the
// certificates it speaks mTLS with to a node port (pki: crypto only).
var allowedProject = []string{
	module + "/ctl/",
	module + "/daemons/api",
	module + "/daemons/api/client",
	module + "/daemons/pki",
}

// Outside packages that mean warrenctl reaches past the API.
var forbiddenPrefixes = []string{
	"github.com/hashicorp/raft", // raft and raft-boltdb
	"go.etcd.io/bbolt",
	"github.com/boltdb/bolt",
	"github.com/containerd/",
}

// forbidden returns the packages of deps warrenctl must not depend on.
func forbidden(deps []string) []string {
	var bad []string
	for _, p := range deps {
		switch {
		case strings.HasPrefix(p, module+"/"):
			ok := false
			for _, a := range allowedProject {
				if p == a || strings.HasSuffix(a, "/") && strings.HasPrefix(p, a) {
					ok = true
				}
			}
			if !ok {
				bad = append(bad, p)
			}
		default:
			for _, f := range forbiddenPrefixes {
				if strings.HasPrefix(p, f) {
					bad = append(bad, p)
				}
			}
		}
	}
	return bad
}

// TestLayering keeps warrenctl a client of the API: it must not link
// Raft, bbolt, containerd, the store, the manager or the agent.
func TestLayering(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the layering check needs the go command on PATH: %v", err)
	}
	for _, pattern := range []string{"./", module + "/ctl/..."} {
		out, err := exec.Command(goTool, "list", "-deps", pattern).Output()
		if err != nil {
			msg := ""
			if ee, ok := err.(*exec.ExitError); ok {
				msg = string(ee.Stderr)
			}
			t.Fatalf("go list -deps %s: %v\n%s", pattern, err, msg)
		}
		deps := strings.Fields(string(out))
		// The list must be the real one: warrenctl and the client are in it.
		for _, must := range []string{module + "/ctl/warrenctl", module + "/daemons/api/client", "github.com/spf13/cobra"} {
			if !slices.Contains(deps, must) {
				t.Fatalf("go list -deps %s does not list %s; is the check looking at warrenctl?", pattern, must)
			}
		}
		if bad := forbidden(deps); len(bad) > 0 {
			t.Errorf("warrenctl (go list -deps %s) depends on packages it must not use: %s\n"+
				"ctl/ may import only daemons/api and daemons/api/client from the project", pattern, strings.Join(bad, ", "))
		}
	}
}

func TestForbidden(t *testing.T) {
	deps := []string{
		"fmt", "github.com/spf13/cobra", "gopkg.in/yaml.v3",
		module + "/ctl/cli", module + "/daemons/api", module + "/daemons/api/client",
		"github.com/hashicorp/raft", "github.com/hashicorp/raft-boltdb/v2", "go.etcd.io/bbolt",
		"github.com/containerd/containerd/v2/client", module + "/daemons/store",
		module + "/daemons/manager", module + "/daemons/agent", module + "/daemons/apix",
	}
	want := []string{"github.com/hashicorp/raft", "github.com/hashicorp/raft-boltdb/v2", "go.etcd.io/bbolt",
		"github.com/containerd/containerd/v2/client", module + "/daemons/store",
		module + "/daemons/manager", module + "/daemons/agent", module + "/daemons/apix"}
	if got := forbidden(deps); !slices.Equal(got, want) {
		t.Errorf("forbidden(%q)\n = %q\nwant %q", deps, got, want)
	}
}
