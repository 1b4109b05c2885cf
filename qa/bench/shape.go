package main

import (
	"context"
	"fmt"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// benchShape measures the shape of real work (issue 15), on one real
// node: 150 one-replica services created 8 at a time while the node
// starts their containers; one more service scaled 0 → 100 on the node
// that runs those 150; then everything removed. Beside each, what the
// same work costs without Warren: the creates with no container to start
// (the services' tasks placed nowhere), and containerd with the agent's
// OCI runtime alone starting as many containers, as many at a time.
func benchShape(r *report) error {
	const small, scale = 150, 100
	n, err := startBenchNode()
	if err != nil {
		return err
	}
	defer n.close()
	c, ctx := n.c, context.Background()
	bin, used := agentOCI()

	// The reference: as many creates, with tasks no node can take.
	nowhere := func(s *api.ServiceSpec) {
		s.Args = sleeper
		s.Placement.Constraints = []string{"node.labels.bench==nowhere"}
	}
	ref, err := createMany(ctx, c, "ref", small, 8, 1, nowhere)
	if err != nil {
		return err
	}
	for i := 1; i <= small; i++ {
		c.RemoveService(ctx, fmt.Sprintf("ref-%d", i), 0)
	}

	start := time.Now()
	el, err := createMany(ctx, c, "small", small, 8, 1, func(s *api.ServiceSpec) { s.Args = sleeper })
	if err != nil {
		return err
	}
	r.add(fmt.Sprintf("shape: %d one-replica service creates/s, concurrency 8, while the node starts them", small),
		fmt.Sprintf("%.0f/s (%.0f/s with no container to start)", small/el.Seconds(), small/ref.Seconds()),
		"within 20 % of the second", "")
	if err := waitTasksRunning(ctx, c, small, 5*time.Minute); err != nil {
		return err
	}
	allSmall := time.Since(start)

	if _, err := c.CreateService(ctx, api.ServiceSpec{Name: "big", Image: "localhost/busybox", Replicas: 0, Args: sleeper}); err != nil {
		return err
	}
	start = time.Now()
	if _, err := c.ScaleService(ctx, "big", scale); err != nil {
		return err
	}
	if err := waitRunning(ctx, c, "big", scale, 5*time.Minute); err != nil {
		return err
	}
	bigScale := time.Since(start)
	time.Sleep(2 * time.Second)
	shims, shimPSS, agentPSS := n.memory()

	start = time.Now()
	c.RemoveService(ctx, "big", 0)
	for i := 1; i <= small; i++ {
		c.RemoveService(ctx, fmt.Sprintf("small-%d", i), 0)
	}
	if err := n.waitClean(ctx); err != nil {
		return err
	}
	removeAll := time.Since(start)
	time.Sleep(5 * time.Second) // the kernel frees 250 network namespaces

	// The floors, on the same containerd: the small services' containers
	// in 8 shims (the agent's shared shims), then the scale-up's beside
	// them in 8 more.
	f, err := newFloor(n.ctrd.Socket, n.dir, bin)
	if err != nil {
		return err
	}
	defer f.close()
	floorSmall, err := f.start("small", small, 8, 8)
	if err != nil {
		return err
	}
	floorScale, err := f.start("big", scale, 8, 8)
	if err != nil {
		return err
	}
	floorRemove, err := f.removeAll()
	if err != nil {
		return err
	}
	r.add(fmt.Sprintf("shape: %d one-replica services all running, from the first create", small),
		fmt.Sprintf("%s; containerd + %s alone %s (%.2f×)", allSmall.Round(10*time.Millisecond), used, floorSmall.Round(10*time.Millisecond), allSmall.Seconds()/floorSmall.Seconds()),
		"≤ 1.5× containerd alone", "Warren 28.7 s before (issue 15)")
	r.add(fmt.Sprintf("shape: one service scaled 0 → %d on a node running %d", scale, small),
		fmt.Sprintf("%s; containerd alone %s (%.2f×)", bigScale.Round(10*time.Millisecond), floorScale.Round(10*time.Millisecond), bigScale.Seconds()/floorScale.Seconds()),
		"≤ 1.5× containerd alone", "Warren 17.4 s before (issue 15)")
	r.add(fmt.Sprintf("shape: all %d services removed, until the node holds no task's container or network namespace", small+1),
		fmt.Sprintf("%s; containerd alone, its %d containers stopped and deleted at once, %s (%.2f×)", removeAll.Round(10*time.Millisecond), small+scale, floorRemove.Round(10*time.Millisecond), removeAll.Seconds()/floorRemove.Seconds()),
		"", "Warren 43 s before (issue 15)")
	r.add(fmt.Sprintf("shape: memory per running task, %d tasks (agent + shim PSS / %d)", small+scale, small+scale),
		fmt.Sprintf("%.2f MB (%d shims %.1f MB, agent %.1f MB)", float64(shimPSS+agentPSS)/float64(small+scale)/(1<<20), shims, float64(shimPSS)/(1<<20), float64(agentPSS)/(1<<20)),
		"< 1 MB", "2.7 MB before (issue 15)")
	return nil
}

// waitTasksRunning follows every task through a watch until n run.
func waitTasksRunning(ctx context.Context, c *client.Client, n int, limit time.Duration) error {
	return waitRunning(ctx, c, "", n, limit)
}
