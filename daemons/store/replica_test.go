package store

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func ev(index uint64, op, kind string, obj any) api.Event {
	e := api.Event{Index: index, Op: op, Kind: kind}
	if obj != nil {
		b, _ := json.Marshal(obj)
		e.Object = b
		var k replicaKeys
		json.Unmarshal(b, &k)
		e.ID = k.ID
	}
	return e
}

func TestReplicaAppliesAStream(t *testing.T) {
	st, err := OpenState(filepath.Join(t.TempDir(), "replica.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hub := NewHub(100, 1<<20, 0)
	r := NewReplica(st, hub)
	feed := &streamFeed{r: r}
	svc := &api.Service{Meta: api.Meta{ID: "s1", Version: 3}, Spec: api.ServiceSpec{Name: "web"}}
	t1 := &api.Task{Meta: api.Meta{ID: "t1", Version: 4}, ServiceID: "s1", NodeID: "n1", Slot: 1}
	t2 := &api.Task{Meta: api.Meta{ID: "t2", Version: 5}, ServiceID: "s1", NodeID: "n2", Slot: 2}
	stale := &api.Task{Meta: api.Meta{ID: "gone"}, ServiceID: "s0", NodeID: "n1"}
	// Something from before the resend, which the resend must drop.
	feed.Apply(ev(1, api.OpCreate, api.KindTask, stale))
	for _, e := range []api.Event{
		{Index: 5, Op: api.OpReset},
		ev(5, api.OpCreate, api.KindService, svc),
		ev(5, api.OpCreate, api.KindTask, t1),
		ev(5, api.OpCreate, api.KindTask, t2),
		{Index: 5, Op: api.OpSynced},
	} {
		if err := feed.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	st.View(func(v *View) error {
		if v.Index() != 5 || v.TaskCount() != 2 {
			t.Errorf("after the resend: index %d, %d tasks; want 5 and 2", v.Index(), v.TaskCount())
		}
		if s, err := v.Service("web"); err != nil || s.Version != 3 {
			t.Errorf("Service(web) = %v, %v; want version 3 as sent", s, err)
		}
		if ts := v.Tasks(TaskFilter{NodeID: "n1"}); len(ts) != 1 || ts[0].ID != "t1" {
			t.Errorf("Tasks(node n1) = %v", ts)
		}
		return nil
	})
	// Live changes: an update moves nothing in the indexes it should not,
	// a delete removes.
	t1.Status.State = api.TaskRunning
	feed.Apply(ev(6, api.OpUpdate, api.KindTask, t1))
	feed.Apply(api.Event{Index: 7, Op: api.OpDelete, Kind: api.KindTask, ID: "t2", Object: mustJSON(t2)})
	// Index 7 is held until the stream says it is whole.
	if changes, _, _ := hub.Read(6, &Filter{}, 10, nil); len(changes) != 0 {
		t.Errorf("index 7 published before it was complete: %d changes", len(changes))
	}
	feed.Apply(api.Event{Index: 7, Op: api.OpPing})
	changes, upTo, err := hub.Read(5, &Filter{}, 10, nil)
	if err != nil || len(changes) != 2 || upTo != 7 || changes[1].Op != api.OpDelete || changes[1].NodeID != "n2" {
		t.Errorf("hub after live changes: %d changes up to %d, %v; want the update and the delete (with its node)", len(changes), upTo, err)
	}
	st.View(func(v *View) error {
		tk, _ := v.Task("t1")
		if tk.Status.State != api.TaskRunning || v.TaskCount() != 1 || len(v.Tasks(TaskFilter{ServiceID: "s1"})) != 1 {
			t.Errorf("after update and delete: t1 %s, %d tasks", tk.Status.State, v.TaskCount())
		}
		return nil
	})
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func TestReplicaApplyBatch(t *testing.T) {
	st, err := OpenState(filepath.Join(t.TempDir(), "replica.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hub := NewHub(100, 1<<20, 0)
	r := NewReplica(st, hub)
	svc := &api.Service{Meta: api.Meta{ID: "s1", Version: 3}, Spec: api.ServiceSpec{Name: "web"}}
	t1 := &api.Task{Meta: api.Meta{ID: "t1", Version: 4}, ServiceID: "s1", NodeID: "n1", Slot: 1}
	t2 := &api.Task{Meta: api.Meta{ID: "t2", Version: 5}, ServiceID: "s1", NodeID: "n2", Slot: 2}
	stale := &api.Task{Meta: api.Meta{ID: "gone"}, ServiceID: "s0", NodeID: "n1"}
	if err := r.ApplyBatch(api.WatchBatch{Index: 2, Events: []api.Event{ev(2, api.OpCreate, api.KindTask, stale)}}); err != nil {
		t.Fatal(err)
	}

	// A reset batch replaces everything, and local watchers must resync.
	err = r.ApplyBatch(api.WatchBatch{Reset: true, Index: 5, Events: []api.Event{
		ev(5, api.OpCreate, api.KindService, svc), ev(5, api.OpCreate, api.KindTask, t1), ev(5, api.OpCreate, api.KindTask, t2)}})
	if err != nil {
		t.Fatalf("ApplyBatch(reset at 5): %v", err)
	}
	st.View(func(v *View) error {
		if _, err := v.Task("gone"); err == nil || v.Index() != 5 || v.TaskCount() != 2 {
			t.Errorf("after a reset batch: index %d, %d tasks, task gone: %v; want 5, 2, and gone dropped", v.Index(), v.TaskCount(), err)
		}
		return nil
	})
	if _, _, err := hub.Read(2, &Filter{}, 10, nil); err != ErrTooOld {
		t.Errorf("hub.Read(after 2) after a reset batch: %v; want ErrTooOld (local watchers resync)", err)
	}

	// Changes of two indexes in one batch: one write, one publish.
	t1.Status.State = api.TaskRunning
	wait := hub.Wait()
	err = r.ApplyBatch(api.WatchBatch{Index: 9, Events: []api.Event{
		ev(6, api.OpUpdate, api.KindTask, t1),
		{Index: 7, Op: api.OpDelete, Kind: api.KindTask, ID: "t2", Object: mustJSON(t2)}}})
	if err != nil {
		t.Fatalf("ApplyBatch(changes at 6 and 7, whole at 9): %v", err)
	}
	select {
	case <-wait:
	default:
		t.Error("ApplyBatch did not wake the hub's watchers")
	}
	changes, upTo, err := hub.Read(5, &Filter{}, 10, nil)
	if err != nil || len(changes) != 2 || upTo != 9 || changes[0].Index != 6 || changes[1].NodeID != "n2" {
		t.Errorf("hub.Read(after 5) = %d changes up to %d, %v; want the update at 6 and the delete at 7 (node n2), up to 9", len(changes), upTo, err)
	}
	st.View(func(v *View) error {
		tk, _ := v.Task("t1")
		if v.Index() != 9 || tk.Status.State != api.TaskRunning || v.TaskCount() != 1 {
			t.Errorf("after the batch: index %d, t1 %s, %d tasks; want 9, running, 1", v.Index(), tk.Status.State, v.TaskCount())
		}
		return nil
	})

	// A batch that cannot be written changes nothing, not even its first
	// event.
	t1.Status.State = api.TaskShutdown
	err = r.ApplyBatch(api.WatchBatch{Index: 10, Events: []api.Event{
		ev(10, api.OpUpdate, api.KindTask, t1),
		{Index: 10, Op: api.OpUpdate, Kind: api.KindTask, ID: "t3", Object: []byte(`{"id":`)}}})
	if err == nil || !strings.Contains(err.Error(), "index 10") {
		t.Errorf("ApplyBatch(an undecodable task) = %v; want an error naming index 10", err)
	}
	st.View(func(v *View) error {
		tk, _ := v.Task("t1")
		if v.Index() != 9 || tk.Status.State != api.TaskRunning {
			t.Errorf("after a failed batch: index %d, t1 %s; want 9 and running, as before it", v.Index(), tk.Status.State)
		}
		return nil
	})
	if hub.Last() != 9 {
		t.Errorf("hub.Last() = %d after a failed batch; want 9", hub.Last())
	}
}

// streamFeed feeds a replica event by event, as a watch stream brings
// them, through the follower's batching rules (api.WatchBatcher).
type streamFeed struct {
	r *Replica
	b api.WatchBatcher
}

func (f *streamFeed) Apply(ev api.Event) error {
	if err := f.b.Add(ev); err != nil {
		return err
	}
	for {
		b, ok := f.b.Take()
		switch {
		case !ok:
			return nil
		case !b.Reset && len(b.Events) == 0:
			continue // a ping: nothing to write
		}
		if err := f.r.ApplyBatch(b); err != nil {
			return err
		}
	}
}
