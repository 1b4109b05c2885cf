package orchestrator_test

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/orchestrator"
)

// t0 is "now" in the table tests; times are written relative to it.
var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return t0.Add(-d) }

const (
	sec    = time.Second
	minute = time.Minute
)

// counter makes task IDs new01, new02, ... so plans are deterministic.
func counter() func() string {
	n := 0
	return func() string { n++; return fmt.Sprintf("new%02d", n) }
}

func opts() orchestrator.Options { return orchestrator.Options{NewID: counter()} }

// node is a ready, active worker with 4 CPUs and 4 GiB.
func node(id string, mods ...func(*api.Node)) *api.Node {
	n := &api.Node{
		Meta:        api.Meta{ID: id, Version: 1},
		Spec:        api.NodeSpec{Role: api.RoleWorker, Availability: api.AvailabilityActive},
		Description: api.NodeDescription{Hostname: id, NanoCPUs: 4e9, MemoryBytes: 4 << 30},
		Status:      api.NodeStatus{State: api.NodeReady, Timestamp: ago(time.Hour)},
	}
	for _, m := range mods {
		m(n)
	}
	return n
}

func avail(a string) func(*api.Node) { return func(n *api.Node) { n.Spec.Availability = a } }

var (
	drained = avail(api.AvailabilityDrain)
	paused  = avail(api.AvailabilityPause)
)

func downSince(at time.Time) func(*api.Node) {
	return func(n *api.Node) { n.Status = api.NodeStatus{State: api.NodeDown, Timestamp: at} }
}

func unknown(n *api.Node) {
	n.Status = api.NodeStatus{State: api.NodeUnknown, Timestamp: ago(time.Hour)}
}

func zone(z string) func(*api.Node) {
	return func(n *api.Node) { n.Spec.Labels = map[string]string{"zone": z} }
}

// service is a replicated service whose spec is at SpecVersion 10.
func service(id string, replicas uint64, mods ...func(*api.Service)) *api.Service {
	s := &api.Service{
		Meta:        api.Meta{ID: id, Version: 10, CreatedAt: ago(time.Hour)},
		Spec:        api.ServiceSpec{Name: id, Image: "localhost/busybox", Mode: api.ModeReplicated, Replicas: replicas},
		SpecVersion: 10,
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func global(s *api.Service) { s.Spec.Mode, s.Spec.Replicas = api.ModeGlobal, 0 }

func constraints(c ...string) func(*api.Service) {
	return func(s *api.Service) { s.Spec.Placement.Constraints = c }
}

func restart(p api.RestartPolicy) func(*api.Service) {
	return func(s *api.Service) { s.Spec.RestartPolicy = p }
}

func reserveMem(b int64) func(*api.Service) {
	return func(s *api.Service) { s.Spec.Resources.Reservations.MemoryBytes = api.Bytes(b) }
}

// updating marks the service as rolling out a new spec (SpecVersion 10,
// tasks of version 5 are outdated) since started.
func updating(cfg api.UpdateConfig, started time.Time) func(*api.Service) {
	return func(s *api.Service) {
		s.Spec.UpdateConfig = cfg
		s.UpdateStatus = &api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 10, StartedAt: started.Format(time.RFC3339)}
	}
}

func dur(d time.Duration) api.Duration { return api.Duration(d) }

func par(n uint64) *uint64 { return &n }

// task is a task of s in slot (replicated) or on nodeID (global, slot 0),
// made from s's current spec an hour ago, meant to run, in state.
func task(id string, s *api.Service, slot uint64, nodeID string, state api.TaskState, mods ...func(*api.Task)) *api.Task {
	t := &api.Task{
		Meta:         api.Meta{ID: id, Version: 5, CreatedAt: ago(time.Hour), UpdatedAt: ago(time.Hour)},
		ServiceID:    s.ID,
		ServiceName:  s.Spec.Name,
		Slot:         slot,
		NodeID:       nodeID,
		Spec:         s.Spec,
		SpecVersion:  s.SpecVersion,
		DesiredState: api.TaskRunning,
		Status:       api.TaskStatus{State: state, Timestamp: ago(time.Hour)},
	}
	if state == api.TaskRunning || state.Terminal() {
		t.Status.StartedAt = ago(time.Hour)
	}
	for _, m := range mods {
		m(t)
	}
	return t
}

// ended sets the task's state and when it was entered; the container ran
// for ran before that (0: it never started).
func ended(state api.TaskState, at time.Time, ran time.Duration) func(*api.Task) {
	return func(t *api.Task) {
		t.Status.State, t.Status.Timestamp = state, at
		t.Status.StartedAt = time.Time{}
		if ran > 0 {
			t.Status.StartedAt = at.Add(-ran)
		}
	}
}

// readoptedTask is a task its node claimed back on reconnect.
func readoptedTask(t *api.Task) { t.Status.Offline = &api.OfflineRun{Restarts: 1, Readopted: true} }

// health sets a task's health, and gives it the service's health check.
func health(h string) func(*api.Task) {
	return func(t *api.Task) {
		t.Spec.HealthCheck = &api.HealthCheck{Type: api.HealthTCP, Port: 80}
		t.Status.Health = h
	}
}

func onReconnect(rule string) func(*api.Service) {
	return func(s *api.Service) { s.Spec.Offline.OnReconnect = rule }
}

func desired(d api.TaskState) func(*api.Task) { return func(t *api.Task) { t.DesiredState = d } }

func version(v uint64) func(*api.Task) { return func(t *api.Task) { t.Version = v } }

func specVersion(v uint64) func(*api.Task) { return func(t *api.Task) { t.SpecVersion = v } }

func created(at time.Time) func(*api.Task) { return func(t *api.Task) { t.CreatedAt = at } }

func attempt(n uint64) func(*api.Task) { return func(t *api.Task) { t.Attempt = n } }

func window(start time.Time, n uint64) func(*api.Task) {
	return func(t *api.Task) { t.WindowStart, t.WindowAttempts = start, n }
}

func pendingWith(reason string) func(*api.Task) {
	return func(t *api.Task) {
		t.NodeID = ""
		t.Status = api.TaskStatus{State: api.TaskPending, Timestamp: ago(time.Minute), Message: "waiting for a node", Err: reason}
	}
}

// rel writes a time relative to t0: "t0", "t0+5s", "t0-1m0s"; "-" for none.
func rel(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(t0)
	switch {
	case d == 0:
		return "t0"
	case d > 0:
		return "t0+" + d.String()
	default:
		return "t0" + d.String()
	}
}

// render writes a plan as sorted lines, one per change, e.g.
//
//	create new01 web.1 state=new attempt=1 window=1@t0
//	update t1 state=orphaned
//	delete t3
//	status web paused
//
// Messages are left out; cases that care check them.
func render(p api.TaskPlan) []string {
	var out []string
	for _, c := range p.Creates {
		var b strings.Builder
		fmt.Fprintf(&b, "create %s ", c.ID)
		if c.Slot > 0 {
			fmt.Fprintf(&b, "%s.%d", c.ServiceName, c.Slot)
			if c.NodeID != "" {
				fmt.Fprintf(&b, " node=%s", c.NodeID)
			}
		} else {
			fmt.Fprintf(&b, "%s@%s", c.ServiceName, c.NodeID)
		}
		fmt.Fprintf(&b, " state=%s", c.Status.State)
		if c.Attempt > 0 {
			fmt.Fprintf(&b, " attempt=%d", c.Attempt)
		}
		if c.WindowAttempts > 0 {
			fmt.Fprintf(&b, " window=%d@%s", c.WindowAttempts, rel(c.WindowStart))
		}
		if c.Status.Err != "" {
			fmt.Fprintf(&b, " err=%q", c.Status.Err)
		}
		if c.Standby {
			b.WriteString(" standby")
		}
		out = append(out, b.String())
	}
	for _, c := range p.Updates {
		s := "update " + c.ID
		if c.DesiredState != "" {
			s += " desired=" + string(c.DesiredState)
		}
		if c.State != "" {
			s += " state=" + string(c.State)
		}
		if c.NodeID != "" {
			s += " node=" + c.NodeID
		}
		if c.Err != "" {
			s += fmt.Sprintf(" err=%q", c.Err)
		}
		switch {
		case c.Standby == nil:
		case *c.Standby && !c.KeepUntil.IsZero():
			s += " standby until " + rel(c.KeepUntil)
		case *c.Standby:
			s += " standby"
		default:
			s += " serving"
		}
		out = append(out, s)
	}
	for _, id := range p.Deletes {
		out = append(out, "delete "+id)
	}
	for _, rb := range p.Rollbacks {
		out = append(out, fmt.Sprintf("rollback %s@%d: %s", rb.ServiceID, rb.SpecVersion, rb.Reason))
	}
	for id, st := range p.ServiceStatus {
		line := "status " + id + " " + st.State
		if st.Updated > 0 || st.Failed > 0 || st.State != api.UpdateUpdating {
			line += fmt.Sprintf(" updated=%d", st.Updated)
		}
		if st.Failed > 0 {
			line += fmt.Sprintf(" failed=%d", st.Failed)
		}
		out = append(out, line)
	}
	slices.Sort(out)
	return out
}

// describe summarises an input for failure messages: "web×3 [t1 web.1
// running@n1] nodes [n1 ready/active]".
func describe(in orchestrator.Input) string {
	var b strings.Builder
	for _, s := range in.Services {
		if s.Spec.IsGlobal() {
			fmt.Fprintf(&b, "%s(global) ", s.Spec.Name)
		} else {
			fmt.Fprintf(&b, "%s×%d ", s.Spec.Name, s.Spec.Replicas)
		}
	}
	b.WriteString("[")
	for i, t := range in.Tasks {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s %s %s/%s@%s", t.ID, t.Name(), t.DesiredState, t.Status.State, t.NodeID)
	}
	b.WriteString("] nodes [")
	for i, n := range in.Nodes {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s %s/%s", n.ID, n.Status.State, n.Spec.Availability)
	}
	fmt.Fprintf(&b, "] at %s", rel(in.Now))
	return b.String()
}

func in(now time.Time, svcs []*api.Service, tasks []*api.Task, nodes ...*api.Node) orchestrator.Input {
	return orchestrator.Input{Now: now, Services: svcs, Tasks: tasks, Nodes: nodes}
}

func svcs(s ...*api.Service) []*api.Service { return s }

func tasks(t ...*api.Task) []*api.Task { return t }
