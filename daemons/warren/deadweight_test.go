package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// deadWeight are packages bin/warren once linked for nothing, each worth
// hundreds of KB against the binary's 30 MB budget (DESIGN §8), and why
// they are gone. They come back easily: through a dependency's new import
// or a build without the Makefile's tags.
var deadWeight = map[string]string{
	"golang.org/x/net/trace": "gRPC's debug pages; the Makefile's grpcnotrace tag leaves them out",
	"net/rpc":                "go-msgpack's rpc codec, cut in third_party/go-msgpack; net/rpc links html/template and encoding/gob",
	"html/template":          "linked only through net/rpc",
	"encoding/gob":           "linked only through net/rpc",
}

// makeTags reads the build tags bin/warren is built with from the
// Makefile, their one home.
func makeTags(t *testing.T) string {
	t.Helper()
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TAGS\s*:=\s*(.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile has no TAGS := line; bin/warren's build tags live there")
	}
	return strings.TrimSpace(string(m[1]))
}

// TestBinaryLinksNoDeadWeight fails when bin/warren, built as the Makefile
// builds it, links a package of deadWeight again.
func TestBinaryLinksNoDeadWeight(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("this check needs the go command on PATH: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-tags", makeTags(t), ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if why, ok := deadWeight[p]; ok {
			t.Errorf("bin/warren links %s again: %s (find the importer with go list -deps -f '{{.ImportPath}}: {{.Imports}}')", p, why)
		}
	}
}
