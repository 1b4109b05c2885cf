package cluster

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// HTTPFailure is one request of an HTTPLoad that failed.
type HTTPFailure struct {
	Sent time.Time // when the request started
	At   time.Time // when it failed
	Err  string    // the error, or the status when it was not 200
}

func (f HTTPFailure) String() string {
	return fmt.Sprintf("%s (+%s) %s", f.Sent.Format("15:04:05.000"), f.At.Sub(f.Sent).Round(time.Millisecond), f.Err)
}

// LoadResult is what an HTTPLoad did: requests sent, those that failed,
// and the first failures with their timestamps.
type LoadResult struct {
	wg       sync.WaitGroup
	mu       sync.Mutex
	sent     int
	failed   int
	failures []HTTPFailure  // the first maxFailures
	bodies   map[string]int // answers by body (the first maxBodies bodies)
	answers  []HTTPAnswer   // the first maxAnswers answers
}

// HTTPAnswer is one successful request of an HTTPLoad: when it was sent
// and what answered it.
type HTTPAnswer struct {
	Sent time.Time
	Body string
}

// maxFailures is how many failures a LoadResult keeps, and maxBodies how
// many distinct bodies it counts.
const (
	maxFailures = 20
	maxBodies   = 100
	maxAnswers  = 100000
)

// HTTPLoad sends GET url at rate requests per second until ctx ends, each
// on a new connection made with dial (keep-alives off: every request goes
// through the published port's connection path, e.g. its nftables DNAT).
// It is open-loop: a slow request does not hold the next one back. A
// request fails on an error, a status other than 200, or no answer within
// 2 s. Wait for the result with Wait.
func HTTPLoad(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), url string, rate int) *LoadResult {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	l := &LoadResult{bodies: map[string]int{}}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.one(hc, url)
			}()
		}
	}()
	return l
}

// one sends one request. It is not bound to the load's context: a request
// in flight when the load stops is seen to its end.
func (l *LoadResult) one(hc *http.Client, url string) {
	sent := time.Now()
	var fail string
	var body []byte
	resp, err := hc.Get(url)
	if err != nil {
		fail = err.Error()
	} else {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 256))
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusOK:
			fail = resp.Status
		case err != nil:
			fail = "reading the body: " + err.Error()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent++
	if fail == "" {
		b := strings.TrimSpace(string(body))
		if l.bodies[b] > 0 || len(l.bodies) < maxBodies {
			l.bodies[b]++
		}
		if len(l.answers) < maxAnswers {
			l.answers = append(l.answers, HTTPAnswer{Sent: sent, Body: b})
		}
		return
	}
	l.failed++
	if len(l.failures) < maxFailures {
		l.failures = append(l.failures, HTTPFailure{Sent: sent, At: time.Now(), Err: fail})
	}
}

// Wait waits until the load has stopped (its context ended) and every
// request it sent has ended.
func (l *LoadResult) Wait() *LoadResult {
	l.wg.Wait()
	return l
}

// Sent is the number of requests that ended so far.
func (l *LoadResult) Sent() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent
}

// Failed is the number of them that failed.
func (l *LoadResult) Failed() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Failures are the first failures (up to 20), in the order they ended.
func (l *LoadResult) Failures() []HTTPFailure {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]HTTPFailure(nil), l.failures...)
}

// FailureLines is Failures, one per line, each line starting with a
// newline and indent: for a test's error or a bench's report.
func (l *LoadResult) FailureLines(indent string) string {
	var b strings.Builder
	for _, f := range l.Failures() {
		fmt.Fprintf(&b, "\n%s%s", indent, f)
	}
	return b.String()
}

// Bodies counts the successful answers by their body (trimmed, its first
// 256 bytes; up to 100 distinct bodies): which backends served the load.
func (l *LoadResult) Bodies() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.bodies)
}

// Answers are the successful requests (up to 100,000), ordered by the
// time they were sent.
func (l *LoadResult) Answers() []HTTPAnswer {
	l.mu.Lock()
	out := append([]HTTPAnswer(nil), l.answers...)
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b HTTPAnswer) int { return a.Sent.Compare(b.Sent) })
	return out
}

// WebService is a service of n busybox httpd on the workers, for loads:
// port 8080 published on the ingress port published, an http check on
// it, rolling updates of parallelism 1 in order with a 1 s monitor. Each
// answers "$RELEASE $(hostname)" (RELEASE=1 in its env): a load's Bodies
// say which release and task served it. Its shell stops httpd and exits
// on TERM (httpd as PID 1 would ignore it and wait out the grace period).
func WebService(name string, n uint64, published uint16, order string) api.ServiceSpec {
	one := uint64(1)
	return api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: n,
		Args: []string{"sh", "-c", `mkdir -p /www && echo "$RELEASE $(hostname)" > /www/index.html && ` +
			`httpd -f -p 8080 -h /www & pid=$!; trap 'kill $pid; exit 0' TERM; wait`},
		Env:       []string{"RELEASE=1"},
		Placement: api.Placement{Constraints: []string{"node.role==worker"}},
		Ports:     []api.PortConfig{{Target: 8080, Published: published}},
		HealthCheck: &api.HealthCheck{Type: api.HealthHTTP, Port: 8080, Path: "/",
			Interval: api.Duration(500 * time.Millisecond), Timeout: api.Duration(time.Second), Retries: 2},
		StopGracePeriod: api.Duration(5 * time.Second),
		UpdateConfig: api.UpdateConfig{Parallelism: &one, Order: order, Monitor: api.Duration(time.Second),
			FailureAction: api.FailurePause}}
}
