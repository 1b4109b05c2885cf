package cli_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

const stack = `# the web tier
kind: service
name: web
image: localhost/busybox
args: [sleep, "1000"]
ports:
  - target: 80
    published: 8080
env: [A=1]
---
name: api
image: localhost/busybox
replicas: 2
resources:
  limits: {memory: 64M}
`

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// versions is each service's version once no rollout is under way: the
// orchestrator's write that ends a rollout moves a version too (a
// service created by a deployment has one, for its first tasks).
func (c *cluster) versions() map[string]uint64 {
	var svcs []api.Service
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		svcs, err = c.m.Client.Services(c.ctx, client.ReadOptions{})
		if err != nil {
			c.t.Fatal(err)
		}
		busy := slices.ContainsFunc(svcs, func(s api.Service) bool {
			return s.UpdateStatus != nil && (s.UpdateStatus.State == api.UpdateUpdating || s.UpdateStatus.State == api.UpdateRollingBack)
		})
		if !busy || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	v := map[string]uint64{}
	for _, s := range svcs {
		v[s.Spec.Name] = s.Version
	}
	return v
}

func TestApplyCreatesThenLeavesAlone(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	file := writeFile(t, dir, "stack.yaml", stack)

	r := c.must("apply", "-f", file)
	if want := "service/web created\nservice/api created\n"; r.stdout != want {
		t.Errorf("first apply printed %q, want %q", r.stdout, want)
	}
	web, err := c.m.Client.Service(c.ctx, "web", client.ReadOptions{})
	if err != nil || web.Spec.Replicas != 1 || web.Spec.Ports[0].Published != 8080 {
		t.Fatalf("after apply, web is %+v (%v); want 1 replica (the default) publishing 8080", web, err)
	}
	// Two services: one deployment, one Raft entry. (The deployment's ID
	// is not checked: the orchestrator may have finished the services'
	// rollout already, and its status does not keep the ID.)
	apiSvc, err := c.m.Client.Service(c.ctx, "api", client.ReadOptions{})
	if err != nil || web.SpecVersion != apiSvc.SpecVersion {
		t.Errorf("after apply of web and api: spec versions %d and %d (%v); want one deployment, one entry, for both", web.SpecVersion, apiSvc.SpecVersion, err)
	}
	before := c.versions()

	r = c.must("apply", "-f", file)
	if want := "service/web unchanged\nservice/api unchanged\n"; r.stdout != want {
		t.Errorf("second apply printed %q, want %q", r.stdout, want)
	}
	if after := c.versions(); after["web"] != before["web"] || after["api"] != before["api"] {
		t.Errorf("second apply wrote: versions %v became %v", before, after)
	}

	// A changed image: configured, and only that service is written.
	writeFile(t, dir, "stack.yaml", strings.Replace(stack, "image: localhost/busybox\nargs", "image: localhost/busybox:1.37\nargs", 1))
	r = c.must("apply", "--dry-run", "-f", file)
	if !strings.Contains(r.stdout, "service/web configured (dry run)\n") || !strings.Contains(r.stdout, "+ image: localhost/busybox:1.37") ||
		!strings.Contains(r.stdout, "service/api unchanged (dry run)\n") {
		t.Errorf("apply --dry-run printed:\n%s\nwant web configured with the image diff, api unchanged", r.stdout)
	}
	if after := c.versions(); after["web"] != before["web"] {
		t.Errorf("apply --dry-run changed web")
	}
	r = c.must("apply", "-f", file)
	if want := "service/web configured\nservice/api unchanged\n"; r.stdout != want {
		t.Errorf("apply with a new image printed %q, want %q", r.stdout, want)
	}
	web, _ = c.m.Client.Service(c.ctx, "web", client.ReadOptions{})
	if web.Spec.Image != "localhost/busybox:1.37" {
		t.Errorf("after apply, web runs %s, want localhost/busybox:1.37", web.Spec.Image)
	}
	if after := c.versions(); after["api"] != before["api"] {
		t.Errorf("apply of a changed web also wrote api")
	}

	// Someone scales web by hand: apply puts the file's count back.
	c.must("service", "scale", "-d", "web=3")
	if r := c.must("apply", "-f", file); !strings.Contains(r.stdout, "service/web configured") {
		t.Errorf("apply after a manual scale printed %q, want web configured", r.stdout)
	}

	// Standard input and directories.
	r = c.runIn("name: stdin-svc\nimage: localhost/busybox\n", "apply", "-f", "-")
	if r.code != 0 || r.stdout != "service/stdin-svc created\n" {
		t.Errorf("apply -f - : exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = c.must("apply", "-f", dir)
	if want := "service/web unchanged\nservice/api unchanged\n"; r.stdout != want {
		t.Errorf("apply -f DIR printed %q, want %q", r.stdout, want)
	}
}

func TestApplyAllOrNothing(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	c.must("service", "create", "-d", "--name", "taken", "-p", "9000:80", "localhost/busybox")
	c.must("service", "create", "-d", "--name", "glob", "--mode", "global", "localhost/busybox")

	tests := []struct {
		name string
		file string
		want []string // lines stderr must hold
	}{
		{
			name: "unknown field in the third document",
			file: "name: one\nimage: localhost/busybox\n---\nname: two\nimage: localhost/busybox\n---\nname: three\nimage: localhost/busybox\nreplicaz: 3\n",
			want: []string{`warrenctl: bad.yaml:9: unknown field "replicaz" (did you mean "replicas"?)`},
		},
		{
			name: "another kind",
			file: "name: one\nimage: localhost/busybox\n---\nkind: Deployment\nname: x\n",
			want: []string{`bad.yaml:4: kind "Deployment" is not something apply knows`},
		},
		{
			name: "invalid values, named by line",
			file: "name: one\nimage: localhost/busybox\n---\nname: Two\nimage: localhost/busybox\nresources:\n  limits:\n    memory: 1M\n",
			want: []string{`bad.yaml:4: name: "Two" is not DNS-safe`, "bad.yaml:8: resources.limits.memory: 1MiB is below the minimum"},
		},
		{
			name: "a port another service publishes (the manager's check)",
			file: "name: one\nimage: localhost/busybox\n---\nname: two\nimage: localhost/busybox\nports: [{target: 80, published: 9000}]\n",
			want: []string{"bad.yaml:4: service two: port 9000/tcp is already published by service \"taken\""},
		},
		{
			name: "a mode change",
			file: "name: one\nimage: localhost/busybox\n---\nname: glob\nimage: localhost/busybox\nreplicas: 2\n",
			want: []string{"bad.yaml:4: mode: service glob is global and a service's mode cannot change"},
		},
		{
			name: "one name twice",
			file: "name: one\nimage: localhost/busybox\n---\nname: one\nimage: localhost/busybox:1.37\n",
			want: []string{`bad.yaml:4: service "one" is also defined at bad.yaml:1`},
		},
	}
	for _, tt := range tests {
		file := writeFile(t, dir, "bad.yaml", tt.file)
		before := c.versions()
		r := c.run("apply", "-f", file)
		if r.code != 1 {
			t.Errorf("%s: apply exit %d, want 1; stdout %q stderr %q", tt.name, r.code, r.stdout, r.stderr)
		}
		stderr := strings.ReplaceAll(r.stderr, file, "bad.yaml")
		for _, w := range tt.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: apply stderr:\n%s\nwant it to hold %q", tt.name, stderr, w)
			}
		}
		if !strings.Contains(stderr, "Nothing was applied") {
			t.Errorf("%s: apply stderr does not say nothing was applied:\n%s", tt.name, stderr)
		}
		if after := c.versions(); len(after) != len(before) || after["taken"] != before["taken"] || after["glob"] != before["glob"] {
			t.Errorf("%s: apply changed services: %v became %v", tt.name, before, after)
		}
		if r.stdout != "" {
			t.Errorf("%s: apply printed %q on stdout, want nothing", tt.name, r.stdout)
		}
	}

	if r := c.run("apply", "-f", filepath.Join(dir, "missing.yaml")); r.code != 1 || !strings.Contains(r.stderr, "cannot read") {
		t.Errorf("apply of a missing file: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := c.run("apply"); r.code != 2 {
		t.Errorf("apply without -f: exit %d, want 2", r.code)
	}
	empty := writeFile(t, dir, "empty.yaml", "# nothing\n---\n")
	if r := c.run("apply", "-f", empty); r.code != 1 || !strings.Contains(r.stderr, "no service specs") {
		t.Errorf("apply of an empty file: exit %d, stderr %q", r.code, r.stderr)
	}
}

// manifestOf is services in apply's YAML, running args each, whose
// updates roll back on failure after a short monitor.
func manifestOf(args map[string]string) string {
	var docs []string
	for _, name := range slices.Sorted(maps.Keys(args)) {
		docs = append(docs, "name: "+name+"\nimage: localhost/busybox\nargs: ["+args[name]+"]\n"+
			"restartPolicy: {condition: none}\nupdateConfig: {failureAction: rollback, monitor: 1s}\n")
	}
	return strings.Join(docs, "---\n")
}

// TestApplyWait: apply --wait follows what it changed, as stack deploy
// does: one service alone, or several in one deployment, which fails as
// one when an update rolls back. Without --wait, apply does not wait.
func TestApplyWait(t *testing.T) {
	c := startCluster(t)
	c.rt.SetCommandMissing("nope", true)
	dir := t.TempDir()
	file := writeFile(t, dir, "one.yaml", manifestOf(map[string]string{"solo": `sleep, "1000"`}))
	if r := c.must("apply", "--wait", "-f", file); !strings.Contains(r.stderr, "solo: 1/1 running") {
		t.Errorf("apply --wait of one service: stderr:\n%s\nwant its progress", r.stderr)
	}

	file = writeFile(t, dir, "two.yaml", manifestOf(map[string]string{"web": `sleep, "1000"`, "api": `sleep, "1000"`}))
	if r := c.must("apply", "--wait", "-f", file); !strings.Contains(r.stderr, "web: completed v") || !strings.Contains(r.stderr, "api: completed v") {
		t.Errorf("apply --wait of a deployment: stderr:\n%s\nwant both completed", r.stderr)
	}
	writeFile(t, dir, "two.yaml", manifestOf(map[string]string{"web": `sleep, "2000"`, "api": `nope`}))
	r := c.run("apply", "--wait", "-q", "-f", file)
	want := []string{"warrenctl: service api: update rolled back: 1 of 1 tasks",
		"warrenctl: service web: update rolled back: service api of deployment "}
	if r.code != 1 || !strings.Contains(r.stderr, want[0]) || !strings.Contains(r.stderr, want[1]) {
		t.Errorf("apply --wait of a failing deployment: exit %d, stderr:\n%s\nwant 1, saying %q", r.code, r.stderr, want)
	}
	if strings.Contains(r.stderr, "rolling back (automatic)") {
		t.Errorf("apply --wait -q printed progress:\n%s", r.stderr)
	}

	writeFile(t, dir, "two.yaml", manifestOf(map[string]string{"web": `sleep, "3000"`, "api": `nope`}))
	if r := c.must("apply", "-f", file); r.stderr != "" {
		t.Errorf("apply without --wait printed progress:\n%s", r.stderr)
	}
}
