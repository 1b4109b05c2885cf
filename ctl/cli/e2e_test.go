package cli_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// TestEndToEnd drives a real in-process manager and agent through the
// commands an operator types, and checks what the operator would see.
func TestEndToEnd(t *testing.T) {
	c := startCluster(t)

	// create waits until the tasks run and prints the ID.
	r := c.must("service", "create", "--name", "web", "--replicas", "2", "-e", "A=1",
		"--limit-memory", "64M", "--restart-delay", "20ms", "localhost/busybox", "sleep", "1000")
	id := strings.TrimSpace(r.stdout)
	svc, err := c.m.Client.Service(c.ctx, "web", client.ReadOptions{})
	if err != nil {
		t.Fatalf("service create printed %q, but the service cannot be read: %v", id, err)
	}
	if id != svc.ID {
		t.Errorf("service create printed %q, want the service ID %s", id, svc.ID)
	}
	if !strings.Contains(r.stderr, "web: 2/2 running") {
		t.Errorf("service create progress is %q, want a line \"web: 2/2 running\"", r.stderr)
	}
	want := api.ServiceSpec{Name: "web", Image: "localhost/busybox", Args: []string{"sleep", "1000"}, Env: []string{"A=1"},
		Mode: api.ModeReplicated, Replicas: 2,
		RestartPolicy: api.RestartPolicy{Delay: api.Duration(20e6)},
		Resources:     api.Resources{Limits: api.ResourceAmounts{MemoryBytes: 64 << 20}}}
	if !api.SpecEqual(&svc.Spec, &want) {
		t.Errorf("service create stored spec %+v, want %+v", svc.Spec, want)
	}
	if got := len(c.runningTasks("web")); got != 2 {
		t.Errorf("after service create returned, %d tasks run, want 2", got)
	}

	// ls shows 2/2; golden with the ID masked.
	r = c.must("service", "ls")
	golden(t, "service_ls", mask(r.stdout, svc.ID))
	if got := c.must("service", "ls", "-q").stdout; got != svc.ID+"\n" {
		t.Errorf("service ls -q = %q, want the ID", got)
	}

	// ps shows the tasks running on node-1.
	r = c.must("service", "ps", "web")
	rows := tableRows(r.stdout)
	if len(rows) != 2 {
		t.Fatalf("service ps web shows %d tasks, want 2:\n%s", len(rows), r.stdout)
	}
	for _, row := range rows {
		if row[3] != "node-1" || row[4] != "Running" || !strings.HasPrefix(row[5], "Running ") {
			t.Errorf("service ps web row %q: want NODE node-1, DESIRED Running, CURRENT Running ...", row)
		}
	}
	golden(t, "service_ps", mask(r.stdout, c.taskIDs("web")...))

	// scale waits for the third task.
	r = c.must("service", "scale", "web=3")
	if r.stdout != "web scaled to 3\n" || !strings.Contains(r.stderr, "web: 3/3 running") {
		t.Errorf("service scale web=3: stdout %q stderr %q; want \"web scaled to 3\" and progress to 3/3", r.stdout, r.stderr)
	}
	if rows := tableRows(c.must("service", "ls").stdout); len(rows) != 1 || rows[0][3] != "3/3" {
		t.Errorf("service ls after scale shows %q, want REPLICAS 3/3", rows)
	}

	// update --env-add rolls the tasks to the new spec and waits.
	r = c.must("service", "update", "--env-add", "FOO=bar", "--update-parallelism", "0", "--update-monitor", "10ms", "web")
	if r.stdout != "web\n" {
		t.Errorf("service update printed %q, want the service's name", r.stdout)
	}
	var inspected []api.Service
	if err := json.Unmarshal([]byte(c.must("service", "inspect", "web").stdout), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("service inspect web is not a JSON array of one service: %v", err)
	}
	if env := inspected[0].Spec.Env; !slices.Equal(env, []string{"A=1", "FOO=bar"}) {
		t.Errorf("after update --env-add FOO=bar, env is %q, want [A=1 FOO=bar]", env)
	}
	for _, tk := range c.runningTasks("web") {
		if tk.SpecVersion != inspected[0].SpecVersion {
			t.Errorf("after service update returned, task %s runs spec version %d, want %d", tk.Name(), tk.SpecVersion, inspected[0].SpecVersion)
		}
	}
	if got := c.must("service", "inspect", "--pretty", "web").stdout; !strings.Contains(got, "FOO=bar") || !strings.Contains(got, "Replicas:") {
		t.Errorf("service inspect --pretty web does not show the env and replicas:\n%s", got)
	}
	var asYAML []api.Service
	if err := yaml.Unmarshal([]byte(c.must("service", "inspect", "-o", "yaml", "web").stdout), &asYAML); err != nil ||
		len(asYAML) != 1 || asYAML[0].Spec.Name != "web" {
		t.Errorf("service inspect -o yaml web does not read back as YAML: %v %+v", err, asYAML)
	}
	// An update with no change says so and writes nothing.
	r = c.must("service", "update", "--env-add", "FOO=bar", "web")
	if !strings.Contains(r.stderr, "nothing to change") {
		t.Errorf("a no-op update printed %q, want \"nothing to change\"", r.stderr)
	}

	// node ls marks the node warrenctl talks to.
	nodes, _ := c.m.Client.Nodes(c.ctx, client.ReadOptions{})
	r = c.must("node", "ls")
	golden(t, "node_ls", maskColumn(mask(r.stdout, nodes[0].ID), "DISK FREE", "ENGINE VERSION"))
	if d := format.DiskFree(nodes[0].Description.Disk); d == "" || !strings.Contains(r.stdout, d) {
		t.Errorf("node ls does not show the disk the agent reported (%q):\n%s", d, r.stdout)
	}
	if !strings.Contains(r.stdout, nodes[0].ID+" *") {
		t.Errorf("node ls does not mark the manager's node with *:\n%s", r.stdout)
	}

	// Draining the only node leaves the tasks pending with a reason.
	c.must("node", "update", "--availability", "drain", "--label-add", "zone=east", "node-1")
	var n []api.Node
	if err := json.Unmarshal([]byte(c.must("node", "inspect", "node-1").stdout), &n); err != nil || len(n) != 1 ||
		n[0].Spec.Availability != api.AvailabilityDrain || n[0].Spec.Labels["zone"] != "east" {
		t.Fatalf("after node update, node inspect says %+v (%v); want drain and zone=east", n, err)
	}
	c.waitFor("web's tasks pending", func() bool {
		ps := c.must("service", "ps", "-f", "desired-state=running", "web").stdout
		return strings.Count(ps, "Pending") == 3
	})
	ps := c.must("service", "ps", "-f", "desired-state=running", "--no-trunc", "web").stdout
	for _, row := range tableRows(ps) {
		if !strings.Contains(row[len(row)-1], "drained") {
			t.Errorf("a pending task's ERROR does not say why: %q", row)
		}
	}
	// A create that cannot run says why and gives up at the timeout.
	r = c.run("service", "create", "--name", "late", "--timeout", "500ms", "localhost/busybox", "sleep", "1")
	if r.code != 1 || !strings.Contains(r.stderr, "late.1 pending: ") || !strings.Contains(r.stderr, "0/1 running after 500ms") {
		t.Errorf("create on a drained cluster: exit %d, stderr:\n%s\nwant exit 1, the pending reason and the timeout", r.code, r.stderr)
	}
	c.must("node", "update", "--availability", "active", "--label-rm", "zone", "node-1")
	c.waitFor("web back to 3 running", func() bool { return len(c.runningTasks("web")) == 3 })

	// rm removes both; ls is empty.
	r = c.must("service", "rm", "web", "late")
	if r.stdout != "web\nlate\n" {
		t.Errorf("service rm web late printed %q, want each name", r.stdout)
	}
	if got := c.must("service", "ls", "-q").stdout; got != "" {
		t.Errorf("service ls -q after rm = %q, want nothing", got)
	}
	r = c.run("service", "rm", "web")
	if r.code != 1 || !strings.Contains(r.stderr, `no service "web"`) {
		t.Errorf("service rm of a removed service: exit %d, stderr %q; want 1 and \"no service\"", r.code, r.stderr)
	}
}

func TestCreateReportsRejectedTask(t *testing.T) {
	c := startCluster(t)
	r := c.run("service", "create", "--name", "bad", "localhost/nothing:here")
	if r.code != 1 || !strings.Contains(r.stderr, "bad.1 rejected") || !strings.Contains(r.stderr, "could not be pulled") {
		t.Errorf("create with a missing image: exit %d, stderr:\n%s\nwant exit 1 and the rejection's reason", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "warrenctl service ps bad") {
		t.Errorf("create with a missing image does not say where to look next:\n%s", r.stderr)
	}
}

func TestCreateDetachAndDryRun(t *testing.T) {
	c := startCluster(t)
	r := c.must("service", "create", "--dry-run", "--name", "web", "--replicas", "2", "localhost/busybox")
	if !strings.Contains(r.stdout, "would be created") || strings.Count(r.stdout, "would start on node-1") != 2 {
		t.Errorf("create --dry-run printed:\n%s\nwant both tasks to start on node-1", r.stdout)
	}
	if svcs, _ := c.m.Client.Services(c.ctx, client.ReadOptions{}); len(svcs) != 0 {
		t.Errorf("create --dry-run created %d services", len(svcs))
	}
	r = c.must("service", "create", "-d", "--mode", "global", "localhost/busybox", "sleep", "100")
	name := ""
	if svc, err := c.m.Client.Service(c.ctx, strings.TrimSpace(r.stdout), client.ReadOptions{}); err == nil {
		name = svc.Spec.Name
	}
	if !strings.HasPrefix(name, "svc-") || len(name) != 9 || r.stderr != "" {
		t.Errorf("create -d without --name made service %q (stderr %q); want a generated svc-xxxxx and no progress", name, r.stderr)
	}
	c.waitFor("the global task to run", func() bool { return len(c.runningTasks(name)) == 1 })
	r = c.must("service", "ls", "-f", "mode=global")
	if rows := tableRows(r.stdout); len(rows) != 1 || rows[0][3] != "1/1" {
		t.Errorf("service ls of a global service on one node shows %q, want 1/1", rows)
	}
	r = c.run("service", "scale", name+"=3")
	if r.code != 1 || !strings.Contains(r.stderr, "global") {
		t.Errorf("scale of a global service: exit %d, stderr %q; want 1 and a word about global", r.code, r.stderr)
	}
}

func TestUpdateRollback(t *testing.T) {
	c := startCluster(t)
	c.must("service", "create", "--name", "web", "--update-monitor", "10ms", "-p", "127.0.0.1:8080:80", "-p", "53/udp",
		"localhost/busybox:latest", "sleep", "100")
	if rows := tableRows(c.must("service", "ls").stdout); len(rows) != 1 || rows[0][5] != "127.0.0.1:8080->80/tcp (host), *:53->53/udp" {
		t.Errorf("service ls shows %q, want PORTS 127.0.0.1:8080->80/tcp (host), *:53->53/udp", rows)
	}
	c.must("service", "update", "--image", "localhost/busybox:1.37", "web")
	r := c.must("service", "update", "--dry-run", "--image", "localhost/busybox:latest", "web")
	if !strings.Contains(r.stdout, "- image: localhost/busybox:1.37\n") || !strings.Contains(r.stdout, "+ image: localhost/busybox:latest\n") {
		t.Errorf("update --dry-run does not show the image change:\n%s", r.stdout)
	}
	c.must("service", "update", "--rollback", "web")
	svc, _ := c.m.Client.Service(c.ctx, "web", client.ReadOptions{})
	if svc.Spec.Image != "localhost/busybox:latest" {
		t.Errorf("after --rollback the image is %s, want localhost/busybox:latest", svc.Spec.Image)
	}
	if r := c.run("service", "update", "--rollback", "--image", "x", "web"); r.code != 2 {
		t.Errorf("--rollback with another flag: exit %d, want 2", r.code)
	}
	if r := c.run("service", "update", "--force", "web"); r.code != 1 || !strings.Contains(r.stderr, "not supported yet") {
		t.Errorf("--force: exit %d, stderr %q; want 1 and \"not supported yet\"", r.code, r.stderr)
	}
}

func TestLogsOfMissingService(t *testing.T) {
	c := startCluster(t)
	r := c.run("service", "logs", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, `no service or task "nope"`) {
		t.Errorf("service logs of a missing service: exit %d, stderr %q; want a not-found message (a service or a task)", r.code, r.stderr)
	}
}

func TestCompletion(t *testing.T) {
	c := startCluster(t)
	c.must("service", "create", "-d", "--name", "web", "localhost/busybox")
	c.must("service", "create", "-d", "--name", "worker", "localhost/busybox")
	c.must("service", "create", "-d", "--name", "api", "localhost/busybox")
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"__complete", "service", "inspect", "w"}, []string{"web", "worker"}},
		{[]string{"__complete", "service", "rm", "web", ""}, []string{"api", "worker"}},
		{[]string{"__complete", "service", "scale", "a"}, []string{"api="}},
		{[]string{"__complete", "service", "update", "web", ""}, nil},
		{[]string{"__complete", "node", "update", "n"}, []string{"node-1"}},
		{[]string{"__complete", "node", "update", "--availability", ""}, []string{"active", "pause", "drain"}},
		{[]string{"__complete", "service", "ls", "-o", ""}, []string{"table", "json", "yaml"}},
	}
	for _, tt := range tests {
		r := c.must(tt.args...)
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if l != "" && !strings.HasPrefix(l, ":") {
				got = append(got, l)
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("warrenctl %s completes %q, want %q", strings.Join(tt.args, " "), got, tt.want)
		}
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		if r := c.must("completion", sh); !strings.Contains(r.stdout, "warrenctl") {
			t.Errorf("completion %s printed no script", sh)
		}
	}
	if r := c.run("completion", "tcsh"); r.code != 2 {
		t.Errorf("completion tcsh: exit %d, want 2", r.code)
	}
}

// runningTasks lists the service's tasks that run and should.
func (c *cluster) runningTasks(service string) []api.Task {
	ts, _ := c.m.Client.Tasks(c.ctx, client.TaskQuery{Service: service})
	var out []api.Task
	for _, t := range ts {
		if t.DesiredState == api.TaskRunning && t.Status.State == api.TaskRunning {
			out = append(out, t)
		}
	}
	return out
}

func (c *cluster) taskIDs(service string) []string {
	ts, _ := c.m.Client.Tasks(c.ctx, client.TaskQuery{Service: service})
	var ids []string
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids
}

func (c *cluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	for range 750 {
		if cond() {
			return
		}
		sleep()
	}
	c.t.Fatalf("never saw %s", what)
}

// TestHostileTaskErrorIsEscaped: a task error holding terminal control
// sequences (what a container or its runtime can put there) reaches the
// terminal escaped, in the create's error and in service ps.
func TestHostileTaskErrorIsEscaped(t *testing.T) {
	c := startCluster(t)
	hostile := "\x1b]52;c;ZXZpbA==\a\x1b[2J\rall good\u009b"
	c.rt.FailNext("Create", fmt.Errorf("fake: create: %s: %w", hostile, runtime.ErrInvalidSpec))
	r := c.run("service", "create", "--name", "evil", "localhost/busybox")
	if r.code != 1 || !strings.Contains(r.stderr, `\u001b]52;c;ZXZpbA==\u0007\u001b[2J\rall good\u009b`) {
		t.Errorf("create whose task fails with %q: exit %d, stderr %q; want 1 and the error escaped", hostile, r.code, r.stderr)
	}
	ps := c.must("service", "ps", "--no-trunc", "evil")
	for name, out := range map[string]string{"create's stderr": r.stderr, "service ps": ps.stdout + ps.stderr} {
		if strings.ContainsAny(out, "\x1b\a\r\u009b") {
			t.Errorf("%s printed a control character of %q: %q", name, hostile, out)
		}
	}
	if !strings.Contains(ps.stdout, `\u001b[2J`) {
		t.Errorf("service ps --no-trunc does not show the escaped error:\n%s", ps.stdout)
	}
}

// TestConfinementFlags: the opt-outs go from the command line into the
// spec, to the container the agent makes, and show in inspect --pretty;
// update changes and undoes them.
func TestConfinementFlags(t *testing.T) {
	c := startCluster(t)
	c.must("service", "create", "--name", "sec", "--cap-drop", "ALL", "--cap-add", "net_bind_service",
		"--security-opt", "seccomp=unconfined", "--security-opt", "no-new-privileges=false", "--pids-limit", "-1",
		"--user", "65534:65534", "localhost/busybox", "sleep", "1000")
	svc, err := c.m.Client.Service(c.ctx, "sec", client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sp := svc.Spec
	if !slices.Equal(sp.CapAdd, []string{"CAP_NET_BIND_SERVICE"}) || !slices.Equal(sp.CapDrop, []string{"ALL"}) || sp.Seccomp != api.SeccompUnconfined ||
		!sp.AllowNewPrivileges || sp.PidsLimit != api.PidsUnlimited || sp.User != "65534:65534" {
		t.Errorf("service create with every opt-out stored capAdd %q capDrop %q seccomp %q allowNewPrivileges %v pidsLimit %d user %q",
			sp.CapAdd, sp.CapDrop, sp.Seccomp, sp.AllowNewPrivileges, sp.PidsLimit, sp.User)
	}
	task := c.runningTasks("sec")[0]
	cs, ok := c.rt.Spec(task.ID)
	if !ok || !slices.Equal(cs.Capabilities, []string{"CAP_NET_BIND_SERVICE"}) || !cs.SeccompUnconfined || !cs.AllowNewPrivileges || cs.PidsLimit != 0 {
		t.Errorf("the container of %s was made with capabilities %q seccomp unconfined %v new privileges %v pids %d",
			task.Name(), cs.Capabilities, cs.SeccompUnconfined, cs.AllowNewPrivileges, cs.PidsLimit)
	}
	pretty := c.must("service", "inspect", "--pretty", "sec").stdout
	for _, want := range []string{"User:              65534:65534", "Capabilities:      CAP_NET_BIND_SERVICE", "Dropped:          ALL",
		"Seccomp:           unconfined", "No New Privileges: no (new privileges allowed)", "Cgroup Namespace:  private", "Pids Limit:        unlimited"} {
		if !strings.Contains(pretty, want) {
			t.Errorf("service inspect --pretty sec does not show %q:\n%s", want, pretty)
		}
	}

	// update undoes each opt-out: the spec is back to the defaults.
	c.must("service", "update", "--cap-add-rm", "NET_BIND_SERVICE", "--cap-drop-rm", "all", "--security-opt", "seccomp=default",
		"--security-opt", "no-new-privileges", "--pids-limit", "0", "--user", "", "sec")
	svc, _ = c.m.Client.Service(c.ctx, "sec", client.ReadOptions{})
	sp = svc.Spec
	if sp.CapAdd != nil || sp.CapDrop != nil || sp.Seccomp != "" || sp.AllowNewPrivileges || sp.PidsLimit != 0 || sp.User != "" {
		t.Errorf("service update undoing every opt-out stored capAdd %q capDrop %q seccomp %q allowNewPrivileges %v pidsLimit %d user %q; want the defaults",
			sp.CapAdd, sp.CapDrop, sp.Seccomp, sp.AllowNewPrivileges, sp.PidsLimit, sp.User)
	}
	pretty = c.must("service", "inspect", "--pretty", "sec").stdout
	for _, want := range []string{"Capabilities:      default (Docker's)", "Seccomp:           default profile (Docker's)", "No New Privileges: yes", "Pids Limit:        2048 (default)"} {
		if !strings.Contains(pretty, want) {
			t.Errorf("service inspect --pretty sec after the update does not show %q:\n%s", want, pretty)
		}
	}

	// Bad values are usage errors that say what is allowed, and change nothing.
	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--cap-add", "SYS_FOO"}, 2, `--cap-add: "SYS_FOO" is not a Linux capability: use ALL or one of AUDIT_CONTROL`},
		{[]string{"--cap-drop", "everything"}, 2, `--cap-drop: "everything" is not a Linux capability`},
		{[]string{"--security-opt", "apparmor=unconfined"}, 2, "is not supported: use seccomp=unconfined"},
		{[]string{"--security-opt", "seccomp=/tmp/profile.json"}, 2, "custom profiles are not supported"},
		{[]string{"--pids-limit", "-5"}, 1, "pidsLimit: -5 is not a pids limit"},
	} {
		r := c.run(append(append([]string{"service", "update"}, bad.args...), "sec")...)
		if r.code != bad.code || !strings.Contains(r.stderr, bad.want) {
			t.Errorf("service update %s sec: exit %d, stderr %q; want %d and %q", strings.Join(bad.args, " "), r.code, r.stderr, bad.code, bad.want)
		}
	}
}

// TestExecThroughTheAgent runs warrenctl service exec against a real
// manager and an agent over the fake runtime: the exit code comes back as
// warrenctl's, and a task that ended is refused.
func TestExecThroughTheAgent(t *testing.T) {
	c := startCluster(t)
	c.must("service", "create", "--name", "sh", "--restart-condition", "none", "localhost/busybox", "sleep", "1000")
	if r := c.run("service", "exec", "sh.1", "--", "echo", "hi"); r.code != 0 || r.stdout != "hi\n" {
		t.Errorf("service exec sh.1 -- echo hi: exit %d, stdout %q, stderr %q; want 0 and hi", r.code, r.stdout, r.stderr)
	}
	if r := c.run("service", "exec", "sh.1", "--", "exit", "3"); r.code != 3 {
		t.Errorf("service exec sh.1 -- exit 3: exit %d, stderr %q; want 3", r.code, r.stderr)
	}
	if r := c.run("service", "logs", "sh.1"); r.code != 0 {
		t.Errorf("service logs sh.1: exit %d, stderr %q; want 0", r.code, r.stderr)
	}
	// The task ends: exec is refused, saying why.
	task := c.runningTasks("sh")[0]
	if err := c.rt.Exit(task.ID, 0); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tk, err := c.m.Client.Task(c.ctx, task.ID)
		if err == nil && tk.Status.State == api.TaskComplete {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task did not complete: %v %v", tk, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r := c.run("service", "exec", task.ID, "--", "echo", "hi")
	if r.code != 1 || !strings.Contains(r.stderr, "is not running (state complete): exec needs a running container") {
		t.Errorf("service exec on a complete task: exit %d, stderr %q; want 1 and why", r.code, r.stderr)
	}
}

// TestIngressRoutesEndToEnd: routes go in with service create and update,
// a route another service claims is refused with its name, and a route
// change leaves the running task alone.
func TestIngressRoutesEndToEnd(t *testing.T) {
	c := startCluster(t)
	c.must("service", "create", "--name", "shop", "--ingress", "host=Shop.Example.com,path=/api/,port=8080",
		"--ingress-mw", "host=shop.example.com,path=/api,allow=10.0.0.0/8", "localhost/busybox", "sleep", "100")
	c.waitFor("shop's task to run", func() bool { return len(c.runningTasks("shop")) == 1 })
	before, err := c.m.Client.Service(c.ctx, "shop", client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := before.Spec.Ingress; len(got) != 1 || got[0].Host != "shop.example.com" || got[0].Path != "/api" || len(got[0].Allow) != 1 {
		t.Errorf("service create --ingress stored routes %+v, want shop.example.com /api allowing 10.0.0.0/8", got)
	}
	task := c.runningTasks("shop")[0]

	r := c.run("service", "create", "-d", "--name", "other", "--ingress", "host=shop.example.com,path=/api,port=80", "localhost/busybox")
	if r.code != 1 || !strings.Contains(r.stderr, `ingress route host=shop.example.com path=/api is already claimed by service "shop"`) {
		t.Errorf("create claiming shop's route: exit %d, stderr %q; want 1 naming shop", r.code, r.stderr)
	}
	r = c.run("service", "create", "-d", "--name", "bad", "--ingress", "host=10.0.0.1,port=80", "localhost/busybox")
	if r.code != 1 || !strings.Contains(r.stderr, "ingress[0].host") || !strings.Contains(r.stderr, "is an IP address") {
		t.Errorf("create with an IP address for a host: exit %d, stderr %q", r.code, r.stderr)
	}

	c.must("service", "update", "--ingress-add", "host=www.example.com,port=8080", "--ingress-rm", "shop.example.com/api", "shop")
	after, _ := c.m.Client.Service(c.ctx, "shop", client.ReadOptions{})
	if len(after.Spec.Ingress) != 1 || after.Spec.Ingress[0].Host != "www.example.com" || after.SpecVersion != before.SpecVersion {
		t.Errorf("after update of the routes: routes %+v, specVersion %d → %d; want www.example.com alone, the same specVersion",
			after.Spec.Ingress, before.SpecVersion, after.SpecVersion)
	}
	if ts := c.runningTasks("shop"); len(ts) != 1 || ts[0].ID != task.ID {
		t.Errorf("a route change replaced the task: %v, want %s still running", ts, task.ID)
	}
	c.must("service", "create", "-d", "--name", "other", "--ingress", "host=shop.example.com,path=/api,port=80", "localhost/busybox")
	r = c.must("service", "inspect", "--pretty", "shop")
	if !strings.Contains(r.stdout, "Route = www.example.com/") {
		t.Errorf("service inspect --pretty does not show the route:\n%s", r.stdout)
	}
}
