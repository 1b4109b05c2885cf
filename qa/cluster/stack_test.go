package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// stackSpecs are the services of stack name on the workers, as a stack
// deploy sends them (POST /v1/deployments): web (with a health check),
// api, db and cache, those args gives a process for. Each rolls back on
// failure after a 1 s monitor and is not restarted when its process
// exits.
//
// Updates start the new task first. Stop-first, a slot's new task is
// created in its service's shim group just as that shim exits with the
// old task: in one of the first four runs, a task of the rollback was
// rejected with "failed to create shim task: ttrpc: closed" and the
// rollback paused (an agent race this test is not about).
func stackSpecs(name string, args map[string][]string) []api.ServiceSpec {
	var out []api.ServiceSpec
	for _, svc := range []string{"web", "api", "db", "cache"} {
		if args[svc] == nil {
			continue
		}
		sp := onWorkers(name+"-"+svc, 1)
		sp.Args = args[svc]
		sp.UpdateConfig = api.UpdateConfig{FailureAction: api.FailureRollback, Monitor: api.Duration(time.Second), Order: api.OrderStartFirst}
		sp.RestartPolicy = api.RestartPolicy{Condition: api.RestartNone}
		if svc == "web" {
			sp.HealthCheck = &api.HealthCheck{Type: api.HealthExec, Command: []string{"true"},
				Interval: api.Duration(time.Second), Timeout: api.Duration(time.Second), Retries: 2}
		}
		out = append(out, sp)
	}
	return out
}

// sleeperN is a sleeper that differs from sleeper (another release).
func sleeperN(n int) []string {
	return []string{"sh", "-c", fmt.Sprintf("trap 'exit 0' TERM; sleep %d & wait", 100000+n)}
}

// exits is a release whose process exits with code 3 soon after it starts.
var exits = []string{"sh", "-c", "sleep 0.3; exit 3"}

// lastEventSeq is the seq of the cluster's newest event.
func lastEventSeq(t *testing.T, ctx context.Context, m *Host) uint64 {
	t.Helper()
	evs := eventsSince(t, ctx, m, 0)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

// eventsSince reads the cluster's events after seq.
func eventsSince(t *testing.T, ctx context.Context, m *Host, seq uint64) []api.ClusterEvent {
	t.Helper()
	s, err := m.Client.Events(ctx, client.EventQuery{Since: seq})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out []api.ClusterEvent
	for {
		ev, _, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
}

// eventsOf is the events of type typ, by service name.
func eventsOf(evs []api.ClusterEvent, typ string) map[string]api.ClusterEvent {
	out := map[string]api.ClusterEvent{}
	for _, e := range evs {
		if e.Type == typ {
			out[e.Service] = e
		}
	}
	return out
}

// TestStackRollbackAllOrNothing: a stack of three services is deployed
// and runs; a new version changes all three, and one of them exits. Its
// update fails and rolls back, and the two others roll back with it:
// all three end rolled back, their tasks running the first spec, and the
// events say so for each, naming the service that failed. The version
// also adds a fourth service, cache: it has nothing to roll back to, and
// its update pauses, naming the failed service.
func TestStackRollbackAllOrNothing(t *testing.T) {
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 4*time.Minute)
	m := c.Host("m1")
	names := []string{"shop-web", "shop-api", "shop-db"}

	v1 := stackSpecs("shop", map[string][]string{"web": sleeper, "api": sleeper, "db": sleeper})
	d, err := m.Client.Deploy(ctx, api.DeploymentRequest{Name: "shop", Services: v1})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range d.Services {
		if it.Action != api.DeployCreated {
			t.Fatalf("first deploy: %s %s; want every service created", it.Name, it.Action)
		}
	}
	first := map[string]uint64{}
	for _, n := range names {
		first[n] = waitUpdate(t, ctx, m, n, api.UpdateCompleted, time.Minute).SpecVersion
		eventually(t, time.Minute, n+" running v1", func() error { return runningOnSpec(ctx, m, n, 1, sleeper) })
	}
	seq := lastEventSeq(t, ctx, m)

	v2 := stackSpecs("shop", map[string][]string{"web": sleeperN(1), "api": exits, "db": sleeperN(2), "cache": sleeper})
	d2, err := m.Client.Deploy(ctx, api.DeploymentRequest{Name: "shop", Services: v2})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range d2.Services {
		want := api.DeployUpdated
		if it.Name == "shop-cache" {
			want = api.DeployCreated
		}
		if it.Action != want {
			t.Fatalf("second deploy: %s %s; want %s", it.Name, it.Action, want)
		}
	}
	for _, n := range names {
		s := waitUpdate(t, ctx, m, n, api.UpdateRolledBack, 2*time.Minute)
		if !slices.Equal(s.Spec.Args, sleeper) || s.PreviousSpec != nil || s.UpdateStatus.Deployment != d2.ID ||
			!slices.Contains(append([]uint64{s.SpecVersion}, s.SameAsVersions...), first[n]) {
			t.Errorf("%s after the failed deploy: args %q, previous %v, status %+v, version %d same as %v; want back on v1 (version %d) in deployment %s",
				n, s.Spec.Args, s.PreviousSpec, s.UpdateStatus, s.SpecVersion, s.SameAsVersions, first[n], d2.ID)
		}
		eventually(t, time.Minute, n+" running v1 again", func() error { return runningOnSpec(ctx, m, n, 1, sleeper) })
	}

	cache := waitUpdate(t, ctx, m, "shop-cache", api.UpdatePaused, time.Minute)
	wantCache := "update paused: service shop-api of deployment " + d2.ID + " failed: 1 of 1 tasks of the new spec failed"
	if st := cache.UpdateStatus; !strings.HasPrefix(st.Message, wantCache) || !strings.Contains(st.Message, "warrenctl stack rm shop") {
		t.Errorf("shop-cache, created by the failed deploy: status %+v; want paused, saying %q and what to do", st, wantCache)
	}

	evs := eventsSince(t, ctx, m, seq)
	if e, ok := eventsOf(evs, api.EventUpdatePaused)["shop-cache"]; !ok || !strings.HasPrefix(e.Message, wantCache) {
		t.Errorf("shop-cache: update.paused event %+v (found %v); want one saying %q", e, ok, wantCache)
	}
	started, done := eventsOf(evs, api.EventRollbackStart), eventsOf(evs, api.EventRolledBack)
	for _, n := range names {
		e, ok := started[n]
		want := "service shop-api of deployment " + d2.ID + " failed: 1 of 1 tasks of the new spec failed"
		if n == "shop-api" {
			want = "rolling back: 1 of 1 tasks of the new spec failed"
		}
		if !ok || !strings.Contains(e.Message, want) || !strings.Contains(e.Message, "automatically") {
			t.Errorf("%s: rollback-started event %+v (found %v); want one saying %q, automatically", n, e, ok, want)
		}
		if _, ok := done[n]; !ok {
			t.Errorf("%s: no rolled-back event", n)
		}
	}
	if t.Failed() {
		for _, e := range evs {
			t.Logf("event %d %s %s %s", e.Seq, e.Type, e.Service, e.Message)
		}
	}
}

// TestStackFirstDeployFails: the first deploy of a stack, one of whose
// services exits. Nothing has a spec to roll back to: the failing
// service's update pauses, saying the deployment failed because of it and
// what to do, and the stack's other services pause naming it, their
// tasks left running. Each gets an update.paused event. Deployed again
// with api fixed, api is updated and the others resume: all complete.
func TestStackFirstDeployFails(t *testing.T) {
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 3*time.Minute)
	m := c.Host("m1")
	seq := lastEventSeq(t, ctx, m)
	d, err := m.Client.Deploy(ctx, api.DeploymentRequest{Name: "first",
		Services: stackSpecs("first", map[string][]string{"web": sleeper, "api": exits, "db": sleeper})})
	if err != nil {
		t.Fatal(err)
	}
	msgs := map[string]string{
		"first-api": "update paused: deployment " + d.ID + " failed because of this service: 1 of 1 tasks of the new spec failed",
		"first-web": "update paused: service first-api of deployment " + d.ID + " failed: 1 of 1 tasks",
		"first-db":  "update paused: service first-api of deployment " + d.ID + " failed: 1 of 1 tasks",
	}
	for n, want := range msgs {
		s := waitUpdate(t, ctx, m, n, api.UpdatePaused, 2*time.Minute)
		args := sleeper
		if n == "first-api" {
			args = exits
		}
		if st := s.UpdateStatus; !strings.HasPrefix(st.Message, want) || !strings.Contains(st.Message, "warrenctl stack rm first") ||
			st.Deployment != d.ID || !slices.Equal(s.Spec.Args, args) {
			t.Errorf("%s after the failed first deploy: args %q, status %+v; want its spec kept, paused, saying %q and what to do", n, s.Spec.Args, st, want)
		}
	}
	for _, n := range []string{"first-web", "first-db"} {
		eventually(t, time.Minute, n+" still running", func() error { return runningOnSpec(ctx, m, n, 1, sleeper) })
	}
	paused := eventsOf(eventsSince(t, ctx, m, seq), api.EventUpdatePaused)
	for n, want := range msgs {
		if e, ok := paused[n]; !ok || !strings.HasPrefix(e.Message, want) {
			t.Errorf("%s: update.paused event %+v (found %v); want one saying %q", n, e, ok, want)
		}
	}
	// Nothing was rolled back: there was nothing to roll back to.
	if rb := eventsOf(eventsSince(t, ctx, m, seq), api.EventRollbackStart); len(rb) != 0 {
		t.Errorf("rollback events after a failed first deploy: %v; want none", rb)
	}

	// As the pause says: fix the stack and deploy again. api is updated,
	// web and db (unchanged) resume, and all three complete.
	d2, err := m.Client.Deploy(ctx, api.DeploymentRequest{Name: "first",
		Services: stackSpecs("first", map[string][]string{"web": sleeper, "api": sleeper, "db": sleeper})})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range d2.Services {
		want := api.DeployResumed
		if it.Name == "first-api" {
			want = api.DeployUpdated
		}
		if it.Action != want {
			t.Errorf("deploy after the fix: %s %s; want %s", it.Name, it.Action, want)
		}
	}
	for n := range msgs {
		if s := waitUpdate(t, ctx, m, n, api.UpdateCompleted, time.Minute); s.UpdateStatus.Deployment != d2.ID {
			t.Errorf("%s after the fixed deploy: status %+v; want completed in deployment %s", n, s.UpdateStatus, d2.ID)
		}
		eventually(t, time.Minute, n+" running", func() error { return runningOnSpec(ctx, m, n, 1, sleeper) })
	}
}
