package agent

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// The ingress watch: ingress ports are balanced over their service's
// serving tasks on all nodes, so the agent follows every task of the
// cluster, not only its own (watchLoop). It keeps, of the tasks of other
// nodes, only the serving ones that publish ingress ports, and of those only
// what the ports need (fleetTask). Its own tasks come from its own view,
// their containers and addresses, as for host-mode ports (desiredPorts).
//
// On a worker, the local manager's node-scoped replica holds the other
// nodes' tasks as public projections (api.PublicTask), which keep what this
// needs: node, address, state, health and the spec's ports and health check.

// fleetTask is what ingress ports need of another node's task: where it
// runs, its address there (Status.Addr), and its ingress ports.
type fleetTask struct {
	service string
	node    string
	addr    netip.Addr
	ports   []api.PortConfig // ingress ports only
}

func (f fleetTask) equal(g fleetTask) bool {
	return f.service == g.service && f.node == g.node && f.addr == g.addr && slices.Equal(f.ports, g.ports)
}

// ingressLoop follows all tasks and publishes the ports again when the
// other nodes' serving backends of ingress ports change.
func (a *Agent) ingressLoop(ctx context.Context) {
	if a.net == nil {
		return // no network, no published ports
	}
	f := client.NewFollower(client.FollowOptions{Client: a.api, Logger: a.log.With("watch", "ingress"),
		Query: client.WatchQuery{Kinds: []string{api.KindTask}}})
	f.Run(ctx, func(b api.WatchBatch) error {
		if a.applyFleet(b) {
			a.publishPorts(ctx)
		}
		return nil
	})
}

// applyFleet folds a batch of the all-tasks watch into a.ports.fleet (a
// full resend replaces it) and says whether the fleet changed.
func (a *Agent) applyFleet(b api.WatchBatch) bool {
	type change struct {
		id   string
		task fleetTask
		keep bool
	}
	a.mu.Lock()
	self, subnet := a.nodeID, a.subnet
	a.mu.Unlock()
	changes := make([]change, 0, len(b.Events))
	for _, ev := range b.Events {
		if ev.Op == api.OpDelete {
			changes = append(changes, change{id: ev.ID})
			continue
		}
		var t api.Task
		if err := json.Unmarshal(ev.Object, &t); err != nil || t.ID == "" {
			a.log.Error("ingress watch: undecodable task; ignored", "id", ev.ID, "index", ev.Index, "err", err)
			continue
		}
		f, keep := fleetEntry(&t, self, subnet)
		changes = append(changes, change{t.ID, f, keep})
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	changed := false
	if b.Reset {
		// Publish after every full resend: the first one may be what
		// publishPorts waited for.
		changed = true
		a.ports.fleet = make(map[string]fleetTask, len(a.ports.fleet))
	}
	if a.ports.fleet == nil {
		return false // not synced: a watch's first batch is a full resend
	}
	for _, c := range changes {
		old, had := a.ports.fleet[c.id]
		switch {
		case c.keep && (!had || !old.equal(c.task)):
			a.ports.fleet[c.id] = c.task
			changed = true
		case !c.keep && had:
			delete(a.ports.fleet, c.id)
			changed = true
		}
	}
	return changed
}

// fleetEntry says whether t, seen by the agent of node self with the
// container subnet subnet, is a backend of ingress ports on another node,
// and what of it to keep. A task of this node is not: the agent knows its
// own tasks better (their containers). A task of another node is one if
// it serves (api.Task.Serving: running, meant to, with an address, healthy
// or without a health check) and publishes an ingress port. Its address
// must be outside this node's subnet, which a stale status could claim.
func fleetEntry(t *api.Task, self string, subnet netip.Prefix) (fleetTask, bool) {
	if t.NodeID == "" || t.NodeID == self || !t.Serving() {
		return fleetTask{}, false
	}
	addr := t.RunningAddr()
	if subnet.IsValid() && subnet.Contains(addr) {
		return fleetTask{}, false
	}
	var ports []api.PortConfig
	for _, p := range t.Spec.Ports {
		if p.Ingress() {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		return fleetTask{}, false
	}
	return fleetTask{service: t.ServiceID, node: t.NodeID, addr: addr, ports: ports}, true
}
