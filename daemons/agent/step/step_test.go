package step

import (
	"strings"
	"testing"

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
		for _, a := range Step(tasks, obs) {
			got = append(got, a.String())
		}
		if strings.Join(got, "; ") != c.want {
			t.Errorf("Step(%s) = %q, want %q", c.what, strings.Join(got, "; "), c.want)
		}
	}
}
