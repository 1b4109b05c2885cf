package api

import "testing"

func TestTaskServing(t *testing.T) {
	check := &HealthCheck{Type: HealthExec, Command: []string{"true"}}
	for _, c := range []struct {
		state, desired TaskState
		addr, health   string
		check          *HealthCheck
		want           bool
	}{
		{TaskRunning, TaskRunning, "10.0.0.1", "", nil, true},
		{TaskRunning, TaskRunning, "10.0.0.1/24", "", nil, true},
		{TaskRunning, TaskRunning, "10.0.0.1", HealthHealthy, check, true},
		{TaskRunning, TaskRunning, "10.0.0.1", "", check, false}, // a check, no pass reported yet
		{TaskRunning, TaskRunning, "10.0.0.1", HealthStarting, check, false},
		{TaskRunning, TaskRunning, "10.0.0.1", HealthUnhealthy, nil, false},
		{TaskStarting, TaskRunning, "10.0.0.1", "", nil, false},
		{TaskRunning, TaskShutdown, "10.0.0.1", "", nil, false},
		{TaskRunning, TaskRunning, "", "", nil, false},
		{TaskRunning, TaskRunning, "nonsense", "", nil, false},
	} {
		tk := Task{DesiredState: c.desired, Spec: ServiceSpec{HealthCheck: c.check},
			Status: TaskStatus{State: c.state, Addr: c.addr, Health: c.health}}
		if got := tk.Serving(); got != c.want {
			t.Errorf("Task{state %s, desired %s, addr %q, health %q, check %v}.Serving() = %v, want %v", c.state, c.desired, c.addr, c.health, c.check != nil, got, c.want)
		}
	}
}
