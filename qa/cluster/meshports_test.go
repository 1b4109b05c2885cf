package cluster

import (
	"context"
	"fmt"
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
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 4*time.Minute)
	m, w1, w2 := c.Host("m1"), c.Host("w1"), c.Host("w2")
	lan, err := c.AddHost("lan1")
	if err != nil {
		t.Fatal(err)
	}
	spec := WebService("web", 4, 8080, "")
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s:8080/", w1.IP)
	waitAnswering(t, ctx, m, lan, url, "web", 4)
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
	// answering says whether a short load through w1 all succeeded, from
	// n tasks.
	answering := func(n int) error {
		lctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		l := HTTPLoad(lctx, lan.DialContext, url, 50)
		<-lctx.Done()
		if l.Wait(); l.Failed() > 0 || len(l.Bodies()) != n {
			return fmt.Errorf("%d of %d requests failed, answers %v; the first:%s", l.Failed(), l.Sent(), l.Bodies(), l.FailureLines("  "))
		}
		return nil
	}
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
