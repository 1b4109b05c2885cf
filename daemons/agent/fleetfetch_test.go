package agent

import (
	"slices"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

// TestFetchTargetPrefersManagers: a worker that offers other content under
// an image's name (its certificate stolen) loses to what a manager holds,
// even when it is not outnumbered; otherwise the content most nodes hold
// wins; self, and nodes not ready, are never sources.
func TestFetchTargetPrefersManagers(t *testing.T) {
	good := api.Descriptor{Digest: "sha256:aa"}
	bad := api.Descriptor{Digest: "sha256:bb"}
	node := func(id, role, state string, d api.Descriptor) api.Node {
		return api.Node{Meta: api.Meta{ID: id}, Spec: api.NodeSpec{Role: role}, Status: api.NodeStatus{State: state},
			Description: api.NodeDescription{Images: []api.NodeImage{{Ref: "app:1", Target: d}}}}
	}
	cases := []struct {
		name  string
		nodes []api.Node
		want  api.Descriptor
		from  []string
	}{
		{"a manager's copy wins over two workers'", []api.Node{
			node("m1", api.RoleManager, api.NodeReady, good),
			node("w1", api.RoleWorker, api.NodeReady, bad), node("w2", api.RoleWorker, api.NodeReady, bad)}, good, []string{"m1"}},
		{"among workers, the most held", []api.Node{
			node("w1", api.RoleWorker, api.NodeReady, bad),
			node("w2", api.RoleWorker, api.NodeReady, good), node("w3", api.RoleWorker, api.NodeReady, good)}, good, []string{"w2", "w3"}},
		{"self and a down node are no sources", []api.Node{
			node("self", api.RoleManager, api.NodeReady, bad), node("w1", api.RoleWorker, api.NodeDown, bad),
			node("w2", api.RoleWorker, api.NodeReady, good)}, good, []string{"w2"}},
		{"nobody", []api.Node{node("self", api.RoleWorker, api.NodeReady, good)}, api.Descriptor{}, nil},
	}
	for _, c := range cases {
		d, from := fetchTarget(c.nodes, "app:1", "self")
		if d != c.want || !slices.Equal(from, c.from) {
			t.Errorf("%s: fetchTarget = %v from %v, want %v from %v", c.name, d, from, c.want, c.from)
		}
	}
}
