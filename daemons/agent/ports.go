package agent

import (
	"context"
	"fmt"
	"net/netip"
	"sort"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
)

// publishPorts makes the node's published ports match its running tasks.
func (a *Agent) publishPorts(ctx context.Context) {
	if a.net == nil {
		return
	}
	a.mu.Lock()
	ports := a.desiredPorts()
	a.mu.Unlock()
	key := fmt.Sprint(ports)
	if key == a.published {
		return
	}
	if err := a.net.Publish(ctx, ports); err != nil {
		a.log.Error("publish ports", "err", err)
		return
	}
	a.published = key
}

// desiredPorts lists published ports and their backends: the addresses of
// the running tasks of each service. Callers hold a.mu.
func (a *Agent) desiredPorts() []Published {
	byKey := map[api.PortKey]*Published{}
	for id, t := range a.tasks {
		if t.DesiredState != api.TaskRunning || len(t.Spec.Ports) == 0 {
			continue
		}
		c, ok := a.containers[id]
		addr := a.addrs[id]
		if !ok || c.State != rt.StateRunning || !addr.IsValid() {
			continue
		}
		for _, p := range t.Spec.Ports {
			k := p.Key()
			pub := byKey[k]
			if pub == nil {
				pub = &Published{Proto: k.Proto, HostAddr: k.HostAddr, Port: k.Port}
				byKey[k] = pub
			}
			pub.Backends = append(pub.Backends, netip.AddrPortFrom(addr, p.Target))
		}
	}
	out := make([]Published, 0, len(byKey))
	for _, p := range byKey {
		sort.Slice(p.Backends, func(i, j int) bool { return p.Backends[i].Compare(p.Backends[j]) < 0 })
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Port != out[j].Port {
			return out[i].Port < out[j].Port
		}
		if out[i].Proto != out[j].Proto {
			return out[i].Proto < out[j].Proto
		}
		return out[i].HostAddr.Less(out[j].HostAddr)
	})
	return out
}

// checkPorts refuses to start a task whose published ports another program
// on the node holds. Ports Warren already publishes are its own.
func (a *Agent) checkPorts(ctx context.Context, t *api.Task) error {
	if a.net == nil {
		return nil
	}
	a.mu.Lock()
	mine := map[api.PortKey]bool{}
	for _, p := range a.desiredPorts() {
		mine[api.PortKey{Proto: p.Proto, HostAddr: p.HostAddr, Port: p.Port}] = true
	}
	a.mu.Unlock()
	for _, p := range t.Spec.Ports {
		k := p.Key()
		if mine[k] {
			continue
		}
		if err := a.net.CheckPort(ctx, Published{Proto: k.Proto, HostAddr: k.HostAddr, Port: k.Port}); err != nil {
			return fmt.Errorf("port %s is in use on this node (%v): stop what holds it, or publish another port", k, err)
		}
	}
	return nil
}
