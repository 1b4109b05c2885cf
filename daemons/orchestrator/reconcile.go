package orchestrator

import (
	"sort"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/scheduler"
)

// Options tune the reconciler.
type Options struct {
	// HistoryLimit is how many ended tasks are kept per slot (default 3).
	HistoryLimit int
	// RescheduleGrace is how long a down node's tasks wait before they are
	// replaced elsewhere (default 1m).
	RescheduleGrace time.Duration
	// NewID makes task IDs (default api.NewID); tests pass a counter.
	NewID func() string
}

func (o *Options) defaults() {
	if o.HistoryLimit <= 0 {
		o.HistoryLimit = 3
	}
	if o.RescheduleGrace <= 0 {
		o.RescheduleGrace = time.Minute
	}
	if o.NewID == nil {
		o.NewID = api.NewID
	}
}

// Input is the state the reconciler reads.
type Input struct {
	Now time.Time
	// Services to reconcile, and their tasks (Tasks may also hold tasks of
	// services that no longer exist: they are stopped and removed).
	Services []*api.Service
	Tasks    []*api.Task
	Nodes    []*api.Node
	// Others are the tasks of services not reconciled in this pass; the
	// scheduler counts them on their nodes. OthersFunc, if set, gives them
	// on demand instead (only a pass that places tasks needs them).
	Others     []*api.Task
	OthersFunc func() []*api.Task `json:"-"`
	// Volumes are the cluster's volumes and their nodes, for the
	// scheduler's volume affinity.
	Volumes scheduler.Volumes `json:"volumes,omitempty"`
}

// Reconcile returns the changes that bring tasks in line with services, and
// the time at which it should run again even if nothing changes (zero: no
// need). It does not change the tasks in Input. New tasks have no node (replicated) or their node (global) and
// state new: placing them is the scheduler's job.
func Reconcile(in Input, opts Options) (api.TaskPlan, time.Time) {
	opts.defaults()
	r := &reconciler{in: in, opts: opts, nodes: map[string]*api.Node{}, byService: map[string][]*api.Task{}}
	r.plan.At = in.Now
	for _, n := range in.Nodes {
		r.nodes[n.ID] = n
	}
	services := map[string]*api.Service{}
	for _, s := range in.Services {
		services[s.ID] = s
	}
	for _, t := range in.Tasks {
		if services[t.ServiceID] == nil {
			r.orphanOfService(t)
			continue
		}
		r.byService[t.ServiceID] = append(r.byService[t.ServiceID], t)
	}
	sorted := append([]*api.Service(nil), in.Services...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for _, s := range sorted {
		r.service(s)
	}
	return r.plan, r.wake
}

type reconciler struct {
	in        Input
	opts      Options
	nodes     map[string]*api.Node
	byService map[string][]*api.Task
	plan      api.TaskPlan
	wake      time.Time
	changes   map[string]int // task ID → index in plan.Updates
	// over holds the plan's effect on tasks: Reconcile never changes the
	// tasks it is given.
	over map[string]overlay
}

type overlay struct{ desired, state api.TaskState }

func (r *reconciler) set(t *api.Task, desired, state api.TaskState) {
	if r.over == nil {
		r.over = map[string]overlay{}
	}
	o := r.over[t.ID]
	if desired != "" {
		o.desired = desired
	}
	if state != "" {
		o.state = state
	}
	r.over[t.ID] = o
}

// desired is the task's desired state with this plan's changes.
func (r *reconciler) desired(t *api.Task) api.TaskState {
	if o := r.over[t.ID]; o.desired != "" {
		return o.desired
	}
	return t.DesiredState
}

// state is the task's observed state with this plan's changes.
func (r *reconciler) state(t *api.Task) api.TaskState {
	if o := r.over[t.ID]; o.state != "" {
		return o.state
	}
	return t.Status.State
}

// live says whether the task is meant to run and has not ended.
func (r *reconciler) live(t *api.Task) bool {
	return r.desired(t) == api.TaskRunning && !r.state(t).Terminal()
}

func (r *reconciler) wakeAt(t time.Time) {
	if r.wake.IsZero() || t.Before(r.wake) {
		r.wake = t
	}
}

// change returns the pending change for task id, making it if needed.
func (r *reconciler) change(id string) *api.TaskChange {
	if r.changes == nil {
		r.changes = map[string]int{}
	}
	i, ok := r.changes[id]
	if !ok {
		i = len(r.plan.Updates)
		r.changes[id] = i
		r.plan.Updates = append(r.plan.Updates, api.TaskChange{ID: id})
	}
	return &r.plan.Updates[i]
}

// stop asks for t to be stopped. A task never given to a node (no node
// yet, or a global task still pending on a node that was not ready) is
// marked shut down at once: no agent ever started it, and its slot must not
// wait for a report that may never come.
func (r *reconciler) stop(t *api.Task, desired api.TaskState, why string) {
	c := r.change(t.ID)
	c.DesiredState = desired
	r.set(t, desired, "")
	st := r.state(t)
	if !st.Terminal() && (t.NodeID == "" || st == api.TaskNew || st == api.TaskPending) {
		c.State, c.Message = api.TaskShutdown, why
		r.set(t, "", api.TaskShutdown)
	}
}

func (r *reconciler) orphanOfService(t *api.Task) {
	if r.desired(t) != api.TaskRemove {
		r.stop(t, api.TaskRemove, "service removed")
	}
	r.collect(t)
}

// collect deletes a task that must go once it has ended (or its node is
// gone for good).
func (r *reconciler) collect(t *api.Task) {
	if r.state(t).Terminal() || r.nodeGone(t.NodeID) {
		r.plan.Deletes = append(r.plan.Deletes, t.ID)
	}
}

// nodeGone: the task's node no longer exists, or has been down past the
// grace. Such a node reports nothing more; its tasks are written off.
func (r *reconciler) nodeGone(id string) bool {
	if id == "" {
		return false
	}
	n := r.nodes[id]
	if n == nil {
		return true
	}
	if n.Status.State != api.NodeDown {
		return false
	}
	until := n.Status.Timestamp.Add(r.opts.RescheduleGrace)
	if r.in.Now.Before(until) {
		r.wakeAt(until)
		return false
	}
	return true
}

// nodeDrained says whether the node's tasks must move off it now.
func (r *reconciler) nodeDrained(id string) bool {
	n := r.nodes[id]
	return n != nil && n.Spec.Availability == api.AvailabilityDrain
}

// key groups a service's tasks: the slot, or the node for global services.
type key struct {
	slot uint64
	node string
}

func taskKey(t *api.Task) key {
	if t.Slot > 0 {
		return key{slot: t.Slot}
	}
	return key{node: t.NodeID}
}

func (r *reconciler) service(s *api.Service) {
	groups := map[key][]*api.Task{}
	for _, t := range r.byService[s.ID] {
		if r.desired(t) == api.TaskRemove {
			r.collect(t)
			continue
		}
		groups[taskKey(t)] = append(groups[taskKey(t)], t)
	}
	order := sortedKeys(groups)
	// Move tasks off drained and lost nodes first: their slots then refill.
	for _, k := range order {
		ts := groups[k]
		for _, t := range ts {
			if !r.live(t) || t.NodeID == "" {
				continue
			}
			switch {
			case r.nodes[t.NodeID] == nil:
				c := r.change(t.ID)
				c.DesiredState, c.State, c.Message = api.TaskShutdown, api.TaskOrphaned, "node removed; task moved to another node"
				r.set(t, api.TaskShutdown, api.TaskOrphaned)
			case r.nodeGone(t.NodeID) && !s.Spec.IsGlobal():
				// Written off, not stopped: it stays wanted, so that its
				// node may claim it back on reconnect (api/offline.go).
				// A global task has nowhere else to go: it waits.
				c := r.change(t.ID)
				c.State, c.Message = api.TaskOrphaned, "node is down; task moved to another node"
				r.set(t, "", api.TaskOrphaned)
			case r.nodeDrained(t.NodeID) && !s.Spec.IsGlobal():
				r.stop(t, api.TaskShutdown, "node drained")
			}
		}
	}
	wanted := map[key]bool{}
	if s.Spec.IsGlobal() {
		for _, n := range r.in.Nodes {
			if eligibleGlobal(n, &s.Spec) {
				wanted[key{node: n.ID}] = true
			}
		}
	} else {
		for i := uint64(1); i <= s.Spec.Replicas; i++ {
			wanted[key{slot: i}] = true
		}
	}
	// Stop what is no longer wanted: slots above the count, global tasks
	// on nodes that stopped qualifying (but not on nodes merely down: an
	// offline device keeps running its tasks).
	for _, k := range order {
		ts := groups[k]
		if wanted[k] {
			continue
		}
		if s.Spec.IsGlobal() {
			if n := r.nodes[k.node]; n != nil && n.Status.State == api.NodeDown {
				continue
			}
		}
		for _, t := range ts {
			if r.desired(t) == api.TaskRunning {
				r.stop(t, api.TaskShutdown, "no longer wanted")
			}
		}
	}
	u := newRollout(s, groups, wanted, r)
	for _, k := range u.order {
		r.slot(s, k, groups[k], u)
	}
	u.finish(r, s)
	for _, k := range order {
		r.history(groups[k])
	}
}

// GlobalNodes counts the nodes a global service should run on now:
// active or paused, not down, its constraints met.
func GlobalNodes(s *api.ServiceSpec, nodes []*api.Node) uint64 {
	var n uint64
	for _, nd := range nodes {
		if eligibleGlobal(nd, s) && nd.Status.State != api.NodeDown {
			n++
		}
	}
	return n
}

// sortedKeys orders slots (then global nodes) so that plans are the same
// for the same input.
func sortedKeys[V any](m map[key]V) []key {
	keys := make([]key, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].slot != keys[j].slot {
			return keys[i].slot < keys[j].slot
		}
		return keys[i].node < keys[j].node
	})
	return keys
}

func eligibleGlobal(n *api.Node, s *api.ServiceSpec) bool {
	if n.Spec.Availability != api.AvailabilityActive && n.Spec.Availability != api.AvailabilityPause {
		return false
	}
	for _, expr := range s.Placement.Constraints {
		c, err := api.ParseConstraint(expr)
		if err != nil || !c.Matches(n) {
			return false
		}
	}
	return true
}

// slot makes sure one wanted slot (or global node) has its live task.
func (r *reconciler) slot(s *api.Service, k key, ts []*api.Task, u *rollout) {
	var live []*api.Task
	for _, t := range ts {
		// A standby task of another spec: a set switched away from, or
		// a blue/green set abandoned by a rollback. One that ended
		// before the rollback (its check failed, say) is stopped too,
		// or it would stay wanted for ever.
		if t.Standby && !s.IsCurrent(t) && (r.live(t) || r.desired(t) == api.TaskRunning) {
			r.standbyOld(t, u)
			continue
		}
		if !r.live(t) {
			continue
		}
		if t.Standby && !u.blueGreen {
			r.setStandby(t, false, time.Time{}) // its set is current, and no switch waits
		}
		live = append(live, t)
	}
	if u.blueGreen && u.blueGreenSlot(r, s, k, live) {
		return
	}
	if len(live) > 1 && u.canary[k] {
		return // a canary beside its old task, until promoted
	}
	if len(live) > 1 {
		live = r.dedupe(s, live)
	}
	if len(live) == 1 {
		u.consider(r, s, k, live[0])
		return
	}
	if len(live) > 1 {
		return // a start-first update in flight
	}
	// No live task: refill the slot, under the restart policy if its last
	// task ended on its own.
	last := latest(ts)
	if k.node != "" {
		if n := r.nodes[k.node]; n == nil || n.Spec.Availability != api.AvailabilityActive || n.Status.State == api.NodeDown {
			return // a global task goes only to an active node that is not down
		}
	}
	if last != nil && r.desired(last) != api.TaskRunning && !r.state(last).Terminal() && last.NodeID != "" &&
		r.nodes[last.NodeID] != nil && !r.nodeGone(last.NodeID) && !r.nodeDrained(last.NodeID) {
		return // its old task is still stopping (stop-first): wait for the end
	}
	// A slot whose last task was made from another spec (a rollback
	// returned from it, or an update replaces it) is refilled whatever
	// the restart policy says. During a blue/green update it waits on
	// standby for the switch.
	standby := u.blueGreen && !u.switching
	if last == nil || r.desired(last) != api.TaskRunning || r.state(last) == api.TaskOrphaned || !s.IsCurrent(last) {
		r.create(s, k, last, false, standby)
		return
	}
	if !r.mayRestart(s, last) {
		return
	}
	r.create(s, k, last, true, standby)
}

// dedupe keeps one task per slot: an up-to-date running task wins, then,
// for two copies met on a node's reconnect, the one the service's
// offline.onReconnect names (api/offline.go), then the newest. The others
// are shut down only once the winner runs and, with a health check, is
// healthy: a start-first update keeps the old task until the new one is
// up, and a reconnect never leaves a gap.
func (r *reconciler) dedupe(s *api.Service, live []*api.Task) []*api.Task {
	var winner *api.Task
	for _, t := range live {
		if r.state(t) != api.TaskRunning {
			continue
		}
		if winner == nil || better(t, winner, s) {
			winner = t
		}
	}
	if winner == nil || (!s.IsCurrent(winner) && hasCurrent(s, live)) {
		return live
	}
	if winner.Spec.HealthCheck != nil && winner.Status.Health != api.HealthHealthy {
		return live
	}
	for _, t := range live {
		if t != winner {
			r.stop(t, api.TaskShutdown, "replaced by "+winner.ID)
		}
	}
	return []*api.Task{winner}
}

func hasCurrent(s *api.Service, ts []*api.Task) bool {
	for _, t := range ts {
		if s.IsCurrent(t) {
			return true
		}
	}
	return false
}

func better(a, b *api.Task, s *api.Service) bool {
	ac, bc := s.IsCurrent(a), s.IsCurrent(b)
	if ac != bc {
		return ac
	}
	if ar, br := readopted(a), readopted(b); ar != br {
		return ar == (s.Spec.Offline.EffectiveOnReconnect() == api.OnReconnectKeep)
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.ID > b.ID
}

// readopted says whether t is a copy its node claimed back on reconnect.
func readopted(t *api.Task) bool { return t.Status.Offline != nil && t.Status.Offline.Readopted }

func latest(ts []*api.Task) *api.Task {
	var l *api.Task
	for _, t := range ts {
		if l == nil || t.Version > l.Version || (t.Version == l.Version && t.CreatedAt.After(l.CreatedAt)) {
			l = t
		}
	}
	return l
}

// mayRestart applies the restart policy (api.RestartPolicy.Restart, its
// one home, which a cut-off agent applies too) to an ended task whose slot
// is still wanted.
func (r *reconciler) mayRestart(s *api.Service, last *api.Task) bool {
	at, ok := s.Spec.RestartPolicy.Restart(last.Count(), r.state(last), last.Status.StartedAt, last.Status.Timestamp, r.in.Now)
	if !at.IsZero() && r.in.Now.Before(at) {
		r.wakeAt(at)
		return false
	}
	return ok
}

// create adds a new task to the slot, in place of last if there is one.
// After a restart it carries the attempt and window counts forward.
func (r *reconciler) create(s *api.Service, k key, last *api.Task, restart, standby bool) {
	if last != nil && r.desired(last) == api.TaskRunning && r.state(last).Terminal() && r.state(last) != api.TaskOrphaned {
		// last ended on its own and is replaced: no longer wanted, or
		// it would stay wanted for ever. (An orphaned task stays
		// wanted: its node may bring it back, and dedupe then keeps one
		// of the two.)
		r.stop(last, api.TaskShutdown, "replaced")
	}
	t := api.Task{
		Meta:         api.Meta{ID: r.opts.NewID()},
		ServiceID:    s.ID,
		ServiceName:  s.Spec.Name,
		Slot:         k.slot,
		NodeID:       k.node,
		Spec:         s.Spec,
		SpecVersion:  s.SpecVersion,
		DesiredState: api.TaskRunning,
		Status:       api.TaskStatus{State: api.TaskNew, Timestamp: r.in.Now, Message: "created"},
		Standby:      standby,
	}
	if restart {
		c := s.Spec.RestartPolicy.Next(last.Count(), last.Status.StartedAt, last.Status.Timestamp, r.in.Now)
		t.Attempt, t.WindowStart, t.WindowAttempts = c.Attempt, c.WindowStart, c.WindowAttempts
		t.Status.Message = "restarted after " + string(r.state(last))
	}
	r.plan.Creates = append(r.plan.Creates, t)
}

// history deletes ended tasks beyond the limit, oldest first.
func (r *reconciler) history(ts []*api.Task) {
	var ended []*api.Task
	for _, t := range ts {
		if r.desired(t) != api.TaskRunning && (r.state(t).Terminal() || r.nodeGone(t.NodeID)) {
			ended = append(ended, t)
		}
	}
	if len(ended) <= r.opts.HistoryLimit {
		return
	}
	sort.Slice(ended, func(i, j int) bool { return ended[i].Version < ended[j].Version })
	for _, t := range ended[:len(ended)-r.opts.HistoryLimit] {
		r.plan.Deletes = append(r.plan.Deletes, t.ID)
	}
}
