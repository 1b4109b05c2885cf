package containerd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/warren-edge/warren/daemons/agent/runtime"
)

// syncTopic is published by the runtime to itself: receiving it proves the
// event subscription is live on the server.
const syncTopic = "/warren/runtime/sync"

// exitCodeKilled is what the shim reports for a process killed by SIGKILL,
// and what this package reports for a task that vanished with its shim.
const exitCodeKilled = 128 + 9

// watchEvents keeps a subscription to containerd's task events for the
// runtime's namespace until Close. After each (re)subscription it compares
// the running tasks with what it last knew and reports the exits it missed.
// synced is closed once the first subscription is live.
func (r *Runtime) watchEvents(synced chan<- struct{}) {
	backoff := r.opts.ReconnectMin
	var once sync.Once
	for {
		live := r.subscribeOnce(func() { once.Do(func() { close(synced) }) })
		if r.ctx.Err() != nil {
			return
		}
		// The stream broke or never came up: containerd is away (Ping
		// tells the caller). Retry with backoff until Close.
		if live {
			backoff = r.opts.ReconnectMin
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff *= 2
		if backoff > r.opts.ReconnectMax {
			backoff = r.opts.ReconnectMax
		}
	}
}

// subscribeOnce subscribes, proves the subscription live, resynchronizes
// the task list, calls onSynced, then handles events until the stream
// breaks. It reports whether it got that far.
func (r *Runtime) subscribeOnce(onSynced func()) (live bool) {
	ctx, cancel := context.WithCancel(r.nsctx(r.ctx))
	defer cancel()
	ns := strconv.Quote(r.opts.Namespace)
	evC, errC := r.client.Subscribe(ctx,
		`namespace==`+ns+`,topic=="/tasks/exit"`,
		`namespace==`+ns+`,topic=="/tasks/oom"`,
		`namespace==`+ns+`,topic=="/tasks/start"`,
		`namespace==`+ns+`,topic=="/containers/delete"`,
		`namespace==`+ns+`,topic=="`+syncTopic+`"`,
	)

	// The stream is set up asynchronously: publish to ourselves until an
	// event arrives, so that no exit can slip between the task list below
	// and the first event.
	var pending []*events.Envelope
	publish := time.NewTimer(0)
	defer publish.Stop()
	deadline := time.After(r.opts.ConnectTimeout)
waitLive:
	for {
		select {
		case <-publish.C:
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			err := r.client.EventService().Publish(pctx, syncTopic, &emptypb.Empty{})
			pcancel()
			if err != nil {
				return false
			}
			publish.Reset(100 * time.Millisecond)
		case ev := <-evC:
			if ev.Topic != syncTopic {
				pending = append(pending, ev)
			}
			break waitLive
		case <-errC:
			return false
		case <-deadline:
			return false
		case <-ctx.Done():
			return false
		}
	}

	if err := r.resync(ctx); err != nil {
		return false
	}
	onSynced()
	for _, ev := range pending {
		r.handleEvent(ev)
	}
	for {
		select {
		case ev := <-evC:
			r.handleEvent(ev)
		case <-errC:
			return true
		case <-ctx.Done():
			return true
		}
	}
}

// resync lists the tasks and reports the exit of every task that was
// running when the runtime last looked and is not any more.
func (r *Runtime) resync(ctx context.Context) error {
	resp, err := r.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	err = errgrpc.ToNative(err)
	if err != nil {
		return fmt.Errorf("list tasks: %w", err)
	}
	now := make(map[string]*tasktypes.Process, len(resp.Tasks))
	running := map[string]bool{}
	for _, t := range resp.Tasks {
		now[t.ID] = t
		if t.Status == tasktypes.Status_RUNNING || t.Status == tasktypes.Status_PAUSED || t.Status == tasktypes.Status_PAUSING {
			running[t.ID] = true
		}
	}
	for _, id := range r.state.swapRunning(running) {
		t, ok := now[id]
		switch {
		case !ok:
			// The task is gone: its shim died with containerd, and
			// containerd cleaned up after it.
			r.reportExit(id, exitCodeKilled, time.Now())
		case t.Status == tasktypes.Status_STOPPED:
			r.reportExit(id, int(t.ExitStatus), t.ExitedAt.AsTime())
		}
	}
	return nil
}

func (r *Runtime) handleEvent(ev *events.Envelope) {
	if ev == nil || ev.Event == nil || ev.Namespace != r.opts.Namespace {
		return
	}
	v, err := typeurl.UnmarshalAny(ev.Event)
	if err != nil {
		return // not an event this package knows
	}
	switch e := v.(type) {
	case *eventstypes.TaskStart:
		r.state.started(e.ContainerID)
	case *eventstypes.TaskOOM:
		r.state.oomed(e.ContainerID)
	case *eventstypes.TaskExit:
		if e.ID != "" && e.ID != e.ContainerID {
			return // an exec'd process, not the container's own
		}
		r.reportExit(e.ContainerID, int(e.ExitStatus), e.ExitedAt.AsTime())
	case *eventstypes.ContainerDelete:
		r.state.forget(e.ID)
	}
}

// reportExit queues the exit of id's process unless it was reported already.
func (r *Runtime) reportExit(id string, code int, at time.Time) {
	if !r.state.exited(id, at) {
		return
	}
	r.exits.push(runtime.Exit{ID: id, Code: code, At: at, OOMKilled: r.oomKilled(id, code)})
}

// oomKilled says whether id's process was killed for lack of memory: an OOM
// event was seen for it, or, for a SIGKILL, its memory cgroup counted an
// OOM kill (the event can arrive after the exit, or before this runtime
// started).
func (r *Runtime) oomKilled(id string, code int) bool {
	if r.state.oomSeen(id) {
		return true
	}
	if code != exitCodeKilled {
		return false
	}
	n, err := r.cgroupOOMKills(id)
	return err == nil && n > 0
}

// cgroupOOMKills reads the OOM kill counter of id's memory cgroup, at the
// default cgroups path containerd gives a container (/NAMESPACE/ID).
func (r *Runtime) cgroupOOMKills(id string) (int, error) {
	rel := filepath.Join(r.opts.Namespace, id)
	for _, f := range []string{
		filepath.Join(r.opts.CgroupRoot, "memory", rel, "memory.oom_control"), // cgroup v1
		filepath.Join(r.opts.CgroupRoot, rel, "memory.events"),                // cgroup v2
	} {
		n, err := readCounter(f, "oom_kill")
		if err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("no memory cgroup for %s", id)
}

// readCounter returns the value of the line "key N" in file.
func readCounter(file, key string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("%s: no %s line", file, key)
}

// taskState is what the event loop knows about the namespace's tasks.
type taskState struct {
	mu       sync.Mutex
	running  map[string]bool
	oom      map[string]bool
	reported map[string]time.Time // exit time last reported, per container
}

func newTaskState() *taskState {
	return &taskState{running: map[string]bool{}, oom: map[string]bool{}, reported: map[string]time.Time{}}
}

// swapRunning replaces the running set and returns the IDs that were
// running before and are not now.
func (s *taskState) swapRunning(now map[string]bool) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var gone []string
	for id := range s.running {
		if !now[id] {
			gone = append(gone, id)
		}
	}
	s.running = now
	return gone
}

func (s *taskState) started(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running[id] = true
	delete(s.oom, id)
}

func (s *taskState) oomed(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.oom[id] = true
}

func (s *taskState) oomSeen(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.oom[id]
}

// exited records id's exit at `at` and reports whether it is new.
func (s *taskState) exited(id string, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, id)
	if last, ok := s.reported[id]; ok && last.Equal(at) {
		return false
	}
	s.reported[id] = at
	return true
}

func (s *taskState) forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, id)
	delete(s.oom, id)
	delete(s.reported, id)
}

// exitQueue is an unbounded queue in front of the Exits channel, so the
// event loop never blocks on a slow reader.
type exitQueue struct {
	mu     sync.Mutex
	q      []runtime.Exit
	notify chan struct{}
	out    chan runtime.Exit
}

func newExitQueue() *exitQueue {
	return &exitQueue{notify: make(chan struct{}, 1), out: make(chan runtime.Exit)}
}

func (q *exitQueue) push(e runtime.Exit) {
	q.mu.Lock()
	q.q = append(q.q, e)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// run forwards queued exits to out until ctx ends.
func (q *exitQueue) run(ctx context.Context) {
	for {
		q.mu.Lock()
		var (
			e  runtime.Exit
			ok bool
		)
		if len(q.q) > 0 {
			e, ok = q.q[0], true
		}
		q.mu.Unlock()
		if !ok {
			select {
			case <-q.notify:
				continue
			case <-ctx.Done():
				return
			}
		}
		select {
		case q.out <- e:
			q.mu.Lock()
			q.q = q.q[1:]
			q.mu.Unlock()
		case <-ctx.Done():
			return
		}
	}
}

// close closes out; call it after run has returned.
func (q *exitQueue) close() { close(q.out) }
