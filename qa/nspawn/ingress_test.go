package nspawn

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// TestIngressBooted: warren-ingress under the shipped units (socket
// activation on 80 and 443, DynamicUser in group warren-ingress, the
// manager's ingress.sock) on a manager m1 and a worker w1 that joined it.
// Only w1 is labelled warren.ingress=true; both tasks of a service with an
// ingress route run on m1, so every answer w1's proxy gives crosses the
// mesh. Then:
//
//   - from the LAN, w1:80 with Host shop.example answers 200 from both
//     tasks; an unknown host gets 404 there; m1:80 (not an ingress node)
//     gets 404 for shop.example;
//   - the daemon's groups are warren-ingress and neither warren nor
//     warren-view, its user is not root; ingress.sock is root:warren-ingress
//     0660 and the sandbox reads the agent's mesh status;
//   - a local user of w1 in group warren-ingress may read through
//     ingress.sock but not create a service, nor use api.sock, nor read the
//     ingress store of m1's node (403), while w1's own store answers 404
//     (no such key);
//   - warren-ingress killed with SIGKILL is restarted by systemd and the
//     route answers again.
func TestIngressBooted(t *testing.T) {
	if why := Enabled("nspawn"); why != "" {
		t.Skip(why)
	}
	ctx := ctxFor(t, 8*time.Minute)
	c, m1, cl := bootFirstManager(ctx, t)
	if !slices.Contains(c.Running(), "warren-ingress") {
		t.Skip("this warren binary has no ingress command")
	}
	if !slices.Contains(c.Running(), "warren-agent") {
		t.Skip("this warren binary has no agent yet")
	}
	w1, err := joinWorker(ctx, c, m1, "w1")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*Host{m1, w1} {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := h.WaitActive(wctx, "warren-ingress.service")
		cancel()
		if err != nil {
			out, _ := h.Exec(ctx, "journalctl --no-pager -n 20 -u warren-ingress")
			t.Fatalf("warren-ingress on %s: %v\n%s", h.Name(), err, out)
		}
	}
	nodes, err := cl.Nodes(ctx, client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, n := range nodes {
		ids[n.Description.Hostname] = n.ID
	}
	if ids["m1"] == "" || ids["w1"] == "" {
		t.Fatalf("nodes: %s", nodeSummary(nodes))
	}

	// w1, and only w1, is an ingress node.
	n, err := cl.Node(ctx, ids["w1"])
	if err != nil {
		t.Fatal(err)
	}
	spec := n.Spec
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[api.LabelIngress] = "true"
	if _, err := cl.UpdateNodeSpec(ctx, ids["w1"], spec, n.Version); err != nil {
		t.Fatalf("label w1 %s=true: %v", api.LabelIngress, err)
	}

	// Two tasks of a web server, both on m1 (the only manager).
	loadBusybox(ctx, t, m1)
	if _, err := cl.CreateService(ctx, api.ServiceSpec{Name: "shop", Image: "localhost/busybox:latest", Replicas: 2,
		Args: []string{"sh", "-c", `mkdir -p /www && echo "shop $(hostname)" > /www/index.html && ` +
			`httpd -f -p 8080 -h /www & pid=$!; trap 'kill $pid; exit 0' TERM; wait`},
		Placement:       api.Placement{Constraints: []string{"node.role==manager"}},
		StopGracePeriod: api.Duration(2 * time.Second),
		Ingress:         []api.IngressRoute{{Host: "shop.example", Port: 8080, TLS: &api.IngressTLS{Source: api.TLSNone}}},
	}); err != nil {
		t.Fatalf("create service shop with an ingress route: %v", err)
	}
	if err := waitTasksOn(ctx, cl, "shop", 2, ids["m1"], 2*time.Minute); err != nil {
		t.Fatal(err)
	}

	// From the LAN: w1 routes shop.example to both tasks on m1.
	w1URL := fmt.Sprintf("http://%s:80/", w1.Addr)
	start := time.Now()
	seen := bothTasksAnswer(ctx, t, c, w1, w1URL, 90*time.Second)
	t.Logf("w1:80 (ingress node) answered shop.example from both tasks on m1 (%v), %.1f s after the tasks ran", seen, time.Since(start).Seconds())
	if code, body, err := lanGet(ctx, c, w1URL, "nobody.example"); err != nil || code != 404 {
		t.Errorf("w1:80 with an unknown host: %d %q %v; want 404", code, body, err)
	}
	// m1 is no ingress node: 404 for everything, a route included.
	if code, body, err := lanGet(ctx, c, fmt.Sprintf("http://%s:80/", m1.Addr), "shop.example"); err != nil || code != 404 {
		t.Errorf("m1:80 (not an ingress node) with Host shop.example: %d %q %v; want 404", code, body, err)
	} else {
		t.Logf("m1:80 (not an ingress node) answers shop.example with 404")
	}

	// The sandbox: ingress.sock, and the daemon's user and groups.
	for _, h := range []*Host{m1, w1} {
		if out, err := h.Exec(ctx, "stat -c '%U %G %a' /run/warren/ingress.sock"); err != nil || out != "root warren-ingress 660\n" {
			t.Errorf("%s: /run/warren/ingress.sock is %q (%v), want root warren-ingress 660", h.Name(), out, err)
		}
	}
	pid, err := w1.MainPID(ctx, "warren-ingress.service")
	if err != nil || pid == 0 {
		t.Fatalf("warren-ingress main pid on w1: %d %v", pid, err)
	}
	out, err := w1.Exec(ctx, fmt.Sprintf("awk '/^(Uid|Groups):/' /proc/%d/status; getent group warren warren-view warren-ingress | cut -d: -f1,3", pid))
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]string{}
	var uid, has string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		switch f := strings.Fields(l); {
		case len(f) > 1 && f[0] == "Uid:":
			uid = f[1]
		case len(f) > 0 && f[0] == "Groups:":
			has = " " + strings.Join(f[1:], " ") + " "
		default:
			name, gid, _ := strings.Cut(l, ":")
			groups[name] = gid
		}
	}
	if groups["warren-ingress"] == "" || !strings.Contains(has, " "+groups["warren-ingress"]+" ") ||
		strings.Contains(has, " "+groups["warren"]+" ") || strings.Contains(has, " "+groups["warren-view"]+" ") {
		t.Errorf("warren-ingress runs with groups [%s]; want warren-ingress (%s) and neither warren (%s) nor warren-view (%s)",
			strings.TrimSpace(has), groups["warren-ingress"], groups["warren"], groups["warren-view"])
	}
	if uid == "" || uid == "0" {
		t.Errorf("warren-ingress runs as uid %q; want a dynamic user", uid)
	}
	t.Logf("warren-ingress on w1: uid %s, groups [%s] (warren-ingress = %s)", uid, strings.TrimSpace(has), groups["warren-ingress"])
	// What the sandbox would refuse shows in the daemon's log.
	if out, _ := w1.Exec(ctx, "journalctl --no-pager -o cat -u warren-ingress"); containsAny(strings.ToLower(out), []string{"mesh status", "operation not permitted", "permission denied", "read-only file system"}) {
		t.Errorf("warren-ingress on w1 logs what its sandbox refused (the agent's mesh status, a syscall, a file):\n%s", out)
	}

	// A local user of w1 in group warren-ingress, as warren-ingress is.
	as := "setpriv --reuid=65534 --regid=65534 --groups=" + groups["warren-ingress"] + " "
	ing := "warrenctl --host unix:///run/warren/ingress.sock "
	for _, tc := range []struct {
		what, cmd string
		ok        bool
		want      []string
	}{
		{"read the services through ingress.sock", ing + "service ls", true, []string{"shop"}},
		{"create a service through ingress.sock", ing + "service create --name intruder --detach localhost/busybox:latest", false, []string{"needs the operator or admin role"}},
		{"remove a service through ingress.sock", ing + "service rm shop", false, []string{"needs the operator or admin role"}},
		{"use api.sock", "warrenctl service ls", false, []string{"permission denied"}},
	} {
		out, err := w1.Exec(ctx, as+tc.cmd+" 2>&1")
		if (err == nil) != tc.ok || !containsAny(strings.ToLower(out), tc.want) {
			t.Errorf("nobody in group warren-ingress on w1: %s (%s): %v\n%s\nwant ok=%v and one of %q", tc.what, tc.cmd, err, out, tc.ok, tc.want)
		} else {
			t.Logf("%s: %s", tc.what, lastLineOf(out))
		}
	}
	if _, err := cl.Service(ctx, "intruder", client.ReadOptions{}); err == nil {
		t.Errorf("service intruder exists after a create through ingress.sock was refused")
	}
	// The ingress store over HTTP on the unix socket: warrenctl has no
	// command for it, busybox is not in the image and curl is not; the
	// image's python3 (cloud-init's) is.
	if _, err := w1.Exec(ctx, "command -v python3"); err != nil {
		t.Logf("no python3 in the image: the ingress store of another node is not tried through ingress.sock")
	} else {
		if err := w1.CopyIn("/usr/local/lib/warren-qa/unixget.py", []byte(unixGetPy), 0o644); err != nil {
			t.Fatal(err)
		}
		get := as + "python3 /usr/local/lib/warren-qa/unixget.py /run/warren/ingress.sock "
		for _, tc := range []struct {
			what, node string
			code       int
		}{
			{"the ingress store of m1's node", ids["m1"], 403},
			{"the ingress store of w1's own node (no such key)", ids["w1"], 404},
		} {
			out, err := w1.Exec(ctx, get+"'/v1/nodes/"+tc.node+"/ingress/store?key=x' 2>&1")
			code, body, _ := strings.Cut(strings.TrimSpace(out), "\n")
			if err != nil || code != strconv.Itoa(tc.code) {
				t.Errorf("nobody in group warren-ingress on w1: GET %s through ingress.sock: %v\n%s\nwant %d", tc.what, err, out, tc.code)
			} else {
				t.Logf("GET %s through ingress.sock: %s %s", tc.what, code, lastLineOf(body))
			}
		}
	}

	// SIGKILL: systemd restarts warren-ingress (Restart=always) and the
	// route answers again.
	before, err := w1.Unit(ctx, "warren-ingress.service", "NRestarts", "MainPID")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := w1.Exec(ctx, "systemctl kill -s KILL warren-ingress.service"); err != nil {
		t.Fatalf("kill warren-ingress on w1: %v %s", err, out)
	}
	killed := time.Now()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	after, err := w1.WaitUnit(wctx, "warren-ingress.service", []string{"ActiveState", "NRestarts", "MainPID"}, func(m map[string]string) bool {
		return m["ActiveState"] == "active" && m["NRestarts"] != before["NRestarts"] && m["MainPID"] != before["MainPID"] && m["MainPID"] != "0"
	})
	cancel()
	if err != nil {
		out, _ := w1.Exec(ctx, "systemctl status --no-pager warren-ingress.service; journalctl --no-pager -n 30 -u warren-ingress")
		t.Fatalf("warren-ingress on w1 after SIGKILL: %v\n%s", err, out)
	}
	t.Logf("warren-ingress on w1 killed (pid %s): active again as pid %s (NRestarts %s → %s) %.1f s later",
		before["MainPID"], after["MainPID"], before["NRestarts"], after["NRestarts"], time.Since(killed).Seconds())
	seen = bothTasksAnswer(ctx, t, c, w1, w1URL, time.Minute)
	t.Logf("w1:80 answers shop.example from both tasks again (%v), %.1f s after the kill", seen, time.Since(killed).Seconds())
}

// unixGetPy GETs a path over HTTP on a unix socket: argv socket path;
// it prints the status, then the body.
const unixGetPy = `import http.client, socket, sys

class Conn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sys.argv[1])

c = Conn("localhost", timeout=10)
c.request("GET", sys.argv[2])
r = c.getresponse()
print(r.status)
print(r.read().decode(errors="replace"))
`

// lanGet GETs url from the test's side of the network (curl in the lan
// namespace) with Host host: the status and the trimmed body.
func lanGet(ctx context.Context, c *Cluster, url, host string) (int, string, error) {
	out, err := c.LanExec(ctx, "curl", "-sS", "-m", "5", "-H", "Host: "+host, "-w", "\n%{http_code}", url)
	if err != nil {
		return 0, out, err
	}
	out = strings.TrimSpace(out)
	i := strings.LastIndexByte(out, '\n')
	code, err := strconv.Atoi(out[i+1:])
	if err != nil {
		return 0, out, fmt.Errorf("curl %s: no status in %q", url, out)
	}
	if i < 0 {
		return code, "", nil
	}
	return code, strings.TrimSpace(out[:i]), nil
}

// bothTasksAnswer GETs url with Host shop.example from the LAN until two
// different tasks have answered 200 (it fails the test after d) and
// returns the answers seen.
func bothTasksAnswer(ctx context.Context, t *testing.T, c *Cluster, h *Host, url string, d time.Duration) map[string]int {
	t.Helper()
	seen := map[string]int{}
	var last string
	for deadline := time.Now().Add(d); ; {
		code, body, err := lanGet(ctx, c, url, "shop.example")
		switch {
		case err != nil:
			last = err.Error()
		case code != 200:
			last = fmt.Sprintf("%d %q", code, body)
		default:
			seen[body]++
		}
		if len(seen) >= 2 {
			return seen
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			out, _ := h.Exec(ctx, "systemctl status --no-pager warren-ingress.service; journalctl --no-pager -n 40 -u warren-ingress -u warren-mesh; ip route")
			t.Fatalf("after %s, %s with Host shop.example: answers %v, last failure %s\n%s", d, url, seen, last, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitTasksOn waits until service has n running tasks, all on node.
func waitTasksOn(ctx context.Context, cl *client.Client, service string, n int, node string, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last []api.Task
	for {
		if ts, err := cl.Tasks(ctx, tasksOf(service)); err == nil {
			last = ts
			on := 0
			for _, tk := range ts {
				if tk.Status.State == api.TaskRunning && tk.NodeID == node {
					on++
				}
			}
			if on == n {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			var b strings.Builder
			for _, tk := range last {
				fmt.Fprintf(&b, "\n  task %s on node %s: %s (%s)", tk.ID, tk.NodeID, tk.Status.State, tk.Status.Message)
			}
			return fmt.Errorf("service %s: not %d running tasks on node %s after %s:%s", service, n, node, d, b.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}
