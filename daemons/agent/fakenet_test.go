package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/warren-edge/warren/daemons/api"
)

// FakeNetwork is a Network in memory, for the tests of this package and of
// agent_test: tasks get addresses of the node's subnet, published ports and
// port checks are recorded, and CheckPort fails for the ports in Held.
type FakeNetwork struct {
	mu        sync.Mutex
	Held      map[api.PortKey]bool
	nn        NodeNet
	addrs     map[string]netip.Addr
	last      netip.Addr
	checks    []api.PortKey
	publishes [][]Published
}

func (f *FakeNetwork) Setup(_ context.Context, nn NodeNet) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nn, f.addrs, f.last = nn, map[string]netip.Addr{}, nn.Subnet.Addr().Next()
	return nil
}

func (f *FakeNetwork) SetMesh(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nn.Mesh = name
	return nil
}

func (f *FakeNetwork) Attach(_ context.Context, id string) (string, netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addrs == nil {
		return "", netip.Addr{}, errors.New("fake network: Attach before Setup")
	}
	if a, ok := f.addrs[id]; ok {
		return "", a, nil
	}
	f.last = f.last.Next()
	f.addrs[id] = f.last
	return "", f.last, nil
}

func (f *FakeNetwork) Detach(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.addrs, id)
	return nil
}

func (f *FakeNetwork) Attached(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.addrs {
		ids = append(ids, id)
	}
	return ids, nil
}

func (f *FakeNetwork) Publish(_ context.Context, ports []Published) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.publishes = append(f.publishes, ports)
	return nil
}

func (f *FakeNetwork) CheckPort(_ context.Context, p Published) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := portKey(p)
	f.checks = append(f.checks, k)
	if f.Held[k] {
		return errors.New("another program listens on it")
	}
	return nil
}

func (f *FakeNetwork) Close() error { return nil }

// Ports renders the ports last published ("[]" before any).
func (f *FakeNetwork) Ports() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.publishes) == 0 {
		return "[]"
	}
	return fmt.Sprint(f.publishes[len(f.publishes)-1])
}

// NodeNet is what Setup was given (and SetMesh changed).
func (f *FakeNetwork) NodeNet() NodeNet {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nn
}
