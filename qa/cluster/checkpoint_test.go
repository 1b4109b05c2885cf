package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/agent"
	"github.com/warren-edge/warren/daemons/wake"
)

// killRepetitions is how many times TestKillDuringChangesLeavesACheckpoint
// kills the worker's agent (and every tenth time its manager too).
const killRepetitions = 100

// TestKillDuringChangesLeavesACheckpoint: while a stream of changes runs
// (a service on the worker scaled up and down), the worker's agent, and
// every tenth time its manager too, is killed with SIGKILL at a random
// instant, 100 times. After each kill the agent's checkpoint is valid
// (the old one or the new one, never neither, never torn), the agent
// started again comes up from it, and at the end the node converges on
// what the managers want.
func TestKillDuringChangesLeavesACheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the agent 100 times (about 2 minutes)")
	}
	c := startCluster(t, 1, 1)
	ctx := ctxFor(t, 8*time.Minute)
	m, w := c.Host("m1"), c.Host("w1")
	dir := filepath.Join(w.Dir, "agent")
	if _, err := m.Client.CreateService(ctx, onWorkers("stream", 2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "stream running on w1", func() error { return runsAll(ctx, m, w, "stream", 2) })

	// The stream of changes.
	sctx, stop := context.WithCancel(ctx)
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		for sctx.Err() == nil {
			m.Client.ScaleService(sctx, "stream", uint64(1+rand.IntN(5)))
			wake.For(sctx, time.Duration(50+rand.IntN(150))*time.Millisecond)
		}
	}()
	defer func() { stop(); <-streamDone }()

	seen := map[uint64]bool{}
	for i := range killRepetitions {
		wake.For(ctx, time.Duration(rand.IntN(400))*time.Millisecond)
		withManager := i%10 == 9
		if err := w.Agent.Kill(); err != nil {
			t.Fatal(err)
		}
		if withManager {
			if err := w.KillManager(); err != nil {
				t.Fatal(err)
			}
		}
		info, err := agent.ReadCheckpoint(dir)
		if err != nil {
			t.Fatalf("kill %d: the checkpoint after a SIGKILL: %v", i+1, err)
		}
		if info.NodeID != w.NodeID() {
			t.Fatalf("kill %d: the checkpoint is node %q's, want %s", i+1, info.NodeID, w.NodeID())
		}
		seen[info.Index] = true
		if withManager {
			if err := w.StartManager(); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.StartAgent(); err != nil {
			t.Fatalf("kill %d: %v", i+1, err)
		}
	}
	stop()
	<-streamDone
	if _, err := m.Client.ScaleService(ctx, "stream", 3); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "w1 runs the 3 tasks the managers want", func() error { return runsAll(ctx, m, w, "stream", 3) })
	eventually(t, 30*time.Second, "no stray container on w1", func() error {
		if on := containersOn(t, w, "stream"); len(on) != 3 {
			return fmt.Errorf("w1 runs %d stream containers, want 3", len(on))
		}
		return nil
	})
	from := strings.Count(w.Agent.Log(), "starting from the node checkpoint")
	t.Logf("%d kills: %d distinct checkpoints seen, %d agent starts from the checkpoint", killRepetitions, len(seen), from)
	if from < killRepetitions/2 {
		t.Errorf("only %d of %d agent starts came up from the checkpoint", from, killRepetitions)
	}
}
