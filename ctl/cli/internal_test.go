package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-edge/warren/daemons/api"
)

func TestEveryCommandHasHelpAndExamples(t *testing.T) {
	s := &session{app: &App{}}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || strings.HasPrefix(c.Name(), "__") {
			return
		}
		if c.Short == "" {
			t.Errorf("%q has no short help", c.CommandPath())
		}
		if c.Example == "" && c.HasParent() && !c.HasSubCommands() {
			t.Errorf("%q has no examples", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
		// --help works and exits 0.
		args := append(strings.Fields(c.CommandPath())[1:], "--help")
		var out, errb bytes.Buffer
		a := &App{Stdout: &out, Stderr: &errb}
		if code := a.Run(context.Background(), args); code != 0 || !strings.Contains(out.String(), "Usage:") {
			t.Errorf("warrenctl %s: exit %d, output %q", strings.Join(args, " "), code, out.String())
		}
	}
	walk(s.rootCmd())
}

func task(id string, specVersion uint64, desired, state api.TaskState, at time.Time, err string) api.Task {
	return api.Task{Meta: api.Meta{ID: id}, ServiceID: "s", ServiceName: "web", Slot: 1, SpecVersion: specVersion,
		DesiredState: desired, Status: api.TaskStatus{State: state, Timestamp: at, Err: err}}
}

func TestMeasure(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	before, after := t0.Add(-time.Minute), t0.Add(time.Second)
	svc := &api.Service{Meta: api.Meta{ID: "s"}, SpecVersion: 10, Spec: api.ServiceSpec{Name: "web", Replicas: 2}}
	R, S := api.TaskRunning, api.TaskShutdown
	tests := []struct {
		name     string
		tasks    []api.Task
		want     string
		done     bool
		failed   string
		pendings int
	}{
		{"nothing yet", nil, "0/2 running", false, "", 0},
		{"all running", []api.Task{task("a", 10, R, R, after, ""), task("b", 10, R, R, after, "")}, "2/2 running", true, "", 0},
		{"one pending", []api.Task{task("a", 10, R, R, after, ""), task("b", 10, R, api.TaskPending, after, "no suitable node")}, "1/2 running", false, "", 1},
		{"rolling update", []api.Task{task("a", 10, R, R, after, ""), task("b", 9, R, R, before, ""), task("c", 9, S, S, before, "")},
			"1/2 running, 1 on the old spec", false, "", 0},
		{"scaled down, one stopping", []api.Task{task("a", 10, R, R, after, ""), task("b", 10, R, R, after, ""), task("c", 10, S, R, after, "")},
			"2/2 running, 1 stopping", false, "", 0},
		{"a failure of this change", []api.Task{task("a", 10, R, R, after, ""), task("b", 10, S, api.TaskFailed, after, "exit 1")},
			"1/2 running", false, "b", 0},
		{"a failure from before", []api.Task{task("a", 10, R, R, after, ""), task("b", 10, R, R, after, ""), task("c", 10, S, api.TaskFailed, before, "exit 1")},
			"2/2 running", true, "", 0},
		{"a rejection of the old spec", []api.Task{task("a", 10, R, R, after, ""), task("b", 10, R, R, after, ""), task("c", 9, S, api.TaskRejected, after, "no image")},
			"2/2 running", true, "", 0},
	}
	for _, tt := range tests {
		p := measure(svc, tt.tasks, nil, t0)
		if p.String() != tt.want || p.Done() != tt.done || len(p.Pending) != tt.pendings {
			t.Errorf("measure(%s) = %q done=%v pending=%q; want %q done=%v %d pending", tt.name, p, p.Done(), p.Pending, tt.want, tt.done, tt.pendings)
		}
		got := ""
		if p.Failed != nil {
			got = p.Failed.ID
		}
		if got != tt.failed {
			t.Errorf("measure(%s) failed task %q, want %q", tt.name, got, tt.failed)
		}
	}

	// A global service wants a task on each active node that is not down
	// and meets its constraints, and keeps those on paused nodes.
	glob := &api.Service{Meta: api.Meta{ID: "s"}, SpecVersion: 1, Spec: api.ServiceSpec{Name: "agent", Mode: api.ModeGlobal,
		Placement: api.Placement{Constraints: []string{"node.labels.zone!=west"}}}}
	node := func(id, avail, state, zone string) api.Node {
		return api.Node{Meta: api.Meta{ID: id}, Spec: api.NodeSpec{Availability: avail, Labels: map[string]string{"zone": zone}},
			Status: api.NodeStatus{State: state}}
	}
	nodes := []api.Node{node("n1", "active", "ready", "east"), node("n2", "active", "down", "east"), node("n3", "drain", "ready", "east"),
		node("n4", "active", "ready", "west"), node("n5", "pause", "ready", "east"), node("n6", "pause", "ready", "east")}
	onNode := func(id, n string) api.Task {
		t := task(id, 1, R, R, after, "")
		t.NodeID = n
		return t
	}
	p := measure(glob, []api.Task{onNode("a", "n1"), onNode("b", "n5")}, nodes, t0)
	if p.Desired != 2 || !p.Done() {
		t.Errorf("measure(global) = %s, done %v; want 2/2 (n1, and n5 which is paused but holds its task)", p, p.Done())
	}
}

func TestSpecFlagsUpdate(t *testing.T) {
	one := uint64(1)
	cur := api.ServiceSpec{Name: "web", Image: "nginx", Mode: "replicated", Replicas: 2,
		Env:          []string{"A=1", "B=2"},
		Labels:       map[string]string{"tier": "web"},
		Placement:    api.Placement{Constraints: []string{"node.labels.zone==east", "node.role!=manager"}},
		Ports:        []api.PortConfig{{Target: 80, Published: 8080, Protocol: "tcp"}, {Target: 443, Published: 443, Protocol: "tcp"}},
		UpdateConfig: api.UpdateConfig{Parallelism: &one}}
	var f specFlags
	cmd := &cobra.Command{Use: "update"}
	f.register(cmd, true)
	err := cmd.ParseFlags([]string{"--image", "nginx:1.27", "--env-rm", "A", "--env-add", "B=3", "--env-add", "C=4",
		"--label-rm", "tier", "--label-add", "team=edge", "--constraint-rm", "node.labels.zone == east", "--constraint-add", "node.hostname!=pi-9",
		"--publish-rm", "443", "--publish-add", "8081:80", "--limit-memory", "128M", "--update-parallelism", "0",
		"--entrypoint", "sh -c", "--args", "'echo hi; sleep 9'", "--read-only"})
	if err != nil {
		t.Fatal(err)
	}
	spec := cloneSpec(&cur)
	if err := f.apply(cmd.Flags(), &spec, func(string) string { return "" }); err != nil {
		t.Fatalf("apply: %v", err)
	}
	check := func(what string, ok bool, got any) {
		if !ok {
			t.Errorf("after update flags, %s is %v", what, got)
		}
	}
	check("image", spec.Image == "nginx:1.27", spec.Image)
	check("env", slices.Equal(spec.Env, []string{"B=3", "C=4"}), spec.Env)
	check("labels", len(spec.Labels) == 1 && spec.Labels["team"] == "edge", spec.Labels)
	check("constraints", slices.Equal(spec.Placement.Constraints, []string{"node.role!=manager", "node.hostname!=pi-9"}), spec.Placement.Constraints)
	check("ports", len(spec.Ports) == 2 && spec.Ports[0].Published == 8080 && spec.Ports[1] == (api.PortConfig{Target: 80, Published: 8081, Protocol: "tcp", Mode: api.PortModeIngress}), spec.Ports)
	check("memory limit", spec.Resources.Limits.MemoryBytes == 128<<20, spec.Resources.Limits.MemoryBytes)
	check("parallelism", spec.UpdateConfig.Parallelism != nil && *spec.UpdateConfig.Parallelism == 0, spec.UpdateConfig.Parallelism)
	check("command", slices.Equal(spec.Command, []string{"sh", "-c"}), spec.Command)
	check("args", slices.Equal(spec.Args, []string{"echo hi; sleep 9"}), spec.Args)
	check("read-only", spec.ReadOnly, spec.ReadOnly)
	check("replicas (not given)", spec.Replicas == 2, spec.Replicas)
	check("the current spec (untouched)", cur.Env[0] == "A=1" && cur.Labels["tier"] == "web" && *cur.UpdateConfig.Parallelism == 1, cur)
}

func TestRandomName(t *testing.T) {
	for range 100 {
		if n := randomName(); api.ValidateName(n) != nil || len(n) != 9 || !strings.HasPrefix(n, "svc-") {
			t.Fatalf("randomName() = %q: not a valid svc-xxxxx name", n)
		}
	}
}

func TestIsTerminal(t *testing.T) {
	file, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if isTerminal(&bytes.Buffer{}) || isTerminal(file) {
		t.Errorf("isTerminal(a buffer) = %v, isTerminal(a file) = %v; want false", isTerminal(&bytes.Buffer{}), isTerminal(file))
	}
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal to test with: %v", err)
	}
	defer pty.Close()
	if !isTerminal(pty) {
		t.Errorf("isTerminal(/dev/ptmx) = false, want true")
	}
}

// TestPolicyFlags: the --update-* and --rollback-* flags set only what is
// given; the first rollback flag on a service without a rollback policy
// starts one from its update policy, with failureAction pause.
func TestPolicyFlags(t *testing.T) {
	two, three := uint64(2), uint64(3)
	base := api.ServiceSpec{Name: "web", Image: "nginx", Replicas: 1,
		UpdateConfig: api.UpdateConfig{Parallelism: &two, Delay: api.Duration(time.Second), FailureAction: api.FailureRollback, Order: api.OrderStartFirst}}
	withRB := cloneSpec(&base)
	withRB.RollbackConfig = &api.UpdateConfig{Parallelism: &three, Monitor: api.Duration(time.Minute)}
	tests := []struct {
		name   string
		from   api.ServiceSpec
		args   []string
		update api.UpdateConfig
		rb     *api.UpdateConfig
	}{
		{"no policy flag", base, nil, base.UpdateConfig, nil},
		{"update flags only", base, []string{"--update-progress-deadline", "2m", "--update-monitor", "30s"},
			api.UpdateConfig{Parallelism: &two, Delay: api.Duration(time.Second), FailureAction: api.FailureRollback, Order: api.OrderStartFirst,
				Monitor: api.Duration(30 * time.Second), ProgressDeadline: api.Duration(2 * time.Minute)}, nil},
		{"a first rollback flag", base, []string{"--rollback-delay", "5s", "--update-parallelism", "4"},
			api.UpdateConfig{Parallelism: ptr(4), Delay: api.Duration(time.Second), FailureAction: api.FailureRollback, Order: api.OrderStartFirst},
			&api.UpdateConfig{Parallelism: ptr(4), Delay: api.Duration(5 * time.Second), FailureAction: api.FailurePause, Order: api.OrderStartFirst}},
		{"every rollback flag", base, []string{"--rollback-parallelism", "0", "--rollback-delay", "1s", "--rollback-failure-action", "continue",
			"--rollback-monitor", "9s", "--rollback-max-failure-ratio", "0.5", "--rollback-order", "stop-first"},
			base.UpdateConfig,
			&api.UpdateConfig{Parallelism: ptr(0), Delay: api.Duration(time.Second), FailureAction: api.FailureContinue,
				Monitor: api.Duration(9 * time.Second), MaxFailureRatio: 0.5, Order: api.OrderStopFirst}},
		{"a rollback policy of its own", withRB, []string{"--rollback-order", "start-first"}, base.UpdateConfig,
			&api.UpdateConfig{Parallelism: &three, Monitor: api.Duration(time.Minute), Order: api.OrderStartFirst}},
	}
	for _, tt := range tests {
		for _, update := range []bool{false, true} {
			var f specFlags
			cmd := &cobra.Command{Use: "x"}
			f.register(cmd, update)
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			spec := cloneSpec(&tt.from)
			if err := f.apply(cmd.Flags(), &spec, func(string) string { return "" }); err != nil {
				t.Fatalf("%s: apply: %v", tt.name, err)
			}
			want := cloneSpec(&tt.from)
			want.UpdateConfig, want.RollbackConfig = tt.update, tt.rb
			if !api.SpecEqual(&spec, &want) {
				t.Errorf("%s (update %v): flags %q gave updateConfig %s, rollbackConfig %s; want %s, %s", tt.name, update, tt.args,
					jsonOf(spec.UpdateConfig), jsonOf(spec.RollbackConfig), jsonOf(want.UpdateConfig), jsonOf(want.RollbackConfig))
			}
			if tt.rb != nil && tt.from.RollbackConfig == nil && spec.RollbackConfig.Parallelism == spec.UpdateConfig.Parallelism {
				t.Errorf("%s: the new rollbackConfig shares its parallelism with updateConfig", tt.name)
			}
		}
	}
	if tests[0].from.RollbackConfig != nil || *base.UpdateConfig.Parallelism != 2 {
		t.Errorf("the flags changed the spec they started from: %s", jsonOf(base))
	}
}

func ptr(n uint64) *uint64 { return &n }

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSpecFlagsIngress: --ingress-rm, then --ingress-add, then
// --ingress-mw on the routes the same command leaves; a middleware for a
// route the service does not have is refused.
func TestSpecFlagsIngress(t *testing.T) {
	cur := api.ServiceSpec{Name: "shop", Image: "nginx", Replicas: 1, Ingress: []api.IngressRoute{
		{Host: "old.example.com", Path: "/", Port: 80}, {Host: "shop.example.com", Path: "/", Port: 80}}}
	run := func(update bool, args ...string) (api.ServiceSpec, error) {
		var f specFlags
		cmd := &cobra.Command{Use: "x"}
		f.register(cmd, update)
		if err := cmd.ParseFlags(args); err != nil {
			t.Fatal(err)
		}
		spec := cloneSpec(&cur)
		if !update {
			spec = api.ServiceSpec{Image: "nginx"}
		}
		err := f.apply(cmd.Flags(), &spec, func(string) string { return "" })
		return spec, err
	}
	spec, err := run(true, "--ingress-rm", "old.example.com", "--ingress-add", "host=shop.example.com,path=/api,port=9000,strip-prefix",
		"--ingress-mw", "host=shop.example.com,path=/api,allow=10.0.0.0/8;192.168.0.0/16,rate=10,burst=20",
		"--ingress-mw", "host=shop.example.com,resp-header-set=X-Frame-Options:DENY")
	if err != nil {
		t.Fatalf("update with ingress flags: %v", err)
	}
	got, _ := json.Marshal(spec.Ingress)
	want := `[{"host":"shop.example.com","path":"/","port":80,"responseHeaders":{"set":{"X-Frame-Options":"DENY"}}},` +
		`{"host":"shop.example.com","path":"/api","port":9000,"stripPrefix":true,"allow":["10.0.0.0/8","192.168.0.0/16"],"rateLimit":{"rate":10,"burst":20}}]`
	if string(got) != want {
		t.Errorf("update with ingress flags gave routes\n%s\nwant\n%s", got, want)
	}
	if len(cur.Ingress) != 2 || cur.Ingress[0].Host != "old.example.com" {
		t.Errorf("the current spec was changed: %+v", cur.Ingress)
	}

	_, err = run(true, "--ingress-rm", "shop.example.com", "--ingress-mw", "host=shop.example.com,rate=1")
	if want := `no ingress route host=shop.example.com path=/ on service shop: add it with --ingress first`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("a middleware for the route the same command removes = %v, want %q", err, want)
	}

	spec, err = run(false, "--ingress", "host=a.example.com,port=80", "--ingress-mw", "host=a.example.com,basic-auth=users")
	if err != nil || len(spec.Ingress) != 1 || spec.Ingress[0].BasicAuth == nil || spec.Ingress[0].BasicAuth.Secret != "users" {
		t.Errorf("create with --ingress and --ingress-mw = %+v, %v; want one route with basic auth", spec.Ingress, err)
	}
	if _, err = run(false, "--ingress-mw", "host=a.example.com,rate=1"); err == nil || !strings.Contains(err.Error(), "on the new service: add it with --ingress first") {
		t.Errorf("create with only --ingress-mw = %v, want it refused", err)
	}
}
