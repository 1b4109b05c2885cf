package cli_test

import (
	"strings"
	"testing"
)

// The autolock and data key commands, against a real manager: the unlock
// key is printed once on, shown again by unlock-key, and the key check
// opens every value; unlock refuses a manager that is not locked, and an
// empty key on stdin says what to give.
func TestAutolockAndKeysCommands(t *testing.T) {
	c := startCluster(t)
	if r := c.run("unlock-key"); r.code != 1 || !strings.Contains(r.stderr, "--autolock") {
		t.Errorf("unlock-key with autolock off: exit %d, %q; want 1 and how to turn it on", r.code, r.stderr)
	}
	if r := c.run("cluster", "update"); r.code == 0 || !strings.Contains(r.stderr, "--autolock") {
		t.Errorf("cluster update with nothing: exit %d, %q", r.code, r.stderr)
	}
	on := c.must("cluster", "update", "--autolock")
	key := c.must("unlock-key", "-q").stdout
	if !strings.HasPrefix(key, "WRN-UNLOCK-") || !strings.Contains(on.stdout, strings.TrimSpace(key)) {
		t.Errorf("autolock printed %q, unlock-key -q %q; want the same key", on.stdout, key)
	}
	if r := c.run("cluster", "keys", "--check"); r.code != 0 || !strings.Contains(r.stdout, "2 of 2 sealed values open") {
		t.Errorf("keys --check: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := c.runIn(key, "unlock"); r.code != 1 || !strings.Contains(r.stderr, "not locked") {
		t.Errorf("unlock of an unlocked manager: exit %d, %q", r.code, r.stderr)
	}
	if r := c.runIn("", "unlock"); r.code != 1 || !strings.Contains(r.stderr, "no unlock key") {
		t.Errorf("unlock with nothing on stdin: exit %d, %q", r.code, r.stderr)
	}
	if r := c.runIn("hunter2", "secret", "create", "db-password", "-"); r.code != 0 {
		t.Fatalf("secret create: %d %q", r.code, r.stderr)
	}
	c.must("service", "create", "-d", "--name", "withsecret", "--replicas", "0", "--secret", "db-password,target=db,mode=0400", "localhost/busybox")
	pretty := c.must("service", "inspect", "--pretty", "withsecret").stdout
	for _, want := range []string{"Secrets:", "Target = /run/secrets/db", "Source = db-password (version 1)", "Mode = 0400"} {
		if !strings.Contains(pretty, want) {
			t.Errorf("inspect --pretty of a service with a secret lacks %q:\n%s", want, pretty)
		}
	}
	if strings.Contains(pretty, "hunter2") {
		t.Errorf("inspect --pretty shows the secret's value")
	}
	if r := c.run("secret", "ls", "--check"); r.code != 0 || !strings.Contains(r.stdout, "3 of 3 sealed values open") {
		t.Errorf("secret ls --check: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	r := c.must("cluster", "rotate-key")
	if !strings.Contains(r.stdout, "Rotation under way: yes") {
		t.Errorf("rotate-key printed %q", r.stdout)
	}
	c.waitFor("the rotation to finish", func() bool {
		return strings.Contains(c.run("cluster", "keys").stdout, "Rotation under way: no")
	})
	if rows := tableRows(c.must("cluster", "keys").stdout); len(rows) < 1 || !strings.HasSuffix(rows[0][0], "*") || rows[0][2] != "3" {
		t.Errorf("keys after the rotation: %q; want one active key holding 3 values", rows)
	}
}
