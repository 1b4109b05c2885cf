package ingress

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warren-edge/warren/daemons/api"
)

// TestProxyRetries: a GET that could not connect goes to another
// backend; a POST does not.
func TestProxyRetries(t *testing.T) {
	var posts atomic.Int32
	live := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			posts.Add(1)
		}
		io.WriteString(w, "live")
	})
	port, ips := loopbackBackends(t, 1, live)
	dead := deadIP(t, port)
	log := &syncBuffer{}
	p := New(Config{EjectAfter: 1 << 20, AccessLog: AccessLog{Writer: log}}) // no ejection here
	p.SetTable(tableFor([]string{ips[0], dead}, api.IngressRoute{Host: "web.example", Port: port}))
	c := clientTo(t, startPlain(t, p, false, nil))

	const n = 30
	for i := range n {
		resp, body := do(t, c, newReq(t, "GET", "http://web.example/", "", nil))
		if resp.StatusCode != 200 || body != "live" {
			t.Fatalf("GET %d with a dead backend beside a live one: %d %q, want 200 live", i, resp.StatusCode, body)
		}
	}
	retried := testutil.ToFloat64(p.metrics.upstream.WithLabelValues("web.example/"))
	if retried == 0 {
		t.Fatalf("%d GETs never picked the dead backend (upstream errors 0)", n)
	}
	failed := 0
	for range n {
		resp, _ := do(t, c, newReq(t, "POST", "http://web.example/", "", strings.NewReader("order")))
		switch resp.StatusCode {
		case 200:
		case 502:
			failed++
		default:
			t.Fatalf("POST: %d, want 200 or 502", resp.StatusCode)
		}
	}
	if failed == 0 || int(posts.Load())+failed != n {
		t.Errorf("%d POSTs: %d reached the live backend and %d failed with 502; want some failed and none retried (sum %d)", n, posts.Load(), failed, n)
	}
	errLines := 0
	lines := log.lines(t)
	for _, l := range lines {
		if l["status"].(float64) == 502 {
			errLines++
			if l["backend"] != dead+":"+itoa(port) || l["error"] == nil {
				t.Errorf("access log of a 502: %v, want the dead backend and the error", l)
			}
		}
	}
	if errLines != failed || len(lines) != failed {
		t.Errorf("access log has %d lines, %d of them 502s, with sample rate 0; want %d, only the 502s (errors are always logged)", len(lines), errLines, failed)
	}
}

// TestProxyEjection: a backend that keeps failing is ejected and tried
// no more; the last backend of a route is never ejected.
func TestProxyEjection(t *testing.T) {
	port, ips := loopbackBackends(t, 1, echo("live"))
	dead := deadIP(t, port)
	p := New(Config{EjectAfter: 3, MaxAttempts: 2})
	p.SetTable(tableFor([]string{ips[0], dead}, api.IngressRoute{Host: "web.example", Port: port}))
	c := clientTo(t, startPlain(t, p, false, nil))
	errs := func() float64 { return testutil.ToFloat64(p.metrics.upstream.WithLabelValues("web.example/")) }
	for i := 0; errs() < 3; i++ {
		if i > 500 {
			t.Fatalf("500 GETs tried the dead backend only %v times", errs())
		}
		if resp, _ := do(t, c, newReq(t, "GET", "http://web.example/", "", nil)); resp.StatusCode != 200 {
			t.Fatalf("GET: %d, want 200", resp.StatusCode)
		}
	}
	for range 50 {
		do(t, c, newReq(t, "GET", "http://web.example/", "", nil))
	}
	if got := errs(); got != 3 {
		t.Errorf("upstream errors after the dead backend's 3rd failure and 50 GETs more: %v, want 3 (ejected)", got)
	}

	// only dead backends: at most one of two ejected, the route still tries
	dead2 := deadIP(t, port+1)
	p.SetTable(tableFor([]string{dead, dead2}, api.IngressRoute{Host: "dead.example", Port: port + 1}))
	for range 20 {
		if resp, _ := do(t, c, newReq(t, "GET", "http://dead.example/", "", nil)); resp.StatusCode != 502 {
			t.Fatalf("GET of a route whose backends are all dead: %d, want 502", resp.StatusCode)
		}
	}
	ts := p.state.Load()
	in := 0
	for _, b := range ts.routes[ts.table.Routes()[0]].backends {
		if !b.ejected(time.Now()) {
			in++
		}
	}
	if in == 0 {
		t.Error("every backend of a route was ejected, want the last one kept")
	}
}

func TestOutlierDoubling(t *testing.T) {
	o := outlier{after: 2, base: 30 * time.Second, max: 5 * time.Minute}
	a, b := &backend{addr: "a"}, &backend{addr: "b"}
	route := []*backend{a, b}
	now := time.Unix(1000, 0)
	var periods []time.Duration
	for range 6 {
		if o.failed(a, route, now) {
			t.Fatal("ejected after 1 failure, want 2")
		}
		if !o.failed(a, route, now) {
			t.Fatal("not ejected after 2 failures")
		}
		periods = append(periods, a.ejectedUntil.Sub(now))
		now = a.ejectedUntil
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute}
	for i := range want {
		if periods[i] != want[i] {
			t.Fatalf("ejection periods %v, want %v", periods, want)
		}
	}
	// b fails too while a is out: b is the last one in, it stays
	o.failed(b, route, now.Add(-time.Second))
	if o.failed(b, route, now.Add(-time.Second)) {
		t.Error("the last backend in was ejected")
	}
}

// TestProxyTableSwapKeepsStreams: a table swap that removes the route,
// or changes its backend, does not cut a response being streamed.
func TestProxyTableSwapKeepsStreams(t *testing.T) {
	release := make(chan struct{})
	streaming := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "second\n")
	})
	port, ips := loopbackBackends(t, 1, streaming)
	port2, ips2 := loopbackBackends(t, 1, echo("new"))
	p := New(Config{})
	p.SetTable(tableFor(ips, api.IngressRoute{Host: "web.example", Port: port}))
	c := clientTo(t, startPlain(t, p, false, nil))
	for _, swap := range []func(){
		func() { p.SetTable(BuildTable(TableOptions{}, nil, nil)) },
		func() { p.SetTable(tableFor(ips2, api.IngressRoute{Host: "web.example", Port: port2})) },
	} {
		p.SetTable(tableFor(ips, api.IngressRoute{Host: "web.example", Port: port}))
		resp, err := c.Do(newReq(t, "GET", "http://web.example/stream", "", nil))
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(resp.Body)
		if line, err := br.ReadString('\n'); line != "first\n" {
			t.Fatalf("first line of the stream %q, %v", line, err)
		}
		swap()
		release <- struct{}{}
		rest, err := io.ReadAll(br)
		resp.Body.Close()
		if err != nil || string(rest) != "second\n" {
			t.Errorf("rest of the stream after a table swap: %q, %v; want \"second\\n\"", rest, err)
		}
	}
	// new requests follow the new table
	resp, body := do(t, c, newReq(t, "GET", "http://web.example/", "", nil))
	if resp.StatusCode != 200 || decodeSeen(t, body).Backend != "new" {
		t.Errorf("GET after the swap: %d %q, want the new backend", resp.StatusCode, body)
	}
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

// TestProxyTimeout: a backend that does not answer within
// ResponseHeaderTimeout gets the request a 504, and counts as failed.
func TestProxyTimeout(t *testing.T) {
	stuck := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	port, ips := loopbackBackends(t, 1, stuck)
	p := New(Config{ResponseHeaderTimeout: 50 * time.Millisecond})
	p.SetTable(tableFor(ips, api.IngressRoute{Host: "web.example", Port: port}))
	c := clientTo(t, startPlain(t, p, false, nil))
	resp, body := do(t, c, newReq(t, "GET", "http://web.example/", "", nil))
	if resp.StatusCode != 504 {
		t.Errorf("GET of a stuck backend: %d %q, want 504", resp.StatusCode, body)
	}
	if got := testutil.ToFloat64(p.metrics.upstream.WithLabelValues("web.example/")); got != 1 {
		t.Errorf("upstream errors after a timeout: %v, want 1", got)
	}
}
