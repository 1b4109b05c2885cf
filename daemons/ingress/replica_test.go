package ingress

import (
	"encoding/json"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func watchEvent(t *testing.T, kind, id string, obj any) api.Event {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return api.Event{Op: api.OpCreate, Kind: kind, ID: id, Object: raw}
}

// TestReplicaTables: the replica keeps services with routes and their
// serving tasks, hands each table and the routes to OnTable, and drops a
// node's tasks while the mesh does not reach it.
func TestReplicaTables(t *testing.T) {
	var last *Table
	var lastRoutes []api.IngressRoute
	r := NewReplica(ReplicaConfig{Table: TableOptions{NodeID: "n1"},
		OnTable: func(tb *Table, routes []api.IngressRoute) { last, lastRoutes = tb, routes }})
	shop := api.Service{Meta: api.Meta{ID: "s1"}, Spec: api.ServiceSpec{Name: "shop",
		Ingress: []api.IngressRoute{{Host: "shop.example", Path: "/", Port: 8080}}}}
	plain := api.Service{Meta: api.Meta{ID: "s2"}, Spec: api.ServiceSpec{Name: "plain"}}
	task := func(id, node, addr string) api.Task {
		return api.Task{Meta: api.Meta{ID: id}, ServiceID: "s1", ServiceName: "shop", NodeID: node, DesiredState: api.TaskRunning,
			Status: api.TaskStatus{State: api.TaskRunning, Addr: addr}}
	}
	starting := task("t3", "n1", "10.0.0.4")
	starting.Spec.HealthCheck = &api.HealthCheck{Type: api.HealthHTTP, Port: 8080}
	starting.Status.Health = api.HealthStarting
	r.Apply(api.WatchBatch{Reset: true, Index: 4, Events: []api.Event{
		watchEvent(t, api.KindService, "s1", shop), watchEvent(t, api.KindService, "s2", plain),
		watchEvent(t, api.KindTask, "t1", task("t1", "n1", "10.0.0.2")),
		watchEvent(t, api.KindTask, "t2", task("t2", "n2", "10.0.1.2")),
		watchEvent(t, api.KindTask, "t3", starting),
	}})
	backends := func() []Backend {
		rt, ok := last.Match("shop.example", "/")
		if !ok {
			t.Fatal("no route for shop.example")
		}
		return rt.Backends
	}
	if last == nil || last.Index() != 4 || len(lastRoutes) != 1 || len(last.Routes()) != 1 {
		t.Fatalf("after the reset: table %v, routes %v", last, lastRoutes)
	}
	if b := backends(); len(b) != 2 {
		t.Errorf("backends %v; want t1 and t2 (t3's check has not passed)", b)
	}
	r.SetUnreachable([]string{"n2"})
	if b := backends(); len(b) != 1 || b[0].TaskID != "t1" {
		t.Errorf("with n2 out of reach: backends %v; want t1", b)
	}
	r.SetUnreachable(nil)
	if b := backends(); len(b) != 2 {
		t.Errorf("n2 back: backends %v", b)
	}
}

// TestReplicaRoutesOnlyOnAnIngressNode: with OnlyIngressNode, the tables
// route only while the watch says this node has the ingress label, and
// the routes (the certificates' input) go with them; other nodes' labels
// and a label of another value change nothing.
func TestReplicaRoutesOnlyOnAnIngressNode(t *testing.T) {
	var last *Table
	var lastRoutes []api.IngressRoute
	r := NewReplica(ReplicaConfig{Table: TableOptions{NodeID: "n1"}, OnlyIngressNode: true,
		OnTable: func(tb *Table, routes []api.IngressRoute) { last, lastRoutes = tb, routes }})
	shop := api.Service{Meta: api.Meta{ID: "s1"}, Spec: api.ServiceSpec{Name: "shop",
		Ingress: []api.IngressRoute{{Host: "shop.example", Path: "/", Port: 8080}}}}
	task := api.Task{Meta: api.Meta{ID: "t1"}, ServiceID: "s1", ServiceName: "shop", NodeID: "n2", DesiredState: api.TaskRunning,
		Status: api.TaskStatus{State: api.TaskRunning, Addr: "10.0.1.2"}}
	node := func(id, label string) api.Event {
		n := api.Node{Meta: api.Meta{ID: id}}
		if label != "" {
			n.Spec.Labels = map[string]string{api.LabelIngress: label}
		}
		return watchEvent(t, api.KindNode, id, n)
	}
	routes := func() int {
		if last == nil {
			t.Fatal("no table published")
		}
		if len(last.Routes()) != len(lastRoutes) {
			t.Fatalf("the table has %d routes and the certificates were given %d", len(last.Routes()), len(lastRoutes))
		}
		return len(last.Routes())
	}
	r.Apply(api.WatchBatch{Reset: true, Index: 4, Events: []api.Event{
		watchEvent(t, api.KindService, "s1", shop), watchEvent(t, api.KindTask, "t1", task),
		node("n1", ""), node("n2", "true")}})
	if n := routes(); n != 0 {
		t.Fatalf("unlabelled (another node labelled): %d routes, want none", n)
	}
	r.Apply(api.WatchBatch{Index: 5, Events: []api.Event{node("n1", "yes")}})
	if n := routes(); n != 0 {
		t.Fatalf("labelled %s=yes: %d routes, want none (only \"true\" makes an ingress node)", api.LabelIngress, n)
	}
	r.Apply(api.WatchBatch{Index: 6, Events: []api.Event{node("n1", "true")}})
	if n := routes(); n != 1 {
		t.Fatalf("labelled: %d routes, want 1", n)
	}
	r.Apply(api.WatchBatch{Index: 7, Events: []api.Event{node("n2", "")}})
	if n := routes(); n != 1 {
		t.Fatalf("another node's label went: %d routes, want 1", n)
	}
	r.Apply(api.WatchBatch{Index: 8, Events: []api.Event{node("n1", "")}})
	if n := routes(); n != 0 {
		t.Fatalf("label removed: %d routes, want none", n)
	}
	r.Apply(api.WatchBatch{Index: 9, Events: []api.Event{node("n1", "true")}})
	r.Apply(api.WatchBatch{Index: 10, Events: []api.Event{{Op: api.OpDelete, Kind: api.KindNode, ID: "n1"}}})
	if n := routes(); n != 0 {
		t.Fatalf("node record deleted: %d routes, want none", n)
	}
}
