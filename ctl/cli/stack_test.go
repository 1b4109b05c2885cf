package cli_test

import (
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
