package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// TestLogsSince writes a task's log in steps under a fake clock, samples
// it as logLoop does each second, and checks where ?since cuts the log:
// at the first checkpoint at or after T, at a line start; then again
// after an agent restart (the index read back) and a rotation.
func TestLogsSince(t *testing.T) {
	s := newSocketAgent(t)
	srv := httptest.NewServer(s.a.Handler())
	defer srv.Close()
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	clk := t0
	now := func() time.Time { return clk }
	s.a.logIdx.now = now
	id, path, write := taskLog(t, s.a)
	sample := func(at time.Duration) {
		clk = t0.Add(at)
		if err := s.a.logIdx.sample([]string{path}, nil); err != nil {
			t.Fatal(err)
		}
	}
	get := func(q string) (int, string) {
		resp, err := http.Get(srv.URL + "/v1/tasks/" + id + "/logs?" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	at := func(d time.Duration) string { return url.QueryEscape(api.FormatLogSince(t0.Add(d))) }
	check := func(when, q, want string) {
		t.Helper()
		if code, got := get(q); code != http.StatusOK || got != want {
			t.Errorf("%s: GET logs?%s = %d %q, want 200 %q", when, q, code, got, want)
		}
	}

	write("before\n")
	sample(0)
	write("one\npar") // a line split across a sample
	sample(time.Second)
	write("tial\ntwo\n")
	sample(2 * time.Second)
	write("three\n")
	sample(3 * time.Second)

	all := "before\none\npartial\ntwo\nthree\n"
	for _, tc := range []struct{ q, want string }{
		{"", all},
		{"since=" + at(-time.Hour), all}, // before the index: the whole file
		{"since=" + at(0), "one\npartial\ntwo\nthree\n"},
		{"since=" + at(500*time.Millisecond), "two\nthree\n"}, // "partial" began before T
		{"since=" + at(time.Second), "two\nthree\n"},
		{"since=" + at(1500*time.Millisecond), "three\n"},
		{"since=" + at(3*time.Second), ""},
		{"since=" + at(time.Hour), ""}, // the future: no lines, no error
		{"since=1500ms", "three\n"},    // a duration: back from the agent's now (t0+3s)
		{"since=1h", all},
		{"since=" + at(0) + "&tail=2", "two\nthree\n"},
		{"since=" + at(2*time.Second) + "&tail=5", "three\n"},
	} {
		check("one agent", tc.q, tc.want)
	}
	for _, bad := range []string{"yesterday", "-5m", "2026-12-05 10:00"} {
		code, body := get("since=" + url.QueryEscape(bad))
		var e api.Error
		if code != http.StatusBadRequest || json.Unmarshal([]byte(body), &e) != nil ||
			!strings.Contains(e.Message, "10m") || !strings.Contains(e.Message, "2026-12-05T10:00:00Z") {
			t.Errorf("GET logs?since=%s = %d %q, want 400 naming the forms since takes", bad, code, body)
		}
	}

	// The agent restarts: the index is read back from the .idx file.
	s.a.logIdx = newLogIndexer(now)
	check("after a restart", "since="+at(time.Second), "two\nthree\n")
	write("four\n") // while no agent samples
	sample(10 * time.Second)
	write("five\n")
	sample(11 * time.Second)
	check("after a restart", "since="+at(2*time.Second), "three\nfour\nfive\n")
	check("after a restart", "since="+at(10*time.Second), "five\n")

	// A rotation: the rotated file keeps its index, the log starts anew.
	clk = t0.Add(20 * time.Second)
	if err := s.a.logIdx.rotate(path, 10); err != nil {
		t.Fatal(err)
	}
	if old, err := loadIndex(path + ".1"); err != nil || len(old) != 4 {
		t.Errorf("after a rotation the index of %s.1 holds %v, %v; want the 4 checkpoints of the log before", filepath.Base(path), old, err)
	}
	write("six\n")
	sample(21 * time.Second)
	write("seven\n")
	sample(22 * time.Second)
	check("after a rotation", "since="+at(2*time.Second), "six\nseven\n")
	check("after a rotation", "since="+at(21*time.Second), "seven\n")
}

func TestThinKeepsADayAndOneAMinuteBefore(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	var cps []checkpoint
	for i := 3 * 3600; i > 0; i-- { // one a second for the last 3 hours...
		cps = append(cps, checkpoint{T: now.Add(-time.Duration(i) * time.Second), Off: int64(len(cps))})
	}
	old := []checkpoint{}
	for i := 2 * 24 * 3600; i > 24*3600; i -= 10 { // ...and one each 10 s the day before
		old = append(old, checkpoint{T: now.Add(-time.Duration(i) * time.Second)})
	}
	got := thin(append(old, cps...), now)
	if want := 24*60 + 3*3600; len(got) != want {
		t.Errorf("thin(a day at 1/10 s, 3 h at 1/s) kept %d checkpoints, want %d (one a minute, then all)", len(got), want)
	}
	for i := 1; i < len(got); i++ {
		if !got[i].T.After(got[i-1].T) {
			t.Fatalf("thin returned checkpoints out of order at %d: %v, %v", i, got[i-1].T, got[i].T)
		}
	}
}

// TestLogLoopWakesForWrites runs the log loop on the agent's logs
// directory, with real inotify and a short period: with nothing written
// it does not sample (a quiet node's agent does not wake for its logs); a
// write is sampled within a period, and its checkpoint is at its write
// event, not at the previous sample, so ?since=T finds a line written
// after a quiet stretch that began before T. With the directory gone it
// samples on its clock, and it watches again once the directory is back.
func TestLogLoopWakesForWrites(t *testing.T) {
	s := newSocketAgent(t)
	srv := httptest.NewServer(s.a.Handler())
	defer srv.Close()
	const every = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.a.logLoopEvery(ctx, every, time.Hour, time.Hour); close(done) }()
	defer func() { cancel(); <-done }()

	id, path, write := taskLog(t, s.a)
	passes := func() int64 { return s.a.logPasses.Load() }
	waitPasses := func(n int64, what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); passes() < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d samples, want %d", what, passes(), n)
			}
		}
	}
	quiet := func(what string) {
		t.Helper()
		before := passes()
		time.Sleep(6 * every)
		if n := passes() - before; n > 1 {
			t.Fatalf("%s: %d samples in %v with nothing written", what, n, 6*every)
		}
	}
	// sampled waits until the index has seen the file at p size bytes
	// long.
	sampled := func(p string, size int64, what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			s.a.logIdx.mu.Lock()
			li := s.a.logIdx.files[p]
			got := int64(-1)
			if li != nil {
				got = li.lastSize
			}
			s.a.logIdx.mu.Unlock()
			if got == size {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the index saw %s at %d bytes, want %d", what, filepath.Base(p), got, size)
			}
		}
	}

	quiet("at the start")
	// Another task's log first: the task's own is then new to a loop
	// that has sampled, as it is on a running node.
	_, other, writeOther := taskLog(t, s.a)
	writeOther("other\n")
	sampled(other, 6, "after another task's write")
	write("one\n")
	sampled(path, 4, "after a write")
	quiet("after it") // the sample's own index write wakes nothing

	since := time.Now()
	time.Sleep(2 * logEventSlack)
	write("two\n")
	sampled(path, 8, "after a second write")
	resp, err := http.Get(srv.URL + "/v1/tasks/" + id + "/logs?since=" + url.QueryEscape(api.FormatLogSince(since)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "two\n" {
		t.Errorf("logs?since= a time in the quiet stretch before the second write: %q, want %q", b, "two\n")
	}

	dir := filepath.Dir(path)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	n := passes()
	waitPasses(n+4, "with the logs directory gone (on the clock)")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Once it watches the directory again, the clock no longer wakes it.
	for deadline := time.Now().Add(10 * time.Second); ; {
		before := passes()
		time.Sleep(6 * every)
		if passes()-before <= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with the directory back: still %d samples in %v with nothing written", passes()-before, 6*every)
		}
	}
	write("three\n")
	sampled(path, 6, "after a write in the directory made again")
}

// taskLog is a new task's log file in a's logs directory, and a function
// that appends to it as the shim does.
func taskLog(t *testing.T, a *Agent) (id, path string, write func(text string)) {
	t.Helper()
	id = api.NewID()
	path, err := a.logPath(id)
	if err != nil {
		t.Fatal(err)
	}
	return id, path, func(text string) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(text)
		f.Close()
	}
}

// TestLogLoopCaps: the loop caps the logs with no write to wake it (its
// safety period): a known task's log over the limit is rotated to ID.log.1,
// and the log of a task the agent does not know is removed.
func TestLogLoopCaps(t *testing.T) {
	s := newSocketAgent(t)
	s.a.cfg.LogMaxBytes = 8
	known, knownPath, writeKnown := taskLog(t, s.a)
	_, gonePath, writeGone := taskLog(t, s.a)
	s.a.mu.Lock()
	s.a.tasks[known] = &api.Task{Meta: api.Meta{ID: known}}
	s.a.mu.Unlock()
	writeKnown("more than eight bytes\n")
	writeGone("a task that is gone\n")

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		s.a.logLoopEvery(ctx, 50*time.Millisecond, 50*time.Millisecond, 200*time.Millisecond)
		close(done)
	}()
	defer func() { cancel(); <-done }()

	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		rotated, _ := os.ReadFile(knownPath + ".1")
		_, goneErr := os.Stat(gonePath)
		if string(rotated) == "more than eight bytes\n" && os.IsNotExist(goneErr) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s.1 holds %q (want the log), the unknown task's log: %v (want it removed)", filepath.Base(knownPath), rotated, goneErr)
		}
	}
	if b, err := os.ReadFile(knownPath); err != nil || len(b) != 0 {
		t.Errorf("the rotated log holds %q, %v; want it empty", b, err)
	}
}
