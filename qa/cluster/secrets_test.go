package cluster

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// TestSecretsAndConfigs: a secret and a config reach only the node that
// runs a task using them, as read-only files (the secret on a tmpfs, with
// the asked mode and owner); no other node, nor the worker's disk, nor
// any manager's Raft log, snapshots or state.db holds the value in the
// clear; a node without a consumer task, or a worker's certificate asking
// for another node's, is refused; rm in use is refused; secret update
// rolls the consumer and the old version goes.
func TestSecretsAndConfigs(t *testing.T) {
	c := startCluster(t, 3, 2)
	ctx := ctxFor(t, 4*time.Minute)
	m1, w1, w2 := c.Host("m1"), c.Host("w1"), c.Host("w2")
	value1 := "pw-one-" + randHex(12)
	value2 := "pw-two-" + randHex(12)
	confData := "listen=8080 " + randHex(8)

	sec, err := m1.Client.CreateFile(ctx, api.KindSecret, api.SecretRequest{Name: "db", Data: []byte(value1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m1.Client.CreateFile(ctx, api.KindConfig, api.SecretRequest{Name: "app.conf", Data: []byte(confData)}); err != nil {
		t.Fatal(err)
	}
	// A service that names a secret that does not exist is refused.
	bad := onNode("nope", "w1")
	bad.Secrets = []api.FileRef{{Name: "missing"}}
	if _, err := m1.Client.CreateService(ctx, bad); !api.NotFound(err) || !strings.Contains(err.Error(), "warrenctl secret create missing") {
		t.Errorf("create with a missing secret: %v, want not found naming the command", err)
	}

	spec := onNode("sec", "w1")
	spec.Secrets = []api.FileRef{{Name: "db", UID: 1000, GID: 1000, Mode: 0o400}}
	spec.Configs = []api.FileRef{{Name: "app.conf", Target: "/etc/app.conf"}}
	spec.UpdateConfig = api.UpdateConfig{Order: "start-first"}
	if _, err := m1.Client.CreateService(ctx, spec); err != nil {
		t.Fatal(err)
	}
	task := runningTask(t, ctx, m1, "sec").ID

	sh := func(task string, cmd string) string {
		var out, errb bytes.Buffer
		code, err := m1.Client.Exec(ctx, task, api.ExecRequest{Cmd: []string{"sh", "-c", cmd}}, client.ExecStreams{Stdout: &out, Stderr: &errb})
		if err != nil || code != 0 {
			t.Errorf("exec %q in %s: code %d, %v: %s", cmd, task, code, err, errb.String())
		}
		return strings.TrimSpace(out.String())
	}
	if got := sh(task, "cat /run/secrets/db"); got != value1 {
		t.Errorf("/run/secrets/db holds %q, want the secret", got)
	}
	if got := sh(task, "stat -c '%a %u %g' /run/secrets/db"); got != "400 1000 1000" {
		t.Errorf("/run/secrets/db mode, uid, gid = %q, want 400 1000 1000", got)
	}
	mnt := sh(task, "grep ' /run/secrets/db ' /proc/mounts")
	if f := strings.Fields(mnt); len(f) < 4 || f[2] != "tmpfs" || !strings.HasPrefix(f[3], "ro") {
		t.Errorf("/proc/mounts has %q for /run/secrets/db, want a read-only tmpfs", mnt)
	}
	if got := sh(task, "cat /etc/app.conf"); got != confData {
		t.Errorf("/etc/app.conf holds %q, want the config", got)
	}
	if f := strings.Fields(sh(task, "grep ' /etc/app.conf ' /proc/mounts")); len(f) < 4 || !strings.HasPrefix(f[3], "ro") {
		t.Errorf("/proc/mounts has %v for /etc/app.conf, want it read-only", f)
	}
	if sh(task, "echo x > /run/secrets/db 2>/dev/null && echo written || echo refused") != "refused" {
		t.Errorf("the task could write its secret file")
	}

	// Nothing in the clear on any worker's disk: w1 runs the consumer
	// (its tmpfs aside), w2 runs none.
	for _, h := range []*Host{w1, w2} {
		if hits := grepTree(h.Dir, value1, filepath.Join(h.Dir, "secrets")); len(hits) > 0 {
			t.Errorf("%s's disk holds the secret in the clear: %v", h.Name, hits)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(w2.Dir, "secrets")); len(ents) > 0 {
		t.Errorf("w2, which runs no consumer, has secrets mounted: %v", ents)
	}
	if ents, _ := os.ReadDir(filepath.Join(w2.Dir, "agent", "sealed")); len(ents) > 0 {
		t.Errorf("w2 keeps sealed secrets: %v", ents)
	}

	// Who may fetch it: w1 for itself yes; w2 (no consumer) no; w2's
	// certificate asking for w1's no; an operator's local socket no.
	path := fmt.Sprintf("/v1/nodes/%%s/secrets/%s/1", sec.ID)
	if code, body := callRaw(ctx, nodePortClient(w1, nodeCert(t, w1)), http.MethodGet, m1, fmt.Sprintf(path, w1.NodeID()), nil); code != 200 || !bytes.Contains(body, []byte("data")) {
		t.Errorf("w1 for its own task: %d %s, want 200", code, body)
	}
	w2c := nodePortClient(w2, nodeCert(t, w2))
	for _, p := range []string{fmt.Sprintf(path, w2.NodeID()), fmt.Sprintf(path, w1.NodeID())} {
		if code, body := callRaw(ctx, w2c, http.MethodGet, m1, p, nil); code < 400 || bytes.Contains(body, []byte(`"data"`)) {
			t.Errorf("w2's certificate GET %s: %d %s, want a refusal", p, code, body)
		}
	}
	if _, err := m1.Client.NodeFile(ctx, api.KindSecret, w1.NodeID(), sec.ID, 1); !api.IsCode(err, api.CodeForbidden) {
		t.Errorf("m1's local admin asking for w1's secret: %v, want forbidden", err)
	}

	// rm in use is refused, naming the service.
	if code, _, stderr := warrenctl(ctx, m1, "secret", "rm", "db"); code == 0 || !strings.Contains(stderr, "sec") {
		t.Errorf("secret rm db in use: exit %d, %q; want a refusal naming service sec", code, stderr)
	}

	// Rotation: a new version rolls the consumer; the old one goes.
	if _, err := m1.Client.UpdateFile(ctx, api.KindSecret, "db", []byte(value2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the consumer rolled to version 2", func() error {
		ts, err := consistentTasks(ctx, m1, "sec")
		if err != nil {
			return err
		}
		for _, tk := range liveTasks(ts) {
			if tk.Status.State == api.TaskRunning && tk.Spec.Secrets[0].Version == 2 && tk.ID != task {
				if got := sh(tk.ID, "cat /run/secrets/db"); got != value2 {
					return fmt.Errorf("new task holds %q", got)
				}
				return nil
			}
		}
		return fmt.Errorf("tasks:%s", describeTasks(ts))
	})
	eventually(t, 30*time.Second, "version 1 pruned", func() error {
		s, err := m1.Client.Secret(ctx, "db")
		if err != nil {
			return err
		}
		if len(s.Versions) != 1 || s.Versions[0].Version != 2 {
			return fmt.Errorf("versions %+v", s.Versions)
		}
		return nil
	})
	eventually(t, 30*time.Second, "the old task's tmpfs is gone", func() error {
		if _, err := os.Stat(filepath.Join(w1.Dir, "secrets", task)); err == nil {
			return fmt.Errorf("%s is still there", task)
		}
		return nil
	})

	// No manager keeps either value in the clear.
	for _, m := range c.Managers() {
		for _, v := range []string{value1, value2} {
			if hits := grepTree(filepath.Join(m.Dir, "data"), v, ""); len(hits) > 0 {
				t.Errorf("%s's data dir holds a secret value in the clear: %v", m.Name, hits)
			}
		}
	}
}

// grepTree lists the regular files under dir (but not under skip) whose
// bytes contain s.
func grepTree(dir, s, skip string) []string {
	var hits []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() && skip != "" && p == skip {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
			hits = append(hits, p)
		}
		return nil
	})
	return hits
}
