package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

// The follower's tests run in synctest bubbles: time is fake and moves
// only when every goroutine waits, so timeouts and backoffs are checked
// to the nanosecond without sleeping. The manager is an httptest.Server
// that the test scripts stream by stream, over in-memory connections
// (net.Pipe): a real socket would keep the bubble from ever being idle.

// pipeListener is a net.Listener of in-memory connections.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}
}

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		return nil, errors.New("connection refused")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stream is one watch request the fake manager got; the test answers it.
type stream struct {
	query url.Values
	host  string
	at    time.Time
	reply chan int    // 200 opens the stream, another code refuses, 0 stalls
	lines chan string // closed: the stream ends
}

func (s *stream) open()         { s.reply <- http.StatusOK }
func (s *stream) refuse()       { s.reply <- http.StatusServiceUnavailable }
func (s *stream) stall()        { s.reply <- 0 }
func (s *stream) end()          { close(s.lines) }
func (s *stream) index() string { return s.query.Get("index") }
func (s *stream) send(lines ...api.Event) {
	for _, l := range lines {
		b, _ := json.Marshal(l)
		s.lines <- string(b)
	}
}

type fakeManager struct {
	ts      *httptest.Server
	l       *pipeListener
	streams chan *stream
}

// startManager starts the fake manager in the bubble, over TLS if asked.
// Close the followers first: Cleanup runs in reverse order.
func startManager(t *testing.T, withTLS bool) *fakeManager {
	f := &fakeManager{l: newPipeListener(), streams: make(chan *stream)}
	f.ts = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.ts.Listener.Close()
	f.ts.Listener = f.l
	if withTLS {
		f.ts.StartTLS()
	} else {
		f.ts.Start()
	}
	t.Cleanup(f.ts.Close)
	return f
}

func (f *fakeManager) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/watch" {
		http.NotFound(w, r)
		return
	}
	s := &stream{query: r.URL.Query(), host: r.Host, at: time.Now(), reply: make(chan int), lines: make(chan string, 100)}
	select {
	case f.streams <- s:
	case <-r.Context().Done():
		return
	}
	var code int
	select {
	case code = <-s.reply:
	case <-r.Context().Done():
		return
	}
	switch code {
	case 0:
		<-r.Context().Done()
		return
	case http.StatusOK:
	default:
		http.Error(w, `{"code":"unavailable","message":"not now"}`, code)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				return
			}
			fmt.Fprintln(w, line)
			w.(http.Flusher).Flush()
		case <-r.Context().Done():
			return
		}
	}
}

// next returns the next watch request; time moves on until one comes.
func (f *fakeManager) next(t *testing.T) *stream {
	t.Helper()
	select {
	case s := <-f.streams:
		return s
	case <-time.After(time.Hour):
		t.Fatal("the follower opened no watch within an hour")
		return nil
	}
}

// none says no watch request is waiting.
func (f *fakeManager) none(t *testing.T, when string) {
	t.Helper()
	synctest.Wait()
	select {
	case s := <-f.streams:
		t.Fatalf("%s: the follower opened a watch (index %q)", when, s.index())
	default:
	}
}

// client is a client of the fake manager made as a worker makes its
// own: NewHTTP over a transport of its own.
func (f *fakeManager) client(t *testing.T, base string) *Client {
	t.Helper()
	tr := &http.Transport{DialContext: f.l.dial}
	if cert := f.ts.Certificate(); cert != nil {
		// The test certificate names example.com: the host in base is
		// only an address, as a node ID is for a worker's transport.
		roots := x509.NewCertPool()
		roots.AddCert(cert)
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: "example.com"}
	}
	c, err := NewHTTP(base, &http.Client{Transport: tr})
	if err != nil {
		t.Fatalf("NewHTTP(%q): %v", base, err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// recorder is an apply function that records the batches it gets.
type recorder struct {
	mu   sync.Mutex
	got  []string
	gate chan struct{} // when set, apply waits on it after recording
	fail func(api.WatchBatch) error
}

func (r *recorder) apply(b api.WatchBatch) error {
	r.mu.Lock()
	r.got = append(r.got, batchString(b))
	gate, fail := r.gate, r.fail
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if fail != nil {
		return fail(b)
	}
	return nil
}

func (r *recorder) setGate(gate chan struct{}) { r.mu.Lock(); r.gate = gate; r.mu.Unlock() }

func (r *recorder) setFail(fail func(api.WatchBatch) error) {
	r.mu.Lock()
	r.fail = fail
	r.mu.Unlock()
}

// take returns the batches recorded since the last take, once every
// goroutine waits.
func (r *recorder) take() string {
	synctest.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := strings.Join(r.got, " ")
	r.got = nil
	return s
}

func batchString(b api.WatchBatch) string {
	var ids []string
	for _, e := range b.Events {
		ids = append(ids, fmt.Sprintf("%s%d", e.ID, e.Index))
	}
	s := fmt.Sprintf("@%d[%s]", b.Index, strings.Join(ids, " "))
	if b.Reset {
		s = "reset" + s
	}
	return s
}

// Lines of a watch stream.
func reset(i uint64) api.Event  { return api.Event{Index: i, Op: api.OpReset} }
func synced(i uint64) api.Event { return api.Event{Index: i, Op: api.OpSynced} }
func ping(i uint64) api.Event   { return api.Event{Index: i, Op: api.OpPing} }
func change(i uint64, id string) api.Event {
	return api.Event{Index: i, Op: api.OpUpdate, Kind: api.KindTask, ID: id, Object: []byte(`{"id":"` + id + `"}`)}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// run starts f.Run; the cleanup stops it and checks that it returned
// because its context ended.
func run(t *testing.T, f *Follower, apply func(api.WatchBatch) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, apply) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run after its context ended returned %v; want context.Canceled", err)
		}
		if f.Status().Connected {
			t.Errorf("Status().Connected after Run returned")
		}
	})
}

func TestFollowHandsOutWholeBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startManager(t, true)
		rec := &recorder{}
		f := NewFollower(FollowOptions{Client: m.client(t, "https://n1"), Logger: quiet(),
			Query: WatchQuery{Kinds: []string{api.KindTask}, Worker: "n1"}})
		run(t, f, rec.apply)

		s := m.next(t)
		if got := s.query.Encode(); got != "kind=task&worker=n1" {
			t.Errorf("first watch asked %q; want kind=task&worker=n1 and no index", got)
		}
		if s.host != "n1" {
			t.Errorf("the watch went to host %q; want n1, from NewHTTP's base", s.host)
		}
		s.open()
		// A full resend, split across lines, is one batch at synced.
		s.send(reset(5), change(5, "a"), change(5, "b"))
		if got := rec.take(); got != "" {
			t.Errorf("before synced the follower handed out %s; want nothing", got)
		}
		if st := f.Status(); !st.Connected || st.Index != 0 {
			t.Errorf("during the resend Status() = connected %v index %d; want connected at 0", st.Connected, st.Index)
		}
		s.send(synced(5))
		if got := rec.take(); got != "reset@5[a5 b5]" {
			t.Errorf("after synced the follower handed out %q; want reset@5[a5 b5]", got)
		}
		// Changes wait for the ping that closes their index.
		s.send(change(6, "a"))
		if got := rec.take(); got != "" {
			t.Errorf("before index 6 was closed the follower handed out %s", got)
		}
		s.send(ping(6))
		if got := rec.take(); got != "@6[a6]" {
			t.Errorf("after ping 6 the follower handed out %q; want @6[a6]", got)
		}
		// A burst read while apply is busy is one batch.
		gate := make(chan struct{})
		rec.setGate(gate)
		s.send(change(7, "b"), ping(7))
		synctest.Wait() // apply(@7) waits on the gate
		s.send(change(8, "c"), ping(8), change(9, "d"), change(9, "e"), ping(9))
		synctest.Wait()
		close(gate)
		if got := rec.take(); got != "@7[b7] @9[c8 d9 e9]" {
			t.Errorf("a burst behind a busy apply came out as %q; want @7[b7] @9[c8 d9 e9]", got)
		}
		if st := f.Status(); st.Index != 9 || st.Host != "https://n1" {
			t.Errorf("Status() = index %d host %q; want 9 and https://n1", st.Index, st.Host)
		}
		// A ping without changes moves the resume point without an apply.
		s.send(ping(12))
		if got := rec.take(); got != "" {
			t.Errorf("a bare ping was handed out as %s", got)
		}
		if st := f.Status(); st.Index != 12 {
			t.Errorf("after ping 12 Status().Index = %d; want 12", st.Index)
		}
		s.end()
		if s2 := m.next(t); s2.index() != "12" {
			t.Errorf("the next watch asked index %q; want 12", s2.index())
		}
	})
}

func TestFollowDropsAPartialIndex(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startManager(t, false)
		rec := &recorder{}
		f := NewFollower(FollowOptions{Client: m.client(t, "http://manager"), Logger: quiet()})
		run(t, f, rec.apply)

		s := m.next(t)
		s.open()
		s.send(reset(5), synced(5), change(6, "x"), change(6, "y"), ping(6), change(7, "z"))
		s.end() // mid-index: 7 has more to come
		if got := rec.take(); got != "reset@5[] @6[x6 y6]" {
			t.Errorf("a stream cut inside index 7 handed out %q; want reset@5[] @6[x6 y6], without z7", got)
		}
		ended := time.Now()
		s2 := m.next(t)
		if s2.index() != "6" {
			t.Errorf("after the cut the watch resumed at index %q; want 6, the last whole one", s2.index())
		}
		if d := s2.at.Sub(ended); d != defaultMinBackoff {
			t.Errorf("after a session that made progress the follower waited %s; want MinBackoff %s", d, defaultMinBackoff)
		}
		s2.open()
		s2.send(change(7, "z"), change(7, "w"), ping(7))
		if got := rec.take(); got != "@7[z7 w7]" {
			t.Errorf("the resumed watch handed out %q; want @7[z7 w7]", got)
		}
	})
}

func TestFollowIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startManager(t, false)
		rec := &recorder{}
		f := NewFollower(FollowOptions{Client: m.client(t, "http://manager"), Logger: quiet()})
		run(t, f, rec.apply)

		s := m.next(t)
		s.open()
		s.send(reset(5), change(5, "a"), synced(5))
		rec.take()
		// Pings keep the stream alive past the idle timeout…
		for range 6 {
			time.Sleep(10 * time.Second)
			s.send(ping(5))
		}
		m.none(t, "with a ping every 10s for a minute")
		if st := f.Status(); !st.Connected || time.Since(st.Alive) != 0 {
			t.Errorf("after a ping Status() = connected %v, alive %s ago; want connected and alive now", st.Connected, time.Since(st.Alive))
		}
		// …silence ends it.
		last := time.Now()
		s2 := m.next(t)
		if d := s2.at.Sub(last); d != defaultIdleTimeout+defaultMinBackoff {
			t.Errorf("a silent stream was left after %s; want IdleTimeout+MinBackoff = %s", d, defaultIdleTimeout+defaultMinBackoff)
		}
		if s2.index() != "5" {
			t.Errorf("after the silence the watch resumed at index %q; want 5", s2.index())
		}
		if st := f.Status(); st.Connected || st.Since != last.Add(defaultIdleTimeout) || st.Err == nil || !strings.Contains(st.Err.Error(), "no event nor ping") {
			t.Errorf("between sessions Status() = %+v; want not connected since the timeout, with its error", st)
		}
		s2.open()
		synctest.Wait()
		if st := f.Status(); !st.Connected || st.Since != s2.at {
			t.Errorf("with the new stream open Status() = connected %v since %s; want connected since %s", st.Connected, st.Since, s2.at)
		}
	})
}

func TestFollowBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startManager(t, false)
		f := NewFollower(FollowOptions{Client: m.client(t, "http://manager"), Logger: quiet(),
			MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
		run(t, f, (&recorder{}).apply)

		// Attempt 6 is a session that made progress (a ping), then ends.
		var gaps []string
		var prev time.Time
		for i := 1; i <= 9; i++ {
			s := m.next(t)
			if i > 1 {
				gaps = append(gaps, s.at.Sub(prev).String())
			}
			prev = s.at
			switch i {
			case 6:
				s.open()
				s.send(ping(3))
				s.end()
			case 9:
				s.open()
			default:
				s.refuse()
			}
		}
		want := "100ms 200ms 400ms 800ms 1s 100ms 200ms 400ms"
		if got := strings.Join(gaps, " "); got != want {
			t.Errorf("waits between attempts (5 refused, one ping, 2 refused): %s; want %s", got, want)
		}
	})
}

func TestFollowConnectTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startManager(t, false)
		f := NewFollower(FollowOptions{Client: m.client(t, "http://manager"), Logger: quiet(), ConnectTimeout: 3 * time.Second})
		run(t, f, (&recorder{}).apply)

		s := m.next(t)
		s.stall() // no response headers
		s2 := m.next(t)
		if d := s2.at.Sub(s.at); d != 3*time.Second+defaultMinBackoff {
			t.Errorf("a watch that never opened was given up after %s; want ConnectTimeout+MinBackoff = %s", d, 3*time.Second+defaultMinBackoff)
		}
		if err := f.Status().Err; err == nil || !strings.Contains(err.Error(), "not open after 3s") {
			t.Errorf("Status().Err = %v; want the connect timeout", err)
		}
		s2.open()
	})
}

func TestFollowApplyErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startManager(t, false)
		rec := &recorder{}
		f := NewFollower(FollowOptions{Client: m.client(t, "http://manager"), Logger: quiet(), Query: WatchQuery{Index: 5}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx, rec.apply) }()

		// An error: the batch is read again in the next session.
		rec.setFail(func(b api.WatchBatch) error { return errors.New("disk full") })
		s := m.next(t)
		if s.index() != "5" {
			t.Errorf("the first watch asked index %q; want Query.Index 5", s.index())
		}
		s.open()
		s.send(change(6, "x"), ping(6))
		if got := rec.take(); got != "@6[x6]" {
			t.Errorf("handed out %q; want @6[x6]", got)
		}
		rec.setFail(nil)
		s2 := m.next(t)
		if s2.index() != "5" {
			t.Errorf("after apply failed at 6 the watch resumed at %q; want 5", s2.index())
		}
		if err := f.Status().Err; err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Errorf("Status().Err = %v; want the apply error", err)
		}
		s2.open()
		s2.send(change(6, "x"), ping(6))
		if got := rec.take(); got != "@6[x6]" {
			t.Errorf("the batch read again came out as %q; want @6[x6]", got)
		}
		// An error that wraps ErrStopFollowing ends Run with it.
		rec.setFail(func(b api.WatchBatch) error { return fmt.Errorf("replica: wrong cluster: %w", ErrStopFollowing) })
		s2.send(change(7, "y"), ping(7))
		select {
		case err := <-done:
			if !errors.Is(err, ErrStopFollowing) || !strings.Contains(err.Error(), "wrong cluster") {
				t.Errorf("Run returned %v; want the apply error with ErrStopFollowing", err)
			}
		case <-time.After(time.Hour):
			t.Fatal("Run went on after apply asked it to stop")
		}
		if st := f.Status(); st.Index != 6 || st.Connected {
			t.Errorf("after the stop Status() = index %d connected %v; want 6, not connected", st.Index, st.Connected)
		}
		m.none(t, "after Run returned")
	})
}

func TestFollowPicksAClientPerSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := startManager(t, false)
		clients := []*Client{m.client(t, "http://m1"), m.client(t, "http://m2")}
		picks := 0
		f := NewFollower(FollowOptions{Logger: quiet(), Pick: func() (*Client, error) {
			picks++
			if picks == 3 {
				return nil, errors.New("no manager known")
			}
			return clients[picks%2], nil
		}})
		run(t, f, (&recorder{}).apply)

		var hosts []string
		for range 3 {
			s := m.next(t)
			hosts = append(hosts, s.host)
			s.open()
			synctest.Wait()
			if st := f.Status(); st.Host != "http://"+s.host {
				t.Errorf("Status().Host = %q with a stream open to %s", st.Host, s.host)
			}
			s.end()
		}
		synctest.Wait()
		if got := strings.Join(hosts, " "); got != "m2 m1 m1" || picks != 4 {
			t.Errorf("sessions went to %s after %d picks; want m2 m1 m1 (the third pick failed) after 4", got, picks)
		}
	})
}

func TestFollowNeedsASource(t *testing.T) {
	err := NewFollower(FollowOptions{Logger: quiet()}).Run(context.Background(), func(api.WatchBatch) error { return nil })
	if err == nil {
		t.Error("Run without Client or Pick returned nil; want an error")
	}
}

func TestNewHTTP(t *testing.T) {
	hc := &http.Client{}
	for _, c := range []struct {
		base, want string
	}{
		{"https://n1", "https://n1"},
		{"http://10.0.0.1:4243/ignored", "http://10.0.0.1:4243"},
		{"unix:///run/warren/api.sock", ""},
		{"n1", ""},
		{"https://", ""},
	} {
		got, err := NewHTTP(c.base, hc)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("NewHTTP(%q) = %s; want an error", c.base, got.base)
		case c.want != "" && (err != nil || got.base != c.want || got.hc != hc):
			t.Errorf("NewHTTP(%q) = %v, %v; want base %s over the given client", c.base, got, err, c.want)
		}
	}
	if _, err := NewHTTP("https://n1", nil); err == nil {
		t.Error("NewHTTP without an http.Client succeeded")
	}
}
