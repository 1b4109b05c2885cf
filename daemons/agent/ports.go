package agent

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
)

// Published ports.
//
// A host-mode port is published on the nodes that run a task of its
// service, to those tasks: each agent publishes the ports of its own
// running tasks. An ingress port is published on every node, balanced over
// the service's serving tasks on all nodes: each agent publishes the ports
// of its own tasks and those of the other nodes' tasks it learns from a
// second watch, of all tasks (ingress.go). The node's network reaches the
// other nodes' tasks through the mesh, and leaves them out while there is
// none (netcfg/nft).
//
// A task is a backend while it serves (api.Task.Serving): the other
// nodes' as the store says, the node's own as the agent sees them
// (serving), so a new task gets no connection before its health check
// passes, nor one on standby. Another node's task is one only while the
// mesh reaches its node (meshReaches).
//
//	reconcile (local tasks) ──┐
//	health probe (local) ─────┤
//	ingress watch (fleet) ────┼─▶ publishPorts: desiredPorts ─▶ Network.Publish (one transaction)
//	mesh sync (reachability) ─┘

// portState is what the agent keeps about published ports.
type portState struct {
	mu        sync.Mutex // serializes publishPorts, called from two loops
	published string     // key of the ports last published
	// checked are the ingress ports published at the last publish; a new
	// one is checked for another program that holds it (checkIngress).
	checked map[api.PortKey]bool
	// fleet is the serving tasks of other nodes that publish ingress
	// ports, by task ID (ingress.go); nil until the all-tasks watch has
	// synced. Guarded by Agent.mu.
	fleet map[string]fleetTask
}

// backend is a task that serves its published ports at addr.
type backend struct {
	addr  netip.Addr
	ports []api.PortConfig
}

// publishPorts makes the node's published ports match the running tasks:
// its own for every port, the other nodes' for ingress ports. It waits
// until both watches have synced, so that a starting agent's first
// publish has every backend (Setup left the table without ports), not
// the ones of whichever watch synced first.
func (a *Agent) publishPorts(ctx context.Context) {
	if a.net == nil {
		return
	}
	a.ports.mu.Lock()
	defer a.ports.mu.Unlock()
	a.mu.Lock()
	if !a.synced || a.ports.fleet == nil {
		a.mu.Unlock()
		return
	}
	ports, dropped := a.desiredPorts()
	a.mu.Unlock()
	key := fmt.Sprint(ports)
	if key == a.ports.published {
		return
	}
	for _, p := range dropped {
		a.log.Warn("published port left out: it clashes with another port published here (a service changing its ports?)",
			"port", portKey(p), "ingress", p.Ingress)
	}
	if err := a.net.Publish(ctx, ports); err != nil {
		a.log.Error("publish ports", "err", err)
		return
	}
	a.ports.published = key
	a.log.Debug("ports published", "ports", key)
	a.checkIngress(ctx, ports)
}

// desiredPorts lists the node's published ports and their backends. The
// second list holds ports left out because they clash with one listed
// (PortKey.Clashes): two services' ports never clash on a node (the store
// and the scheduler see to it) except while a service changes its ports
// and tasks of the old and new spec run at once. Callers hold a.mu.
func (a *Agent) desiredPorts() (ports, dropped []Published) {
	var backends []backend
	for id, t := range a.tasks {
		if len(t.Spec.Ports) == 0 || !a.serving(t) {
			continue
		}
		backends = append(backends, backend{a.addrs[id], t.Spec.Ports})
	}
	for _, f := range a.ports.fleet {
		if a.meshReaches(f.node) {
			backends = append(backends, backend{f.addr, f.ports})
		}
	}
	return portsOf(backends)
}

// meshReaches says whether another node's tasks are backends of this
// node's ingress ports as far as the mesh goes: its peer shook hands lately
// and was heard from (wg.PeerStatus.Reachable, the rule behind the mesh
// status file that warren-dns and warren-ingress follow). A node the mesh
// does not reach, or not yet, would take connections and drop them. An
// agent without a mesh leaves the choice to the network, which publishes
// no other node's task then (netcfg/nft). Callers hold a.mu.
func (a *Agent) meshReaches(node string) bool {
	return a.cfg.Mesh == nil || a.meshInReach[node]
}

// serving says whether a task of this node is a backend of its ports. The
// rule is every node's (api.Task.Serving: meant to run, not on standby,
// running with an address, healthy if it has a health check), applied to
// what the agent sees itself rather than to the status the store holds,
// which lags: its container, its address, its last probe (healthNow).
// Callers hold a.mu.
func (a *Agent) serving(t *api.Task) bool {
	c, ok := a.containers[t.ID]
	if !ok || c.State != rt.StateRunning {
		return false
	}
	seen := *t
	seen.Status = api.TaskStatus{State: api.TaskRunning, Health: a.healthNow[t.ID]}
	if addr := a.addrs[t.ID]; addr.IsValid() {
		seen.Status.Addr = addr.String()
	}
	return seen.Serving()
}

// portsOf groups the backends' ports by what they take on the node
// (PortKey), sorted by port, protocol and address, each port's backends
// sorted, then leaves out the ports that clash with one before them.
func portsOf(backends []backend) (ports, dropped []Published) {
	byKey := map[api.PortKey]*Published{}
	for _, b := range backends {
		for _, p := range b.ports {
			k := p.Key()
			pub := byKey[k]
			if pub == nil {
				pub = &Published{Proto: k.Proto, HostAddr: k.HostAddr, Port: k.Port}
				byKey[k] = pub
			}
			pub.Ingress = pub.Ingress || p.Ingress()
			pub.Backends = append(pub.Backends, netip.AddrPortFrom(b.addr, p.Target))
		}
	}
	all := make([]Published, 0, len(byKey))
	for _, p := range byKey {
		slices.SortFunc(p.Backends, netip.AddrPort.Compare)
		p.Backends = slices.Compact(p.Backends)
		all = append(all, *p)
	}
	slices.SortFunc(all, func(x, y Published) int {
		// Every address (the zero Addr) first.
		return cmp.Or(cmp.Compare(x.Port, y.Port), cmp.Compare(x.Proto, y.Proto), x.HostAddr.Compare(y.HostAddr))
	})
	ports = all[:0:0]
	for _, p := range all {
		if len(ports) > 0 && portKey(ports[len(ports)-1]).Clashes(portKey(p)) {
			dropped = append(dropped, p)
			continue
		}
		ports = append(ports, p)
	}
	return ports, dropped
}

// portKey is what p takes on the node.
func portKey(p Published) api.PortKey {
	return api.PortKey{Proto: p.Proto, HostAddr: p.HostAddr, Port: p.Port}
}

// checkPorts refuses to start a task whose host-mode ports another program
// on the node holds. Ports Warren already publishes are its own.
//
// Ingress ports are not checked here: every node publishes them, not only
// those that run a task, so a program that holds one on this node is no
// reason to fail the task (it may as well run elsewhere). Each agent checks
// its own node when it first publishes an ingress port, and logs what it
// finds (checkIngress).
func (a *Agent) checkPorts(ctx context.Context, t *api.Task) error {
	if a.net == nil {
		return nil
	}
	a.mu.Lock()
	mine := map[api.PortKey]bool{}
	ports, _ := a.desiredPorts()
	for _, p := range ports {
		mine[portKey(p)] = true
	}
	a.mu.Unlock()
	for _, p := range t.Spec.Ports {
		k := p.Key()
		if mine[k] || p.Ingress() {
			continue
		}
		if err := a.net.CheckPort(ctx, Published{Proto: k.Proto, HostAddr: k.HostAddr, Port: k.Port}); err != nil {
			return fmt.Errorf("port %s is in use on this node (%v): stop what holds it, or publish another port", k, err)
		}
	}
	return nil
}

// checkIngress checks, on this node, each ingress port just published that
// was not at the last publish, and logs a warning for one another program
// holds: connections to that port from other hosts and from this node now
// go to the service, not to that program. Callers hold a.ports.mu.
func (a *Agent) checkIngress(ctx context.Context, ports []Published) {
	now := map[api.PortKey]bool{}
	for _, p := range ports {
		if !p.Ingress {
			continue
		}
		k := portKey(p)
		now[k] = true
		if a.ports.checked[k] {
			continue
		}
		if err := a.net.CheckPort(ctx, Published{Proto: p.Proto, HostAddr: p.HostAddr, Port: p.Port}); err != nil {
			a.log.Warn("an ingress port is held by another program on this node: connections to it from other hosts and from this node go to the service instead; stop that program, or publish the service on another port",
				"port", k, "err", err)
		}
	}
	a.ports.checked = now
}
