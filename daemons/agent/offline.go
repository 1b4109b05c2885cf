package agent

import (
	"context"
	"net/netip"
	"time"

	"github.com/warren-edge/warren/daemons/agent/step"
	"github.com/warren-edge/warren/daemons/api"
)

// Offline autonomy (api/offline.go states who owns a slot when). The agent
// counts itself cut off from the moment a heartbeat fails until one is
// taken again, and from its own start until the first one is taken: while
// cut off, it restarts ended tasks in place under their restart policy
// (step.Step), records what it did in step.Local, keeps all of it in the
// checkpoint (checkpoint.go), and reports it with the task's status
// (TaskStatus.Offline), which the reporter delivers once a manager answers.

// contactPersistEvery is how often a connected agent writes the time of its
// last contact into the checkpoint with nothing else to write: after a
// power cut, maxOffline counts from a contact at most this old.
const contactPersistEvery = 10 * time.Minute

// setContact records a heartbeat's outcome: ok, taken by a manager.
func (a *Agent) setContact(ok bool, now time.Time) {
	a.mu.Lock()
	changed := a.cutOff == ok
	a.cutOff = !ok
	if ok {
		if changed || now.Sub(a.savedContact) >= contactPersistEvery {
			a.cpDirty = true
		}
		a.lastContact = now
	} else if changed {
		a.cpDirty = true
	}
	a.mu.Unlock()
	if changed {
		if ok {
			if a.contacted.Swap(true) {
				a.log.Info("a manager takes this node's heartbeat again: the managers own its slots", "cut off since", a.lastContactAt())
			}
			if a.runCtx != nil {
				go a.reconnected(a.runCtx)
			}
		} else {
			a.log.Warn("cut off from every manager: this node keeps and restarts its tasks on its own", "last contact", a.lastContactAt())
		}
		a.kickReconcile()
	}
}

func (a *Agent) lastContactAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lastContact
}

// CutOff says whether no manager has taken this node's heartbeat lately,
// and since when.
func (a *Agent) CutOff() (bool, time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cutOff, a.lastContact
}

// localOf is the node's record of task id, made (seeded from the task's
// own restart count) when missing. a.mu is held.
func (a *Agent) localOf(t *api.Task) *step.Local {
	l := a.local[t.ID]
	if l == nil {
		l = &step.Local{Count: t.Count()}
		a.local[t.ID] = l
	}
	return l
}

// restartLocal records a restart in place before it is made: the count
// under the restart policy moves on (an end the runtime lost, as in a
// reboot, does not count), and the checkpoint is written before the
// container starts again.
func (a *Agent) restartLocal(act step.Action) bool {
	if act.Withdraw && !a.rep.withdraw(act.TaskID) {
		return false // a manager may have the end already: it decides
	}
	now := time.Now()
	a.mu.Lock()
	l := a.localOf(act.Task)
	if e := act.Ended; e != nil {
		l.Count = act.Task.Spec.RestartPolicy.Next(l.Count, e.StartedAt, e.At, now)
		l.Ended = e
	}
	l.Restarts++
	a.cpDirty = true
	a.mu.Unlock()
	if err := a.saveIfDirty(); err != nil {
		a.log.Error("node checkpoint", "err", err)
	}
	a.log.Info("restarting a task in place, cut off from the managers", "task", act.TaskID, "service", act.Task.ServiceName, "restarts", l.Restarts)
	return true
}

// offlineRun is the task's offline report, nil when the node did nothing
// on its own with it. a.mu is held.
func (a *Agent) offlineRun(id string) *api.OfflineRun {
	l := a.local[id]
	sticky := l != nil && l.Override != nil && l.Override.Sticky && !l.Override.Stopped
	if l == nil || (l.Restarts == 0 && !l.StoppedCutOff && !sticky) {
		return nil
	}
	o := &api.OfflineRun{CutOffAt: a.lastContact, Restarts: l.Restarts}
	if sticky {
		o.Override = l.Override
	}
	if l.Ended != nil {
		o.LastExitCode, o.LastExitAt = l.Ended.Code, l.Ended.At
	}
	return o
}

// report sends a status, with the task's offline report.
func (a *Agent) report(id string, st api.TaskStatus) {
	a.mu.Lock()
	if st.Offline == nil {
		st.Offline = a.offlineRun(id)
	}
	if st.State == api.TaskRunning && st.Addr == "" && a.addrs[id].IsValid() {
		st.Addr = a.addrs[id].String()
	}
	a.mu.Unlock()
	a.rep.report(id, st)
}

// checkpointNow is the checkpoint of what the agent holds. a.mu is held.
func (a *Agent) checkpointNow() *nodeCheckpoint {
	cp := &nodeCheckpoint{NodeID: a.nodeID, Index: a.index, Tasks: make([]*api.Task, 0, len(a.tasks)),
		Local: a.local, LastContact: a.lastContact, JournalSent: a.journalSent}
	if a.subnet.IsValid() {
		cp.Subnet = a.subnet.String()
	}
	if a.cluster.IsValid() {
		cp.Cluster = a.cluster.String()
	}
	for _, t := range a.tasks {
		cp.Tasks = append(cp.Tasks, t)
	}
	return cp
}

// saveIfDirty writes the checkpoint if anything in it changed. Writes are
// one at a time, in order.
func (a *Agent) saveIfDirty() error {
	a.cpMu.Lock()
	defer a.cpMu.Unlock()
	a.mu.Lock()
	if !a.cpDirty || !a.synced {
		a.mu.Unlock()
		return nil
	}
	a.cpDirty = false
	b, err := encodeCheckpoint(a.checkpointNow())
	contact := a.lastContact
	a.mu.Unlock()
	if err == nil {
		err = writeCheckpoint(a.cfg.DataDir, b)
	}
	if err != nil {
		a.mu.Lock()
		a.cpDirty = true
		a.mu.Unlock()
		return err
	}
	a.mu.Lock()
	a.savedContact = contact
	a.cpWrites++
	a.mu.Unlock()
	return nil
}

// fromCheckpoint starts the agent from its checkpoint when it has one for
// this node: the tasks, the node's records, its network. It says whether
// it did; a checkpoint that cannot be used is reported and not used.
func (a *Agent) fromCheckpoint(ctx context.Context) bool {
	cp, err := loadCheckpoint(a.cfg.DataDir)
	switch {
	case err == errNoCheckpoint:
		return false
	case err != nil:
		a.log.Error("the node checkpoint cannot be used; waiting for the manager instead", "err", err)
		return false
	}
	// A manager that answers at once must agree on who this node is (a
	// node joined again is a new node: its old checkpoint is not its).
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	info, err := a.api.Info(qctx)
	cancel()
	if err == nil && info.NodeID != cp.NodeID {
		a.log.Warn("the node checkpoint is of another node; not used", "checkpoint", cp.NodeID, "node", info.NodeID)
		return false
	}
	subnet, _ := netip.ParsePrefix(cp.Subnet)
	cluster, _ := netip.ParsePrefix(cp.Cluster)
	if a.net != nil && !subnet.IsValid() {
		return false
	}
	a.mu.Lock()
	a.nodeID, a.subnet, a.cluster = cp.NodeID, subnet, cluster
	a.tasks = make(map[string]*api.Task, len(cp.Tasks))
	for _, t := range cp.Tasks {
		a.tasks[t.ID] = t
	}
	a.local, a.index, a.cpIndex, a.synced = cp.Local, cp.Index, cp.Index, true
	a.journalSent = cp.JournalSent
	if !cp.LastContact.IsZero() {
		a.lastContact, a.savedContact = cp.LastContact, cp.LastContact
	}
	a.mu.Unlock()
	a.log.Info("starting from the node checkpoint", "node", cp.NodeID, "tasks", len(cp.Tasks), "index", cp.Index, "last contact", cp.LastContact)
	return true
}

// CheckpointWrites is how many times the agent wrote its checkpoint.
func (a *Agent) CheckpointWrites() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cpWrites
}
