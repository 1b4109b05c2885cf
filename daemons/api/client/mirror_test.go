package client

import (
	"encoding/json"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func mirrorEvent(t *testing.T, op, kind, id string, obj any) api.Event {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return api.Event{Op: op, Kind: kind, ID: id, Object: raw}
}

// TestMirrorApply: a reset replaces the state whole, changes fold in, a
// task the keep function drops leaves, and Publish sees each batch's
// state at its index.
func TestMirrorApply(t *testing.T) {
	var seen []MirrorState
	m := NewMirror(MirrorOptions{
		KeepTask: func(tk *api.Task) *api.Task {
			if tk.Status.State != api.TaskRunning {
				return nil
			}
			return tk
		},
		Publish: func(st *MirrorState) {
			seen = append(seen, MirrorState{Index: st.Index, Services: map[string]*api.Service{}, Tasks: map[string]*api.Task{}})
			for k, v := range st.Services {
				seen[len(seen)-1].Services[k] = v
			}
			for k, v := range st.Tasks {
				seen[len(seen)-1].Tasks[k] = v
			}
		},
	})
	s1 := api.Service{Meta: api.Meta{ID: "s1"}, Spec: api.ServiceSpec{Name: "web"}}
	run := api.Task{Meta: api.Meta{ID: "t1"}, ServiceID: "s1", Status: api.TaskStatus{State: api.TaskRunning}}
	m.Apply(api.WatchBatch{Reset: true, Index: 5, Events: []api.Event{
		mirrorEvent(t, api.OpCreate, api.KindService, "s1", s1),
		mirrorEvent(t, api.OpCreate, api.KindTask, "t1", run),
	}})
	select {
	case <-m.Synced():
	default:
		t.Fatal("not synced after a reset")
	}
	stopped := run
	stopped.Status.State = api.TaskComplete
	m.Apply(api.WatchBatch{Index: 6, Events: []api.Event{mirrorEvent(t, api.OpUpdate, api.KindTask, "t1", stopped)}})
	m.Apply(api.WatchBatch{Index: 7, Events: []api.Event{{Op: api.OpCreate, Kind: api.KindTask, ID: "bad", Object: []byte("{")}}})
	m.Apply(api.WatchBatch{Reset: true, Index: 9})
	if len(seen) != 4 {
		t.Fatalf("%d publishes, want 4", len(seen))
	}
	if st := seen[0]; st.Index != 5 || len(st.Services) != 1 || st.Tasks["t1"] == nil {
		t.Errorf("after the reset: %+v", st)
	}
	if st := seen[1]; st.Index != 6 || len(st.Tasks) != 0 {
		t.Errorf("a stopped task stays: %+v", st)
	}
	if st := seen[2]; st.Index != 7 || len(st.Tasks) != 0 || len(st.Services) != 1 {
		t.Errorf("an undecodable task changed the state: %+v", st)
	}
	if st := seen[3]; st.Index != 9 || len(st.Services)+len(st.Tasks) != 0 {
		t.Errorf("a reset left objects: %+v", st)
	}
}
