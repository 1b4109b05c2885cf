package orchestrator

import (
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/scheduler"
)

// Plan reconciles and then places: the result is one command for the
// leader to commit, and when to run again. An empty plan (IsEmpty) needs no
// commit.
func Plan(in Input, opts Options) (api.TaskPlan, time.Time) {
	plan, wake := Reconcile(in, opts)

	// What occupies nodes: every task on a node that has not ended, after
	// this plan's own changes.
	stopped := map[string]bool{} // ended, or no longer meant to run, by this plan
	for _, c := range plan.Updates {
		if c.State.Terminal() || (c.DesiredState != "" && c.DesiredState != api.TaskRunning) {
			stopped[c.ID] = true
		}
	}
	var placed, pending []*api.Task
	for _, t := range in.Tasks {
		switch {
		case t.Status.State.Terminal():
		case t.NodeID != "" && t.Status.State != api.TaskNew && t.Status.State != api.TaskPending:
			placed = append(placed, t) // it holds its node until it ends
		case t.DesiredState == api.TaskRunning && !stopped[t.ID]:
			pending = append(pending, t)
		}
	}
	for i := range plan.Creates {
		pending = append(pending, &plan.Creates[i])
	}
	if len(pending) == 0 {
		return plan, wake
	}
	others := in.Others
	if others == nil && in.OthersFunc != nil {
		others = in.OthersFunc()
	}
	for _, t := range others {
		if t.NodeID != "" && !t.Status.State.Terminal() && t.Status.State != api.TaskNew && t.Status.State != api.TaskPending {
			placed = append(placed, t)
		}
	}
	res := scheduler.Schedule(in.Nodes, placed, pending, in.Volumes)

	created := map[string]*api.Task{}
	for i := range plan.Creates {
		created[plan.Creates[i].ID] = &plan.Creates[i]
	}
	existing := map[string]*api.Task{}
	for _, t := range pending {
		existing[t.ID] = t
	}
	changes := map[string]int{}
	for i, c := range plan.Updates {
		changes[c.ID] = i
	}
	change := func(id string) *api.TaskChange {
		if i, ok := changes[id]; ok {
			return &plan.Updates[i]
		}
		changes[id] = len(plan.Updates)
		plan.Updates = append(plan.Updates, api.TaskChange{ID: id})
		return &plan.Updates[len(plan.Updates)-1]
	}
	for _, a := range res.Assigned {
		if t := created[a.TaskID]; t != nil {
			t.NodeID = a.NodeID
			t.Status.State, t.Status.Message = api.TaskAssigned, "assigned to node"
			continue
		}
		c := change(a.TaskID)
		c.NodeID, c.State, c.Message = a.NodeID, api.TaskAssigned, "assigned to node"
	}
	for _, u := range res.Unplaced {
		if t := created[u.TaskID]; t != nil {
			t.Status.State, t.Status.Message, t.Status.Err = api.TaskPending, "waiting for a node", u.Reason
			continue
		}
		if t := existing[u.TaskID]; t != nil && t.Status.State == api.TaskPending && t.Status.Err == u.Reason {
			continue // already says so
		}
		c := change(u.TaskID)
		c.State, c.Message, c.Err = api.TaskPending, "waiting for a node", u.Reason
	}
	return plan, wake
}

// IsEmpty says whether a plan changes nothing.
func IsEmpty(p *api.TaskPlan) bool {
	return len(p.Creates) == 0 && len(p.Updates) == 0 && len(p.Deletes) == 0 && len(p.ServiceStatus) == 0 && len(p.Rollbacks) == 0
}
