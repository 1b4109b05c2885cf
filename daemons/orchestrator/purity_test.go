package orchestrator_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The pure cores: functions of a state view and a clock value that return
// a plan. They must link no I/O: no Raft, no bbolt, no HTTP, no sockets,
// no containerd. (DESIGN.md §4, CONVENTIONS.md "Pure core, I/O at the
// edges".)
var pureCores = []string{
	"github.com/warren-edge/warren/daemons/orchestrator",
	"github.com/warren-edge/warren/daemons/scheduler",
	"github.com/warren-edge/warren/daemons/agent/step",
}

// What a pure core must not link, by import path (exact, or a prefix
// ending in "/").
var impure = []string{
	"net",
	"net/http",
	"os/exec",
	"github.com/hashicorp/", // raft, raft-boltdb, raft-wal
	"go.etcd.io/bbolt",
	"github.com/containerd/",
	"github.com/warren-edge/warren/daemons/store",
	"github.com/warren-edge/warren/daemons/manager",
	"github.com/warren-edge/warren/daemons/api/client",
}

func impureDeps(deps []string) []string {
	var bad []string
	for _, d := range deps {
		for _, f := range impure {
			if d == f || strings.HasSuffix(f, "/") && strings.HasPrefix(d, f) {
				bad = append(bad, d)
				break
			}
		}
	}
	return bad
}

func TestImpureDepsCatchesIO(t *testing.T) {
	got := impureDeps([]string{"fmt", "net", "net/netip", "net/http", "github.com/hashicorp/raft", "go.etcd.io/bbolt", "github.com/containerd/containerd/v2/client", "github.com/warren-edge/warren/daemons/api"})
	want := "net net/http github.com/hashicorp/raft go.etcd.io/bbolt github.com/containerd/containerd/v2/client"
	if strings.Join(got, " ") != want {
		t.Errorf("impureDeps found %q, want %q", strings.Join(got, " "), want)
	}
}

// TestPureCoresLinkNoIO fails when a pure core starts to link I/O, even
// indirectly (through the api package, say).
func TestPureCoresLinkNoIO(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the purity check needs the go command on PATH: %v", err)
	}
	for _, pkg := range pureCores {
		out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		if bad := impureDeps(strings.Fields(string(out))); len(bad) > 0 {
			t.Errorf("%s links I/O it must not: %s (keep it a function of state and time; do the I/O in the daemon's loop)", pkg, strings.Join(bad, ", "))
		}
	}
}
