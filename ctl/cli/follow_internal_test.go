package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
)

// script serves services whose state moves on at each look: a GET of a
// service's tasks shows its current step and moves it to the next.
type script struct {
	mu    sync.Mutex
	steps map[string][]step // by service ID
	at    map[string]int
}

type step struct {
	svc   api.Service
	tasks []api.Task
}

func (sc *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	cur := func(id string) (step, bool) {
		steps, ok := sc.steps[id]
		if !ok {
			return step{}, false
		}
		return steps[min(sc.at[id], len(steps)-1)], true
	}
	w.Header().Set("Content-Type", "application/json")
	if id, ok := strings.CutPrefix(r.URL.Path, "/v1/services/"); ok {
		if st, ok := cur(id); ok {
			json.NewEncoder(w).Encode(st.svc)
			return
		}
	}
	if id := r.URL.Query().Get("service"); r.URL.Path == "/v1/tasks" {
		if st, ok := cur(id); ok {
			json.NewEncoder(w).Encode(st.tasks)
			sc.at[id]++
			return
		}
	}
	w.WriteHeader(404)
	json.NewEncoder(w).Encode(api.Errorf(api.CodeNotFound, "no %s", r.URL.Path))
}

// scriptSession is a session against sc, its clock at now, stderr a
// plain buffer.
func scriptSession(t *testing.T, sc *script, now time.Time) (*session, *bytes.Buffer) {
	srv := httptest.NewServer(sc)
	t.Cleanup(srv.Close)
	var out, errb bytes.Buffer
	a := &App{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Now: func() time.Time { return now },
		PollEvery: time.Millisecond, Retry: -1, IsTerminal: func(io.Writer) bool { return false }}
	s := &session{app: a, stdout: format.NewWriter(&out), stderr: format.NewWriter(&errb), host: srv.URL}
	t.Cleanup(s.close)
	return s, &errb
}

// svcAt is a service as an update (of a deployment, with st) left it: it
// has a previous spec.
func svcAt(id, name string, version uint64, st *api.UpdateStatus, at time.Time) api.Service {
	spec := api.ServiceSpec{Name: name, Image: "busybox", Mode: api.ModeReplicated, Replicas: 1}
	prev := spec
	return api.Service{Meta: api.Meta{ID: id, CreatedAt: at.Add(-time.Hour), UpdatedAt: at},
		Spec: spec, PreviousSpec: &prev, SpecVersion: version, UpdateStatus: st}
}

func runningTask(svc string, name string, version uint64, at time.Time) api.Task {
	return api.Task{Meta: api.Meta{ID: svc + "-t" + string(rune('0'+version%10))}, ServiceID: svc, ServiceName: name, Slot: 1, SpecVersion: version,
		DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskRunning, Timestamp: at, StartedAt: at.Add(-time.Hour)}}
}

// TestConvergeMany: several services followed at once, each in its own
// lines; the error names each service whose update paused or rolled
// back, and none that went well.
func TestConvergeMany(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	at := now.Add(-time.Minute)
	upd := func(state string, version uint64, msg string, auto bool) *api.UpdateStatus {
		return &api.UpdateStatus{State: state, SpecVersion: version, StartedAt: at.Format(time.RFC3339), Message: msg, Automatic: auto, Deployment: "shop"}
	}
	web := []step{
		{svcAt("w", "web", 5, upd(api.UpdateUpdating, 5, "", false), at), []api.Task{runningTask("w", "web", 4, at)}},
		{svcAt("w", "web", 6, upd(api.UpdateRollingBack, 6, "rolling back: web.1 failed: exit 1", true), at), []api.Task{runningTask("w", "web", 4, at)}},
		{svcAt("w", "web", 6, upd(api.UpdateRolledBack, 6, "", false), at), []api.Task{runningTask("w", "web", 4, at)}},
	}
	web[1].svc.SameAsVersions, web[2].svc.SameAsVersions = []uint64{4}, []uint64{4}
	apiSvc := []step{
		{svcAt("a", "api", 7, upd(api.UpdateUpdating, 7, "", false), at), []api.Task{runningTask("a", "api", 3, at)}},
		{svcAt("a", "api", 8, upd(api.UpdateRollingBack, 8, "rolling back: service web of deployment shop failed: web.1 failed: exit 1", true), at), []api.Task{runningTask("a", "api", 3, at)}},
		{svcAt("a", "api", 8, upd(api.UpdateRolledBack, 8, "", false), at), []api.Task{runningTask("a", "api", 3, at)}},
	}
	apiSvc[1].svc.SameAsVersions, apiSvc[2].svc.SameAsVersions = []uint64{3}, []uint64{3}
	fresh := svcAt("n", "new", 9, nil, at)
	fresh.CreatedAt = at
	created := []step{{fresh, nil}, {fresh, []api.Task{runningTask("n", "new", 9, at)}}}
	done := []step{
		{svcAt("d", "db", 5, upd(api.UpdateUpdating, 5, "", false), at), []api.Task{runningTask("d", "db", 4, at)}},
		{svcAt("d", "db", 5, upd(api.UpdateCompleted, 5, "", false), at), []api.Task{runningTask("d", "db", 5, at)}},
	}

	t.Run("a deployment rolled back", func(t *testing.T) {
		sc := &script{steps: map[string][]step{"w": web, "a": apiSvc, "n": created, "d": done}, at: map[string]int{}}
		s, errb := scriptSession(t, sc, now)
		err := s.convergeMany(context.Background(), []*api.Service{&web[0].svc, &apiSvc[0].svc, &fresh, &done[0].svc}, waitOpts{timeout: 5 * time.Second})
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		for _, want := range []string{"service web: update rolled back: web.1 failed: exit 1",
			"service api: update rolled back: service web of deployment shop failed: web.1 failed: exit 1"} {
			if !strings.Contains(msg, want) {
				t.Errorf("convergeMany of a deployment that rolled back: error %q, want it to say %q", msg, want)
			}
		}
		if strings.Contains(msg, "service new") || strings.Contains(msg, "service db") {
			t.Errorf("convergeMany: error %q names a service that went well", msg)
		}
		for _, want := range []string{"web: rolling back (automatic) v5 → v6", "api: rolling back (automatic) v7 → v8", "new: 1/1 running\n",
			"new.1  v9  running\n", "db: completed v5", "db.1  v4 → v5  updated\n"} {
			if !strings.Contains(errb.String(), want) {
				t.Errorf("convergeMany progress:\n%s\nwant a line with %q", errb, want)
			}
		}
	})
	t.Run("all well", func(t *testing.T) {
		sc := &script{steps: map[string][]step{"n": created, "d": done}, at: map[string]int{}}
		s, _ := scriptSession(t, sc, now)
		if err := s.convergeMany(context.Background(), []*api.Service{&fresh, &done[0].svc}, waitOpts{timeout: 5 * time.Second}); err != nil {
			t.Errorf("convergeMany of a new service and a completed update: %v", err)
		}
	})
	t.Run("paused", func(t *testing.T) {
		paused := []step{{svcAt("p", "cache", 5, upd(api.UpdateUpdating, 5, "", false), at), nil},
			{svcAt("p", "cache", 5, upd(api.UpdatePaused, 5, "update paused: progress deadline of 10m0s passed", false), at), nil}}
		sc := &script{steps: map[string][]step{"p": paused, "d": done}, at: map[string]int{}}
		s, _ := scriptSession(t, sc, now)
		err := s.convergeMany(context.Background(), []*api.Service{&paused[0].svc, &done[0].svc}, waitOpts{timeout: 5 * time.Second, quiet: true})
		if err == nil || !strings.Contains(err.Error(), "service cache: the update paused: update paused: progress deadline") {
			t.Errorf("convergeMany with a paused update: %v, want the pause named", err)
		}
	})
}

// TestSlots: what each slot shows, for a replicated service with a health
// check and for a global one (its slots named by node).
func TestSlots(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	since := now.Add(-time.Minute)
	tk := func(slot uint64, node string, version uint64, desired, state api.TaskState, health, err string) api.Task {
		return api.Task{Meta: api.Meta{ID: "t" + node + string(rune('0'+slot)) + string(rune('a'+version))}, ServiceID: "s", ServiceName: "web",
			Slot: slot, NodeID: node, SpecVersion: version, DesiredState: desired,
			Status: api.TaskStatus{State: state, Timestamp: now.Add(-time.Second), Health: health, Err: err, StartedAt: now.Add(-2 * time.Second)}}
	}
	R, S, P := api.TaskRunning, api.TaskShutdown, api.TaskPending
	svc := &api.Service{Meta: api.Meta{ID: "s"}, SpecVersion: 15, PreviousSpecVersion: 12,
		Spec:         api.ServiceSpec{Name: "web", Replicas: 6, HealthCheck: &api.HealthCheck{Type: api.HealthTCP, Port: 80}},
		UpdateStatus: &api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 15, StartedAt: since.Format(time.RFC3339)}}
	ended := tk(3, "", 12, S, S, "", "")
	ended.Status.Timestamp = now.Add(-time.Hour) // before the update: history
	tasks := []api.Task{
		tk(1, "", 12, S, S, "", ""), tk(1, "", 15, R, R, api.HealthHealthy, ""),
		tk(2, "", 12, R, R, "", ""), tk(2, "", 15, R, R, "", ""),
		ended, tk(3, "", 15, S, api.TaskFailed, "", "task: non-zero exit (1)"), tk(3, "", 12, R, R, "", ""),
		tk(4, "", 15, R, P, "", "no suitable node: 1 node is drained"),
		tk(5, "", 12, S, R, "", ""),
	}
	f := newFollower(svc, updated)
	f.observe(svc, tasks, nil)
	var got []string
	for _, l := range f.slots(now) {
		got = append(got, strings.TrimSpace(l.plain()+" "+l.detail))
	}
	want := []string{
		"web.1  v12 → v15  running, healthy",
		"web.2  v12 → v15  running, not healthy yet",
		"web.3  v12 → v15  failed: task: non-zero exit (1)",
		"web.4  v15  pending: no suitable node: 1 node is drained",
		"web.5  v12  stopping",
		"web.6  waiting",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("slots of a replicated update:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A global service: one slot per eligible node, named by hostname.
	glob := &api.Service{Meta: api.Meta{ID: "s"}, SpecVersion: 15,
		Spec:         api.ServiceSpec{Name: "web", Mode: api.ModeGlobal},
		UpdateStatus: &api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 15, StartedAt: since.Format(time.RFC3339)}}
	node := func(id, host, avail string) api.Node {
		return api.Node{Meta: api.Meta{ID: id}, Spec: api.NodeSpec{Availability: avail}, Description: api.NodeDescription{Hostname: host},
			Status: api.NodeStatus{State: api.NodeReady}}
	}
	nodes := []api.Node{node("n1", "pi-b", "active"), node("n2", "pi-a", "active"), node("n3", "pi-c", "drain")}
	gtasks := []api.Task{tk(0, "n1", 12, R, R, "", ""), tk(0, "n2", 12, S, S, "", ""), tk(0, "n2", 15, R, R, "", "")}
	g := newFollower(glob, updated)
	g.observe(glob, gtasks, nodes)
	got = nil
	for _, l := range g.slots(now) {
		got = append(got, strings.TrimSpace(l.plain()+" "+l.detail))
	}
	want = []string{"web.pi-a  v12 → v15  running 2s/5s", "web.pi-b  v12  waiting"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("slots of a global update:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRedraw: a frame is drawn over the last one, lines it no longer has
// are cleared, lines are cut to the terminal's width, and what came from
// a node cannot steer the terminal.
func TestRedraw(t *testing.T) {
	var b bytes.Buffer
	v := &liveView{w: &b, tty: true, width: 12}
	v.redraw([]string{"web: updating", "  web.1  v1 → v2  starting", "  web.2  v1  waiting"})
	v.redraw([]string{"web: updating", "  web.1  v1 → v2  starting", "  web.2  v1  waiting"}) // unchanged: nothing
	v.redraw([]string{"web: done", "  web.1  \x1b[2Jx"})
	want := "\r\x1b[2Kweb: updati\n\r\x1b[2K  web.1  v1\n\r\x1b[2K  web.2  v1\n" +
		"\x1b[3A\r\x1b[2Kweb: done\n\r\x1b[2K  web.1  \\u\n\r\x1b[2K\n\x1b[1A"
	if b.String() != want {
		t.Errorf("three redraws wrote\n%q\nwant\n%q", b.String(), want)
	}
}
