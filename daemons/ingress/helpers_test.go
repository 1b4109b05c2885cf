package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

// loopbackBackends starts n HTTP servers on 127.0.0.2, 127.0.0.3, …,
// all on one port (a route has one port), and returns that port and the
// servers' IPs. The servers stop with the test.
func loopbackBackends(t testing.TB, n int, h http.Handler) (uint16, []string) {
	t.Helper()
	for try := 0; try < 20; try++ {
		first, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{first}
		ok := true
		for i := 1; i < n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", i+2, port))
			if err != nil {
				ok = false
				break
			}
			ls = append(ls, l)
		}
		if !ok {
			for _, l := range ls {
				l.Close()
			}
			continue
		}
		var ips []string
		for i, l := range ls {
			srv := &http.Server{Handler: h}
			go srv.Serve(l)
			t.Cleanup(func() { srv.Close() })
			ips = append(ips, fmt.Sprintf("127.0.0.%d", i+2))
		}
		return uint16(port), ips
	}
	t.Fatal("no common free port on 127.0.0.2.. for the backends")
	return 0, nil
}

// deadAddr is a loopback IP:port nothing listens on (connections are
// refused at once).
func deadIP(t testing.TB, port uint16) string {
	t.Helper()
	for i := 200; i < 250; i++ {
		ip := fmt.Sprintf("127.0.0.%d", i)
		c, err := net.Dial("tcp", net.JoinHostPort(ip, strconv.Itoa(int(port))))
		if err != nil {
			return ip
		}
		c.Close()
	}
	t.Fatal("no dead loopback address")
	return ""
}

// tableFor builds a table of one service with the routes and a task per
// IP.
func tableFor(ips []string, routes ...api.IngressRoute) *Table {
	var tasks []*api.Task
	for i, ip := range ips {
		tasks = append(tasks, task("t"+strconv.Itoa(i), "s1", "n1", ip))
	}
	return BuildTable(TableOptions{NodeID: "n1"}, []*api.Service{svc("s1", "web", routes...)}, tasks)
}

// startPlain runs ServePlain for p on a loopback listener until the test
// ends; it returns the listener's address.
func startPlain(t testing.TB, p *Proxy, behindLB bool, trusted []netip.Prefix) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServePlain(ctx, l, p, behindLB, trusted) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServePlain: %v", err)
		}
	})
	return l.Addr().String()
}

// get does a request and returns the response with its body read.
func do(t testing.TB, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return resp, string(b)
}

func newReq(t testing.TB, method, url, host string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	return req
}

func ptr[T any](v T) *T { return &v }

// clientTo is an HTTP client whose connections all go to addr, whatever
// the URL's host; it does not follow redirects.
func clientTo(t testing.TB, addr string) *http.Client {
	d := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// seen is what the echo backend saw of a request.
type seen struct {
	Method, Path, RawPath, URI, Host string
	XFF, XFP, XFH, RealIP, Backend   string
	Header                           http.Header
}

// echo answers each request with what it saw, as JSON; name tells the
// backends apart.
func echo(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s := seen{
			Method: r.Method, Path: r.URL.Path, RawPath: r.URL.RawPath, URI: r.RequestURI, Host: r.Host,
			XFF: r.Header.Get("X-Forwarded-For"), XFP: r.Header.Get("X-Forwarded-Proto"),
			XFH: r.Header.Get("X-Forwarded-Host"), RealIP: r.Header.Get("X-Real-IP"),
			Backend: name, Header: r.Header,
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Backend-Secret", "internal")
		json.NewEncoder(w).Encode(s)
	})
}

func decodeSeen(t testing.TB, body string) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("backend answer %q: %v", body, err)
	}
	return s
}

// syncBuffer is a bytes.Buffer for an access log written by several
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines are the JSON lines written so far.
func (s *syncBuffer) lines(t testing.TB) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(s.b.Bytes()), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("access log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}
