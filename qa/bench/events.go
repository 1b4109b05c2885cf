package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/store"
)

// benchEvents measures the cluster events (issue 13): what deriving them
// adds to the FSM's apply, and how fast they are read back.
func benchEvents(r *report) error {
	on, err := eventApplyCost(false)
	if err != nil {
		return err
	}
	off, err := eventApplyCost(true)
	if err != nil {
		return err
	}
	r.add("FSM apply of a status report that fails 100 tasks, events off", ms(off), "", "")
	r.add("the same, deriving 100 task.failed events (10,000 kept, the oldest dropped)", ms(on), "",
		fmt.Sprintf("%+.0f µs per event", float64(on-off)/100/1e3))
	return eventReadRate(r)
}

// eventApplyCost is the median time the FSM takes to apply one task
// status report that fails 100 running tasks, on a state that already
// keeps 10,000 events (so each new one also drops the oldest).
func eventApplyCost(off bool) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "warren-bench-events-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	st, err := store.OpenState(filepath.Join(dir, "state.db"))
	if err != nil {
		return 0, err
	}
	defer st.Close()
	fsm := store.NewFSM(st, store.NewHub(1024, 1<<20, 0))
	fsm.Events = store.EventOptions{Off: off}
	var index uint64
	at := time.Now().UTC()
	apply := func(t store.CommandType, payload any) (time.Duration, error) {
		b, err := store.Encode(t, payload)
		if err != nil {
			return 0, err
		}
		index++
		start := time.Now()
		res := fsm.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b})
		d := time.Since(start)
		if err, ok := res.(error); ok {
			return 0, fmt.Errorf("apply %s: %w", t, err)
		}
		return d, nil
	}
	steps := []struct {
		t store.CommandType
		p any
	}{
		{store.CmdClusterInit, store.ClusterInit{ClusterID: "bench", ClusterCIDR: "10.240.0.0/16", SubnetBits: 24, CreatedAt: at}},
		{store.CmdNodeRegister, store.NodeRegister{ID: "n1", Role: api.RoleWorker, Description: api.NodeDescription{Hostname: "edge-1"}, At: at}},
		{store.CmdServiceCreate, store.ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "svc1", CreatedAt: at, UpdatedAt: at},
			Spec: api.ServiceSpec{Name: "web", Image: "localhost/busybox", Replicas: 100}}}},
	}
	for _, s := range steps {
		if _, err := apply(s.t, s.p); err != nil {
			return 0, err
		}
	}
	const warm, timed, n = 100, 50, 100 // 100 rounds of 100 events fill the 10,000 kept
	var ds []time.Duration
	code := 1
	for round := range warm + timed {
		var creates []api.Task
		var running, failed []api.TaskStatusUpdate
		for i := range n {
			id := fmt.Sprintf("t%d-%d", round, i)
			creates = append(creates, api.Task{Meta: api.Meta{ID: id}, ServiceID: "svc1", ServiceName: "web", Slot: uint64(i + 1),
				NodeID: "n1", DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskAssigned}})
			running = append(running, api.TaskStatusUpdate{TaskID: id, Status: api.TaskStatus{State: api.TaskRunning}})
			failed = append(failed, api.TaskStatusUpdate{TaskID: id, Status: api.TaskStatus{State: api.TaskFailed, ExitCode: &code, Err: "exited with code 1"}})
		}
		if _, err := apply(store.CmdTaskPlan, api.TaskPlan{Creates: creates, At: at}); err != nil {
			return 0, err
		}
		if _, err := apply(store.CmdTaskStatus, store.TaskStatus{NodeID: "n1", Updates: running, At: at}); err != nil {
			return 0, err
		}
		d, err := apply(store.CmdTaskStatus, store.TaskStatus{NodeID: "n1", Updates: failed, At: at})
		if err != nil {
			return 0, err
		}
		if round >= warm {
			ds = append(ds, d)
		}
		// The tasks go, as the orchestrator deletes ended ones: the
		// state stays the same size round after round.
		var ids []string
		for _, c := range creates {
			ids = append(ids, c.ID)
		}
		if _, err := apply(store.CmdTaskPlan, api.TaskPlan{Deletes: ids, At: at}); err != nil {
			return 0, err
		}
	}
	p50, _ := percentiles(ds)
	return p50, nil
}

// eventReadRate fills a manager with 10,000 events (rolling updates of
// services without tasks: each starts and completes at once) and reads
// them all back, through the API and through warrenctl events -o json.
func eventReadRate(r *report) error {
	p, c, err := startManager()
	if err != nil {
		return err
	}
	defer p.stop()
	ctx := context.Background()
	const services, want = 100, 10000
	if _, err := createMany(ctx, c, "ev", services, 8, 0); err != nil {
		return err
	}
	fillStart := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	stop := make(chan struct{})
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := 0; ; v++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("ev-%d", 1+(w+8*v)%services)
				spec := api.ServiceSpec{Name: name, Image: fmt.Sprintf("localhost/busybox:%d", v), Args: []string{"sleep", "1000"}}
				if _, err := c.UpdateService(ctx, name, spec, 0); err != nil && !api.IsCode(err, api.CodeConflict) {
					errs <- err
					return
				}
			}
		}()
	}
	last := uint64(0)
	for last < want {
		select {
		case err := <-errs:
			close(stop)
			wg.Wait()
			return err
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(fillStart) > 2*time.Minute {
			close(stop)
			wg.Wait()
			return fmt.Errorf("only %d events after 2 minutes of updates", last)
		}
		evs, err := readAllEvents(ctx, c, client.EventQuery{Since: max(last, want-1)})
		if err != nil {
			close(stop)
			wg.Wait()
			return err
		}
		if len(evs) > 0 {
			last = evs[len(evs)-1].Seq
		}
	}
	close(stop)
	wg.Wait()
	time.Sleep(time.Second) // the last updates complete

	var ds []time.Duration
	count := 0
	for range 5 {
		start := time.Now()
		evs, err := readAllEvents(ctx, c, client.EventQuery{})
		if err != nil {
			return err
		}
		ds = append(ds, time.Since(start))
		count = len(evs)
	}
	p50, _ := percentiles(ds)
	r.add(fmt.Sprintf("GET /v1/events, all %d kept, decoded by the client", count),
		fmt.Sprintf("%.0f events/s (%s)", float64(count)/p50.Seconds(), ms(p50)), "", "")

	ds = ds[:0]
	lines := 0
	for range 5 {
		start := time.Now()
		cmd := exec.Command(binPath("warrenctl"), "events", "-o", "json")
		cmd.Env = append(os.Environ(), "WARREN_HOST=unix://"+filepath.Join(p.dir, "api.sock"))
		out, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w (run make build first)", binPath("warrenctl"), err)
		}
		sc := bufio.NewScanner(out)
		lines = 0
		for sc.Scan() {
			lines++
		}
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("warrenctl events -o json: %w", err)
		}
		ds = append(ds, time.Since(start))
	}
	p50, _ = percentiles(ds)
	r.add(fmt.Sprintf("warrenctl events -o json, all %d kept (process start included)", lines),
		fmt.Sprintf("%.0f events/s (%s)", float64(lines)/p50.Seconds(), ms(p50)), "", "")
	return nil
}

func readAllEvents(ctx context.Context, c *client.Client, q client.EventQuery) ([]api.ClusterEvent, error) {
	s, err := c.Events(ctx, q)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var out []api.ClusterEvent
	for {
		ev, _, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
}
