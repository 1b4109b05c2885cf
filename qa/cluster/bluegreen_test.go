package cluster

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// TestRolloutBlueGreen (issue 13): a blue/green update of a 3-replica
// web service behind an ingress port, while a host on the LAN sends 50
// requests a second to the port on w1, each on a new connection:
//   - the new set starts on standby and gets no request before the
//     switch; then every request sent goes to it (one step); none fails;
//   - the old set stays running on standby, and a rollback switches back
//     to it in one step, with no task made;
//   - a release whose health check fails is never served: the update
//     rolls back on its own and its set stops.
func TestRolloutBlueGreen(t *testing.T) {
	wc := startWeb(t, 8*time.Minute, func(*Cluster) api.ServiceSpec {
		spec := WebService("web", 3, 8080, api.OrderBlueGreen)
		spec.UpdateConfig.KeepOld = api.Duration(3 * time.Minute)
		spec.UpdateConfig.FailureAction = api.FailureRollback
		return spec
	}, 3)
	ctx, m, spec := wc.ctx, wc.m, wc.spec
	firstSet := liveIDs(ctx, m, "web")

	// underLoad runs fn with the load on, and a second of load after it.
	underLoad := func(what string, fn func()) *LoadResult { return wc.underLoad(t, what, time.Second, time.Second, fn) }

	// 1. The switch to release 2.
	spec.Env = []string{"RELEASE=2"}
	load := underLoad("update", func() {
		if _, err := m.Client.UpdateService(ctx, "web", spec, 0); err != nil {
			t.Fatal(err)
		}
		waitUpdate(t, ctx, m, "web", api.UpdateCompleted, 3*time.Minute)
	})
	checkOneStep(t, "the switch to release 2", load.Answers(), "1 ", "2 ")
	secondSet := liveIDs(ctx, m, "web")
	standby := standbyIDs(ctx, m, "web")
	if !sameKeys(standby, firstSet) {
		t.Errorf("after the switch, standby tasks %v, want the first set %v", keys(standby), keys(firstSet))
	}

	// 2. A rollback switches back to the first set: no task made.
	load = underLoad("rollback", func() {
		if _, err := m.Client.RollbackService(ctx, "web"); err != nil {
			t.Fatal(err)
		}
		waitUpdate(t, ctx, m, "web", api.UpdateRolledBack, time.Minute)
	})
	checkOneStep(t, "the switch back to release 1", load.Answers(), "2 ", "1 ")
	if serving := servingIDs(ctx, m, "web"); !sameKeys(serving, firstSet) {
		t.Errorf("after the rollback, serving tasks %v, want the first set %v back", keys(serving), keys(firstSet))
	}
	// secondSet holds both sets: the second serving, the first on standby.
	if all := liveIDs(ctx, m, "web"); !sameKeys(all, secondSet) || !sameKeys(standbyIDs(ctx, m, "web"), minus(secondSet, firstSet)) {
		t.Errorf("after the rollback, live %v, standby %v: want release 2's set on standby, nothing else", keys(all), keys(standbyIDs(ctx, m, "web")))
	}

	// 3. A release whose check fails is never served; the update rolls
	// back on its own and its set stops.
	bad := spec
	bad.Env = []string{"RELEASE=3"}
	hc := *spec.HealthCheck
	hc.Path = "/missing"
	bad.HealthCheck = &hc
	load = underLoad("a failing release", func() {
		if _, err := m.Client.UpdateService(ctx, "web", bad, 0); err != nil {
			t.Fatal(err)
		}
		waitUpdate(t, ctx, m, "web", api.UpdateRolledBack, 3*time.Minute)
	})
	for body, n := range load.Bodies() {
		if !strings.HasPrefix(body, "1 ") {
			t.Errorf("%d answers %q during a failing blue/green update: want release 1 only", n, body)
		}
	}
	eventually(t, time.Minute, "the failed set stopped", func() error {
		ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: "web"})
		if err != nil {
			return err
		}
		for _, tk := range ts {
			if tk.Spec.Env[0] == "RELEASE=3" && tk.DesiredState == api.TaskRunning {
				return fmt.Errorf("%s (release 3) still wanted: %s", tk.Name(), tk.Status.State)
			}
		}
		return nil
	})
	if serving := servingIDs(ctx, m, "web"); !sameKeys(serving, firstSet) {
		t.Errorf("after the failed update, serving tasks %v, want the first set %v untouched", keys(serving), keys(firstSet))
	}
}

// checkOneStep checks that the answers (ordered by when they were sent)
// moved from one release to the other in one step: none of the new
// release before the switch, none of the old one sent well after it (a
// connection made just before the switch may still be answered by the old
// set, which keeps running).
func checkOneStep(t *testing.T, what string, answers []HTTPAnswer, from, to string) {
	t.Helper()
	first := -1
	for i, a := range answers {
		if strings.HasPrefix(a.Body, to) {
			first = i
			break
		}
	}
	if first < 0 || first == 0 {
		t.Errorf("%s: first answer of the new release at %d of %d: want answers of both", what, first, len(answers))
		return
	}
	switchAt := answers[first].Sent
	late := 0
	for _, a := range answers[first:] {
		if strings.HasPrefix(a.Body, from) && a.Sent.After(switchAt.Add(250*time.Millisecond)) {
			late++
		}
	}
	if late > 0 {
		t.Errorf("%s: %d answers of the old release sent more than 250 ms after the first of the new one (%s): not one step",
			what, late, switchAt.Format("15:04:05.000"))
	}
}

// webCluster is a cluster of one manager and two workers and a host
// "lan1", running a service whose port 8080 the LAN reaches on w1.
type webCluster struct {
	c         *Cluster
	ctx       context.Context
	m, w1, w2 *Host
	lan       *Host
	spec      api.ServiceSpec
	url       string // the port on w1
}

// startWeb starts a webCluster (its context ends after d), creates the
// service spec makes (it may name the hosts) and waits until n healthy
// tasks answer on w1's port.
func startWeb(t *testing.T, d time.Duration, spec func(c *Cluster) api.ServiceSpec, n int) *webCluster {
	t.Helper()
	c := startCluster(t, 1, 2)
	wc := &webCluster{c: c, ctx: ctxFor(t, d), m: c.Host("m1"), w1: c.Host("w1"), w2: c.Host("w2")}
	var err error
	if wc.lan, err = c.AddHost("lan1"); err != nil {
		t.Fatal(err)
	}
	wc.spec = spec(c)
	if _, err := wc.m.Client.CreateService(wc.ctx, wc.spec); err != nil {
		t.Fatal(err)
	}
	wc.url = fmt.Sprintf("http://%s:8080/", wc.w1.IP)
	waitAnswering(t, wc.ctx, wc.m, wc.lan, wc.url, wc.spec.Name, n)
	return wc
}

// underLoad sends the service's port on w1 50 requests a second from the
// LAN host for before, while fn runs, and for after; it logs the counts
// and fails t if any request failed during what, with the first failures
// and the changes to the service's tasks over the load.
func (wc *webCluster) underLoad(t *testing.T, what string, before, after time.Duration, fn func()) *LoadResult {
	t.Helper()
	tl := WatchTasks(wc.ctx, wc.m, wc.spec.Name, wc.c.Hosts()...)
	lctx, stop := context.WithCancel(wc.ctx)
	defer stop()
	begin := time.Now()
	load := HTTPLoad(lctx, wc.lan.DialContext, wc.url, 50)
	time.Sleep(before)
	fn()
	time.Sleep(after)
	stop()
	load.Wait()
	t.Logf("%s: %d requests, %d failed; answers: %v", what, load.Sent(), load.Failed(), load.Bodies())
	if load.Failed() > 0 {
		t.Errorf("%s: %d of %d requests failed; the first:%s\nthe tasks' changes, as m1's watch delivered them:\n%s",
			what, load.Failed(), load.Sent(), load.FailureLines("  "), tl.Between(begin, time.Now()))
	}
	return load
}

// waitAnswering waits until the service has n healthy tasks and the port
// answers steadily (every node publishes the others' tasks once its watch
// has them healthy).
func waitAnswering(t *testing.T, ctx context.Context, m, lan *Host, url, svc string, n int) {
	t.Helper()
	eventually(t, 2*time.Minute, fmt.Sprintf("%d healthy tasks answering", n), func() error {
		ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: svc})
		if err != nil {
			return err
		}
		healthy := 0
		for _, tk := range liveTasks(ts) {
			if tk.Status.Health == api.HealthHealthy {
				healthy++
			}
		}
		if healthy != n {
			return fmt.Errorf("%d healthy", healthy)
		}
		return answeredBy(ctx, lan, url, n, 500*time.Millisecond)
	})
}

// answeredBy sends url 50 requests a second from lan for d, and says
// whether all of them succeeded, answered by n tasks (distinct bodies).
func answeredBy(ctx context.Context, lan *Host, url string, n int, d time.Duration) error {
	lctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	l := HTTPLoad(lctx, lan.DialContext, url, 50)
	<-lctx.Done()
	if l.Wait(); l.Failed() > 0 || len(l.Bodies()) != n {
		return fmt.Errorf("%d of %d requests failed, answers %v; the first:%s", l.Failed(), l.Sent(), l.Bodies(), l.FailureLines("  "))
	}
	return nil
}

func tasksWhere(ctx context.Context, m *Host, svc string, keep func(*api.Task) bool) map[string]bool {
	ts, _ := m.Client.Tasks(ctx, client.TaskQuery{Service: svc})
	out := map[string]bool{}
	for i := range ts {
		if ts[i].DesiredState == api.TaskRunning && ts[i].Status.State == api.TaskRunning && keep(&ts[i]) {
			out[ts[i].ID] = true
		}
	}
	return out
}

func standbyIDs(ctx context.Context, m *Host, svc string) map[string]bool {
	return tasksWhere(ctx, m, svc, func(t *api.Task) bool { return t.Standby && !t.KeepUntil.IsZero() })
}

func servingIDs(ctx context.Context, m *Host, svc string) map[string]bool {
	return tasksWhere(ctx, m, svc, func(t *api.Task) bool { return !t.Standby })
}

func sameKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func minus(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		if !b[k] {
			out[k] = true
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
