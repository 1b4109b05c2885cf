package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/pki"
)

// TestSecurity: each way in that is not allowed is refused, with an error
// that says why, and leaves nothing behind.
func TestSecurity(t *testing.T) {
	t.Parallel() // mostly waits for a token to expire
	c := startCluster(t, 3, 2)
	ctx := ctxFor(t, 3*time.Minute)
	m1, w1, w2 := c.Host("m1"), c.Host("w1"), c.Host("w2")
	x, err := c.AddHost("x") // a device trying to join
	if err != nil {
		t.Fatal(err)
	}
	cl, err := c.AddHost("client") // the test's remote clients
	if err != nil {
		t.Fatal(err)
	}

	// A token that expires in a minute, checked last. Making it revokes
	// the worker tokens before it.
	t1, err := c.Token(ctx, api.RoleWorker)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := m1.Client.JoinToken(ctx, api.RoleWorker, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	t3, err := m1.Client.JoinToken(ctx, api.RoleWorker, true, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if t3.ExpiresAt.IsZero() {
		t.Fatalf("a token made with a ttl of 1m has no expiry: %+v", t3)
	}
	nodesBefore := nodeIDs(ctx, t, m1)

	// join tries to join x with token and returns how the attempt ended.
	join := func(t *testing.T, token string) (joined bool, out string) {
		t.Helper()
		if x.Manager != nil {
			x.Manager.Stop(5 * time.Second)
		}
		os.RemoveAll(filepath.Join(x.Dir, "data"))
		if err := x.StartManager("--join", m1.Addr, "--token", token); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			if exited, _ := x.Manager.Exited(); exited {
				return false, lastRun(x.Manager.Log())
			}
			if h := x.Client.Health(ctx); h == nil {
				return true, lastRun(x.Manager.Log())
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("joining with %.20s… neither failed nor succeeded in 30 s:\n%s", token, lastRun(x.Manager.Log()))
		return false, ""
	}
	refused := func(t *testing.T, token, want string) {
		t.Helper()
		joined, out := join(t, token)
		if joined {
			t.Fatalf("x joined with a bad token:\n%s", out)
		}
		if !strings.Contains(out, want) {
			t.Errorf("the refused join says:\n%s\nwant it to say %q", out, want)
		} else {
			t.Logf("refused: %s", lastLine(out))
		}
		if _, err := os.Stat(filepath.Join(x.Dir, "data", "tls", "node.crt")); err == nil {
			t.Errorf("x holds a node certificate after a refused join")
		}
		if got := nodeIDs(ctx, t, m1); !slices.Equal(got, nodesBefore) {
			t.Errorf("the nodes changed on a refused join: before %v, after %v", nodesBefore, got)
		}
	}
	parts := strings.Split(t1, "-") // WRN 1 w <ca digest> <id> <secret>
	if len(parts) != 6 {
		t.Fatalf("token %.12s… has %d parts", t1, len(parts))
	}
	with := func(i int, v string) string {
		p := slices.Clone(parts)
		p[i] = v
		return strings.Join(p, "-")
	}

	t.Run("tokens", func(t *testing.T) {
		t.Run("malformed", func(t *testing.T) { refused(t, "WRN-1-w-garbage", "the join token is malformed") })
		t.Run("wrong secret", func(t *testing.T) {
			refused(t, with(5, strings.Repeat("a", len(parts[5]))), "the join token's secret is wrong")
		})
		t.Run("unknown id", func(t *testing.T) {
			refused(t, with(4, strings.Repeat("a", len(parts[4]))), "the join token is not known to the cluster")
		})
		t.Run("worker token made a manager token", func(t *testing.T) {
			refused(t, with(2, "m"), "the join token's kind is not the kind it was issued with")
		})
		t.Run("another cluster's CA", func(t *testing.T) {
			refused(t, with(3, strings.Repeat("a", len(parts[3]))), "is not of the cluster this token was made for")
		})
		t.Run("rotated out", func(t *testing.T) {
			refused(t, t1, "the join token was revoked")
			refused(t, t2.Token, "the join token was revoked") // by the ttl token
		})
	})

	secretTaskOnW2, ownTaskOnW1 := placeSecrets(ctx, t, c)

	t.Run("node port without a certificate", func(t *testing.T) {
		hc := nodePortClient(cl, &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		for _, path := range []string{"/v1/services", "/v1/tasks", "/v1/nodes", "/v1/join-tokens", "/v1/watch"} {
			code, e := call(ctx, hc, http.MethodGet, m1, path, nil)
			if code != http.StatusForbidden || !strings.Contains(e, "needs a node certificate of this cluster") {
				t.Errorf("GET %s without a certificate: %d %q, want 403 saying a node certificate is needed", path, code, e)
			}
		}
		code, e := call(ctx, hc, http.MethodPost, m1, "/v1/services", idle("intruder", nil))
		if code != http.StatusForbidden {
			t.Errorf("POST /v1/services without a certificate: %d %q, want 403", code, e)
		}
		t.Logf("refused: %s", e)
	})

	t.Run("node port with a foreign certificate", func(t *testing.T) {
		cfg := foreignCert(t)
		hc := nodePortClient(cl, cfg)
		code, e := call(ctx, hc, http.MethodGet, m1, "/v1/services", nil)
		if code != 0 && code != http.StatusForbidden {
			t.Fatalf("GET /v1/services with another cluster's certificate: %d %q, want a TLS refusal or 403", code, e)
		}
		if code == 0 && !strings.Contains(e, "certificate") {
			t.Errorf("the TLS refusal %q does not name the certificate", e)
		}
		t.Logf("refused: %d %s", code, e)
		// The same for Raft.
		if err := raftHello(ctx, cl, m1, cfg); err == nil {
			t.Errorf("a foreign certificate got a Raft connection")
		}
	})

	t.Run("worker certificate", func(t *testing.T) {
		cfg := nodeCert(t, w1)
		hc := nodePortClient(cl, cfg)
		// Manager-only endpoints.
		for _, ep := range []struct{ method, path string }{
			{http.MethodGet, "/v1/services"},
			{http.MethodGet, "/v1/services/secret-w2"},
			{http.MethodGet, "/v1/tasks"},
			{http.MethodGet, "/v1/tasks?node=" + w2.NodeID()},
			{http.MethodGet, "/v1/tasks/" + secretTaskOnW2.ID},
			{http.MethodGet, "/v1/nodes"},
			{http.MethodGet, "/v1/join-tokens"},
			{http.MethodPost, "/v1/join-tokens/manager"},
			{http.MethodPost, "/v1/services"},
			{http.MethodPost, "/v1/nodes/" + w1.NodeID() + "/promote"},
			{http.MethodPost, "/v1/nodes/" + w2.NodeID() + "/heartbeat"},
			{http.MethodPost, "/v1/nodes/" + w2.NodeID() + "/journal"},
			{http.MethodPost, "/v1/internal/command"},
			// The KEK and what it opens are for managers and admins.
			{http.MethodGet, "/v1/internal/kek"},
			{http.MethodGet, "/v1/unlock-key"},
			{http.MethodGet, "/v1/keys/check"},
			{http.MethodPost, "/v1/unlock"},
			{http.MethodPut, "/v1/autolock?enabled=false"},
		} {
			code, e := call(ctx, hc, ep.method, m1, ep.path, struct{}{})
			if code != http.StatusForbidden || !strings.Contains(e, "a worker certificate may not call") {
				t.Errorf("%s %s with w1's certificate: %d %q, want 403 saying a worker may not", ep.method, ep.path, code, e)
			}
		}
		// Its own heartbeat it may send (the control for the above).
		if code, e := call(ctx, hc, http.MethodPost, m1, "/v1/nodes/"+w1.NodeID()+"/heartbeat", api.Heartbeat{}); code != http.StatusOK {
			t.Errorf("w1's own heartbeat with its certificate: %d %q", code, e)
		}
		// Raft is for managers.
		if err := raftHello(ctx, cl, m1, cfg); err == nil {
			t.Errorf("w1's certificate got a Raft connection")
		}
		// Renewal gives it a worker certificate again, never a manager's.
		csr := renewCSR(t, w1)
		code, body := callRaw(ctx, hc, http.MethodPost, m1, "/v1/certs/renew", api.RenewRequest{CSR: csr})
		var rr api.RenewResponse
		if code != http.StatusOK || json.Unmarshal(body, &rr) != nil || rr.Role != api.RoleWorker {
			t.Errorf("renewal with w1's certificate: %d %s, want a worker certificate", code, body)
		}
	})

	t.Run("worker reports another node's task", func(t *testing.T) {
		hc := nodePortClient(cl, nodeCert(t, w1))
		forged := func(node string, task api.Task, addr string) api.TaskStatusRequest {
			return api.TaskStatusRequest{NodeID: node, Updates: []api.TaskStatusUpdate{{TaskID: task.ID,
				Status: api.TaskStatus{State: api.TaskRunning, Health: "healthy", Message: "forged by w1", Addr: addr}}}}
		}
		follower := followerOf(ctx, t, c)
		// Every way in: straight to the leader, through a follower (which
		// passes it on under its own certificate), and through w2's own
		// manager (which relays its node's reports as w2).
		for _, via := range []*Host{leaderOf(ctx, t, c), follower, w2} {
			for _, attempt := range []struct {
				what string
				path string
				body api.TaskStatusRequest
			}{
				{"w2's task under w2's path", "/v1/nodes/" + w2.NodeID() + "/tasks/status", forged(w2.NodeID(), secretTaskOnW2, "")},
				{"w2's task under w1's path", "/v1/nodes/" + w1.NodeID() + "/tasks/status", forged(w1.NodeID(), secretTaskOnW2, "")},
				{"w2's task, body naming w2, under w1's path", "/v1/nodes/" + w1.NodeID() + "/tasks/status", forged(w2.NodeID(), secretTaskOnW2, "")},
				{"its own task at an address outside its subnet", "/v1/nodes/" + w1.NodeID() + "/tasks/status", forged(w1.NodeID(), ownTaskOnW1, "6.6.6.6")},
			} {
				code, e := call(ctx, hc, http.MethodPost, via, attempt.path, attempt.body)
				for _, task := range []api.Task{secretTaskOnW2, ownTaskOnW1} {
					tk, err := leaderOf(ctx, t, c).Client.Task(ctx, task.ID)
					if err != nil {
						t.Fatal(err)
					}
					if tk.Status.Message == "forged by w1" || tk.Status.Addr == "6.6.6.6" {
						t.Errorf("w1's certificate, through %s, %s: %d %q; task %s now has addr %q, message %q "+
							"(want it untouched: a worker reports only its own tasks, at addresses in its own subnet)",
							via.Name, attempt.what, code, e, tk.ID, tk.Status.Addr, tk.Status.Message)
					}
				}
				if code == http.StatusOK && !strings.Contains(e, "skipped") {
					t.Errorf("w1's certificate, through %s, %s: 200 %q: the refusal should say what was skipped", via.Name, attempt.what, e)
				}
				t.Logf("through %s, %s: %d %s", via.Name, attempt.what, code, lastLine(e))
			}
		}
		// w2's task still resolves to w2's own address in the managers' state.
		if tk, err := m1.Client.Task(ctx, secretTaskOnW2.ID); err != nil || tk.Status.Addr != secretTaskOnW2.Status.Addr {
			t.Errorf("w2's task after the attempts: %v, addr %q, want %q", err, tk.Status.Addr, secretTaskOnW2.Status.Addr)
		}
	})

	t.Run("worker watch is node-scoped", func(t *testing.T) {
		hc := nodePortClient(cl, nodeCert(t, w1))
		for i, q := range []string{"", "?worker=" + w2.NodeID(), "?node=" + w2.NodeID()} {
			lines := watchLines(ctx, t, hc, m1, "/v1/watch"+q, func() {
				if _, err := m1.Client.CreateService(ctx, withEnv(onNode(fmt.Sprintf("late-secret-%d", i), "w2"), "LATE=hunter2")); err != nil {
					t.Fatal(err)
				}
			})
			all := strings.Join(lines, "\n")
			if strings.Contains(all, "hunter2") {
				t.Errorf("w1's watch%s carries another node's secret:\n%s", q, grepLines(lines, "hunter2"))
			}
			if !strings.Contains(all, "OWN=visible") {
				t.Errorf("w1's watch%s lacks its own task's env (the control): %d lines", q, len(lines))
			}
			if !strings.Contains(all, secretTaskOnW2.ID) {
				t.Errorf("w1's watch%s does not list w2's task at all (it should, as a public projection)", q)
			}
		}
		// What w1 holds and serves locally is the same scope.
		ts, err := w1.Client.Tasks(ctx, client.TaskQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for _, tk := range ts {
			switch tk.ID {
			case secretTaskOnW2.ID:
				if len(tk.Spec.Env) > 0 || len(tk.Spec.Labels) > 0 {
					t.Errorf("w1's replica holds w2's task with env %v, labels %v", tk.Spec.Env, tk.Spec.Labels)
				}
			case ownTaskOnW1.ID:
				if !slices.Contains(tk.Spec.Env, "OWN=visible") {
					t.Errorf("w1's replica lacks its own task's env: %v", tk.Spec.Env)
				}
			}
		}
	})

	t.Run("local socket outside group warren", func(t *testing.T) {
		socketAsNobody(t, c, m1)
	})

	t.Run("expired token", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits for a token with the shortest ttl (1m) to expire")
		}
		if d := time.Until(t3.ExpiresAt.Add(time.Second)); d > 0 {
			t.Logf("waiting %.0f s for the token to expire", d.Seconds())
			time.Sleep(d)
		}
		refused(t, t3.Token, "the join token has expired")
	})

	t.Run("a good token joins (the control)", func(t *testing.T) {
		t4, err := m1.Client.JoinToken(ctx, api.RoleWorker, true, 0)
		if err != nil {
			t.Fatal(err)
		}
		if joined, out := join(t, t4.Token); !joined {
			t.Fatalf("x did not join with a fresh token:\n%s", out)
		}
	})
}

// TestConcurrentTokenRequests asks a new cluster for its first worker
// token from several clients at once, as operators setting up devices
// might: every token handed out must let a device join.
func TestConcurrentTokenRequests(t *testing.T) {
	c := startCluster(t, 1, 0)
	ctx := ctxFor(t, time.Minute)
	m1 := c.Host("m1")
	x, err := c.AddHost("x")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := m1.Client.JoinToken(ctx, api.RoleWorker, false, 0)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got[tok.Token]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("6 concurrent requests for the first worker token returned %d distinct tokens", len(got))
	var bad []string
	for tok := range got {
		if x.Manager != nil {
			x.Manager.Stop(5 * time.Second)
		}
		os.RemoveAll(filepath.Join(x.Dir, "data"))
		if err := x.StartManager("--join", m1.Addr, "--token", tok); err != nil {
			t.Fatal(err)
		}
		if err := x.WaitHealthy(ctx); err != nil {
			bad = append(bad, fmt.Sprintf("%.30s…: %s", tok, lastLine(lastRun(x.Manager.Log()))))
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of the %d tokens handed out do not let a device join:\n%s",
			len(bad), len(got), strings.Join(bad, "\n"))
	}
}

// placeSecrets runs a task with a secret env on w2 and one with a known
// env on w1, and returns them as the managers have them.
func placeSecrets(ctx context.Context, t *testing.T, c *Cluster) (onW2, onW1 api.Task) {
	t.Helper()
	m := c.Host("m1")
	spec := withEnv(onNode("secret-w2", "w2"), "SECRET=hunter2")
	spec.Labels = map[string]string{"secret": "label-hunter2"}
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Client.CreateService(ctx, withEnv(onNode("own-w1", "w1"), "OWN=visible")); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		name string
		out  *api.Task
	}{{"secret-w2", &onW2}, {"own-w1", &onW1}} {
		eventually(t, 20*time.Second, s.name+" running", func() error {
			ts, err := consistentTasks(ctx, m, s.name)
			if err != nil {
				return err
			}
			if live := liveTasks(ts); len(live) == 1 {
				*s.out = live[0]
				return nil
			}
			return fmt.Errorf("tasks:%s", describeTasks(ts))
		})
	}
	return onW2, onW1
}

func onNode(name, host string) api.ServiceSpec {
	s := onWorkers(name, 1)
	s.Placement.Constraints = []string{"node.hostname==" + host}
	return s
}

func withEnv(s api.ServiceSpec, env ...string) api.ServiceSpec {
	s.Env = env
	return s
}

func nodeIDs(ctx context.Context, t *testing.T, m *Host) []string {
	t.Helper()
	ns, err := m.Client.Nodes(ctx, client.ReadOptions{Consistent: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range ns {
		ids = append(ids, n.ID+"/"+n.Description.Hostname)
	}
	slices.Sort(ids)
	return ids
}

// lastRun is the part of a process log written by its last start.
func lastRun(log string) string {
	if i := strings.LastIndex(log, "=== "); i >= 0 {
		if j := strings.IndexByte(log[i:], '\n'); j >= 0 {
			return strings.TrimSpace(log[i+j+1:])
		}
	}
	return strings.TrimSpace(log)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// nodePortClient makes HTTPS requests to managers' node ports from inside
// the host from, with TLS configuration cfg.
func nodePortClient(from *Host, cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := from.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := tls.Client(raw, cfg)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return tc, nil
		}}}
}

// call makes one request and returns the status (0 if there was no
// response) and the error message of the answer or of the failure.
func call(ctx context.Context, hc *http.Client, method string, m *Host, path string, body any) (int, string) {
	code, b := callRaw(ctx, hc, method, m, path, body)
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return code, e.Message
	}
	return code, string(b)
}

func callRaw(ctx context.Context, hc *http.Client, method string, m *Host, path string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+m.Addr+path, rd)
	if err != nil {
		return 0, []byte(err.Error())
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-ndjson") {
		return resp.StatusCode, nil // a stream that was let through
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b
}

// nodeCert is the TLS configuration of a node, from the files in its data
// dir (what a thief of the device would hold).
func nodeCert(t *testing.T, h *Host) *tls.Config {
	t.Helper()
	dir := filepath.Join(h.Dir, "data", "tls")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bundle, err := pki.ParseBundle(read("ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := pki.NewCredentials(read("node.crt"), read("node.key"), bundle)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pki.ClientConfig(creds, nil)
	cfg.NextProtos = []string{"http/1.1"}
	return cfg
}

// renewCSR is a certificate request for h's own key.
func renewCSR(t *testing.T, h *Host) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Dir, "data", "tls", "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := pki.ParseKey(b)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.NewCSR(k, h.NodeID())
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// foreignCert is a manager certificate of another cluster, with its CA.
func foreignCert(t *testing.T) *tls.Config {
	t.Helper()
	now := time.Now()
	clusterID := api.NewID()
	ca, err := pki.NewCA(clusterID, now)
	if err != nil {
		t.Fatal(err)
	}
	key, keyPEM, err := pki.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	id := api.NewID()
	csr, err := pki.NewCSR(key, id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.SignNode(csr, pki.Identity{ClusterID: clusterID, NodeID: id, Role: pki.RoleManager}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{kp}, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
}

// raftHello opens a Raft connection to m and says hello as a manager
// would; it returns nil only if the connection is still open afterwards.
func raftHello(ctx context.Context, from, m *Host, cfg *tls.Config) error {
	return raftHelloAs(ctx, from, m, cfg, "intruder")
}

// raftHelloAs is raftHello with the hello naming node id.
func raftHelloAs(ctx context.Context, from, m *Host, cfg *tls.Config, id string) error {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"warren-raft"}
	raw, err := from.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return err
	}
	defer raw.Close()
	tc := tls.Client(raw, cfg)
	tc.SetDeadline(time.Now().Add(3 * time.Second))
	if err := tc.HandshakeContext(ctx); err != nil {
		return err
	}
	if _, err := tc.Write([]byte(`{"id":"` + id + `","addr":"10.78.0.250:4243"}` + "\n")); err != nil {
		return err
	}
	// A manager answers nothing until Raft speaks; a refused peer is
	// closed at once.
	_, err = tc.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	if err == nil {
		return nil
	}
	return err
}

// watchLines reads a watch stream to its synced line, runs then, and
// reads on for 2 s.
func watchLines(ctx context.Context, t *testing.T, hc *http.Client, m *Host, path string, then func()) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+m.Addr+path, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("watch %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("watch %s: %s %s", path, resp.Status, b)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	var out []string
	var stop <-chan time.Time
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return out
			}
			out = append(out, l)
			if stop == nil && strings.Contains(l, `"op":"synced"`) {
				then()
				stop = time.After(2 * time.Second)
			}
		case <-stop:
			return out
		case <-ctx.Done():
			t.Fatalf("watch %s: no synced line within 20 s (%d lines)", path, len(out))
		}
	}
}

func grepLines(lines []string, s string) string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, s) {
			if len(l) > 300 {
				l = l[:300] + "…"
			}
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// dialHelperEnv makes the test binary, run again, dial a manager socket
// and print how it went (see TestMain).
const dialHelperEnv = "WARREN_CLUSTER_DIAL_SOCKET"

// dialHelper is what the test binary does when run with dialHelperEnv:
// ask the manager at the socket for its info and print the outcome.
func dialHelper(socket string) int {
	c, err := client.New("unix://" + socket)
	if err != nil {
		fmt.Println(err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Info(ctx); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("ok")
	return 0
}

// socketAsNobody opens the manager's socket as uid nobody: refused
// without the socket's group, allowed with it.
func socketAsNobody(t *testing.T, c *Cluster, m *Host) {
	fi, err := os.Stat(m.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o660 {
		t.Errorf("the socket's mode is %o, want 660", perm)
	}
	gid := fi.Sys().(*syscall.Stat_t).Gid
	// The test binary, where nobody may run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(c.Dir, "dial-helper")
	if err := copyFile(self, helper, 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(groups []uint32) (string, error) {
		cmd := exec.Command(helper)
		cmd.Env = []string{dialHelperEnv + "=" + m.Socket}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: groups}}
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	out, err := run([]uint32{})
	if err == nil || !strings.Contains(out, "permission denied") {
		t.Errorf("uid nobody, outside the socket's group %d, opening %s: %v %q, want permission denied", gid, m.Socket, err, out)
	} else if !strings.Contains(out, "group warren") {
		t.Errorf("the refusal %q does not say who may use the socket", out)
	} else {
		t.Logf("refused: %s", out)
	}
	// The control: the same user in the socket's group gets in, so the
	// refusal above was the socket's mode.
	if out, err := run([]uint32{gid}); err != nil || out != "ok" {
		t.Errorf("uid nobody in the socket's group %d: %v %q, want ok", gid, err, out)
	}
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// leaderOf is the cluster's leader now.
func leaderOf(ctx context.Context, t *testing.T, c *Cluster) *Host {
	t.Helper()
	l, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// followerOf is a manager that does not lead now.
func followerOf(ctx context.Context, t *testing.T, c *Cluster) *Host {
	t.Helper()
	l := leaderOf(ctx, t, c)
	for _, m := range c.Managers() {
		if m != l && m.ManagerRunning() {
			return m
		}
	}
	t.Fatal("no follower")
	return nil
}

// TestRevokedManagersLoseTheirRights: a manager's certificate is worth
// what the cluster's records say now, on every manager: once the manager
// is demoted or removed, its old certificate (stolen from the device, say)
// cannot get a manager join token, pass itself off as an operator through
// the caller header, or open a Raft connection.
func TestRevokedManagersLoseTheirRights(t *testing.T) {
	c := startCluster(t, 3, 0)
	ctx := ctxFor(t, 3*time.Minute)
	cl, err := c.AddHost("client")
	if err != nil {
		t.Fatal(err)
	}
	l := leaderOf(ctx, t, c)
	var others []*Host
	for _, m := range c.Managers() {
		if m != l {
			others = append(others, m)
		}
	}
	demoted, removed := others[0], others[1]
	// What a thief of each device holds: its manager certificate now.
	stolen := map[*Host]*tls.Config{demoted: nodeCert(t, demoted), removed: nodeCert(t, removed)}
	asAdmin := http.Header{"X-Warren-Caller": {"kind=local&role=admin&node=" + demoted.NodeID()}}

	// The control: before, the certificates work as managers' do.
	for h, cfg := range stolen {
		if err := raftHelloAs(ctx, cl, l, cfg, h.NodeID()); err != nil {
			t.Fatalf("%s's certificate before: a Raft connection was refused: %v", h.Name, err)
		}
		code, e := callHeader(ctx, nodePortClient(cl, cfg), http.MethodPost, l, "/v1/join-tokens/manager", struct{}{}, asAdmin)
		if code != http.StatusOK {
			t.Fatalf("%s's certificate before, vouching for a local admin: %d %q, want a token (the control)", h.Name, code, e)
		}
	}

	if _, err := l.Client.DemoteNode(ctx, demoted.NodeID()); err != nil {
		t.Fatal(err)
	}
	removed.Manager.Stop(5 * time.Second)
	eventually(t, 30*time.Second, removed.Name+" removed", func() error {
		return l.Client.RemoveNode(ctx, removed.NodeID(), true)
	})

	for _, via := range c.Managers() {
		if !via.ManagerRunning() || via == removed || via == demoted {
			continue
		}
		for h, cfg := range stolen {
			hc := nodePortClient(cl, cfg)
			for _, ep := range []struct{ method, path string }{
				{http.MethodPost, "/v1/join-tokens/manager"},
				{http.MethodGet, "/v1/join-tokens"},
				{http.MethodPost, "/v1/services"},
				{http.MethodPost, "/v1/internal/command"},
				{http.MethodGet, "/v1/internal/kek"},
				{http.MethodGet, "/v1/unlock-key"},
			} {
				code, e := callHeader(ctx, hc, ep.method, via, ep.path, struct{}{}, asAdmin)
				if code != http.StatusForbidden {
					t.Errorf("%s's old certificate (%s) on %s: %s %s vouching for a local admin: %d %q, want 403",
						h.Name, map[*Host]string{demoted: "demoted", removed: "removed"}[h], via.Name, ep.method, ep.path, code, e)
				}
			}
			_, e := callHeader(ctx, hc, http.MethodPost, via, "/v1/join-tokens/manager", struct{}{}, nil)
			t.Logf("%s's old certificate on %s: %s", h.Name, via.Name, e)
		}
		if err := raftHelloAs(ctx, cl, via, stolen[removed], removed.NodeID()); err == nil {
			t.Errorf("the removed manager %s's certificate still opens a Raft connection to %s", removed.Name, via.Name)
		}
		if err := raftHelloAs(ctx, cl, via, stolen[demoted], demoted.NodeID()); err == nil {
			t.Errorf("the demoted manager %s's old certificate still opens a Raft connection to %s", demoted.Name, via.Name)
		}
	}
}

// callHeader is call with extra request headers.
func callHeader(ctx context.Context, hc *http.Client, method string, m *Host, path string, body any, h http.Header) (int, string) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+m.Addr+path, rd)
	if err != nil {
		return 0, err.Error()
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return resp.StatusCode, e.Message
	}
	return resp.StatusCode, string(b)
}
