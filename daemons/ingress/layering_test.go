package ingress

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestLayering: the data plane talks to nothing but its inputs: no
// store, Raft, bbolt or containerd, and no x/net (net/http has h2 and
// h2c).
func TestLayering(t *testing.T) {
	forbidden := []string{
		"github.com/hashicorp/raft", "go.etcd.io/bbolt", "github.com/containerd",
		"github.com/warren-edge/warren/daemons/store", "github.com/warren-edge/warren/daemons/manager",
		"golang.org/x/net",
	}
	files, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		name := f.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			for _, bad := range forbidden {
				if strings.HasPrefix(path, bad) {
					t.Errorf("%s imports %s; the ingress data plane must not", name, path)
				}
			}
		}
	}
}
