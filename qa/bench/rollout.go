package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/qa/cluster"
)

// benchRollout measures rolling updates (issue 13) on a real cluster (qa/
// cluster: one manager, two workers with their own containerd):
//
//   - requests that fail during a rolling update of a 4-replica web
//     service under steady load through its published ingress port (a new
//     connection per request, from another host on the LAN), start-first
//     and stop-first, and during a blue/green switch;
//   - a rolling update of 20 tasks, parallelism 2: from the update call
//     until the update is completed, with the default monitor and with 1 s;
//   - a release that exits: from the failed task's status until the
//     automatic rollback starts, and until it is rolled back.
func benchRollout(r *report) error {
	if err := cluster.Available(true); err != nil {
		return err
	}
	bin, err := filepath.Abs(binPath("warren"))
	if err != nil {
		return err
	}
	c, err := cluster.New(cluster.Config{Bin: bin})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if err := c.Start(ctx, 1, 2); err != nil {
		return err
	}
	lan, err := c.AddHost("lan1")
	if err != nil {
		return err
	}
	for i, order := range []string{api.OrderStartFirst, api.OrderStopFirst, api.OrderBlueGreen} {
		if err := benchRolloutLoad(ctx, r, c, lan, order, uint16(8081+i)); err != nil {
			return fmt.Errorf("%s under load: %w", order, err)
		}
	}
	if err := benchRollout20(ctx, r, c); err != nil {
		return err
	}
	return benchRollback(ctx, r, c)
}

// benchRolloutLoad updates a 4-replica web service (a new env var) with
// parallelism 1 and order while 50 requests a second go to its published
// port on w1, from a host on the LAN.
func benchRolloutLoad(ctx context.Context, r *report, c *cluster.Cluster, lan *cluster.Host, order string, port uint16) error {
	m, w1 := c.Host("m1"), c.Host("w1")
	name := "web-" + order
	spec := cluster.WebService(name, 4, port, order)
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		return err
	}
	if err := waitHealthy(ctx, m, name, 4); err != nil {
		return err
	}
	url := fmt.Sprintf("http://%s:%d/", w1.IP, port)
	// Every backend published on w1 (its own and w2's, over the mesh).
	if err := waitAnswers(ctx, lan, url); err != nil {
		return err
	}
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	tl := cluster.WatchTasks(tctx, m, name, c.Hosts()...)
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	const rate = 50
	begin := time.Now()
	load := cluster.HTTPLoad(lctx, lan.DialContext, url, rate)
	time.Sleep(2 * time.Second)
	spec.Env = []string{"RELEASE=2"}
	start := time.Now()
	if _, err := m.Client.UpdateService(ctx, name, spec, 0); err != nil {
		return err
	}
	if _, err := waitUpdateState(ctx, m, name, api.UpdateCompleted, 3*time.Minute); err != nil {
		return err
	}
	took := time.Since(start)
	time.Sleep(2 * time.Second)
	lcancel()
	load.Wait()
	end := time.Now()
	sent, failed := load.Sent(), load.Failed()
	// Which releases and tasks answered: "RELEASE hostname".
	releases := map[string]int{}
	for body, k := range load.Bodies() {
		rel, _, _ := strings.Cut(body, " ")
		releases[rel] += k
	}
	what := fmt.Sprintf("a rolling update, %s, parallelism 1", order)
	if order == api.OrderBlueGreen {
		what = "a blue/green switch (the whole set at once)"
	}
	r.add(fmt.Sprintf("failed requests during %s, 4 replicas, %d req/s (new connection each, LAN → w1's ingress port)", what, rate),
		fmt.Sprintf("%d of %d (update took %.1f s; answers: %d from release 1, %d from release 2, by %d tasks)",
			failed, sent, took.Seconds(), releases["1"], releases["2"], len(load.Bodies())), "0", "")
	if failed > 0 {
		fmt.Fprintf(os.Stderr, "  %s: load from %s, update at %s, completed at %s, load stopped at %s; first failures:\n",
			order, begin.Format("15:04:05.000"), start.Format("15:04:05.000"), start.Add(took).Format("15:04:05.000"), end.Format("15:04:05.000"))
		fmt.Fprintf(os.Stderr, "%s\n", strings.TrimPrefix(load.FailureLines("    "), "\n"))
		fmt.Fprintf(os.Stderr, "  the tasks' changes as m1's watch delivered them:\n%s", tl.Between(begin, end))
	}
	return m.Client.RemoveService(ctx, name, 0)
}

// waitHealthy waits until n tasks of service run, healthy.
func waitHealthy(ctx context.Context, m *cluster.Host, service string, n int) error {
	var last string
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: service})
		if err != nil {
			last = err.Error()
			continue
		}
		k := 0
		for _, t := range ts {
			if t.DesiredState == api.TaskRunning && t.Status.State == api.TaskRunning && (t.Spec.HealthCheck == nil || t.Status.Health == api.HealthHealthy) {
				k++
			}
		}
		if k == n {
			return nil
		}
		last = fmt.Sprintf("%d of %d", k, n)
	}
	return fmt.Errorf("%s: not %d tasks running and healthy after 2 minutes: %s", service, n, last)
}

// waitAnswers waits until 20 requests in a row to url from h succeed.
func waitAnswers(ctx context.Context, h *cluster.Host, url string) error {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		lctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
		l := cluster.HTTPLoad(lctx, h.DialContext, url, 50)
		<-lctx.Done()
		cancel()
		if l.Wait(); l.Failed() == 0 && l.Sent() >= 15 {
			return nil
		}
	}
	return fmt.Errorf("%s does not answer steadily after a minute", url)
}

// waitUpdateState polls the service every 10 ms until its update is in
// state; an update that pauses or rolls back instead is an error.
func waitUpdateState(ctx context.Context, m *cluster.Host, service, state string, d time.Duration) (*api.Service, error) {
	var last *api.UpdateStatus
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		s, err := m.Client.Service(ctx, service, client.ReadOptions{})
		if err != nil {
			continue
		}
		if st := s.UpdateStatus; st != nil {
			last = st
			if st.State == state {
				return s, nil
			}
			if st.State == api.UpdatePaused || (state == api.UpdateCompleted && st.State == api.UpdateRolledBack) {
				return nil, fmt.Errorf("%s: update %s: %s", service, st.State, st.Message)
			}
		}
	}
	return nil, fmt.Errorf("%s: update not %s after %s: %+v", service, state, d, last)
}

// benchRollout20 times a rolling update of 20 sleepers, parallelism 2,
// with the default monitor, then with a 1 s monitor (no health check).
func benchRollout20(ctx context.Context, r *report, c *cluster.Cluster) error {
	m := c.Host("m1")
	const name, n = "roll20", 20
	two := uint64(2)
	spec := api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: n,
		Args:            []string{"sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"},
		Env:             []string{"RELEASE=1"},
		Placement:       api.Placement{Constraints: []string{"node.role==worker"}},
		StopGracePeriod: api.Duration(5 * time.Second),
		UpdateConfig:    api.UpdateConfig{Parallelism: &two}}
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		return err
	}
	if err := waitHealthy(ctx, m, name, n); err != nil {
		return err
	}
	for i, monitor := range []time.Duration{0, time.Second} {
		spec.Env = []string{fmt.Sprintf("RELEASE=%d", i+2)}
		spec.UpdateConfig.Monitor = api.Duration(monitor)
		what := "default monitor (5 s)"
		if monitor > 0 {
			what = fmt.Sprintf("monitor %s", monitor)
		}
		start := time.Now()
		if _, err := m.Client.UpdateService(ctx, name, spec, 0); err != nil {
			return err
		}
		if _, err := waitUpdateState(ctx, m, name, api.UpdateCompleted, 5*time.Minute); err != nil {
			return err
		}
		took := time.Since(start)
		r.add(fmt.Sprintf("rolling update of %d tasks, parallelism 2, %s: update → completed", n, what),
			fmt.Sprintf("%.1f s (%.2f s per batch of 2)", took.Seconds(), took.Seconds()/(n/2)), "", "stop-first, no health check")
	}
	return m.Client.RemoveService(ctx, name, 0)
}

// benchRollback updates a 4-replica service to a release that exits with
// code 3 after 0.3 s (failure action rollback, monitor 1 s) and times,
// from the failed task's status (manager clock: the same machine), the
// update turning rolling-back and rolled-back, as a watch of m1 delivers
// the service.
func benchRollback(ctx context.Context, r *report, c *cluster.Cluster) error {
	m := c.Host("m1")
	const runs = 5
	var toRollback, toRolledBack []time.Duration
	for i := range runs {
		a, b, err := rollbackOnce(ctx, m, fmt.Sprintf("fail-%d", i))
		if err != nil {
			return err
		}
		toRollback, toRolledBack = append(toRollback, a), append(toRolledBack, b)
	}
	p50 := func(ds []time.Duration) string {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		var all []string
		for _, d := range ds {
			all = append(all, fmt.Sprintf("%.0f", float64(d)/1e6))
		}
		return fmt.Sprintf("p50 %s (runs: %s ms)", ms(s[len(s)/2]), strings.Join(all, ", "))
	}
	r.add(fmt.Sprintf("a release that exits (code 3 after 0.3 s): task failed → rollback starts (monitor 1 s, %d runs)", runs), p50(toRollback), "", "")
	r.add(fmt.Sprintf("the same: task failed → rolled back, 4 replicas (%d runs)", runs), p50(toRolledBack), "", "")
	return nil
}

func rollbackOnce(ctx context.Context, m *cluster.Host, name string) (toRollback, toRolledBack time.Duration, err error) {
	spec := api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: 4,
		Args:            []string{"sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"},
		Placement:       api.Placement{Constraints: []string{"node.role==worker"}},
		StopGracePeriod: api.Duration(5 * time.Second),
		RestartPolicy:   api.RestartPolicy{Condition: api.RestartNone},
		UpdateConfig:    api.UpdateConfig{FailureAction: api.FailureRollback, Monitor: api.Duration(time.Second)}}
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		return 0, 0, err
	}
	if err := waitHealthy(ctx, m, name, 4); err != nil {
		return 0, 0, err
	}
	// The service's update states, when m1's watch delivered them.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	var mu sync.Mutex
	seen := map[string]time.Time{}
	f := client.NewFollower(client.FollowOptions{Client: m.Client, Logger: slog.New(slog.DiscardHandler), Query: client.WatchQuery{Kinds: []string{api.KindService}}})
	go f.Run(wctx, func(b api.WatchBatch) error {
		now := time.Now()
		for _, ev := range b.Events {
			var s api.Service
			if ev.Op == api.OpDelete || json.Unmarshal(ev.Object, &s) != nil || s.Spec.Name != name || s.UpdateStatus == nil {
				continue
			}
			mu.Lock()
			if _, ok := seen[s.UpdateStatus.State]; !ok {
				seen[s.UpdateStatus.State] = now
			}
			mu.Unlock()
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // the watch's first sync
	bad := spec
	bad.Args = []string{"sh", "-c", "sleep 0.3; exit 3"}
	if _, err := m.Client.UpdateService(ctx, name, bad, 0); err != nil {
		return 0, 0, err
	}
	if _, err := waitUpdateState(ctx, m, name, api.UpdateRolledBack, 2*time.Minute); err != nil {
		return 0, 0, err
	}
	ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: name})
	if err != nil {
		return 0, 0, err
	}
	var failedAt time.Time
	for _, t := range ts {
		if t.Status.State == api.TaskFailed && (failedAt.IsZero() || t.Status.Timestamp.Before(failedAt)) {
			failedAt = t.Status.Timestamp
		}
	}
	// The watch may lag the poll that saw rolled-back.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		_, ok := seen[api.UpdateRolledBack]
		mu.Unlock()
		if ok {
			break
		}
	}
	mu.Lock()
	rb, rbOK := seen[api.UpdateRollingBack]
	done, doneOK := seen[api.UpdateRolledBack]
	mu.Unlock()
	if failedAt.IsZero() || !rbOK || !doneOK {
		return 0, 0, fmt.Errorf("%s: no failed task (%v), or the watch saw no rolling-back (%v) or rolled-back (%v)", name, failedAt, rbOK, doneOK)
	}
	if err := m.Client.RemoveService(ctx, name, 0); err != nil {
		return 0, 0, err
	}
	return rb.Sub(failedAt), done.Sub(failedAt), nil
}
