package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// waitOpts are the flags of the commands that wait for tasks to run.
type waitOpts struct {
	detach  bool
	timeout time.Duration
	quiet   bool
}

func addWaitFlags(cmd *cobra.Command, w *waitOpts) {
	cmd.Flags().BoolVarP(&w.detach, "detach", "d", false, "return at once instead of waiting for the tasks to run (or the update to end)")
	cmd.Flags().DurationVar(&w.timeout, "timeout", 60*time.Second, "how long to wait for the tasks to run (or the update to end); the change goes on in the cluster after it")
	cmd.Flags().BoolVarP(&w.quiet, "quiet", "q", false, "print no progress while waiting")
}

// progress is where a service stands, as converge reports it.
type progress struct {
	Running, Desired int
	// Starting counts tasks of the current spec on their way to running.
	Starting int
	// Old counts tasks of an older spec that have not ended: a rolling
	// update replaces them.
	Old int
	// Stopping counts tasks of the current spec being stopped (scaled
	// down, node drained).
	Stopping int
	// Pending holds "web.3 pending: why" for each task no node takes.
	Pending []string
	// Failed is a task of the current spec that failed or was rejected
	// since the change began.
	Failed *api.Task
}

// Done says whether the service runs as wanted and nothing else.
func (p progress) Done() bool {
	return p.Running == p.Desired && p.Starting == 0 && p.Old == 0 && p.Stopping == 0
}

func (p progress) String() string {
	s := fmt.Sprintf("%d/%d running", p.Running, p.Desired)
	if p.Old > 0 {
		s += fmt.Sprintf(", %d on the old spec", p.Old)
	}
	if p.Stopping > 0 {
		s += fmt.Sprintf(", %d stopping", p.Stopping)
	}
	return s
}

// measure finds where svc stands from its tasks. since is when the change
// began (by the manager's clock): failures before it are history. nodes
// are needed for global services only.
func measure(svc *api.Service, tasks []api.Task, nodes []api.Node, since time.Time) progress {
	var p progress
	for i := range tasks {
		t := &tasks[i]
		if t.ServiceID != svc.ID {
			continue
		}
		current := svc.IsCurrent(t)
		ended := t.Status.State.Terminal()
		wanted := t.DesiredState == api.TaskRunning
		switch {
		case ended:
		case !current:
			p.Old++
		case !wanted:
			p.Stopping++
		case t.Status.State == api.TaskRunning:
			p.Running++
		default:
			p.Starting++
		}
		if current && wanted && t.Status.State == api.TaskPending {
			why := t.Status.Err
			if why == "" {
				why = t.Status.Message
			}
			p.Pending = append(p.Pending, t.Name()+" pending: "+why)
		}
		if current && (t.Status.State == api.TaskFailed || t.Status.State == api.TaskRejected) &&
			!t.Status.Timestamp.Before(since) && p.Failed == nil {
			p.Failed = t
		}
	}
	if !svc.Spec.IsGlobal() {
		p.Desired = int(svc.Spec.Replicas)
		return p
	}
	// A global service wants a task on every active node that is not down
	// and meets its constraints, and keeps those on paused nodes.
	p.Desired = len(globalNodes(svc, nodes, tasks))
	return p
}

func matches(s *api.ServiceSpec, n *api.Node) bool {
	for _, expr := range s.Placement.Constraints {
		c, err := api.ParseConstraint(expr)
		if err != nil || !c.Matches(n) {
			return false
		}
	}
	return true
}

// change is what a write did to a service, for converge's words and for
// how it reads a rolling update's state.
type change string

const (
	created    change = "created"
	scaled     change = "scaled"
	updated    change = "updated" // the tasks' spec changed: a rolling update
	configured change = "changed" // the spec changed, not what the tasks run
	rolledBack change = "rolled back"
)

// converge waits, unless -d, until svc's tasks run as wanted, a task of
// the change fails, or the timeout passes; progress goes to stderr, one
// line per change. A rolling update or rollback is followed by its update
// status instead, slot by slot, until it completes, pauses or rolls back
// (follow).
func (s *session) converge(ctx context.Context, svc *api.Service, w waitOpts, what change) error {
	if w.detach {
		return nil
	}
	if what == updated || what == rolledBack {
		if f := newFollower(svc, what); f.rolling {
			return s.follow(ctx, []*follower{f}, w)
		}
	}
	c, err := s.client()
	if err != nil {
		return err
	}
	name, since := svc.Spec.Name, svc.UpdatedAt
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	say := func(format string, args ...any) {
		if !w.quiet {
			s.progressf(format, args...)
		}
	}
	last, seen := "", map[string]bool{}
	var p progress
	timedOut := func() error {
		msg := fmt.Sprintf("service %s: %s after %s", name, p, w.timeout)
		if len(p.Pending) > 0 {
			msg += "; " + p.Pending[0]
		}
		return fmt.Errorf("%s\nThe service is %s and its tasks may still start: watch them with warrenctl service ps %s", msg, what, name)
	}
	tick := time.NewTicker(s.app.PollEvery)
	defer tick.Stop()
	for {
		cur, tasks, nodes, err := s.look(ctx, c, svc.ID)
		if errors.Is(err, context.DeadlineExceeded) {
			return timedOut()
		}
		if err != nil {
			return fmt.Errorf("service %s: watching its tasks: %w", name, err)
		}
		p = measure(cur, tasks, nodes, since)
		for _, why := range p.Pending {
			if !seen[why] {
				seen[why] = true
				say("%s", why)
			}
		}
		if line := p.String(); line != last {
			last = line
			say("%s: %s", name, line)
		}
		if t := p.Failed; t != nil {
			why := t.Status.Err
			if why == "" {
				why = t.Status.Message
			}
			return fmt.Errorf("service %s: task %s %s: %s\nThe service is %s; see warrenctl service ps %s", name, t.Name(), t.Status.State, why, what, name)
		}
		if err := rolloutFailed(cur, what); err != nil {
			return err
		}
		if p.Done() {
			return nil
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return timedOut()
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// rolloutFailed reads the service's update state: a paused update, or an
// update that turned into a rollback, is the failure of this change.
func rolloutFailed(svc *api.Service, what change) error {
	st := svc.UpdateStatus
	if st == nil || (what != updated && what != rolledBack) {
		return nil
	}
	name := svc.Spec.Name
	detail := ""
	if st.Message != "" {
		detail = ": " + st.Message
	}
	switch {
	case st.State == api.UpdatePaused && what == rolledBack:
		return fmt.Errorf("service %s: the rollback paused%s\nSee warrenctl service ps %s", name, detail, name)
	case st.State == api.UpdatePaused:
		return fmt.Errorf("service %s: the update paused%s\nSee warrenctl service ps %s; resume it with another service update, or undo it with warrenctl service update --rollback %s", name, detail, name, name)
	case what == updated && (st.State == api.UpdateRollingBack || st.State == api.UpdateRolledBack):
		return fmt.Errorf("service %s: the update failed and is being rolled back%s\nSee warrenctl service ps %s", name, detail, name)
	}
	return nil
}

// look reads the service, its tasks and, for a global service, the nodes.
func (s *session) look(ctx context.Context, c *client.Client, id string) (*api.Service, []api.Task, []api.Node, error) {
	svc, err := c.Service(ctx, id, client.ReadOptions{})
	if err != nil {
		return nil, nil, nil, err
	}
	tasks, err := c.Tasks(ctx, client.TaskQuery{Service: id})
	if err != nil {
		return nil, nil, nil, err
	}
	var nodes []api.Node
	if svc.Spec.IsGlobal() {
		if nodes, err = c.Nodes(ctx, client.ReadOptions{}); err != nil {
			return nil, nil, nil, err
		}
	}
	return svc, tasks, nodes, nil
}
