package nspawn

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// TestVolumeSurvivesReboot: issue 12's promise on a booted host with the
// shipped units: a service writes to a volume, the host reboots, and the
// task that runs after the reboot finds the data (the agent keeps it in
// its state directory, /var/lib/warren/agent/volumes/NAME).
func TestVolumeSurvivesReboot(t *testing.T) {
	if why := Enabled("nspawn"); why != "" {
		t.Skip(why)
	}
	ctx := ctxFor(t, 6*time.Minute)
	_, m1, cl := bootFirstManager(ctx, t)
	if err := loadTestImage(ctx, m1); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateVolume(ctx, api.VolumeSpec{Name: "data", Node: "m1"}); err != nil {
		t.Fatalf("volume create data --node m1: %v", err)
	}
	spec := api.ServiceSpec{Name: "keeper", Image: "localhost/busybox:latest", Replicas: 1,
		Command: []string{"sh", "-c", "echo run >> /data/log; exec sleep 100001"},
		Mounts:  []api.Mount{{Type: api.MountVolume, Source: "data", Target: "/data"}}}
	if _, err := cl.CreateService(ctx, spec); err != nil {
		t.Fatalf("service create: %v", err)
	}
	const logFile = "/var/lib/warren/agent/volumes/data/log"
	if err := waitLines(ctx, m1, logFile, 1); err != nil {
		t.Fatalf("before the reboot: %v", err)
	}
	before, err := waitPIDs(ctx, m1, 1, nil, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	if err := m1.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	// The task that runs after the reboot (the same slot, started again)
	// appends to the data the first run left.
	after, err := waitPIDs(ctx, m1, 1, nil, 120*time.Second)
	if err != nil {
		t.Fatalf("after the reboot: %v", err)
	}
	if err := waitLines(ctx, m1, logFile, 2); err != nil {
		t.Fatalf("after the reboot: %v", err)
	}
	id := anyKey(after)
	out, err := m1.Exec(ctx, "ctr -n warren tasks exec --exec-id vol"+fmt.Sprint(time.Now().UnixNano())+" "+id+" cat /data/log")
	if err != nil || out != "run\nrun\n" {
		t.Errorf("cat /data/log in task %s after the reboot = %q, %v; want two runs (before: task %s)", id, out, err, anyKey(before))
	}
}

// waitLines waits until file on h has n lines.
func waitLines(ctx context.Context, h *Host, file string, n int) error {
	deadline := time.Now().Add(90 * time.Second)
	var out string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		out, _ = h.Exec(ctx, "cat "+file)
		if strings.Count(out, "\n") == n {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s on %s never had %d lines; last %q", file, h.Name(), n, out)
}
