package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
)

// A rolling update is followed by the service's UpdateStatus, which the
// manager keeps: updating, then completed, paused, or (failure action
// rollback) rolling-back with Automatic and then rolled-back. warrenctl
// shows one line per slot while it waits: redrawn in place on a terminal,
// a line per change of a slot otherwise.
//
//	web: updating v12 → v15: 1/3 updated, 0 failed (monitor 5s)
//	  web.1  v12 → v15  updated
//	  web.2  v12 → v15  running 3s/5s
//	  web.3  v12        waiting

// follower follows one service through a change: a rolling update or
// rollback by its UpdateStatus, any other change by counting its tasks
// (measure). observe moves it on; it ends with done or err.
type follower struct {
	id, name string
	what     change
	// rolling: the UpdateStatus of version says when the change ends.
	rolling bool
	version uint64
	from    uint64 // the version the tasks leave, when known
	since   time.Time
	// auto: the update failed and the manager rolls it back (or someone
	// did by hand); reason is why.
	auto   bool
	byHand bool
	reason string
	// created: a deployment created the service, so it has no previous
	// spec; if the deployment fails, its update pauses.
	created bool

	// left remembers the version each slot left, once its old task is
	// gone from the list.
	left  map[string]uint64
	cur   *api.Service
	tasks []api.Task
	nodes []api.Node
	p     progress
	done  bool
	err   error
	// note is said when the follower is done without the update being
	// over: its canaries wait for a promotion.
	note string
}

// newFollower starts following svc as the write that changed it returned
// it. A change is followed as a rolling update when the write started one
// (an UpdateStatus of svc's SpecVersion, updating or rolling back).
func newFollower(svc *api.Service, what change) *follower {
	f := &follower{id: svc.ID, name: svc.Spec.Name, what: what, version: svc.SpecVersion, since: svc.UpdatedAt, cur: svc}
	if st := svc.UpdateStatus; st != nil && (st.SpecVersion == 0 || st.SpecVersion == svc.SpecVersion) &&
		(st.State == api.UpdateUpdating || st.State == api.UpdateRollingBack) {
		f.rolling = true
		f.from = svc.PreviousSpecVersion
		f.created = svc.PreviousSpec == nil && st.Deployment != "" && st.State == api.UpdateUpdating
		if st.State == api.UpdateRollingBack {
			f.what, f.from = rolledBack, 0
		}
		if t := startedAt(st); !t.IsZero() {
			f.since = t
		}
	}
	return f
}

func startedAt(st *api.UpdateStatus) time.Time {
	t, _ := time.Parse(time.RFC3339, st.StartedAt)
	return t
}

// observe reads where the service stands now.
func (f *follower) observe(cur *api.Service, tasks []api.Task, nodes []api.Node) {
	f.cur, f.tasks, f.nodes = cur, tasks, nodes
	f.p = measure(cur, tasks, nodes, f.since)
	if !f.rolling {
		if t := f.p.Failed; t != nil {
			f.err = fmt.Errorf("service %s: task %s %s: %s\nThe service is %s; see warrenctl service ps %s", f.name, t.Name(), t.Status.State, taskWhy(t), f.what, f.name)
			return
		}
		if f.err = rolloutFailed(cur, f.what); f.err == nil && f.p.Done() {
			f.done = true
		}
		return
	}
	st := cur.UpdateStatus
	if cur.SpecVersion != f.version {
		// Another change: the update's own rollback, which is followed
		// to its end, or someone else's update, which is not ours.
		if f.what != updated || f.auto || st == nil || (st.State != api.UpdateRollingBack && st.State != api.UpdateRolledBack) {
			f.err = fmt.Errorf("service %s: changed by another update while warrenctl waited (its tasks now go to spec version %d)\nSee warrenctl service inspect --pretty %s", f.name, cur.SpecVersion, f.name)
			return
		}
		// By hand only if seen so: a status that went straight to
		// rolled-back may have lost its Automatic.
		f.auto, f.byHand = true, st.State == api.UpdateRollingBack && !st.Automatic
		f.from, f.version = f.version, cur.SpecVersion
		f.left = nil
		if t := startedAt(st); !t.IsZero() {
			f.since = t
		}
		f.p = measure(cur, tasks, nodes, f.since)
	}
	if st == nil {
		return
	}
	if f.auto && st.Message != "" && st.State != api.UpdatePaused {
		f.reason = rollbackReason(st.Message)
	}
	name := f.name
	if cur.InCanary() && st.Updated >= st.Canaries && !cur.Spec.UpdateConfig.AutoPromote {
		// The canaries passed; the operator decides: nothing more to
		// wait for here.
		f.done, f.note = true, st.Message
		return
	}
	switch st.State {
	case api.UpdateCompleted:
		f.done = true
	case api.UpdateRolledBack:
		if f.auto {
			f.err = f.rolledBackErr()
		} else {
			f.done = true
		}
	case api.UpdatePaused:
		detail := ""
		if st.Message != "" {
			detail = ": " + st.Message
		}
		switch {
		case f.auto && f.reason != "":
			f.err = fmt.Errorf("service %s: the update failed (%s) and its rollback paused%s\nSee warrenctl service ps %s", name, f.reason, detail, name)
		case f.auto:
			f.err = fmt.Errorf("service %s: the update was rolled back and the rollback paused%s\nSee warrenctl service ps %s", name, detail, name)
		case f.what == rolledBack:
			f.err = fmt.Errorf("service %s: the rollback paused%s\nSee warrenctl service ps %s", name, detail, name)
		case f.created:
			// Its message says why and what to do: there is no
			// previous spec to roll back to.
			f.err = fmt.Errorf("service %s: %s\nSee warrenctl service ps %s", name, orText(st.Message, "the update paused"), name)
		default:
			f.err = fmt.Errorf("service %s: the update paused%s\nSee warrenctl service ps %s; resume it with another service update, or undo it with warrenctl service rollback %s", name, detail, name, name)
		}
	}
}

func (f *follower) rolledBackErr() error {
	why := ""
	switch {
	case f.reason != "":
		why = ": " + f.reason
	case f.byHand:
		why = " by an operator"
	}
	return fmt.Errorf("service %s: update rolled back%s\nThe service runs its previous spec again; see warrenctl service inspect --pretty %s", f.name, why, f.name)
}

// rollbackReason is the reason in the message of an automatic rollback,
// "rolling back: REASON".
func rollbackReason(msg string) string {
	for _, p := range []string{"rolling back: ", "rolled back: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func taskWhy(t *api.Task) string {
	if t.Status.Err != "" {
		return t.Status.Err
	}
	return t.Status.Message
}

// timedOut says where the change stands when warrenctl stops waiting.
func (f *follower) timedOut(after time.Duration) error {
	if !f.rolling {
		msg := fmt.Sprintf("service %s: %s after %s", f.name, f.p, after)
		if len(f.p.Pending) > 0 {
			msg += "; " + f.p.Pending[0]
		}
		return fmt.Errorf("%s\nThe service is %s and its tasks may still start: watch them with warrenctl service ps %s", msg, f.what, f.name)
	}
	return fmt.Errorf("service %s: after %s the %s: %s, %s\nIt goes on in the cluster: follow it with warrenctl service ps %s or warrenctl service inspect --pretty %s",
		f.name, after, f.doing(), f.counts(), f.p, f.name, f.name)
}

// doing says what the change is doing, for a timeout's message.
func (f *follower) doing() string {
	switch {
	case f.auto && f.byHand:
		return "update is being rolled back"
	case f.auto:
		return "update failed and is rolling back"
	case f.what == rolledBack:
		return "rollback is rolling back"
	}
	return "update is updating"
}

func (f *follower) counts() string {
	updated, failed := 0, 0
	if st := f.cur.UpdateStatus; st != nil {
		updated, failed = st.Updated, st.Failed
	}
	return fmt.Sprintf("%d/%d updated, %d failed", updated, f.p.Desired, failed)
}

// header is the first line of the service's block.
func (f *follower) header() string {
	if !f.rolling {
		return f.name + ": " + f.p.String()
	}
	st := f.cur.UpdateStatus
	state := api.UpdateUpdating
	if st != nil {
		state = st.State
	}
	switch {
	case state == api.UpdateRollingBack && f.auto && !f.byHand:
		state = "rolling back (automatic)"
	case state == api.UpdateRollingBack:
		state = "rolling back"
	}
	versions := "v" + strconv.FormatUint(f.version, 10)
	if f.from != 0 {
		versions = "v" + strconv.FormatUint(f.from, 10) + " → " + versions
	}
	monitor := f.cur.ActiveUpdateConfig().MonitorFor(f.cur.Spec.HealthCheck)
	h := fmt.Sprintf("%s: %s %s: %s (monitor %s)", f.name, state, versions, f.counts(), monitor)
	if st != nil && st.Message != "" {
		h += "; " + st.Message
	}
	return h
}

// slotLine is what one slot shows: its task's name, the version it
// leaves and the version it goes to, and its state. detail (a running
// task's time against the monitor) changes by itself and is shown on a
// terminal only.
type slotLine struct {
	name     string
	from, to uint64
	state    string
	detail   string
}

// plain is the line without detail, as said when stderr is not a
// terminal.
func (l slotLine) plain() string {
	if v := l.versions(); v != "" {
		return l.name + "  " + v + "  " + l.state
	}
	return l.name + "  " + l.state
}

func (l slotLine) versions() string {
	switch {
	case l.from != 0 && l.to != 0:
		return fmt.Sprintf("v%d → v%d", l.from, l.to)
	case l.from != 0:
		return fmt.Sprintf("v%d", l.from)
	case l.to != 0:
		return fmt.Sprintf("v%d", l.to)
	}
	return ""
}

// slots says what each slot of the service shows at now: a replicated
// service's slots by number, a global service's by node.
func (f *follower) slots(now time.Time) []slotLine {
	svc := f.cur
	type slot struct {
		key, name string
		order     uint64
		tasks     []*api.Task
	}
	bySlot := map[string]*slot{}
	hosts := hostnames(f.nodes)
	get := func(key string, order uint64) *slot {
		s := bySlot[key]
		if s == nil {
			name := svc.Spec.Name + "." + key
			if svc.Spec.IsGlobal() {
				name = svc.Spec.Name + "." + orText(hosts[key], shortID(key))
			}
			s = &slot{key: key, name: name, order: order}
			bySlot[key] = s
		}
		return s
	}
	key := func(t *api.Task) (string, uint64) {
		if svc.Spec.IsGlobal() {
			return t.NodeID, 0
		}
		return strconv.FormatUint(t.Slot, 10), t.Slot
	}
	if svc.Spec.IsGlobal() {
		for _, id := range globalNodes(svc, f.nodes, f.tasks) {
			get(id, 0)
		}
	} else {
		for i := uint64(1); i <= svc.Spec.Replicas; i++ {
			get(strconv.FormatUint(i, 10), i)
		}
	}
	for i := range f.tasks {
		t := &f.tasks[i]
		if t.ServiceID != svc.ID || (t.Status.State.Terminal() && t.Status.Timestamp.Before(f.since)) {
			continue // history
		}
		k, o := key(t)
		s := get(k, o)
		s.tasks = append(s.tasks, t)
	}
	all := make([]*slot, 0, len(bySlot))
	for _, s := range bySlot {
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b *slot) int {
		return cmp.Or(cmp.Compare(a.order, b.order), strings.Compare(a.name, b.name))
	})
	monitor := svc.ActiveUpdateConfig().MonitorFor(svc.Spec.HealthCheck)
	doneWord := "updated"
	if f.auto || f.what == rolledBack {
		doneWord = "rolled back"
	}
	lines := make([]slotLine, 0, len(all))
	for _, s := range all {
		var live, failed, old, stopping *api.Task
		var from uint64
		for _, t := range s.tasks {
			current, ended := svc.IsCurrent(t), t.Status.State.Terminal()
			switch {
			case !current:
				from = max(from, t.SpecVersion)
				if !ended {
					old = t
				}
			case !ended && t.DesiredState == api.TaskRunning:
				if live == nil || live.Status.State.Before(t.Status.State) {
					live = t
				}
			case !ended:
				stopping = t
			case t.Status.State == api.TaskFailed || t.Status.State == api.TaskRejected:
				if failed == nil || failed.Status.Timestamp.Before(t.Status.Timestamp) {
					failed = t
				}
			}
		}
		if f.left == nil {
			f.left = map[string]uint64{}
		}
		if from != 0 {
			f.left[s.key] = from
		} else if live != nil && live.SpecVersion >= svc.SpecVersion {
			from = f.left[s.key]
		}
		l := slotLine{name: s.name, from: from}
		switch {
		case live != nil:
			l.to = live.SpecVersion
			l.state, l.detail = f.liveState(live, old, now, monitor, doneWord)
			if live.Standby && live.Status.State == api.TaskRunning {
				l.state += ", on standby" // a blue/green set before its switch
			}
		case failed != nil:
			l.to = failed.SpecVersion
			l.state = "failed: " + taskWhy(failed)
		case old != nil && old.DesiredState == api.TaskRunning:
			l.state = "waiting"
		case old != nil || stopping != nil:
			l.state = "stopping"
		default:
			l.state = "waiting"
		}
		if l.to == l.from {
			l.to = 0
		}
		lines = append(lines, l)
	}
	return lines
}

// liveState is the state of a slot's live task of the current spec; old
// is the slot's live task of an older one, if any.
func (f *follower) liveState(t, old *api.Task, now time.Time, monitor time.Duration, doneWord string) (state, detail string) {
	// Made for this change (not a task a rollback left alone).
	touched := f.rolling && t.SpecVersion >= f.cur.SpecVersion
	switch t.Status.State {
	case api.TaskRunning:
	case api.TaskPending:
		return "pending: " + taskWhy(t), ""
	default:
		return "starting", ""
	}
	if touched && f.done {
		return doneWord, ""
	}
	if f.cur.Spec.HealthCheck != nil {
		switch t.Status.Health {
		case api.HealthHealthy:
			if touched && !t.Status.HealthyAt.IsZero() {
				return "running, healthy", fmt.Sprintf("%s/%s", max(0, now.Sub(t.Status.HealthyAt)).Truncate(time.Second), monitor)
			}
			return "running, healthy", ""
		case api.HealthUnhealthy:
			return "running, unhealthy", ""
		}
		return "running, not healthy yet", ""
	}
	if !touched || t.Status.StartedAt.IsZero() {
		return "running", ""
	}
	ran := max(0, now.Sub(t.Status.StartedAt))
	if ran >= monitor && old == nil {
		return doneWord, ""
	}
	return "running", fmt.Sprintf("%s/%s", ran.Truncate(time.Second), monitor)
}

func shortID(id string) string { return id[:min(len(id), 12)] }

// globalNodes lists the nodes a global service wants a task on (active,
// not down, meeting its constraints; paused ones that hold a task), by
// measure's rule.
func globalNodes(svc *api.Service, nodes []api.Node, tasks []api.Task) []string {
	liveOn := map[string]bool{}
	for i := range tasks {
		if t := &tasks[i]; t.ServiceID == svc.ID && t.Live() {
			liveOn[t.NodeID] = true
		}
	}
	var out []string
	for i := range nodes {
		n := &nodes[i]
		if !matches(&svc.Spec, n) {
			continue
		}
		if n.Spec.Availability == api.AvailabilityActive && n.Status.State != api.NodeDown ||
			n.Spec.Availability == api.AvailabilityPause && liveOn[n.ID] {
			out = append(out, n.ID)
		}
	}
	return out
}

// block is the service's lines: its header, then its slots.
func (f *follower) block(now time.Time) (header string, slots []slotLine) {
	return f.header(), f.slots(now)
}

// liveView shows followers' blocks: on a terminal redrawn in place, as
// docker's converge output is; otherwise a line each time a header or a
// slot changes, with no control codes.
type liveView struct {
	w     io.Writer // on a terminal, the raw stream: lines are sanitized here
	tty   bool
	width int
	drawn int
	last  string            // the last frame drawn (terminal)
	said  map[string]string // the last line said per header or slot (plain)
}

func (s *session) newLiveView() *liveView {
	v := &liveView{said: map[string]string{}}
	if s.app.IsTerminal(s.app.Stderr) {
		v.w, v.tty = s.app.Stderr, true
		if f, ok := s.app.Stderr.(*os.File); ok {
			if sz, err := termSize(f); err == nil {
				v.width = int(sz.Width)
			}
		}
	} else {
		v.w = s.stderr
	}
	return v
}

func (v *liveView) show(fs []*follower, now time.Time) {
	if v.tty {
		v.redraw(frame(fs, now))
		return
	}
	for _, f := range fs {
		header, slots := f.block(now)
		v.say(f.id, header)
		for _, l := range slots {
			v.say(f.id+"/"+l.name, l.plain())
		}
	}
}

func (v *liveView) say(key, line string) {
	if v.said[key] != line {
		v.said[key] = line
		fmt.Fprintln(v.w, line)
	}
}

// frame is every block's lines, the columns of a block aligned.
func frame(fs []*follower, now time.Time) []string {
	var out []string
	for _, f := range fs {
		header, slots := f.block(now)
		out = append(out, header)
		nw, vw := 0, 0
		for _, l := range slots {
			nw, vw = max(nw, len(l.name)), max(vw, len([]rune(l.versions())))
		}
		for _, l := range slots {
			state := l.state
			if l.detail != "" {
				state += " " + l.detail
			}
			vs := l.versions()
			out = append(out, strings.TrimRight(fmt.Sprintf("  %-*s  %s%s  %s", nw, l.name, vs, strings.Repeat(" ", vw-len([]rune(vs))), state), " "))
		}
	}
	return out
}

// redraw moves up over the last frame and writes this one over it.
func (v *liveView) redraw(lines []string) {
	var b strings.Builder
	for _, l := range lines {
		l = format.Sanitize(l, false)
		if r := []rune(l); v.width > 1 && len(r) >= v.width {
			l = string(r[:v.width-1])
		}
		b.WriteString("\r\x1b[2K" + l + "\n")
	}
	for i := len(lines); i < v.drawn; i++ {
		b.WriteString("\r\x1b[2K\n")
	}
	body := b.String()
	if body == v.last {
		return
	}
	up := ""
	if v.drawn > 0 {
		up = fmt.Sprintf("\x1b[%dA", v.drawn)
	}
	if extra := v.drawn - len(lines); extra > 0 {
		body += fmt.Sprintf("\x1b[%dA", extra)
	}
	io.WriteString(v.w, up+body)
	v.last, v.drawn = body, len(lines)
}

// follow waits until every follower is done or failed, or the timeout
// passes, showing their blocks unless quiet. The errors name their
// service.
func (s *session) follow(ctx context.Context, fs []*follower, w waitOpts) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	var v *liveView
	if !w.quiet {
		v = s.newLiveView()
	}
	tick := time.NewTicker(s.app.PollEvery)
	defer tick.Stop()
	timedOut := false
	for !timedOut {
		waiting := 0
		for _, f := range fs {
			if f.done || f.err != nil {
				continue
			}
			cur, tasks, nodes, err := s.look(ctx, c, f.id)
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				timedOut = true
			case err != nil && ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				f.err = fmt.Errorf("service %s: watching its tasks: %w", f.name, err)
			default:
				f.observe(cur, tasks, nodes)
			}
			if !f.done && f.err == nil {
				waiting++
			}
		}
		if v != nil {
			v.show(fs, s.now())
		}
		if waiting == 0 || timedOut {
			break
		}
		select {
		case <-ctx.Done():
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return ctx.Err()
			}
			timedOut = true
		case <-tick.C:
		}
	}
	var errs multiError
	for _, f := range fs {
		if f.note != "" && !w.quiet {
			s.progressf("service %s: %s", f.name, f.note)
		}
		switch {
		case f.err != nil:
			errs = append(errs, f.err)
		case !f.done:
			errs = append(errs, f.timedOut(w.timeout))
		}
	}
	return errs.err()
}

// convergeMany follows several services at once (a stack deploy), each
// as the write that changed it returned it: rolling updates by their
// update status, new or rescaled services by their tasks. It fails if any
// service's update paused or rolled back, or any waited past the
// timeout, naming each.
func (s *session) convergeMany(ctx context.Context, svcs []*api.Service, w waitOpts) error {
	if w.detach || len(svcs) == 0 {
		return nil
	}
	fs := make([]*follower, len(svcs))
	for i, svc := range svcs {
		what := configured
		if svc.CreatedAt.Equal(svc.UpdatedAt) {
			what = created
		}
		if st := svc.UpdateStatus; st != nil && st.State == api.UpdateUpdating {
			what = updated
		}
		fs[i] = newFollower(svc, what)
	}
	return s.follow(ctx, fs, w)
}
