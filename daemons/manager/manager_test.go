package manager_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func web(replicas uint64) api.ServiceSpec {
	return api.ServiceSpec{Name: "web", Image: "localhost/busybox", Replicas: replicas,
		Args: []string{"httpd", "-f"}, Ports: []api.PortConfig{{Target: 80, Published: 8080}}}
}

func TestCreateReadUpdateDelete(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	c := ctx(t)
	s, err := m.Client.CreateService(c, web(3))
	if err != nil {
		t.Fatalf("CreateService(web) = %v", err)
	}
	if s.ID == "" || s.Version == 0 || s.Spec.Mode != api.ModeReplicated {
		t.Errorf("created service %+v: want an ID, a version and mode replicated", s)
	}
	got, err := m.Client.Service(c, "web", client.ReadOptions{Consistent: true})
	if err != nil || got.ID != s.ID {
		t.Fatalf("Service(web) = %v, %v", got, err)
	}
	if _, err := m.Client.Service(c, s.ID[:6], client.ReadOptions{}); err != nil {
		t.Errorf("Service(ID prefix %s) = %v", s.ID[:6], err)
	}
	// Update based on the current version succeeds; on an old one, conflicts.
	sp := got.Spec
	sp.Env = []string{"A=1"}
	up, err := m.Client.UpdateService(c, "web", sp, got.Version)
	if err != nil {
		t.Fatalf("UpdateService(version %d) = %v", got.Version, err)
	}
	if up.SpecVersion <= got.SpecVersion {
		t.Errorf("update did not move specVersion: %d → %d", got.SpecVersion, up.SpecVersion)
	}
	sp.Env = []string{"A=2"}
	if _, err := m.Client.UpdateService(c, "web", sp, got.Version); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("UpdateService with stale version %d = %v, want conflict", got.Version, err)
	}
	after, _ := m.Client.Service(c, "web", client.ReadOptions{})
	if after.Spec.Env[0] != "A=1" {
		t.Errorf("refused update changed the service: env %v", after.Spec.Env)
	}
	if _, err := m.Client.ScaleService(c, "web", 5); err != nil {
		t.Fatalf("ScaleService(web, 5) = %v", err)
	}
	if err := m.Client.RemoveService(c, "web", 0); err != nil {
		t.Fatalf("RemoveService(web) = %v", err)
	}
	if _, err := m.Client.Service(c, "web", client.ReadOptions{}); !api.NotFound(err) {
		t.Errorf("Service(web) after remove = %v, want not found", err)
	}
}

func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	c := ctx(t)
	if _, err := m.Client.CreateService(c, web(1)); err != nil {
		t.Fatal(err)
	}
	before, _ := m.Client.Info(c)
	post := func(path, body string) (int, api.Error) {
		req, _ := http.NewRequest(http.MethodPost, "http://warren"+path, strings.NewReader(body))
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (netConn, error) {
			return dialUnix(ctx, m.Socket)
		}}}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e api.Error
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &e)
		return resp.StatusCode, e
	}
	cases := []struct {
		name, path, body string
		status           int
		wantMsg          string
	}{
		{"unknown field", "/v1/services", `{"name":"a","image":"busybox","replicas":1,"replicaz":2}`, 400, `unknown field "replicaz"`},
		{"field name in the wrong case", "/v1/services", `{"name":"a","image":"busybox","Replicas":1}`, 400, `unknown field "Replicas"`},
		{"two values", "/v1/services", `{"name":"a","image":"busybox"} {}`, 400, "more than one JSON value"},
		{"not json", "/v1/services", `name: a`, 400, "not valid JSON"},
		{"empty", "/v1/services", ``, 400, "empty"},
		{"bad name", "/v1/services", `{"name":"Web_1","image":"busybox"}`, 400, "DNS-safe"},
		{"bad image", "/v1/services", `{"name":"a","image":"UPPER:Case:x"}`, 400, "not a valid image reference"},
		{"too many replicas", "/v1/services", `{"name":"a","image":"busybox","replicas":100000}`, 400, "limit"},
		{"bad port", "/v1/services", `{"name":"a","image":"busybox","ports":[{"target":0}]}`, 400, "target port"},
		{"port clash", "/v1/services", `{"name":"a","image":"busybox","ports":[{"target":80,"published":8080}]}`, 409, "already published by service \"web\""},
		{"name taken", "/v1/services", `{"name":"web","image":"busybox"}`, 409, "exists"},
		{"wrong type", "/v1/services", `{"name":"a","image":"busybox","replicas":"three"}`, 400, "replicas"},
		{"bad constraint", "/v1/services", `{"name":"a","image":"busybox","placement":{"constraints":["node.zone=east"]}}`, 400, "no == or !="},
		{"scale missing", "/v1/services/nope/scale", `{"replicas":2}`, 404, "no service"},
		{"scale no count", "/v1/services/web/scale", `{}`, 400, "replicas"},
		{"bad status", "/v1/nodes/n/tasks/status", `{"nodeID":"n","updates":[{"taskID":"t","status":{"state":"bogus"}}]}`, 400, "state"},
	}
	for _, tc := range cases {
		status, e := post(tc.path, tc.body)
		if status != tc.status || !strings.Contains(e.Error(), tc.wantMsg) {
			t.Errorf("%s: POST %s %s = %d %q; want %d containing %q", tc.name, tc.path, tc.body, status, e.Error(), tc.status, tc.wantMsg)
		}
	}
	after, _ := m.Client.Info(c)
	if after.Services != before.Services {
		t.Errorf("refused writes changed the service count %d → %d", before.Services, after.Services)
	}
}

func TestWatchStreamsChangesInOrder(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	c := ctx(t)
	w, err := m.Client.Watch(c, client.WatchQuery{Kinds: []string{api.KindService}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ev, err := w.Next()
	if err != nil || ev.Op != api.OpReset {
		t.Fatalf("first watch line = %+v, %v; want reset", ev, err)
	}
	ev, _ = w.Next()
	if ev.Op != api.OpSynced {
		t.Fatalf("empty state: second line = %+v, want synced", ev)
	}
	for i := range 5 {
		sp := web(1)
		sp.Name = fmt.Sprintf("svc-%d", i)
		sp.Ports = nil
		if _, err := m.Client.CreateService(c, sp); err != nil {
			t.Fatal(err)
		}
	}
	var last uint64
	for i := range 5 {
		ev, err := w.Next()
		for err == nil && ev.Op == api.OpPing {
			ev, err = w.Next() // a batch ends with a ping: skip
		}
		if err != nil {
			t.Fatal(err)
		}
		var s api.Service
		json.Unmarshal(ev.Object, &s)
		if ev.Op != api.OpCreate || ev.Kind != api.KindService || s.Spec.Name != fmt.Sprintf("svc-%d", i) || ev.Index <= last {
			t.Errorf("event %d = %s %s %q at %d; want create service svc-%d after index %d", i, ev.Op, ev.Kind, s.Spec.Name, ev.Index, i, last)
		}
		last = ev.Index
	}
	// Resuming after an index replays only what follows it.
	w2, err := m.Client.Watch(c, client.WatchQuery{Index: last - 1, Kinds: []string{api.KindService}})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	ev, _ = w2.Next()
	if ev.Index != last || ev.Op != api.OpCreate {
		t.Errorf("watch from %d: first event %s at %d, want create at %d", last-1, ev.Op, ev.Index, last)
	}
}

func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	m := managertest.Start(t, managertest.Options{DataDir: dir})
	c := ctx(t)
	s, err := m.Client.CreateService(c, web(2))
	if err != nil {
		t.Fatal(err)
	}
	node := m.NodeID()
	m.Stop()
	m2 := managertest.Start(t, managertest.Options{DataDir: dir})
	if m2.NodeID() != node {
		t.Errorf("node ID after restart %s, want %s", m2.NodeID(), node)
	}
	got, err := m2.Client.Service(c, "web", client.ReadOptions{})
	if err != nil || got.ID != s.ID || got.Version != s.Version {
		t.Errorf("after restart Service(web) = %+v, %v; want ID %s version %d", got, err, s.ID, s.Version)
	}
	if _, err := m2.Client.CreateService(c, api.ServiceSpec{Name: "second", Image: "busybox"}); err != nil {
		t.Errorf("write after restart: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	c := ctx(t)
	m.Client.CreateService(c, web(1))
	m.Client.Service(c, "web", client.ReadOptions{})
	b, err := m.Client.Raw(c, http.MethodGet, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"warren_raft_state 2",
		`warren_api_request_seconds_count{code="200",method="GET",route="/v1/services/{ref}"} 1`,
		"warren_fsm_apply_batch_seconds_count",
		"warren_raft_apply_seconds_count",
		"warren_services 1",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestPlacementReasonWithoutAgent(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	c := ctx(t)
	if _, err := m.Client.CreateService(c, web(2)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ts, _ := m.Client.Tasks(c, client.TaskQuery{Service: "web"})
		if len(ts) == 2 && ts[0].Status.State == api.TaskPending && ts[1].Status.State == api.TaskPending {
			if !strings.Contains(ts[0].Status.Err, "no suitable node") {
				t.Errorf("pending task reason %q, want it to say no suitable node", ts[0].Status.Err)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("tasks of a service on a node without an agent never became pending with a reason")
}
