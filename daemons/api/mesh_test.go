package api

import (
	"fmt"
	"testing"
)

// TestMeshReachOut: the nodes out of reach are the silent peers and the
// nodes that are no peer, once each; a file an older agent wrote (no
// not_peers) means its silent peers alone.
func TestMeshReachOut(t *testing.T) {
	for _, c := range []struct{ file, want string }{
		{`{"unreachable":[]}`, "[]"},
		{`{"unreachable":["n3","n2"]}`, "[n2 n3]"},
		{`{"unreachable":["n3"],"not_peers":["n5","n3","n4"]}`, "[n3 n4 n5]"},
	} {
		r, err := ParseMeshReach([]byte(c.file))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(r.Out()); got != c.want {
			t.Errorf("%s: Out() = %s, want %s", c.file, got, c.want)
		}
	}
	if _, err := ParseMeshReach([]byte(`{"unreachable":`)); err == nil {
		t.Error("a cut status file parsed")
	}
}
