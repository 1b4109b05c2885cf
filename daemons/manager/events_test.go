package manager_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
	"github.com/warren-edge/warren/daemons/pki"
)

// readEvents reads a whole GET /v1/events (no follow).
func readEvents(t *testing.T, c *client.Client, q client.EventQuery) []api.ClusterEvent {
	t.Helper()
	s, err := c.Events(ctx(t), q)
	if err != nil {
		t.Fatalf("Events(%+v) = %v", q, err)
	}
	defer s.Close()
	var out []api.ClusterEvent
	for {
		ev, _, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Events(%+v): %v", q, err)
		}
		out = append(out, ev)
	}
}

// updateImage starts a rolling update of service web.
func updateImage(t *testing.T, c *client.Client, image string) {
	t.Helper()
	s, err := c.Service(ctx(t), "web", client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sp := s.Spec
	sp.Image = image
	if _, err := c.UpdateService(ctx(t), "web", sp, 0); err != nil {
		t.Fatalf("update web to %s: %v", image, err)
	}
}

func TestEventsEndpoint(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	c := ctx(t)
	if _, err := m.Client.CreateService(c, web(1)); err != nil {
		t.Fatal(err)
	}
	other := web(1)
	other.Name, other.Ports = "other", nil
	if _, err := m.Client.CreateService(c, other); err != nil {
		t.Fatal(err)
	}
	updateImage(t, m.Client, "localhost/busybox:2")
	started := client.EventQuery{Types: []string{api.EventUpdateStarted}}
	eventually(t, "an update.started event", 10*time.Second, func() error {
		if evs := readEvents(t, m.Client, started); len(evs) != 1 {
			return fmt.Errorf("%d update.started events", len(evs))
		}
		return nil
	})

	// NDJSON, one event per line.
	raw, err := m.Client.Raw(c, http.MethodGet, "/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var first api.ClusterEvent
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Seq != 1 || first.Type == "" {
		t.Fatalf("first line of GET /v1/events = %q (%v), want an event with seq 1", lines[0], err)
	}
	all := readEvents(t, m.Client, client.EventQuery{})
	if len(all) != len(lines) {
		t.Errorf("the client read %d events, the body has %d lines", len(all), len(lines))
	}
	// since is exclusive: the last seq seen.
	if got := readEvents(t, m.Client, client.EventQuery{Since: first.Seq}); len(got) != len(all)-1 || (len(got) > 0 && got[0].Seq != first.Seq+1) {
		t.Errorf("Events(since %d) = %d events, want %d starting at %d", first.Seq, len(got), len(all)-1, first.Seq+1)
	}
	// Filters: by service (name or ID), by type, by time.
	for _, ev := range readEvents(t, m.Client, client.EventQuery{Service: "web"}) {
		if ev.Service != "web" {
			t.Errorf("Events(service web) returned %+v", ev)
		}
	}
	if got := readEvents(t, m.Client, client.EventQuery{Service: "other"}); len(got) != 0 {
		t.Errorf("Events(service other) = %v, want none (it was never updated)", got)
	}
	if got := readEvents(t, m.Client, client.EventQuery{Until: time.Now().Add(-time.Hour)}); len(got) != 0 {
		t.Errorf("Events(until an hour ago) = %v, want none", got)
	}
	if got := readEvents(t, m.Client, client.EventQuery{SinceTime: time.Now().Add(time.Hour)}); len(got) != 0 {
		t.Errorf("Events(since in an hour) = %v, want none", got)
	}
	if _, err := m.Client.Raw(c, http.MethodGet, "/v1/events?type=task.exploded"); !api.IsCode(err, api.CodeInvalid) || !strings.Contains(err.Error(), "task.failed") {
		t.Errorf("Events(type task.exploded) = %v, want invalid, listing the types", err)
	}
	if _, err := m.Client.Raw(c, http.MethodGet, "/v1/events?since=yesterday"); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("Events(since yesterday) = %v, want invalid", err)
	}

	// Follow: the stream stays open and carries the next events.
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	last := all[len(all)-1].Seq
	s, err := m.Client.Events(fctx, client.EventQuery{Since: last, Types: []string{api.EventUpdateStarted}, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	updateImage(t, m.Client, "localhost/busybox:3")
	ev, _, err := s.Next()
	if err != nil || ev.Type != api.EventUpdateStarted || ev.Seq <= last || ev.Service != "web" {
		t.Errorf("followed event = %+v, %v; want update.started of web after seq %d", ev, err, last)
	}
}

// Events are read by the same callers as services; a worker's
// certificate may read neither.
func TestEventsRefuseAWorkerCertificate(t *testing.T) {
	cl := managertest.StartCluster(t, 1, managertest.Options{})
	m := cl.Managers[0]
	w := cl.AddWorker("wrk1")
	as := func(id string, role pki.Role) func(*http.Request) (pki.Identity, bool) {
		return func(*http.Request) (pki.Identity, bool) { return pki.Identity{NodeID: id, Role: role}, true }
	}
	for _, tc := range []struct {
		name string
		h    http.Handler
		want int
		says string
	}{
		{"a worker certificate", m.PeerHandler(as("wrk1", pki.RoleWorker)), 403, "worker certificate may not call"},
		{"the read-only socket", m.ReadOnlyHandler(), 200, ""},
		{"the local socket", m.Handler(), 200, ""},
	} {
		for _, path := range []string{"/v1/events", "/v1/services"} {
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.says) {
				t.Errorf("%s: GET %s = %d %s; want %d saying %q", tc.name, path, rec.Code, strings.TrimSpace(rec.Body.String()), tc.want, tc.says)
			}
		}
	}
	// A worker's own socket: its replica holds no events, and says so.
	if _, err := w.Client.Raw(ctx(t), http.MethodGet, "/v1/events"); !api.IsCode(err, api.CodeInvalid) || !strings.Contains(err.Error(), "ask a manager") {
		t.Errorf("GET /v1/events on a worker's socket = %v, want invalid, saying to ask a manager", err)
	}
}

// The manager counts the events its FSM applied, by type.
func TestEventsAreCounted(t *testing.T) {
	m := managertest.Start(t, managertest.Options{})
	if _, err := m.Client.CreateService(ctx(t), web(1)); err != nil {
		t.Fatal(err)
	}
	updateImage(t, m.Client, "localhost/busybox:2")
	eventually(t, "warren_events_total counts the update", 10*time.Second, func() error {
		raw, err := m.Client.Raw(ctx(t), http.MethodGet, "/metrics")
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(strings.NewReader(string(raw)))
		for sc.Scan() {
			if sc.Text() == `warren_events_total{type="update.started"} 1` {
				return nil
			}
		}
		return fmt.Errorf("no warren_events_total{type=\"update.started\"} 1 in the metrics")
	})
}
