package step

import (
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
)

func TestStep(t *testing.T) {
	task := func(id string, desired, state api.TaskState) *api.Task {
		return &api.Task{Meta: api.Meta{ID: id}, DesiredState: desired, Status: api.TaskStatus{State: state}}
	}
	ctr := func(id string, s runtime.State) runtime.Container {
		c := runtime.Container{ID: id, State: s}
		if s == runtime.StateStopped {
			c.Exit = &runtime.Exit{ID: id, Code: 3}
		}
		return c
	}
	for _, c := range []struct {
		what  string
		tasks []*api.Task
		ctrs  []runtime.Container
		busy  []string
		sync  bool
		want  string
	}{
		{"an assigned task starts", []*api.Task{task("a", api.TaskRunning, api.TaskAssigned)}, nil, nil, true, "start a"},
		{"a running container is reported", []*api.Task{task("a", api.TaskRunning, api.TaskStarting)}, []runtime.Container{ctr("a", runtime.StateRunning)}, nil, true, "report a → running"},
		{"an exited container is removed with its end", []*api.Task{task("a", api.TaskRunning, api.TaskRunning)}, []runtime.Container{ctr("a", runtime.StateStopped)}, nil, true, "remove a → failed"},
		{"a task asked to stop is stopped", []*api.Task{task("a", api.TaskShutdown, api.TaskRunning)}, []runtime.Container{ctr("a", runtime.StateRunning)}, nil, true, "stop a"},
		{"a container without a task, once synced, is stopped", nil, []runtime.Container{ctr("x", runtime.StateRunning)}, nil, true, "stop x"},
		{"... but not before the task list is whole", nil, []runtime.Container{ctr("x", runtime.StateRunning)}, nil, false, ""},
		{"a busy task is left alone", []*api.Task{task("a", api.TaskRunning, api.TaskAssigned)}, nil, []string{"a"}, true, ""},
		{"a running task whose container is gone fails", []*api.Task{task("a", api.TaskRunning, api.TaskRunning)}, nil, nil, true, "report a → failed"},
		{"an assigned task no longer wanted never started", []*api.Task{task("a", api.TaskShutdown, api.TaskAssigned)}, nil, nil, true, "report a → shutdown"},
	} {
		tasks := map[string]*api.Task{}
		for _, t := range c.tasks {
			tasks[t.ID] = t
		}
		obs := Observed{Containers: map[string]runtime.Container{}, Busy: map[string]bool{}, Reported: map[string]api.TaskState{}, Synced: c.sync}
		for _, x := range c.ctrs {
			obs.Containers[x.ID] = x
		}
		for _, b := range c.busy {
			obs.Busy[b] = true
		}
		var got []string
		acts, _ := Step(tasks, obs)
		for _, a := range acts {
			got = append(got, a.String())
		}
		if strings.Join(got, "; ") != c.want {
			t.Errorf("Step(%s) = %q, want %q", c.what, strings.Join(got, "; "), c.want)
		}
	}
}

func TestStepCutOff(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	task := func(id string, mods ...func(*api.Task)) *api.Task {
		tk := &api.Task{Meta: api.Meta{ID: id}, DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskRunning},
			Spec: api.ServiceSpec{RestartPolicy: api.RestartPolicy{Delay: api.Duration(time.Second)}}}
		for _, m := range mods {
			m(tk)
		}
		return tk
	}
	exited := func(id string, code int, at time.Time) runtime.Container {
		return runtime.Container{ID: id, State: runtime.StateStopped, StartedAt: at.Add(-time.Minute), Exit: &runtime.Exit{ID: id, Code: code, At: at}}
	}
	wait := func(t *api.Task) { t.Spec.Offline.Restart = api.OfflineRestartWait }
	onFailure := func(t *api.Task) { t.Spec.RestartPolicy.Condition = api.RestartOnFailure }
	maxOffline := func(t *api.Task) { t.Spec.Offline.MaxOffline = api.Duration(time.Hour) }
	orphaned := func(t *api.Task) { t.Status.State = api.TaskOrphaned }
	for _, c := range []struct {
		what     string
		task     *api.Task
		ctr      *runtime.Container
		cutOff   bool
		cutAt    time.Time
		reported api.TaskState
		local    *Local
		undeliv  bool
		want     string
		wake     time.Time
	}{
		{what: "connected: an end is reported", task: task("a"), ctr: ptr(exited("a", 3, t0)), want: "remove a → failed"},
		{what: "cut off: an end is restarted in place after the delay", task: task("a"), ctr: ptr(exited("a", 3, t0.Add(-2*time.Second))), cutOff: true, want: "start a (local)"},
		{what: "cut off: ... not before", task: task("a"), ctr: ptr(exited("a", 3, t0)), cutOff: true, wake: t0.Add(time.Second)},
		{what: "cut off, restart wait: the end stands", task: task("a", wait), ctr: ptr(exited("a", 3, t0.Add(-time.Minute))), cutOff: true, want: "remove a → failed"},
		{what: "cut off, on-failure: exit 0 stands", task: task("a", onFailure), ctr: ptr(exited("a", 0, t0.Add(-time.Minute))), cutOff: true, want: "remove a → complete"},
		{what: "cut off: a container lost with the runtime (reboot) starts at once", task: task("a"), ctr: &runtime.Container{ID: "a", State: runtime.StateCreated}, cutOff: true, want: "start a (local)"},
		{what: "cut off: no container at all starts at once", task: task("a"), cutOff: true, want: "start a (local)"},
		{what: "cut off: an end reported but undelivered is taken back", task: task("a"), cutOff: true, reported: api.TaskFailed, undeliv: true,
			local: &Local{Ended: &Ended{State: api.TaskFailed, At: t0.Add(-time.Minute)}}, want: "start a (local, withdraw)"},
		{what: "cut off: an end delivered stands", task: task("a"), cutOff: true, reported: api.TaskFailed,
			local: &Local{Ended: &Ended{State: api.TaskFailed, At: t0.Add(-time.Minute)}}},
		{what: "cut off past maxOffline: stopped", task: task("a", maxOffline), ctr: &runtime.Container{ID: "a", State: runtime.StateRunning}, cutOff: true, cutAt: t0.Add(-2 * time.Hour), want: "stop a → shutdown"},
		{what: "cut off within maxOffline: runs, step again at the limit", task: task("a", maxOffline), ctr: &runtime.Container{ID: "a", State: runtime.StateRunning}, cutOff: true, cutAt: t0.Add(-time.Minute), wake: t0.Add(59 * time.Minute)},
		{what: "cut off past maxOffline: not restarted", task: task("a", maxOffline), ctr: &runtime.Container{ID: "a", State: runtime.StateCreated}, cutOff: true, cutAt: t0.Add(-2 * time.Hour)},
		{what: "written off and running: claimed back", task: task("a", orphaned), ctr: &runtime.Container{ID: "a", State: runtime.StateRunning}, reported: api.TaskRunning, want: ""},
		{what: "written off and running, not said yet: claimed back", task: task("a", orphaned), ctr: &runtime.Container{ID: "a", State: runtime.StateRunning}, want: "report a → running"},
		{what: "written off and ended: removed, nothing said", task: task("a", orphaned), ctr: ptr(exited("a", 1, t0)), want: "remove a"},
	} {
		obs := Observed{Containers: map[string]runtime.Container{}, Busy: map[string]bool{}, Reported: map[string]api.TaskState{}, Synced: true,
			Now: t0, CutOff: c.cutOff, CutOffAt: c.cutAt, Local: map[string]*Local{}, Undelivered: func(string) bool { return c.undeliv }}
		if c.cutAt.IsZero() {
			obs.CutOffAt = t0.Add(-time.Minute)
		}
		if c.ctr != nil {
			obs.Containers[c.ctr.ID] = *c.ctr
		}
		if c.reported != "" {
			obs.Reported[c.task.ID] = c.reported
		}
		if c.local != nil {
			obs.Local[c.task.ID] = c.local
		}
		acts, wake := Step(map[string]*api.Task{c.task.ID: c.task}, obs)
		var got []string
		for _, a := range acts {
			s := a.String()
			switch {
			case a.Local && a.Withdraw:
				s += " (local, withdraw)"
			case a.Local:
				s += " (local)"
			}
			got = append(got, s)
		}
		if strings.Join(got, "; ") != c.want || !wake.Equal(c.wake) {
			t.Errorf("Step(%s) = %q, wake %v; want %q, wake %v", c.what, strings.Join(got, "; "), wake, c.want, c.wake)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestStepDrainsBeforeStop: a task told to stop that other nodes may still
// route to (its status: running, with an address, healthy) is drained
// first, from when the agent sees the stop, and stopped when the drain
// ends; a task no node routes to is stopped at once.
func TestStepDrainsBeforeStop(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	task := func(mods ...func(*api.Task)) *api.Task {
		tk := &api.Task{Meta: api.Meta{ID: "a"}, DesiredState: api.TaskShutdown,
			Status: api.TaskStatus{State: api.TaskRunning, Addr: "10.0.0.5"},
			Spec:   api.ServiceSpec{StopDrain: api.Duration(2 * time.Second)}}
		for _, m := range mods {
			m(tk)
		}
		return tk
	}
	running := map[string]runtime.Container{"a": {ID: "a", State: runtime.StateRunning}}
	for _, c := range []struct {
		what     string
		task     *api.Task
		draining map[string]time.Time
		now      time.Time
		want     string
		wake     time.Time
	}{
		{what: "stop seen: the drain starts", task: task(), now: t0, want: "drain a", wake: t0.Add(2 * time.Second)},
		{what: "during the drain: nothing to do but wait", task: task(), draining: map[string]time.Time{"a": t0.Add(2 * time.Second)}, now: t0.Add(time.Second), wake: t0.Add(2 * time.Second)},
		{what: "the drain ended: stopped", task: task(), draining: map[string]time.Time{"a": t0.Add(2 * time.Second)}, now: t0.Add(2 * time.Second), want: "stop a"},
		{what: "a removed service's task drains too", task: task(func(t *api.Task) { t.DesiredState = api.TaskRemove }), now: t0, want: "drain a", wake: t0.Add(2 * time.Second)},
		{what: "the default drain", task: task(func(t *api.Task) { t.Spec.StopDrain = 0 }), now: t0, want: "drain a", wake: t0.Add(api.DefaultStopDrain.D())},
		{what: "no address: no node routes to it, stopped at once", task: task(func(t *api.Task) { t.Status.Addr = "" }), now: t0, want: "stop a"},
		{what: "unhealthy: stopped at once", task: task(func(t *api.Task) {
			t.Spec.HealthCheck = &api.HealthCheck{Type: api.HealthTCP, Port: 80}
			t.Status.Health = api.HealthUnhealthy
		}), now: t0, want: "stop a"},
		{what: "its end already recorded: stopped at once", task: task(func(t *api.Task) { t.Status.State = api.TaskFailed }), now: t0, want: "stop a"},
		{what: "still wanted: left running", task: task(func(t *api.Task) { t.DesiredState = api.TaskRunning }), now: t0},
	} {
		obs := Observed{Containers: running, Busy: map[string]bool{}, Reported: map[string]api.TaskState{}, Synced: true, Now: c.now, Draining: c.draining}
		acts, wake := Step(map[string]*api.Task{"a": c.task}, obs)
		var got []string
		for _, a := range acts {
			got = append(got, a.String())
			if a.Kind == ActDrain && !a.Until.Equal(c.wake) {
				t.Errorf("%s: drain until %s, want %s", c.what, a.Until, c.wake)
			}
		}
		if strings.Join(got, "; ") != c.want || !wake.Equal(c.wake) {
			t.Errorf("%s: Step = %q, wake %s; want %q, wake %s", c.what, strings.Join(got, "; "), wake, c.want, c.wake)
		}
	}
}
