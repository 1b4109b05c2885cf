package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/warren-edge/warren/daemons/agent"
	"github.com/warren-edge/warren/qa/nspawn"
)

// benchOffline measures issue 11's figures: the node checkpoint's write
// cost, and on two booted hosts (the image, the shipped units) a worker
// cut off from its manager: a local restart next to a connected one, a
// power cut → all tasks running, reconnect → converged.
func benchOffline(r *report) error {
	dir, err := os.MkdirTemp("", "warren-bench-cp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, tasks := range []int{10, 100} {
		ds, err := agent.MeasureCheckpoint(dir, tasks, 300)
		if err != nil {
			return err
		}
		p50, p99 := percentiles(ds)
		r.add(fmt.Sprintf("node checkpoint write, %d tasks (per change batch; 2 fsyncs)", tasks),
			fmt.Sprintf("p50 %.0f µs, p99 %.0f µs", float64(p50)/1e3, float64(p99)/1e3), "", "encode + temp file + fsync + rename + fsync of the directory")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := nspawn.OfflineBench(ctx)
	if err != nil {
		return err
	}
	s := func(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
	r.add("worker cut off: killed task running again (restarted in place, restart delay 1 s)", s(res.LocalRestart), "", "booted hosts (nspawn)")
	r.add("worker connected: killed task running again (replaced by the managers, restart delay 1 s)", s(res.ConnectedRestart), "", "booted hosts (nspawn)")
	r.add("worker rebooted (power cut) while cut off → all its tasks running", s(res.OfflineBoot), "< 10 s after boot", "from the machine's launch")
	r.add("reconnect → managers show every task running with its history", s(res.Reconnect), "0 restarts, 0 duplicates", "checked: none restarted, none duplicated")
	return nil
}
