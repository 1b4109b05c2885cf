package agent_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/agent"
	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/agent/runtime/fake"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

// slowNet is a FakeNetwork whose publishes take a while, as an nftables
// transaction does.
type slowNet struct {
	*agent.FakeNetwork
	delay time.Duration
}

func (n *slowNet) Publish(ctx context.Context, ports []agent.Published) error {
	time.Sleep(n.delay)
	return n.FakeNetwork.Publish(ctx, ports)
}

// stopSpy is a fake runtime that records, for each container it is told
// to stop, the ports the node published at that moment.
type stopSpy struct {
	*fake.Runtime
	net *slowNet
	mu  sync.Mutex
	at  map[string]string // task ID → the published ports when told to stop
}

func (s *stopSpy) Stop(ctx context.Context, id string, grace time.Duration) (runtime.Exit, error) {
	s.mu.Lock()
	if _, ok := s.at[id]; !ok {
		s.at[id] = s.net.Ports()
	}
	s.mu.Unlock()
	return s.Runtime.Stop(ctx, id, grace)
}

func (s *stopSpy) portsAtStop(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.at[id]
	return p, ok
}

// TestTaskLeavesPortsBeforeStop: a task the node stops, because the
// managers asked or because it turned unhealthy, no longer gets
// connections when its container is told to stop: its process may be gone
// the moment after, and a connection sent to it then is refused.
func TestTaskLeavesPortsBeforeStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := managertest.StartCluster(t, 1, managertest.Options{})
	mgr := cl.Managers[0]
	net := &slowNet{FakeNetwork: &agent.FakeNetwork{}, delay: 50 * time.Millisecond}
	spy := &stopSpy{Runtime: fake.New(), net: net, at: map[string]string{}}
	spy.AddImage("localhost/busybox:latest")
	var mu sync.Mutex
	failing := map[string]bool{}
	spy.SetExec(func(id string, _ []string) (int, []byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if failing[id] {
			return 1, []byte("down"), nil
		}
		return 0, []byte("ok"), nil
	})
	runAgentOn(t, ctx, mgr.Client, net, spy, "mgr1")

	s := svc("web", 1)
	s.Ports = []api.PortConfig{{Target: 80, Published: 8080}}
	s.HealthCheck = &api.HealthCheck{Type: api.HealthExec, Command: []string{"check"}, Interval: api.Duration(100 * time.Millisecond), Retries: 2}
	if _, err := mgr.Client.CreateService(ctx, s); err != nil {
		t.Fatal(err)
	}
	// published waits for the service's one healthy task to be the port's
	// backend, and returns it.
	published := func(not string) api.Task {
		t.Helper()
		for ctx.Err() == nil {
			ts, err := mgr.Client.Tasks(ctx, client.TaskQuery{Service: "web"})
			if err == nil {
				for _, tk := range running(ts) {
					if tk.ID != not && tk.Status.Health == api.HealthHealthy && strings.Contains(net.Ports(), backend(tk)) {
						return tk
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no healthy task of web became the backend of port 8080; the node publishes %s", net.Ports())
		return api.Task{}
	}
	stopped := func(tk api.Task, why string) {
		t.Helper()
		for ctx.Err() == nil {
			if ports, ok := spy.portsAtStop(tk.ID); ok {
				if strings.Contains(ports, backend(tk)) {
					t.Errorf("%s: its container was told to stop while the node still sent it connections: %s", why, ports)
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s: the container of %s was never stopped", why, tk.ID)
	}

	first := published("")
	mu.Lock()
	failing[first.ID] = true
	mu.Unlock()
	stopped(first, "a task turned unhealthy")

	second := published(first.ID)
	s.Replicas = 0
	if _, err := mgr.Client.UpdateService(ctx, "web", s, 0); err != nil {
		t.Fatal(err)
	}
	stopped(second, "a task the managers stop (service scaled to 0)")
}

// backend is how a published port lists task tk's port 80.
func backend(tk api.Task) string {
	return fmt.Sprint(netip.AddrPortFrom(netip.MustParseAddr(tk.Status.Addr), 80))
}
