package api

import "testing"

// TestPublicTaskServing: a worker knows other nodes' tasks by their public
// projection; a task on standby must not serve there either.
func TestPublicTaskServing(t *testing.T) {
	for _, standby := range []bool{false, true} {
		tk := &Task{Meta: Meta{ID: "t1"}, NodeID: "n2", DesiredState: TaskRunning, Standby: standby,
			Status: TaskStatus{State: TaskRunning, Addr: "10.240.2.5"}}
		if got, want := PublicTask(tk).Serving(), tk.Serving(); got != want {
			t.Errorf("PublicTask(a task with standby=%v).Serving() = %v, want %v (as the task)", standby, got, want)
		}
	}
}
