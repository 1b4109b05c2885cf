package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/agent"
	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/agent/runtime/fake"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

// offlineNode is a worker's agent over a fake runtime, with a data dir that
// outlives the agent (and the checkpoint in it).
type offlineNode struct {
	t       *testing.T
	ctx     context.Context
	rt      *fake.Runtime
	dataDir string
	a       *agent.Agent
	stop    func()
}

func newOfflineNode(t *testing.T, ctx context.Context) *offlineNode {
	n := &offlineNode{t: t, ctx: ctx, rt: fake.New(), dataDir: t.TempDir()}
	n.rt.AddImage("localhost/busybox:latest")
	return n
}

func (n *offlineNode) start(c *client.Client) {
	n.t.Helper()
	level := slog.LevelWarn
	if testing.Verbose() {
		level = slog.LevelDebug
	}
	a, err := agent.New(agent.Config{API: c, Runtime: n.rt.Reopen(), DataDir: n.dataDir, Hostname: "w",
		HeartbeatEvery: 100 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))})
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(n.ctx)
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	n.a = a
	n.stop = func() { cancel(); <-done }
	n.t.Cleanup(n.stop)
}

func (n *offlineNode) container(id string) runtime.Container {
	c, _ := n.rt.Inspect(n.ctx, id)
	return c
}

// cutOffWorld is a manager and a worker, w1, whose agent runs over a fake
// runtime; the managers give a node a second to beat and never reschedule
// within a test.
func cutOffWorld(t *testing.T) (context.Context, *managertest.Cluster, *managertest.Member, *managertest.Member, *offlineNode) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cl := managertest.StartCluster(t, 1, managertest.Options{NodeTimeout: time.Second, RescheduleGrace: time.Hour})
	w := cl.AddWorker("w1")
	n := newOfflineNode(t, ctx)
	n.start(w.Client)
	return ctx, cl, cl.Managers[0], w, n
}

// waitFor polls cond until it holds, for 20 s at most; on a timeout, the
// optional last says what was seen last.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool, last ...func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(last) > 0 {
		t.Fatalf("timed out waiting for %s; last seen: %s", what, last[0]())
	}
	t.Fatalf("timed out waiting for %s", what)
}

func onNode(id string, replicas uint64) api.ServiceSpec {
	s := svc("web", replicas)
	s.RestartPolicy.Delay = api.Duration(50 * time.Millisecond)
	s.Placement.Constraints = []string{"node.id==" + id}
	return s
}

func tasksOf(ctx context.Context, c *client.Client, service string) []api.Task {
	ts, _ := c.Tasks(ctx, client.TaskQuery{Service: service})
	return ts
}

// A worker cut off from its managers restarts a task that ends, in place
// (the same task, under its restart policy); on reconnect the managers take
// its history in: the same task, running, its local restart counted, no
// other task made for the slot.
func TestCutOffNodeRestartsInPlace(t *testing.T) {
	ctx, cl, mgr, w, n := cutOffWorld(t)
	if _, err := mgr.Client.CreateService(ctx, onNode("w1", 1)); err != nil {
		t.Fatal(err)
	}
	var first api.Task
	waitFor(t, ctx, "web running on w1", func() bool {
		r := running(tasksOf(ctx, mgr.Client, "web"))
		if len(r) == 1 {
			first = r[0]
		}
		return len(r) == 1
	})

	cl.Partition(w)
	waitFor(t, ctx, "the agent to find itself cut off", func() bool { off, _ := n.a.CutOff(); return off })
	before := n.container(first.ID).StartedAt
	if err := n.rt.Exit(first.ID, 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the task restarted in place", func() bool {
		c := n.container(first.ID)
		return c.State == runtime.StateRunning && c.StartedAt.After(before)
	})

	cl.Heal()
	waitFor(t, ctx, "the managers to show the local restart", func() bool {
		ts := tasksOf(ctx, mgr.Client, "web")
		return len(ts) == 1 && ts[0].ID == first.ID && ts[0].Status.State == api.TaskRunning &&
			ts[0].Status.Offline != nil && ts[0].Status.Offline.Restarts == 1
	})
	st := tasksOf(ctx, mgr.Client, "web")[0].Status
	if st.Offline.LastExitCode == nil || *st.Offline.LastExitCode != 3 || st.Offline.CutOffAt.IsZero() {
		t.Errorf("the offline report: %+v, want the last exit (3) and when the node was cut off", st.Offline)
	}
}

// A worker that reboots while cut off starts its tasks again from its
// checkpoint, with no manager at all (its own is not up yet); once its
// manager is back and the partition heals, the same task runs, nothing is
// duplicated.
func TestRebootWhileCutOffStartsFromCheckpoint(t *testing.T) {
	ctx, cl, mgr, w, n := cutOffWorld(t)
	if _, err := mgr.Client.CreateService(ctx, onNode("w1", 2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "2 tasks of web running on w1", func() bool { return len(running(tasksOf(ctx, mgr.Client, "web"))) == 2 })
	ids := map[string]bool{}
	for _, tk := range tasksOf(ctx, mgr.Client, "web") {
		ids[tk.ID] = true
	}
	waitFor(t, ctx, "the checkpoint", func() bool {
		_, err := os.Stat(filepath.Join(n.dataDir, "checkpoint.json"))
		return err == nil
	})

	cl.Partition(w)
	// Power cut: the agent and the worker's manager die, the containers
	// lose their processes.
	n.stop()
	w.Stop()
	n.rt.Reboot()
	dead, _ := client.New("unix://" + filepath.Join(t.TempDir(), "no-manager.sock"))
	n.start(dead)
	waitFor(t, ctx, "both tasks running again from the checkpoint", func() bool {
		for id := range ids {
			if n.container(id).State != runtime.StateRunning {
				return false
			}
		}
		return true
	})

	// The node's manager comes back (still cut off), then the network.
	n.stop()
	w.RestartWorker()
	n.start(w.Client)
	cl.Heal()
	waitFor(t, ctx, "the managers to show the same two tasks running, each restarted once", func() bool {
		ts := tasksOf(ctx, mgr.Client, "web")
		if len(ts) != 2 {
			return false
		}
		for _, tk := range ts {
			if !ids[tk.ID] || tk.Status.State != api.TaskRunning || tk.Status.Offline == nil || tk.Status.Offline.Restarts != 1 {
				return false
			}
		}
		return true
	})
}

// A worker cut off past the reschedule grace: its slot is refilled on
// another worker. On reconnect, offline.onReconnect picks the copy that
// stays; the other stops, and never before the kept one runs.
func TestReconnectAfterRescheduleKeepsOneCopy(t *testing.T) {
	for _, rule := range []string{api.OnReconnectKeep, api.OnReconnectReplace} {
		t.Run(rule, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cl := managertest.StartCluster(t, 1, managertest.Options{NodeTimeout: time.Second, RescheduleGrace: 200 * time.Millisecond})
			mgr := cl.Managers[0]
			w1, w2 := cl.AddWorker("w1"), cl.AddWorker("w2")
			n1, n2 := newOfflineNode(t, ctx), newOfflineNode(t, ctx)
			n1.start(w1.Client)
			n2.start(w2.Client)
			s := svc("web", 1)
			s.Placement.Constraints = []string{"node.role==worker"}
			s.Offline.OnReconnect = rule
			if _, err := mgr.Client.CreateService(ctx, s); err != nil {
				t.Fatal(err)
			}
			var first api.Task
			waitFor(t, ctx, "web running", func() bool {
				r := running(tasksOf(ctx, mgr.Client, "web"))
				if len(r) == 1 {
					first = r[0]
				}
				return len(r) == 1
			})
			cut, cutNode, other := w1, n1, n2
			if first.NodeID == "w2" {
				cut, cutNode, other = w2, n2, n1
			}
			cl.Partition(cut)
			var repl api.Task
			waitFor(t, ctx, "the slot refilled on the other worker", func() bool {
				r := running(tasksOf(ctx, mgr.Client, "web"))
				if len(r) == 1 && r[0].ID != first.ID {
					repl = r[0]
				}
				return repl.ID != ""
			})
			if c := cutNode.container(first.ID); c.State != runtime.StateRunning {
				t.Fatalf("the cut-off node's copy is %s during the partition, want running", c.State)
			}

			cl.Heal()
			keep, gone := first, repl
			keepOn, goneOn := cutNode, other
			if rule == api.OnReconnectReplace {
				keep, gone, keepOn, goneOn = repl, first, other, cutNode
			}
			waitFor(t, ctx, fmt.Sprintf("%s: only %s running", rule, keep.ID), func() bool {
				if keepOn.container(keep.ID).State != runtime.StateRunning {
					t.Fatalf("the copy to keep (%s) stopped during the handover", keep.ID)
				}
				r := running(tasksOf(ctx, mgr.Client, "web"))
				return len(r) == 1 && r[0].ID == keep.ID && goneOn.container(gone.ID).State != runtime.StateRunning
			})
		})
	}
}

// The checkpoint follows what the node is to run, not every status on the
// way: a service of 20 tasks costs about two writes per task (assigned,
// running), batched where the watch batches.
func TestCheckpointWritesPerTask(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := managertest.StartCluster(t, 1, managertest.Options{})
	mgr := cl.Managers[0]
	n := newOfflineNode(t, ctx)
	n.start(mgr.Client)
	waitFor(t, ctx, "the agent's first checkpoint", func() bool { return n.a.CheckpointWrites() > 0 })
	before := n.a.CheckpointWrites()
	if _, err := mgr.Client.CreateService(ctx, svc("web", 20)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "20 running", func() bool { return len(running(tasksOf(ctx, mgr.Client, "web"))) == 20 })
	time.Sleep(300 * time.Millisecond) // the last watch batches
	if w := n.a.CheckpointWrites() - before; w > 2*20+5 {
		t.Errorf("20 tasks started with %d checkpoint writes; want at most about 2 per task", w)
	} else {
		t.Logf("20 tasks started with %d checkpoint writes", w)
	}
}

// Break-glass on a cut-off worker, through the agent's socket as
// warrenctl --local uses it: refused while connected; cut off, a stop holds
// (the node does not restart it), a sticky override restarts the task with
// it; every action is journaled under the socket peer's user. On
// reconnect the stop is reverted, the sticky override stays and the
// managers record it, and the journal reaches them, chained.
func TestBreakGlassOnCutOffNode(t *testing.T) {
	ctx, cl, mgr, w, n := cutOffWorld(t)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: n.a.Handler(), ConnContext: agent.PeerContext}
	go srv.Serve(l)
	defer srv.Close()
	local, _ := client.New("unix://" + sock)
	local.Header = http.Header{api.LocalUserHeader: {"alice"}}

	if _, err := mgr.Client.CreateService(ctx, onNode("w1", 2)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "2 running on w1", func() bool { return len(running(tasksOf(ctx, mgr.Client, "web"))) == 2 })
	ts := running(tasksOf(ctx, mgr.Client, "web"))
	stopID, pinID := ts[0].ID, ts[1].ID
	if err := local.LocalAction(ctx, stopID, api.LocalStop, false); !api.IsCode(err, api.CodeConflict) {
		t.Fatalf("a break-glass stop on a connected node: %v, want refused (conflict)", err)
	}

	cl.Partition(w)
	waitFor(t, ctx, "cut off", func() bool { off, _ := n.a.CutOff(); return off })
	st, err := local.LocalStatus(ctx)
	if err != nil || !st.CutOff || len(st.Tasks) != 2 {
		t.Fatalf("local status: %+v, %v; want cut off with 2 tasks", st, err)
	}
	if err := local.LocalAction(ctx, stopID, api.LocalStop, false); err != nil {
		t.Fatal(err)
	}
	if err := local.LocalOverride(ctx, pinID, api.TaskOverride{Env: []string{"MODE=degraded"}, Sticky: true}); err != nil {
		t.Fatal(err)
	}
	if err := local.LocalOverride(ctx, pinID, api.TaskOverride{Image: "localhost/nothere:1"}); err == nil || !strings.Contains(err.Error(), "not on this node") {
		t.Errorf("an override to an image the node lacks: %v, want refused", err)
	}
	time.Sleep(300 * time.Millisecond) // a few steps of the agent's loop
	if c := n.container(stopID); c.State == runtime.StateRunning {
		t.Fatalf("the task stopped by break-glass runs again while cut off")
	}
	if spec, _ := n.rt.Spec(pinID); !slices.Contains(spec.Env, "MODE=degraded") {
		t.Fatalf("the overridden task runs with env %v, want MODE=degraded in it", spec.Env)
	}
	entries, broken, err := local.LocalJournal(ctx)
	if err != nil || broken != "" || len(entries) != 4 {
		t.Fatalf("the local journal: %d entries, broken %q, %v; want 4 (a refused stop, a stop, an override, a refused override), whole", len(entries), broken, err)
	}
	if !strings.Contains(entries[1].User, "alice") || entries[1].Action != api.LocalStop || entries[1].Result != "ok" ||
		entries[0].Result == "ok" || entries[3].Result == "ok" {
		t.Errorf("journal entries: %+v", entries)
	}

	cl.Heal()
	var seen string
	waitFor(t, ctx, "the stop reverted, the override kept and recorded", func() bool {
		seen = fmt.Sprintf("stopped task's container %s", n.container(stopID).State)
		if n.container(stopID).State != runtime.StateRunning {
			return false
		}
		for _, tk := range tasksOf(ctx, mgr.Client, "web") {
			if tk.ID == pinID {
				seen = fmt.Sprintf("pinned task's status at the managers %+v", tk.Status)
				return tk.Status.Offline != nil && tk.Status.Offline.Override != nil && slices.Contains(tk.Status.Offline.Override.Env, "MODE=degraded")
			}
		}
		seen = "the pinned task is not at the managers"
		return false
	}, func() string { return seen })
	var held []api.JournalEntry
	waitFor(t, ctx, "the journal at the managers", func() bool {
		held, _ = mgr.Client.NodeJournal(ctx, "w1")
		return len(held) >= 5 // and the revert
	})
	if err := api.VerifyJournal(held, 0, ""); err != nil {
		t.Errorf("the managers' copy of the journal: %v", err)
	}
	if spec, _ := n.rt.Spec(pinID); !slices.Contains(spec.Env, "MODE=degraded") {
		t.Errorf("the sticky override was dropped on reconnect: env %v", spec.Env)
	}
}
