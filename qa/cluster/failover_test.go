package cluster

import (
	"context"
	"fmt"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api/client"
)

// TestLeaderKillKeepsAcknowledgedWrites kills the leader with SIGKILL
// while writers keep writing through every manager: a new leader appears,
// every acknowledged write is on every surviving manager (consistent
// reads), the workers' containers are untouched, and the killed manager
// restarts and catches up.
func TestLeaderKillKeepsAcknowledgedWrites(t *testing.T) {
	c := startCluster(t, 3, 2)
	ctx := ctxFor(t, 2*time.Minute)
	before := deploy(t, c, "web", 4)

	old, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	load, err := StartLoad(ctx, c.Managers(), 2, "kill")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	killed := time.Now()
	if err := old.KillManager(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the leader %s (pid %d) with SIGKILL", old.Name, old.Manager.PID())
	next, err := c.Leader(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	back, err := load.FirstAckSince(ctx, killed)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("new leader %s; first write acknowledged %.0f ms after the kill", next.Name, float64(back.Sub(killed))/1e6)
	time.Sleep(1500 * time.Millisecond)
	writes := load.Stop()
	acked, failed := countWrites(writes)
	t.Logf("%d writes acknowledged, %d refused or failed (%s)", acked, failed, errorSummary(writes))
	if acked == 0 {
		t.Fatal("no write was acknowledged")
	}
	var afterKill int
	for _, w := range writes {
		if w.Err == nil && w.Start.After(killed) {
			afterKill++
		}
	}
	if afterKill == 0 {
		t.Error("no write started after the kill was acknowledged")
	}

	for _, m := range c.Managers() {
		if m == old {
			continue
		}
		if err := CheckAcked(ctx, m, writes); err != nil {
			t.Errorf("after the leader's kill: %v", err)
		}
	}
	// Losing the leader loses no container.
	after := waitContainers(t, c, "web", 4)
	if !sameContainers(before, after) {
		t.Errorf("the workers' containers changed across the leader's kill:\nbefore %v\nafter  %v", before, after)
	}

	// The killed manager comes back on its data dir and catches up: its
	// local (non-consistent) reads show every acknowledged write, and it
	// votes again.
	if err := old.RestartManager(ctx); err != nil {
		t.Fatal(err)
	}
	if err := old.WaitVoter(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, old.Name+" catches up", func() error {
		return checkLocal(ctx, old, writes)
	})
	if err := CheckAcked(ctx, old, writes); err != nil {
		t.Errorf("through the restarted manager: %v", err)
	}
}

// checkLocal is CheckAcked on the manager's own state (no ?consistent).
func checkLocal(ctx context.Context, h *Host, writes []Write) error {
	svcs, err := h.Client.Services(ctx, client.ReadOptions{})
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, s := range svcs {
		have[s.Spec.Name] = true
	}
	for _, w := range writes {
		if w.Err == nil && w.Op == "create" && !have[w.Service] {
			return fmt.Errorf("%s has no %s yet", h.Name, w.Service)
		}
	}
	return nil
}

func countWrites(ws []Write) (acked, failed int) {
	for _, w := range ws {
		if w.Err == nil {
			acked++
		} else {
			failed++
		}
	}
	return
}

// errorSummary counts the distinct errors of the writes.
func errorSummary(ws []Write) string {
	n := map[string]int{}
	for _, w := range ws {
		if w.Err != nil {
			msg := w.Err.Error()
			if len(msg) > 90 {
				msg = msg[:90] + "…"
			}
			n[msg]++
		}
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return n[keys[i]] > n[keys[j]] })
	s := ""
	for i, k := range keys {
		if i == 4 {
			s += fmt.Sprintf("; %d more kinds", len(keys)-4)
			break
		}
		if s != "" {
			s += "; "
		}
		s += fmt.Sprintf("%d× %s", n[k], k)
	}
	return s
}

// running is a service's running containers across the workers: task ID
// → "host/pid".
type running map[string]string

// waitContainers waits until exactly n containers of the service run
// across the workers, one per slot, and returns them.
func waitContainers(t *testing.T, c *Cluster, service string, n int) running {
	t.Helper()
	var out running
	eventually(t, 30*time.Second, fmt.Sprintf("%d containers of %s running, one per slot", n, service), func() error {
		var err error
		out, err = containersOf(context.Background(), c, service, n)
		return err
	})
	return out
}

// containersOf lists the running containers of a service on every
// worker and checks there are n, one per slot 1..n.
func containersOf(ctx context.Context, c *Cluster, service string, n int) (running, error) {
	out := running{}
	slots := map[string][]string{}
	for _, w := range c.Workers() {
		cs, err := w.Containers(ctx)
		if err != nil {
			return nil, err
		}
		for _, ct := range cs {
			if ct.Service == service && ct.Running {
				out[ct.Task] = fmt.Sprintf("%s/%d", w.Name, ct.PID)
				slots[ct.Slot] = append(slots[ct.Slot], w.Name+"/"+ct.Task[:8])
			}
		}
	}
	if len(out) != n {
		return out, fmt.Errorf("%d running (by slot: %v)", len(out), slots)
	}
	for i := 1; i <= n; i++ {
		if len(slots[fmt.Sprint(i)]) != 1 {
			return out, fmt.Errorf("slot %d has %v (by slot: %v)", i, slots[fmt.Sprint(i)], slots)
		}
	}
	return out, nil
}

func sameContainers(a, b running) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPausedLeaderWritesGoToTheNewLeader: the leader's process is stopped
// (SIGSTOP: it keeps its sockets and answers nothing). A write sent to a
// follower, which passes it on to the leader it knows, is answered by the
// new leader once one is elected, well before the old one resumes, and
// is applied once.
func TestPausedLeaderWritesGoToTheNewLeader(t *testing.T) {
	c := startCluster(t, 3, 0)
	ctx := ctxFor(t, 2*time.Minute)
	old, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var via *Host
	for _, m := range c.Managers() {
		if m != old {
			via = m
		}
	}
	const pause = 6 * time.Second
	if err := old.Manager.Signal(syscall.SIGSTOP, 0); err == nil {
		t.Fatalf("SIGSTOP: the leader %s exited", old.Name)
	}
	paused := time.Now()
	resumed := make(chan struct{})
	go func() {
		defer close(resumed)
		time.Sleep(pause)
		old.Manager.Signal(syscall.SIGCONT, 0)
	}()
	t.Cleanup(func() { <-resumed })
	s, err := via.Client.CreateService(ctx, idle("while-paused", nil))
	took := time.Since(paused)
	if err != nil {
		t.Fatalf("a write through %s while the leader %s is paused: %v (after %s)", via.Name, old.Name, err, took)
	}
	t.Logf("the write through %s was answered %s after the leader %s was paused (for %s)", via.Name, took.Round(time.Millisecond), old.Name, pause)
	if took > pause/2 {
		t.Errorf("the write took %s: it waited on the paused leader instead of the new one", took)
	}
	<-resumed
	eventually(t, 20*time.Second, "the paused manager catches up", func() error {
		ss, err := old.Client.Services(ctx, client.ReadOptions{})
		if err != nil {
			return err
		}
		n := 0
		for _, x := range ss {
			if x.Spec.Name == "while-paused" {
				n++
				if x.ID != s.ID {
					return fmt.Errorf("service while-paused has ID %s, the answer said %s", x.ID, s.ID)
				}
			}
		}
		if n != 1 {
			return fmt.Errorf("%d services named while-paused", n)
		}
		return nil
	})
}

// TestLeaderKilledAgainAndAgain kills whichever manager leads with
// SIGKILL, under writes, eight times: each time the killed manager starts
// again on its data dir and votes, and at the end every manager holds every
// acknowledged write. A manager killed while it led often holds entries
// the next leader never got; as a follower it drops them from its log
// before it writes the leader's (a truncation of its log's tail), and it
// must start again after that. (raft-wal 0.4.0, the default log store,
// could not: third_party/raft-wal.)
func TestLeaderKilledAgainAndAgain(t *testing.T) {
	c := startCluster(t, 3, 0)
	ctx := ctxFor(t, 4*time.Minute)
	var all []Write
	for run := range 8 {
		leader, err := c.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		load, err := StartLoad(ctx, c.Managers(), 2, fmt.Sprintf("run%d", run))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		killed := time.Now()
		if err := leader.KillManager(); err != nil {
			t.Fatal(err)
		}
		if _, err := load.FirstAckSince(ctx, killed); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		all = append(all, load.Stop()...)
		if err := leader.RestartManager(ctx); err != nil {
			t.Fatalf("run %d: %s killed while it led does not start again: %v", run, leader.Name, err)
		}
		if err := leader.WaitVoter(ctx); err != nil {
			t.Fatalf("run %d: %s: %v", run, leader.Name, err)
		}
	}
	acked, failed := countWrites(all)
	t.Logf("%d writes acknowledged, %d refused or failed (%s)", acked, failed, errorSummary(all))
	for _, m := range c.Managers() {
		eventually(t, 20*time.Second, m.Name+" holds every acknowledged write", func() error {
			return checkLocal(ctx, m, all)
		})
	}
}
