package store

import (
	"bytes"
	"fmt"
	"net/netip"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

var desiredOrder = map[api.TaskState]int{api.TaskRunning: 0, api.TaskShutdown: 1, api.TaskRemove: 2}

// moveDesired moves t's desired state forward to d; it reports whether it
// changed anything.
func moveDesired(t *api.Task, d api.TaskState) bool {
	if desiredOrder[d] <= desiredOrder[t.DesiredState] {
		return false
	}
	t.DesiredState = d
	return true
}

func applyTaskPlan(w *wtx, c *api.TaskPlan) any {
	var skipped []string
	for i := range c.Creates {
		t := c.Creates[i]
		if w.tx.Bucket(bServices).Get([]byte(t.ServiceID)) == nil {
			skipped = append(skipped, t.ID+": service is gone")
			continue
		}
		if w.task(t.ID) != nil {
			skipped = append(skipped, t.ID+": exists")
			continue
		}
		// A task made placed binds its unbound volumes (bindVolumes).
		if t.Status.State == api.TaskAssigned {
			if why := w.bindVolumes(&t, t.NodeID); why != "" {
				skipped = append(skipped, t.ID+": "+why)
				continue
			}
		}
		t.CreatedAt, t.UpdatedAt = c.At, c.At
		if t.Status.Timestamp.IsZero() {
			t.Status.Timestamp = c.At
		}
		w.putTask(nil, &t)
	}
	for _, ch := range c.Updates {
		t := w.task(ch.ID)
		if t == nil {
			skipped = append(skipped, ch.ID+": no such task")
			continue
		}
		prev := *t
		changed := false
		if ch.NodeID != "" && ch.NodeID != t.NodeID {
			if t.NodeID != "" {
				skipped = append(skipped, fmt.Sprintf("%s: already on node %s", t.ID, t.NodeID))
				continue
			}
			// The first placement of a task binds its unbound volumes.
			if why := w.bindVolumes(t, ch.NodeID); why != "" {
				skipped = append(skipped, t.ID+": "+why)
				continue
			}
			t.NodeID = ch.NodeID
			changed = true
		}
		if ch.DesiredState != "" && moveDesired(t, ch.DesiredState) {
			changed = true
		}
		if ch.State != "" {
			switch {
			case ch.State == t.Status.State && !t.Status.State.Terminal():
				if t.Status.Message != ch.Message || t.Status.Err != ch.Err {
					t.Status.Message, t.Status.Err = ch.Message, ch.Err
					changed = true
				}
			case t.Status.State.CanMoveTo(ch.State):
				t.Status = api.TaskStatus{State: ch.State, Timestamp: c.At, Message: ch.Message, Err: ch.Err}
				changed = true
			}
		}
		if ch.Standby != nil && (t.Standby != *ch.Standby || !t.KeepUntil.Equal(ch.KeepUntil)) {
			t.Standby, t.KeepUntil = *ch.Standby, ch.KeepUntil
			changed = true
		}
		if changed {
			t.UpdatedAt = c.At
			w.putTask(&prev, t)
		}
	}
	for _, id := range c.Deletes {
		if t := w.task(id); t != nil {
			w.deleteTask(t)
		}
	}
	for id, st := range c.ServiceStatus {
		// A status for an update that a newer one replaced is stale.
		if s := w.service(id); s != nil && (st.SpecVersion == 0 || st.SpecVersion == s.SpecVersion) {
			st := st
			// What the FSM owns stays: an operator's promotion that
			// landed after the plan was made is not undone by it.
			if cur := s.UpdateStatus; cur != nil {
				st.Promoted = st.Promoted || cur.Promoted
				st.Deployment, st.Canaries, st.Automatic = cur.Deployment, cur.Canaries, cur.Automatic
			}
			s.UpdateStatus = &st
			w.putService(s, api.OpUpdate)
		}
	}
	for _, rb := range c.Rollbacks {
		if why := w.autoRollback(rb, c.At); why != "" {
			skipped = append(skipped, why)
		}
	}
	if len(skipped) > 0 {
		return skipped
	}
	return nil
}

// applyTaskStatus records what a node's agent observed. It takes only the
// updates of tasks assigned to that node, with addresses inside the
// node's own subnet: a node (or someone with its certificate) can change
// nothing else, and cannot point service discovery anywhere else.
func applyTaskStatus(w *wtx, c *TaskStatus) any {
	res := &api.TaskStatusResult{}
	node := w.node(c.NodeID)
	if node == nil {
		return api.Errorf(api.CodeNotFound, "no node %q", c.NodeID)
	}
	subnet, _ := netip.ParsePrefix(node.Subnet)
	for _, u := range c.Updates {
		t := w.task(u.TaskID)
		switch {
		case t == nil:
			res.Skipped = append(res.Skipped, u.TaskID+": no such task")
			continue
		case t.NodeID != c.NodeID:
			res.Skipped = append(res.Skipped, u.TaskID+": not assigned to this node")
			continue
		case !addrInSubnet(u.Status.Addr, subnet):
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: address %q is not in node %s's subnet %s", u.TaskID, u.Status.Addr, c.NodeID, node.Subnet))
			continue
		}
		prev := *t
		st := u.Status
		switch {
		case st.State == t.Status.State && !st.State.Terminal():
			st.Timestamp = t.Status.Timestamp
		case t.Status.State.CanMoveTo(st.State):
			st.Timestamp = c.At
		case readoptable(t, st.State):
			// Its node is back and still runs it: take it back (the
			// orchestrator then keeps one copy of the slot by the
			// service's offline.onReconnect).
			st.Timestamp = c.At
			off := api.OfflineRun{}
			if st.Offline != nil {
				off = *st.Offline
			}
			off.Readopted = true
			st.Offline = &off
		default:
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s: cannot move from %s to %s", u.TaskID, t.Status.State, st.State))
			continue
		}
		// What the node did on its own stays with the task: a later report
		// that does not repeat it (an agent that lost its record) does not
		// erase it, nor the managers' readoption.
		if old := t.Status.Offline; old != nil {
			if st.Offline == nil {
				st.Offline = old
			} else if old.Readopted && !st.Offline.Readopted {
				o := *st.Offline
				o.Readopted = true
				st.Offline = &o
			}
		}
		st.HealthyAt = time.Time{}
		if st.Health == api.HealthHealthy {
			st.HealthyAt = c.At
			if t.Status.Health == api.HealthHealthy && !t.Status.HealthyAt.IsZero() {
				st.HealthyAt = t.Status.HealthyAt
			}
		}
		if statusEqual(&t.Status, &st) {
			continue
		}
		t.Status = st
		t.UpdatedAt = c.At
		w.putTask(&prev, t)
		res.Applied++
	}
	return res
}

// readoptable says whether a task the managers wrote off (orphaned, its
// node down past the grace) may be taken back because its node reports it
// in state st: only if it is still wanted (api/offline.go).
func readoptable(t *api.Task, st api.TaskState) bool {
	return t.Status.State == api.TaskOrphaned && t.DesiredState == api.TaskRunning && st == api.TaskRunning
}

func statusEqual(a, b *api.TaskStatus) bool {
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	return bytes.Equal(ra, rb)
}

// addrInSubnet says whether a reported task address may be stored: none,
// or an address inside the node's subnet.
func addrInSubnet(addr string, subnet netip.Prefix) bool {
	if addr == "" {
		return true
	}
	a, err := netip.ParseAddr(addr)
	return err == nil && subnet.IsValid() && subnet.Contains(a.Unmap())
}
