package cluster

import (
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/netcfg/wg"
)

// TestPortsFollowTheMesh: a node whose mesh is cut (its WireGuard
// datagrams dropped; it and the managers still hear each other, so its
// tasks stay running) stops being a backend of the other nodes' ingress
// ports once their mesh has heard nothing from it for wg.HeardFresh, and
// is one again when its mesh comes back. Before that rule, w1 sent half
// its connections to w2's tasks over a mesh that carried nothing.
func TestPortsFollowTheMesh(t *testing.T) {
	wc := startWeb(t, 4*time.Minute, func(*Cluster) api.ServiceSpec { return WebService("web", 4, 8080, "") }, 4)
	ctx, m, w1, w2, lan, url := wc.ctx, wc.m, wc.w1, wc.w2, wc.lan, wc.url
	onW1 := len(tasksWhere(ctx, m, "web", func(t *api.Task) bool { return t.NodeID == w1.NodeID() }))
	if onW1 == 0 || onW1 == 4 {
		t.Fatalf("%d of the 4 tasks on w1: want them spread over both workers", onW1)
	}

	if err := w2.MeshCut(); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	healed := false
	defer func() {
		if !healed {
			w2.MeshHeal()
		}
	}()
	// answering says whether a second's load through w1 all succeeded,
	// from n tasks.
	answering := func(n int) error { return answeredBy(ctx, lan, url, n, time.Second) }
	eventually(t, wg.HeardFresh+time.Minute, "w1's port answering from w1's own tasks only", func() error { return answering(onW1) })
	t.Logf("w2's tasks left w1's port %.1f s after w2's mesh was cut", time.Since(cut).Seconds())
	if err := answering(onW1); err != nil {
		t.Errorf("again: %v", err)
	}
	if n := len(tasksWhere(ctx, m, "web", func(*api.Task) bool { return true })); n != 4 {
		t.Errorf("%d tasks running with w2's mesh cut, want 4: the managers still hear w2", n)
	}

	if err := w2.MeshHeal(); err != nil {
		t.Fatal(err)
	}
	healed = true
	eventually(t, time.Minute, "w1's port answering from all four tasks again", func() error { return answering(4) })
}
