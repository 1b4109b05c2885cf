package cli_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

const shopCompose = `services:
  web:
    image: localhost/busybox:latest
    command: [sleep, "1000"]
    build: .
    ports: ["8080:80"]
    deploy:
      replicas: 2
      update_config: {failure_action: rollback}
    secrets: [token]
    volumes: [data:/data]
  db:
    image: localhost/busybox:latest
    command: [sleep, "1000"]
secrets:
  token:
    file: ./token.txt
volumes:
  data:
`

func TestStackDeployLifecycle(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	writeFile(t, dir, "token.txt", "s3cret\n")
	file := writeFile(t, dir, "compose.yml", shopCompose)

	// --strict refuses the build key, and nothing is made.
	r := c.run("stack", "deploy", "--strict", "-c", file, "shop")
	if r.code != 1 || !strings.Contains(r.stderr, "services.web.build") || !strings.Contains(r.stderr, "Nothing was deployed") {
		t.Errorf("stack deploy --strict: exit %d, stderr %q; want 1 naming services.web.build and nothing deployed", r.code, r.stderr)
	}
	if v := c.versions(); len(v) != 0 {
		t.Errorf("a refused stack deploy made services %v", v)
	}

	// A dry run of a new stack: what would be made, and nothing made.
	r = c.must("stack", "deploy", "--dry-run", "-c", file, "shop")
	for _, want := range []string{"secret/shop-token created (dry run)\n", "volume/shop-data created (dry run)\n", "service/shop-web created (dry run)\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stack deploy --dry-run printed:\n%s\nwant a line %q", r.stdout, want)
		}
	}
	if v := c.versions(); len(v) != 0 {
		t.Errorf("a dry run made services %v", v)
	}
	if secrets, _ := c.m.Client.Secrets(c.ctx); len(secrets) != 0 {
		t.Errorf("a dry run made secrets %v", secrets)
	}

	r = c.must("stack", "deploy", "-d", "-c", file, "shop")
	for _, want := range []string{"secret/shop-token created\n", "volume/shop-data created\n", "service/shop-db created\n", "service/shop-web created\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("first stack deploy printed:\n%s\nwant a line %q", r.stdout, want)
		}
	}
	if want := "warning: services.web.build is not supported and was ignored\n"; !strings.Contains(r.stderr, want) || strings.Count(r.stderr, "warning:") != 1 {
		t.Errorf("first stack deploy stderr:\n%s\nwant exactly the warning %q", r.stderr, want)
	}
	web, err := c.m.Client.Service(c.ctx, "shop-web", client.ReadOptions{})
	if err != nil || web.Spec.Replicas != 2 || web.Spec.Labels[api.LabelStack] != "shop" || web.Spec.Secrets[0].Name != "shop-token" ||
		web.Spec.Mounts[0].Source != "shop-data" || web.Spec.UpdateConfig.FailureAction != api.FailureRollback {
		t.Fatalf("shop-web after deploy: %+v (%v)", web, err)
	}
	before := c.versions()

	// The same files again: nothing changes, nothing is made again.
	r = c.must("stack", "deploy", "-d", "-c", file, "shop")
	if r.stdout != "service/shop-db unchanged\nservice/shop-web unchanged\n" {
		t.Errorf("the same stack deploy again printed %q; want both unchanged and nothing created", r.stdout)
	}
	if after := c.versions(); after["shop-web"] != before["shop-web"] || after["shop-db"] != before["shop-db"] {
		t.Errorf("an unchanged deploy wrote: %v became %v", before, after)
	}

	if r := c.must("stack", "ls"); !strings.Contains(r.stdout, "NAME") || !strings.Contains(r.stdout, "shop   2") {
		t.Errorf("stack ls printed:\n%s\nwant shop with 2 services", r.stdout)
	}
	if r := c.must("stack", "services", "shop"); !strings.Contains(r.stdout, "shop-web") || !strings.Contains(r.stdout, "shop-db") {
		t.Errorf("stack services shop printed:\n%s", r.stdout)
	}

	// A new image for web, db gone from the files: one deployment that
	// updates web and (with --prune) removes db; deploy waits for web.
	writeFile(t, dir, "compose.yml", strings.Replace(strings.Replace(shopCompose, "busybox:latest", "busybox:1.37", 1),
		"  db:\n    image: localhost/busybox:latest\n    command: [sleep, \"1000\"]\n", "", 1))
	r = c.must("stack", "deploy", "--prune", "--timeout", "60s", "-c", file, "shop")
	if r.stdout != "service/shop-db removed\nservice/shop-web updated\n" {
		t.Errorf("stack deploy --prune printed %q; want db removed, web updated", r.stdout)
	}
	web, _ = c.m.Client.Service(c.ctx, "shop-web", client.ReadOptions{})
	if web.Spec.Image != "localhost/busybox:1.37" || len(c.runningTasks("shop-web")) != 2 {
		t.Errorf("after the update, shop-web runs %s with %d running tasks; want busybox:1.37 and 2", web.Spec.Image, len(c.runningTasks("shop-web")))
	}
	if _, err := c.m.Client.Service(c.ctx, "shop-db", client.ReadOptions{}); !api.NotFound(err) {
		t.Errorf("shop-db after --prune: %v; want not found", err)
	}

	r = c.must("stack", "ps", "shop")
	if !strings.Contains(r.stdout, "shop-web.1") || !strings.Contains(r.stdout, "SERVICE") || !strings.Contains(r.stdout, "DEPLOYMENT") {
		t.Errorf("stack ps shop printed:\n%s\nwant the tasks of shop-web and its update", r.stdout)
	}
	// (The orchestrator's status of a finished update does not keep the
	// deployment's ID, so only the state is checked.)
	if web.UpdateStatus == nil || !strings.Contains(r.stdout, "shop-web   "+web.UpdateStatus.State) {
		t.Errorf("stack ps shop printed:\n%s\nwant shop-web's update state (%+v)", r.stdout, web.UpdateStatus)
	}

	r = c.must("stack", "rm", "--secrets", "--volumes", "shop")
	for _, want := range []string{"service/shop-web removed", "secret/shop-token removed", "volume/shop-data removed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stack rm printed:\n%s\nwant %q", r.stdout, want)
		}
	}
	if r := c.run("stack", "services", "shop"); r.code != 1 || !strings.Contains(r.stderr, `no stack "shop"`) {
		t.Errorf("stack services after rm: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestStackDeployRefusals(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	c.must("service", "create", "-d", "--name", "shop-web", "localhost/busybox")
	for _, tc := range []struct {
		name, file, want string
	}{
		{"a service of no stack has the name", "services:\n  web:\n    image: localhost/busybox\n", "not part of stack shop"},
		{"an external secret is missing", "services:\n  api:\n    image: localhost/busybox\n    secrets: [k]\nsecrets:\n  k:\n    external: true\n", "secret k (external)"},
		{"an invalid spec", "services:\n  api:\n    image: localhost/busybox\n    deploy: {resources: {limits: {memory: 1M}}}\n", "compose.yml: services.api: invalid service spec"},
	} {
		file := writeFile(t, dir, "compose.yml", tc.file)
		before := c.versions()
		r := c.run("stack", "deploy", "-d", "-c", file, "shop")
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: stack deploy: exit %d, stderr %q; want 1 holding %q", tc.name, r.code, r.stderr, tc.want)
		}
		if after := c.versions(); len(after) != len(before) || after["shop-web"] != before["shop-web"] {
			t.Errorf("%s: a refused deploy changed the services: %v became %v", tc.name, before, after)
		}
	}
	if r := c.run("stack", "deploy", "shop"); r.code != 2 {
		t.Errorf("stack deploy without -c: exit %d, want 2", r.code)
	}
	if r := c.run("stack", "deploy", "-c", "x.yml", "Shop_1"); r.code != 2 || !strings.Contains(r.stderr, "stack name") {
		t.Errorf("stack deploy with a bad name: exit %d, stderr %q; want 2", r.code, r.stderr)
	}
}

// stackOf is a Compose file of services running command cmd each, whose
// updates roll back on failure after a short monitor.
func stackOf(cmds map[string]string) string {
	var b strings.Builder
	b.WriteString("services:\n")
	for _, name := range slices.Sorted(maps.Keys(cmds)) {
		fmt.Fprintf(&b, "  %s:\n    image: localhost/busybox:latest\n    command: [%s]\n", name, cmds[name])
		b.WriteString("    deploy:\n      update_config: {failure_action: rollback, monitor: 1s}\n      restart_policy: {condition: none}\n")
	}
	return b.String()
}

// TestStackDeployRollsBackTogether: deploy follows the whole deployment;
// when one service's update fails, the others it updated roll back with
// it and the one it created pauses, deploy exits 1 saying so for each,
// and stack ps shows where each stands.
func TestStackDeployRollsBackTogether(t *testing.T) {
	c := startCluster(t)
	c.rt.SetCommandMissing("nope", true)
	dir := t.TempDir()
	file := writeFile(t, dir, "compose.yml", stackOf(map[string]string{"web": `sleep, "1000"`, "api": `sleep, "1000"`}))
	r := c.must("stack", "deploy", "-c", file, "shop")
	for _, want := range []string{"shop-web: updating v", "shop-api: completed v", "shop-web.1  v"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("first stack deploy's progress:\n%s\nwant a line with %q", r.stderr, want)
		}
	}
	v1 := map[string]*api.Service{}
	for _, n := range []string{"shop-web", "shop-api"} {
		v1[n], _ = c.m.Client.Service(c.ctx, n, client.ReadOptions{})
	}

	// web and api change, api to a command that is not there; new is new.
	writeFile(t, dir, "compose.yml", stackOf(map[string]string{"web": `sleep, "2000"`, "api": `nope`, "new": `sleep, "1000"`}))
	r = c.run("stack", "deploy", "-c", file, "shop")
	if r.code != 1 {
		t.Fatalf("stack deploy of a failing api: exit %d; want 1\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"warrenctl: service shop-api: update rolled back: 1 of 1 tasks of the new spec failed",
		"warrenctl: service shop-web: update rolled back: service shop-api of deployment ",
		"warrenctl: service shop-new: update paused: service shop-api of deployment ",
		"remove the stack with warrenctl stack rm shop",
		"shop-web: rolling back (automatic)",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stack deploy of a failing api: stderr:\n%s\nwant it to say %q", r.stderr, want)
		}
	}
	for n, was := range v1 {
		s, err := c.m.Client.Service(c.ctx, n, client.ReadOptions{})
		if err != nil || s.UpdateStatus == nil || s.UpdateStatus.State != api.UpdateRolledBack || !slices.Equal(s.Spec.Command, was.Spec.Command) {
			t.Errorf("%s after the failed deploy: %+v (%v); want rolled back to command %v", n, s, err, was.Spec.Command)
		}
	}
	r = c.must("stack", "ps", "shop")
	for _, want := range []string{"shop-api   rolled-back", "shop-web   rolled-back", "shop-new   paused"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stack ps shop printed:\n%s\nwant a line with %q", r.stdout, want)
		}
	}

	// -d returns at once, whatever becomes of the deployment.
	writeFile(t, dir, "compose.yml", stackOf(map[string]string{"web": `sleep, "3000"`, "api": `sleep, "1000"`, "new": `sleep, "1000"`}))
	if r := c.must("stack", "deploy", "-d", "-c", file, "shop"); r.stderr != "" {
		t.Errorf("stack deploy -d printed progress:\n%s", r.stderr)
	}
}

// TestStackFirstDeployFails: a new stack whose one service fails: nothing
// can roll back; the failing service pauses with what to do, and deploy
// exits 1 naming it.
func TestStackFirstDeployFails(t *testing.T) {
	c := startCluster(t)
	c.rt.SetCommandMissing("nope", true)
	file := writeFile(t, t.TempDir(), "compose.yml", stackOf(map[string]string{"ok": `sleep, "1000"`, "bad": `nope`}))
	r := c.run("stack", "deploy", "-c", file, "first")
	want := "warrenctl: service first-bad: update paused: deployment "
	if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "failed because of this service") {
		t.Fatalf("first deploy of a failing stack: exit %d, stderr:\n%s\nwant 1, saying %q", r.code, r.stderr, want)
	}
	for n, want := range map[string]string{"first-bad": "failed because of this service", "first-ok": "service first-bad of deployment"} {
		s, err := c.m.Client.Service(c.ctx, n, client.ReadOptions{})
		if err != nil || s.UpdateStatus == nil || s.UpdateStatus.State != api.UpdatePaused || !strings.Contains(s.UpdateStatus.Message, want) {
			t.Errorf("%s after the failed first deploy: %+v (%v); want paused, saying %q", n, s.UpdateStatus, err, want)
		}
	}

	// As the pause says: fix the file and deploy again. bad is updated,
	// ok (unchanged) resumed, and deploy follows both to the end.
	writeFile(t, filepath.Dir(file), "compose.yml", stackOf(map[string]string{"ok": `sleep, "1000"`, "bad": `sleep, "1000"`}))
	r = c.must("stack", "deploy", "-c", file, "first")
	if want := "service/first-bad updated\nservice/first-ok resumed\n"; r.stdout != want {
		t.Errorf("deploy after the fix printed %q; want %q", r.stdout, want)
	}
	for _, n := range []string{"first-bad", "first-ok"} {
		if s, err := c.m.Client.Service(c.ctx, n, client.ReadOptions{}); err != nil || s.UpdateStatus.State != api.UpdateCompleted {
			t.Errorf("%s after the fixed deploy: %+v (%v); want completed", n, s.UpdateStatus, err)
		}
	}
}
