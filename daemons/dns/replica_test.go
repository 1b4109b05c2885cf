package dns

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// fakeManager serves /v1/watch: each watch request is handed to the test,
// which writes its lines.
type fakeManager struct {
	srv   *httptest.Server
	conns chan *watchConn
}

type watchConn struct {
	query string // index=…&kind=…
	index string
	lines chan string // closed: the stream ends
}

func startFakeManager(t *testing.T) *fakeManager {
	f := &fakeManager{conns: make(chan *watchConn, 10)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/watch" {
			http.NotFound(w, r)
			return
		}
		c := &watchConn{query: r.URL.RawQuery, index: r.URL.Query().Get("index"), lines: make(chan string, 100)}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		f.conns <- c
		for {
			select {
			case line, ok := <-c.lines:
				if !ok {
					return
				}
				fmt.Fprintln(w, line)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeManager) next(t *testing.T) *watchConn {
	t.Helper()
	select {
	case c := <-f.conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("the replica did not open a watch")
		return nil
	}
}

func event(index uint64, op, kind string, obj interface{ GetID() string }) string {
	ev := api.Event{Index: index, Op: op, Kind: kind}
	if obj != nil {
		ev.ID = obj.GetID()
		ev.Object, _ = json.Marshal(obj)
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

type svcObj struct{ *api.Service }

func (s svcObj) GetID() string                { return s.ID }
func (s svcObj) MarshalJSON() ([]byte, error) { return json.Marshal(s.Service) }

type taskObj struct{ *api.Task }

func (t taskObj) GetID() string                { return t.ID }
func (t taskObj) MarshalJSON() ([]byte, error) { return json.Marshal(t.Task) }

// answers polls the table until name A answers want (sorted), or fails.
func waitAnswers(t *testing.T, r *Replica, name string, want ...string) {
	t.Helper()
	var got []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if got = lookupA(r.Table(), name); slices.Equal(got, want) {
			return
		}
	}
	t.Fatalf("%s A answered %v; want %v", name, got, want)
}

func lookupA(tb *Table, name string) []string {
	ans, _ := tb.Lookup(dns.Question{Name: name, Qtype: dns.TypeA, Qclass: dns.ClassINET})
	got := addrsOf(ans.Records)
	slices.Sort(got)
	return got
}

func TestReplicaFollowsTheWatch(t *testing.T) {
	fm := startFakeManager(t)
	c, err := client.New(fm.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReplica(ReplicaConfig{API: c, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		IdleTimeout: 500 * time.Millisecond, Logger: quiet()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	web := service("s-web", "web", "")
	t1 := runningTask("t1", web, 1, "n1", "10.0.0.1", "healthy")
	t2 := runningTask("t2", web, 2, "n1", "10.0.0.2", "")
	t3 := runningTask("t3", web, 3, "n1", "10.0.0.3", "")

	// First watch: everything, as reset … synced.
	w1 := fm.next(t)
	if w1.index != "" || w1.query != "kind=service%2Ctask" {
		t.Errorf("first watch asked %q; want kinds service and task from the start", w1.query)
	}
	w1.lines <- event(5, api.OpReset, "", nil)
	w1.lines <- event(5, api.OpCreate, api.KindService, svcObj{web})
	w1.lines <- event(5, api.OpCreate, api.KindTask, taskObj{t1})
	w1.lines <- event(5, api.OpSynced, "", nil)
	select {
	case <-r.Synced():
	case <-time.After(5 * time.Second):
		t.Fatal("Synced() not closed after a synced line")
	}
	waitAnswers(t, r, "web.warren.internal.", "10.0.0.1")
	// Index 6 is whole once the manager's ping after it says so.
	w1.lines <- event(6, api.OpCreate, api.KindTask, taskObj{t2})
	w1.lines <- event(6, api.OpPing, "", nil)
	waitAnswers(t, r, "web.warren.internal.", "10.0.0.1", "10.0.0.2")
	w1.lines <- event(9, api.OpPing, "", nil)

	// The stream ends: the table stays, and the replica resumes after
	// the last index it saw (the ping's).
	close(w1.lines)
	w2 := fm.next(t)
	if w2.index != "9" {
		t.Errorf("the watch reopened at index %q; want 9", w2.index)
	}
	if got := lookupA(r.Table(), "web.warren.internal."); len(got) != 2 {
		t.Errorf("between watches web answered %v; want the last state", got)
	}

	// A full resend is swapped in whole at synced.
	w2.lines <- event(20, api.OpReset, "", nil)
	w2.lines <- event(20, api.OpCreate, api.KindService, svcObj{web})
	w2.lines <- event(20, api.OpCreate, api.KindTask, taskObj{t3})
	time.Sleep(100 * time.Millisecond)
	if got := lookupA(r.Table(), "web.warren.internal."); len(got) != 2 {
		t.Errorf("during a resend web answered %v; want the last whole state until synced", got)
	}
	w2.lines <- event(20, api.OpSynced, "", nil)
	waitAnswers(t, r, "web.warren.internal.", "10.0.0.3")
	if r.Table().Index() != 20 {
		t.Errorf("table index %d after synced at 20", r.Table().Index())
	}

	// Health changes and deletes.
	t3u := *t3
	t3u.Status.Health = "unhealthy"
	w2.lines <- event(21, api.OpUpdate, api.KindTask, taskObj{&t3u})
	w2.lines <- event(21, api.OpPing, "", nil)
	waitAnswers(t, r, "web.warren.internal.")
	w2.lines <- event(22, api.OpDelete, api.KindTask, taskObj{&t3u})
	w2.lines <- event(22, api.OpPing, "", nil)
	waitAnswers(t, r, "web.3.t3.warren.internal.")

	// Silence past IdleTimeout: the replica reconnects by itself.
	w3 := fm.next(t)
	if w3.index != "22" {
		t.Errorf("after silence the watch reopened at index %q; want 22", w3.index)
	}
	for deadline := time.Now().Add(5 * time.Second); !r.Connected() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if !r.Connected() {
		t.Errorf("Connected() false with a watch open")
	}

	// The manager goes away: the loop keeps trying and is alive.
	close(w3.lines)
	fm.srv.CloseClientConnections()
	fm.srv.Config.SetKeepAlivesEnabled(false)
	fm.srv.Listener.Close()
	time.Sleep(300 * time.Millisecond)
	if r.Connected() {
		t.Errorf("Connected() true with the manager gone")
	}
	if err := r.Alive(time.Second); err != nil {
		t.Errorf("Alive while reconnecting: %v", err)
	}
	if tb := r.Table(); tb.Index() != 22 {
		t.Errorf("with the manager gone the table is at index %d; want the last, 22", tb.Index())
	}
}

// TestSetUnreachableRebuilds: the mesh's word on a node rebuilds the
// table at once, without waiting for a watch batch, and back again.
func TestSetUnreachableRebuilds(t *testing.T) {
	r := NewReplica(ReplicaConfig{Logger: quiet()})
	services, tasks := testCluster()
	var evs []api.Event
	for _, s := range services {
		raw, _ := json.Marshal(s)
		evs = append(evs, api.Event{Op: api.OpCreate, Kind: api.KindService, ID: s.ID, Object: raw})
	}
	for _, tk := range tasks {
		raw, _ := json.Marshal(tk)
		evs = append(evs, api.Event{Op: api.OpCreate, Kind: api.KindTask, ID: tk.ID, Object: raw})
	}
	r.apply(api.WatchBatch{Reset: true, Index: 7, Events: evs})
	count := func() int { _, _, h := r.Table().Counts(); return h }
	before := count()
	r.SetUnreachable([]string{"n2"})
	if got := count(); got >= before || r.Table().Index() != 7 {
		t.Errorf("with n2 out of reach: %d tasks answered (was %d), index %d", got, before, r.Table().Index())
	}
	r.SetUnreachable(nil)
	if got := count(); got != before {
		t.Errorf("n2 back: %d tasks answered, want %d", got, before)
	}
}
