package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// benchManager measures issue 2's figures on one manager (no agent: tasks
// stay pending, which is what Swarm's figure measured too — API writes).
func benchManager(r *report) error {
	if err := benchFirstWrite(r); err != nil {
		return err
	}
	if err := benchNodePort(r); err != nil {
		return err
	}
	if err := benchCreates(r, "bbolt", 8, 32); err != nil {
		return err
	}
	if err := benchCreates(r, "wal", 8, 32); err != nil {
		return err
	}
	p, c, err := startManager()
	if err != nil {
		return err
	}
	defer p.stop()
	ctx := context.Background()
	time.Sleep(500 * time.Millisecond)
	r.add("manager resident memory, idle", fmt.Sprintf("%.1f MB", rssMB(p.cmd.Process.Pid)), "< 48 MB", "dockerd 85 MB + containerd 37 MB")

	// Watch delivery: a watcher sees each create; time from the write's
	// acknowledgement to the event... measured from the request start.
	w, err := c.Watch(ctx, client.WatchQuery{Kinds: []string{api.KindService}})
	if err != nil {
		return err
	}
	defer w.Close()
	seen := make(chan string, 4096)
	go func() {
		for {
			ev, err := w.Next()
			if err != nil {
				close(seen)
				return
			}
			if ev.Op == api.OpCreate {
				var s api.Service
				json.Unmarshal(ev.Object, &s)
				seen <- s.Spec.Name
			}
		}
	}()

	// Service creates: 1,000 services, concurrency 8.
	const n = 1000
	el, err := createMany(ctx, c, "svc", n, 8, 1)
	if err != nil {
		return err
	}
	r.add("service creates/s through the API (1,000, concurrency 8, 1 manager, Raft log in wal, the default; a watcher attached)", fmt.Sprintf("%.0f/s", n/el.Seconds()), "≥ 3,000/s", "Swarm 1,637/s; Nomad 226/s")
	// Drain the creates from the watch.
	for i := 0; i < n; i++ {
		<-seen
	}

	// GET one service on the unix socket, once the reconciler has placed
	// (or failed to place) the new services' tasks.
	settle(ctx, c, n)
	svcs, err := c.Services(ctx, client.ReadOptions{})
	if err != nil {
		return err
	}
	var lat []time.Duration
	for i := 0; i < 5000; i++ {
		id := svcs[i%len(svcs)].ID
		t0 := time.Now()
		if _, err := c.Service(ctx, id, client.ReadOptions{}); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	p50, p99 := percentiles(lat)
	r.add("GET /v1/services/{id} on the unix socket, one at a time", "p50 "+ms(p50)+", p99 "+ms(p99), "p99 < 0.5 ms", "Swarm p50 0.30, p99 0.54 ms")

	// Watch delivery: write start to event seen, one write at a time.
	lat = lat[:0]
	for i := 0; i < 300; i++ {
		name := fmt.Sprintf("watch-%d", i)
		t0 := time.Now()
		if _, err := c.CreateService(ctx, api.ServiceSpec{Name: name, Image: "busybox"}); err != nil {
			return err
		}
		for got := range seen {
			if got == name {
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	p50, p99 = percentiles(lat)
	r.add("watch delivery, write to event seen (incl. commit), one write at a time", "p50 "+ms(p50)+", p99 "+ms(p99), "", "")

	time.Sleep(2 * time.Second) // let the reconciler settle
	r.add("manager resident memory, 1,300 services", fmt.Sprintf("%.1f MB", rssMB(p.cmd.Process.Pid)), "< 48 MB", "dockerd 242 MB with 300 tasks")
	return nil
}

// settle waits until every service's task exists, so that reads are not
// measured against the reconciler's catch-up.
func settle(ctx context.Context, c *client.Client, n int) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ts, err := c.Tasks(ctx, client.TaskQuery{}); err == nil && len(ts) >= n {
			time.Sleep(500 * time.Millisecond)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// benchCreates measures the create rate on a fresh manager with a Raft log
// store, at each concurrency.
func benchCreates(r *report, store string, concs ...int) error {
	p, c, err := startManager("--raft-log-store", store)
	if err != nil {
		return err
	}
	defer p.stop()
	ctx := context.Background()
	time.Sleep(300 * time.Millisecond)
	for _, conc := range concs {
		const n = 1000
		el, err := createMany(ctx, c, fmt.Sprintf("svc%d", conc), n, conc, 1)
		if err != nil {
			return fmt.Errorf("--raft-log-store %s: %w", store, err)
		}
		r.add(fmt.Sprintf("service creates/s, 1 manager, Raft log in %s (--raft-log-store %s), concurrency %d", store, store, conc),
			fmt.Sprintf("%.0f/s", n/el.Seconds()), "≥ 3,000/s", "")
	}
	return nil
}

// createMany creates n services named prefix-1… of the given replicas
// through the API, conc at a time, and returns how long it took.
// Each mod changes the spec before it is sent.
func createMany(ctx context.Context, c *client.Client, prefix string, n, conc int, replicas uint64, mods ...func(*api.ServiceSpec)) (time.Duration, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed int
	var first error
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				spec := api.ServiceSpec{Name: fmt.Sprintf("%s-%d", prefix, i), Image: "localhost/busybox", Replicas: replicas, Args: []string{"sleep", "1000"}}
				for _, m := range mods {
					m(&spec)
				}
				if _, err := c.CreateService(ctx, spec); err != nil {
					mu.Lock()
					if failed++; first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if failed > 0 {
		return 0, fmt.Errorf("%d creates failed, first: %v", failed, first)
	}
	return time.Since(start), nil
}
