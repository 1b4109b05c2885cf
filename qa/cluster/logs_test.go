package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/ctl/cli"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/pki"
)

// talker writes a greeting, then a tick a second, until stopped.
func talker(name string) api.ServiceSpec {
	s := onWorkers(name, 1)
	s.Args = []string{"sh", "-c", "echo hello from the task; trap 'exit 0' TERM; while true; do echo tick; sleep 1; done"}
	return s
}

// mergedLogs reads a service's logs through h and returns what CopyLogs
// gives: the lines, the notices and its error.
func mergedLogs(ctx context.Context, c *client.Client, service string) (string, []api.LogNotice, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rc, err := c.ServiceLogs(ctx, service, client.LogOptions{Tail: -1})
	if err != nil {
		return "", nil, err
	}
	defer rc.Close()
	var out bytes.Buffer
	var notices []api.LogNotice
	err = client.CopyLogs(&out, rc, func(n api.LogNotice) { notices = append(notices, n) })
	return out.String(), notices, err
}

// warrenctl runs warrenctl in-process against h's local socket.
func warrenctl(ctx context.Context, h *Host, args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Retry: -1,
		Getenv: func(k string) string {
			if k == cli.EnvHost {
				return "unix://" + h.Socket
			}
			return ""
		}}
	code = app.Run(ctx, args)
	return code, out.String(), errb.String()
}

// TestLogsAndExecAcrossNodes: a service's logs and exec, asked of m1, run
// on the workers that run its tasks; a worker cut off is named, never
// left out silently; a worker's certificate reads no other node's logs.
func TestLogsAndExecAcrossNodes(t *testing.T) {
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 4*time.Minute)
	m1, w1, w2 := c.Host("m1"), c.Host("w1"), c.Host("w2")

	// Two replicas, one on each worker (placed one at a time).
	if _, err := m1.Client.CreateService(ctx, talker("talk")); err != nil {
		t.Fatal(err)
	}
	waitContainers(t, c, "talk", 1)
	if _, err := m1.Client.ScaleService(ctx, "talk", 2); err != nil {
		t.Fatal(err)
	}
	waitContainers(t, c, "talk", 2)
	onNode := map[string]api.Task{}
	eventually(t, time.Minute, "talk's two tasks running, one on each worker", func() error {
		ts, err := m1.Client.Tasks(ctx, client.TaskQuery{Service: "talk"})
		if err != nil {
			return err
		}
		clear(onNode)
		for _, tk := range liveTasks(ts) {
			onNode[tk.NodeID] = tk
		}
		if len(onNode) != 2 || onNode[w1.NodeID()].ID == "" || onNode[w2.NodeID()].ID == "" {
			return fmt.Errorf("tasks: %s", describeTasks(ts))
		}
		return nil
	})
	t1, t2 := onNode[w1.NodeID()], onNode[w2.NodeID()]

	// Through m1, the logs hold both tasks' lines.
	eventually(t, 30*time.Second, "both tasks' greetings in talk's logs through m1", func() error {
		out, notices, err := mergedLogs(ctx, m1.Client, "talk")
		if err != nil || len(notices) > 0 {
			return fmt.Errorf("%v, notices %v", err, notices)
		}
		for _, tk := range []api.Task{t1, t2} {
			if !strings.Contains(out, tk.LogPrefix()+"hello from the task") {
				return fmt.Errorf("no greeting of %s in:\n%s", tk.LogName(), out)
			}
		}
		return nil
	})

	// --since a moment after the greetings (2 s: the agents note their
	// log files' lengths once a second): the ticks after it, of both
	// tasks, and not the greetings before it.
	time.Sleep(2 * time.Second)
	since := time.Now().UTC().Format(time.RFC3339Nano)
	eventually(t, 30*time.Second, "talk's ticks since "+since+" through m1, without the greetings", func() error {
		code, out, errOut := warrenctl(ctx, m1, "service", "logs", "--since", since, "talk")
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, errOut)
		}
		for _, tk := range []api.Task{t1, t2} {
			if strings.Contains(out, tk.LogPrefix()+"hello from the task") {
				t.Fatalf("warrenctl service logs --since %s shows %s's greeting, written seconds before:\n%s", since, tk.LogName(), out)
			}
			if !strings.Contains(out, tk.LogPrefix()+"tick") {
				return fmt.Errorf("no tick of %s yet in:\n%s", tk.LogName(), out)
			}
		}
		return nil
	})

	// Exec on w2's task from m1: its output and exit code.
	var stdout, stderr bytes.Buffer
	code, err := m1.Client.Exec(ctx, t2.ID, api.ExecRequest{Cmd: []string{"echo", "hi"}}, client.ExecStreams{Stdout: &stdout, Stderr: &stderr})
	if err != nil || code != 0 || stdout.String() != "hi\n" {
		t.Errorf("exec echo hi on w2's task through m1: %d, %v, stdout %q, stderr %q; want 0 and hi", code, err, stdout.String(), stderr.String())
	}
	if code, err := m1.Client.Exec(ctx, t2.ID, api.ExecRequest{Cmd: []string{"sh", "-c", "exit 3"}}, client.ExecStreams{}); err != nil || code != 3 {
		t.Errorf("exec sh -c 'exit 3' on w2's task through m1: %d, %v; want 3", code, err)
	}
	stdout.Reset()
	code, err = m1.Client.Exec(ctx, t2.ID, api.ExecRequest{Cmd: []string{"sh", "-c", "tr a-z A-Z; echo err >&2"}, Stdin: true},
		client.ExecStreams{Stdin: strings.NewReader("through two hops\n"), Stdout: &stdout, Stderr: &stderr})
	if err != nil || code != 0 || stdout.String() != "THROUGH TWO HOPS\n" || !strings.Contains(stderr.String(), "err") {
		t.Errorf("exec with stdin on w2's task: %d, %v, stdout %q, stderr %q", code, err, stdout.String(), stderr.String())
	}
	// warrenctl passes the exit code on.
	if code, out, errs := warrenctl(ctx, m1, "service", "exec", t2.ID, "--", "sh", "-c", "echo hi; exit 3"); code != 3 || out != "hi\n" {
		t.Errorf("warrenctl service exec ... exit 3: exit %d, stdout %q, stderr %q; want 3 and hi", code, out, errs)
	}

	// An operator's certificate, through m1's node port, reaches w2's task
	// too: w2 believes the operator m1 vouches for.
	cl, err := c.AddHost("client")
	if err != nil {
		t.Fatal(err)
	}
	key, keyPEM, _ := pki.NewKey()
	csr, _ := pki.NewCSR(key, "olga")
	op, err := m1.Client.AddOperator(ctx, api.OperatorRequest{Name: "olga", Role: "operator", CSR: csr})
	if err != nil {
		t.Fatal(err)
	}
	opc := operatorClient(t, cl, m1, op, keyPEM)
	stdout.Reset()
	if code, err := opc.Exec(ctx, t2.ID, api.ExecRequest{Cmd: []string{"echo", "from olga"}}, client.ExecStreams{Stdout: &stdout}); err != nil || code != 0 || stdout.String() != "from olga\n" {
		t.Errorf("an operator's exec on w2's task through m1's node port: %d, %v, %q", code, err, stdout.String())
	}
	if out, notices, err := mergedLogs(ctx, opc, "talk"); err != nil || len(notices) > 0 || !strings.Contains(out, t2.LogPrefix()) {
		t.Errorf("an operator's logs through m1's node port: %v, notices %v, lines:\n%s", err, notices, out)
	}

	// A worker's certificate reads no other node's task logs: not through
	// a manager, not at the node itself, whatever caller it names.
	wc := nodePortClient(cl, nodeCert(t, w1))
	for _, to := range []*Host{m1, w2} {
		code, msg := call(ctx, wc, http.MethodGet, to, "/v1/tasks/"+t2.ID+"/logs", nil)
		if code != http.StatusForbidden {
			t.Errorf("w1's certificate reading w2's task logs at %s: %d %q; want 403", to.Name, code, msg)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+w2.Addr+"/v1/tasks/"+t2.ID+"/logs", nil)
	req.Header.Set("X-Warren-Caller", "kind=local&role=admin&node="+m1.NodeID())
	if resp, err := wc.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("w1's certificate naming an admin at w2's node port: %v %v; want 403", resp, err)
	} else {
		resp.Body.Close()
	}

	// A task that ended: exec is refused, saying why.
	once := onWorkers("once", 1)
	once.Args = []string{"sh", "-c", "echo done"}
	once.RestartPolicy = api.RestartPolicy{Condition: api.RestartNone}
	if _, err := m1.Client.CreateService(ctx, once); err != nil {
		t.Fatal(err)
	}
	var ended api.Task
	eventually(t, time.Minute, "once's task complete", func() error {
		ts, err := m1.Client.Tasks(ctx, client.TaskQuery{Service: "once"})
		if err != nil {
			return err
		}
		for _, tk := range ts {
			if tk.Status.State == api.TaskComplete {
				ended = tk
				return nil
			}
		}
		return fmt.Errorf("tasks: %s", describeTasks(ts))
	})
	_, err = m1.Client.Exec(ctx, ended.ID, api.ExecRequest{Cmd: []string{"echo", "hi"}}, client.ExecStreams{})
	if !api.IsCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "is not running (state complete): exec needs a running container") {
		t.Errorf("exec on a complete task: %v; want a conflict saying it is not running", err)
	}
	if code, _, errs := warrenctl(ctx, m1, "service", "exec", ended.ID, "--", "echo", "hi"); code != 1 || !strings.Contains(errs, "is not running") {
		t.Errorf("warrenctl service exec on a complete task: exit %d, stderr %q; want 1 and why", code, errs)
	}

	// w2 cut off: the logs name w2 and fail, w1's lines still come; w2's
	// task's own logs and exec say w2 cannot be reached.
	if err := w2.Cut(); err != nil {
		t.Fatal(err)
	}
	defer w2.Heal()
	out, notices, err := mergedLogs(ctx, m1.Client, "talk")
	var inc *client.IncompleteLogsError
	if !errors.As(err, &inc) || !strings.Contains(err.Error(), "w2") {
		t.Errorf("talk's logs with w2 cut off: %v; want an incomplete-logs error naming w2", err)
	}
	if len(notices) != 1 || notices[0].Hostname != "w2" || notices[0].Node != w2.NodeID() {
		t.Errorf("notices with w2 cut off: %+v; want one, naming w2", notices)
	}
	if !strings.Contains(out, t1.LogPrefix()+"hello from the task") {
		t.Errorf("w1's lines are missing with w2 cut off:\n%s", out)
	}
	code, out, errs := warrenctl(ctx, m1, "service", "logs", "talk")
	if code != 1 || !strings.Contains(errs, "warning: node w2") || !strings.Contains(out, t1.LogPrefix()+"hello from the task") {
		t.Errorf("warrenctl service logs with w2 cut off: exit %d, stderr %q, stdout %q; want 1, a warning naming w2 and w1's lines", code, errs, out)
	}
	if _, err := m1.Client.Exec(ctx, t2.ID, api.ExecRequest{Cmd: []string{"echo", "hi"}}, client.ExecStreams{}); !api.IsCode(err, api.CodeUnavailable) || !strings.Contains(err.Error(), "w2") {
		t.Errorf("exec on w2's task with w2 cut off: %v; want unavailable, naming w2", err)
	}
	if _, err := m1.Client.TaskLogs(ctx, t2.ID, client.LogOptions{Tail: -1}); !api.IsCode(err, api.CodeUnavailable) || !strings.Contains(err.Error(), "w2") {
		t.Errorf("w2's task's logs with w2 cut off: %v; want unavailable, naming w2", err)
	}
	// Unknown names: not found.
	if code, _, errs := warrenctl(ctx, m1, "service", "logs", "nope"); code != 1 || !strings.Contains(errs, `no service or task "nope"`) {
		t.Errorf("warrenctl service logs nope: exit %d, stderr %q; want 1 and not found", code, errs)
	}
}

// operatorClient is an API client of m's node port with an operator's
// credentials, dialling from inside the host from.
func operatorClient(t *testing.T, from, m *Host, op *api.OperatorResponse, keyPEM []byte) *client.Client {
	t.Helper()
	bundle, err := pki.ParseBundle([]byte(op.BundlePEM))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := pki.NewCredentials([]byte(op.CertPEM), keyPEM, bundle)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pki.ClientConfig(creds, pki.RequireRole(pki.RoleManager))
	cfg.NextProtos = []string{"http/1.1"}
	c, err := client.NewHTTP("https://"+m.Addr, nodePortClient(from, cfg))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
