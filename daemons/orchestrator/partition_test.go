package orchestrator_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/store"
)

// partitions is the world of TestPropertyPartitions: worker nodes whose
// agents run containers (task IDs) and may be cut off from the managers.
// A connected node beats whenever time moves, sees the managers' tasks and
// reports; a cut-off node keeps running what it ran (restarts in place
// keep the task, so they change nothing here) and sees nothing.
type partitions struct {
	w       *world
	nodes   []string
	cut     map[string]bool
	run     map[string]map[string]bool // node → task IDs its containers run
	beat    map[string]time.Time
	timeout time.Duration
	// checking: agents check the invariants after they act (not within a
	// handover, which checks its own).
	checking bool
}

func newPartitions(t *rapid.T) *partitions {
	p := &partitions{w: newWorld(t), cut: map[string]bool{}, run: map[string]map[string]bool{}, beat: map[string]time.Time{},
		timeout: 10 * time.Second}
	w := p.w
	for i := range rapid.IntRange(2, 4).Draw(t, "nodes") {
		id := fmt.Sprintf("n%d", i+1)
		w.must(t, store.CmdNodeRegister, store.NodeRegister{ID: id, Role: api.RoleWorker, At: w.now,
			Description: api.NodeDescription{Hostname: id, NanoCPUs: 4e9, MemoryBytes: 4 << 30}})
		w.must(t, store.CmdNodeStatus, store.NodeStatus{ID: id, Status: api.NodeStatus{State: api.NodeReady, Timestamp: w.now}})
		p.nodes = append(p.nodes, id)
		p.run[id] = map[string]bool{}
		p.beat[id] = w.now
	}
	for i := range rapid.IntRange(1, 2).Draw(t, "services") {
		id := fmt.Sprintf("s%d", i+1)
		spec := api.ServiceSpec{Name: id, Image: "localhost/busybox", Replicas: uint64(rapid.IntRange(1, 3).Draw(t, id+".replicas"))}
		spec.Offline.OnReconnect = rapid.SampledFrom([]string{api.OnReconnectKeep, api.OnReconnectReplace}).Draw(t, id+".onReconnect")
		w.must(t, store.CmdServiceCreate, store.ServiceCreate{Service: api.Service{Meta: api.Meta{ID: id, CreatedAt: w.now, UpdatedAt: w.now}, Spec: spec}})
		w.logf("create %s ×%d onReconnect=%s", id, spec.Replicas, spec.Offline.OnReconnect)
	}
	return p
}

// time moves on: connected nodes beat, the managers mark down the nodes
// they have not heard from for the timeout (as the leader's monitor does).
func (p *partitions) time(t *rapid.T) {
	w := p.w
	w.now = w.now.Add(rapid.SampledFrom([]time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 61 * time.Second, 3 * time.Minute}).Draw(t, "time"))
	p.beats(t)
}

func (p *partitions) beats(t *rapid.T) {
	w := p.w
	nodes := map[string]*api.Node{}
	for _, n := range w.input().Nodes {
		nodes[n.ID] = n
	}
	for _, id := range p.nodes {
		n := nodes[id]
		switch {
		case !p.cut[id]:
			p.beat[id] = w.now
			if n.Status.State != api.NodeReady {
				w.must(t, store.CmdNodeStatus, store.NodeStatus{ID: id, Status: api.NodeStatus{State: api.NodeReady, Timestamp: w.now}})
				w.logf("%s ready", id)
			}
		case n.Status.State != api.NodeDown && w.now.Sub(p.beat[id]) > p.timeout:
			w.must(t, store.CmdNodeStatus, store.NodeStatus{ID: id, Status: api.NodeStatus{State: api.NodeDown, Timestamp: w.now}})
			w.logf("%s down", id)
		}
	}
}

// agents: each connected node's agent acts on the managers' tasks for it,
// as step.Step does: it runs what is wanted, keeps (and claims back) a
// written-off task it still runs, stops the rest, and reports.
func (p *partitions) agents(t *rapid.T) {
	w := p.w
	in := w.input()
	for _, id := range p.nodes {
		if p.cut[id] {
			continue
		}
		mine := map[string]*api.Task{}
		for _, tk := range in.Tasks {
			if tk.NodeID == id {
				mine[tk.ID] = tk
			}
		}
		var ups []api.TaskStatusUpdate
		for tid := range p.run[id] {
			tk := mine[tid]
			switch {
			case tk == nil:
				delete(p.run[id], tid)
			case tk.DesiredState == api.TaskRunning && tk.Status.State == api.TaskOrphaned:
				ups = append(ups, api.TaskStatusUpdate{TaskID: tid, Status: api.TaskStatus{State: api.TaskRunning, Message: "claimed back"}})
			case tk.DesiredState != api.TaskRunning || tk.Status.State.Terminal():
				delete(p.run[id], tid)
				if !tk.Status.State.Terminal() {
					ups = append(ups, api.TaskStatusUpdate{TaskID: tid, Status: api.TaskStatus{State: api.TaskShutdown, Message: "stopped"}})
				}
			}
		}
		for _, tk := range mine {
			if tk.Live() && !p.run[id][tk.ID] && !tk.Status.State.Before(api.TaskAssigned) {
				p.run[id][tk.ID] = true
				ups = append(ups, api.TaskStatusUpdate{TaskID: tk.ID, Status: api.TaskStatus{State: api.TaskRunning, StartedAt: w.now}})
			} else if !tk.Live() && tk.DesiredState != api.TaskRunning && !tk.Status.State.Terminal() && !p.run[id][tk.ID] {
				ups = append(ups, api.TaskStatusUpdate{TaskID: tk.ID, Status: api.TaskStatus{State: api.TaskShutdown, Message: "never started"}})
			}
		}
		if len(ups) > 0 {
			w.must(t, store.CmdTaskStatus, store.TaskStatus{NodeID: id, Updates: ups, At: w.now})
		}
	}
	p.check(t, nil)
}

func (p *partitions) cutOff(t *rapid.T) {
	var up []string
	for _, id := range p.nodes {
		if !p.cut[id] {
			up = append(up, id)
		}
	}
	if len(up) == 0 {
		t.Skip("every node is cut off")
	}
	id := rapid.SampledFrom(up).Draw(t, "cut")
	p.cut[id] = true
	p.w.logf("cut %s off (it runs %v)", id, sortedIDs(p.run[id]))
}

// heal reconnects a node and runs the handover: the node reports, the
// managers plan, the agents act. Two copies of a slot in one component
// are allowed only within it, and no slot that had a copy loses it.
func (p *partitions) heal(t *rapid.T) {
	var down []string
	for _, id := range p.nodes {
		if p.cut[id] {
			down = append(down, id)
		}
	}
	if len(down) == 0 {
		t.Skip("no node is cut off")
	}
	id := rapid.SampledFrom(down).Draw(t, "heal")
	delete(p.cut, id)
	p.w.logf("heal %s (it runs %v)", id, sortedIDs(p.run[id]))
	had := p.everywhere()
	p.beats(t)
	p.handover(t, had)
	p.w.reconcile(t)
	p.handover(t, had)
	p.check(t, nil)
}

// handover runs the agents within a handover: two copies are allowed, a
// gap is not.
func (p *partitions) handover(t *rapid.T, had map[slot]int) {
	p.agentsNoCheck(t)
	p.check(t, had)
}

func (p *partitions) agentsNoCheck(t *rapid.T) {
	check := p.checking
	p.checking = false
	p.agents(t)
	p.checking = check
}

type slot struct {
	svc  string
	slot uint64
}

// everywhere counts, per slot, the containers that run it on any node.
func (p *partitions) everywhere() map[slot]int {
	cut := p.cut
	p.cut = map[string]bool{}
	defer func() { p.cut = cut }()
	return p.copies(nil)
}

// copies counts, per slot, the containers that run it in the managers'
// component (every connected node), or on one node if node is given.
func (p *partitions) copies(node *string) map[slot]int {
	tasks := map[string]*api.Task{}
	for _, tk := range p.w.input().Tasks {
		tasks[tk.ID] = tk
	}
	out := map[slot]int{}
	for _, id := range p.nodes {
		if (node == nil && p.cut[id]) || (node != nil && *node != id) {
			continue
		}
		for tid := range p.run[id] {
			if tk := tasks[tid]; tk != nil {
				out[slot{tk.ServiceID, tk.Slot}]++
			}
		}
	}
	return out
}

// check: at most one copy of a slot in each component (the managers' and
// each cut-off node's); within a handover (had given, the copies before
// it), two in the managers' component are allowed, but a slot that had a
// copy keeps one.
func (p *partitions) check(t *rapid.T, had map[slot]int) {
	if !p.checking {
		return
	}
	for _, id := range p.nodes {
		if !p.cut[id] {
			continue
		}
		for s, n := range p.copies(&id) {
			if n > 1 {
				t.Fatalf("cut-off node %s runs %d copies of %s.%d:\n%s", id, n, s.svc, s.slot, strings.Join(p.w.log, "\n"))
			}
		}
	}
	now := p.copies(nil)
	for s, n := range now {
		if n > 1 && had == nil {
			t.Fatalf("the managers' component runs %d copies of %s.%d outside a handover:\n%s", n, s.svc, s.slot, strings.Join(p.w.log, "\n"))
		}
		if n > 2 {
			t.Fatalf("the managers' component runs %d copies of %s.%d:\n%s", n, s.svc, s.slot, strings.Join(p.w.log, "\n"))
		}
	}
	// A gap is judged over the whole cluster: the managers may hand a slot
	// to a copy on a node that was cut off a moment ago and that they
	// still believe reachable (they learn it at the node timeout).
	all := p.everywhere()
	for s, n := range had {
		if n > 0 && all[s] == 0 {
			t.Fatalf("a handover left %s.%d with no copy running anywhere:\n%s", s.svc, s.slot, strings.Join(p.w.log, "\n"))
		}
	}
}

func sortedIDs(m map[string]bool) []string {
	var out []string
	for id := range m {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// TestPropertyPartitions: random partitions, reconnects, time and
// reconcile passes over the real FSM and orchestrator, with agents that
// follow the offline rules (api/offline.go). At every point each slot has
// at most one running copy per connected component (the managers' and
// each cut-off node's), two only during a reconnect's handover, which
// never leaves a slot that had a copy without one; after everything heals,
// each slot converges to exactly one copy, the managers' live task for it.
func TestPropertyPartitions(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		p := newPartitions(t)
		p.checking = true
		defer p.w.close()
		p.w.reconcile(t)
		p.agents(t)
		t.Repeat(map[string]func(*rapid.T){
			"reconcile": func(t *rapid.T) { p.w.reconcile(t); p.check(t, nil) },
			"agents":    p.agents,
			"time":      p.time,
			"cut":       p.cutOff,
			"heal":      p.heal,
		})
		// Heal everything, then let it settle.
		for _, id := range p.nodes {
			if p.cut[id] {
				delete(p.cut, id)
				had := p.everywhere()
				p.beats(t)
				p.handover(t, had)
				p.w.reconcile(t)
				p.handover(t, had)
			}
		}
		for range 20 {
			p.w.now = p.w.now.Add(30 * time.Second)
			p.beats(t)
			p.w.reconcile(t)
			p.agents(t)
		}
		live := map[slot][]string{}
		for _, tk := range p.w.input().Tasks {
			if tk.Live() {
				live[slot{tk.ServiceID, tk.Slot}] = append(live[slot{tk.ServiceID, tk.Slot}], tk.ID)
			}
		}
		now := p.copies(nil)
		for _, s := range p.w.input().Services {
			for i := uint64(1); i <= s.Spec.Replicas; i++ {
				k := slot{s.ID, i}
				if now[k] != 1 || len(live[k]) != 1 {
					t.Fatalf("after healing, %s.%d has %d copies running and live tasks %v; want one:\n%s", s.ID, i, now[k], live[k], strings.Join(p.w.log, "\n"))
				}
				var on []string
				for _, id := range p.nodes {
					if p.run[id][live[k][0]] {
						on = append(on, id)
					}
				}
				if len(on) != 1 {
					t.Fatalf("after healing, %s.%d's live task %s runs on %v:\n%s", s.ID, i, live[k][0], on, strings.Join(p.w.log, "\n"))
				}
			}
		}
	})
}
