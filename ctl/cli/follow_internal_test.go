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

func svcAt(id, name string, version uint64, st *api.UpdateStatus, at time.Time) api.Service {
	return api.Service{Meta: api.Meta{ID: id, CreatedAt: at.Add(-time.Hour), UpdatedAt: at},
		Spec:        api.ServiceSpec{Name: name, Image: "busybox", Mode: api.ModeReplicated, Replicas: 1},
		SpecVersion: version, UpdateStatus: st}
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
	web[1].svc.SameAsVersion, web[2].svc.SameAsVersion = 4, 4
	apiSvc := []step{
		{svcAt("a", "api", 7, upd(api.UpdateUpdating, 7, "", false), at), []api.Task{runningTask("a", "api", 3, at)}},
		{svcAt("a", "api", 8, upd(api.UpdateRollingBack, 8, "rolling back: service web of deployment shop failed: web.1 failed: exit 1", true), at), []api.Task{runningTask("a", "api", 3, at)}},
		{svcAt("a", "api", 8, upd(api.UpdateRolledBack, 8, "", false), at), []api.Task{runningTask("a", "api", 3, at)}},
	}
	apiSvc[1].svc.SameAsVersion, apiSvc[2].svc.SameAsVersion = 3, 3
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
