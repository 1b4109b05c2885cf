package nspawn

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// Encryption at rest with the shipped units, on two booted managers: the
// manager that joins fetches the KEK into its state directory (mode 0600,
// which the unit's sandbox must let it write), and opens every sealed
// value. With autolock on, a rebooted manager comes up locked: node ls on
// it says so, a change is refused naming warrenctl unlock, its own node
// stays ready (its reports pass), and the unlock key piped to warrenctl
// unlock opens it.
func TestAutolockOnBootedManagers(t *testing.T) {
	if why := Enabled("nspawn"); why != "" {
		t.Skip(why)
	}
	ctx := ctxFor(t, 6*time.Minute)
	c, m1, cl := bootFirstManager(ctx, t)
	tok, err := cl.JoinToken(ctx, api.RoleManager, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	join := netip.AddrPortFrom(m1.Addr, 4242).String()
	conf := fmt.Sprintf("role = manager\ncluster = join\njoin_token = %s\nmanagers = %s\nhostname = m2\n", tok.Token, join)
	added, err := c.Add(ctx, HostSpec{Name: "m2", Seed: exampleSeed(t, "m2", conf)})
	if err != nil {
		t.Fatal(err)
	}
	m2 := added[0]
	if _, ready := waitNodes(ctx, cl, 2, 90*time.Second); !ready {
		t.Fatal("m2 did not join")
	}
	const kek = "/var/lib/warren/manager/keys/kek.json"
	execUntil := func(h *Host, what, cmd string, ok func(string) bool) string {
		t.Helper()
		var out string
		var err error
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			if out, err = h.Exec(ctx, cmd); err == nil && ok(out) {
				return out
			}
		}
		t.Fatalf("%s: %s: %v\n%s", h.Name(), what, err, out)
		return ""
	}
	for _, h := range []*Host{m1, m2} {
		execUntil(h, "the key file, 0600 warren-manager in a 0700 directory", "stat -c '%a %U' "+kek+" $(dirname "+kek+")", func(s string) bool {
			return strings.Join(strings.Fields(s), " ") == "600 warren-manager 700 warren-manager"
		})
		execUntil(h, "every sealed value opens", "warrenctl cluster keys --check", func(s string) bool { return strings.Contains(s, "sealed values open") })
	}

	on, err := m1.Exec(ctx, "warrenctl cluster update --autolock")
	if err != nil {
		t.Fatalf("autolock on: %v\n%s", err, on)
	}
	key, err := m1.Exec(ctx, "warrenctl unlock-key -q")
	key = strings.TrimSpace(key)
	if err != nil || !strings.HasPrefix(key, "WRN-UNLOCK-") {
		t.Fatalf("unlock-key: %q, %v", key, err)
	}
	for _, h := range []*Host{m1, m2} {
		execUntil(h, "the key file sealed", "cat "+kek, func(s string) bool { return strings.Contains(s, `"sealed"`) && !strings.Contains(s, `"kek"`) })
	}

	if err := m2.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m2.WaitActive(ctx, "warren-manager.service"); err != nil {
		t.Fatalf("after reboot: %v", err)
	}
	execUntil(m2, "node ls shows itself locked", "warrenctl node ls", func(s string) bool { return strings.Contains(s, "locked") })
	out, err := m2.Exec(ctx, "warrenctl service create --name refused localhost/busybox:latest sleep 1000 2>&1")
	if err == nil || !strings.Contains(out, "warrenctl unlock") {
		t.Errorf("a change on the locked manager: %v\n%s\nwant it refused, naming warrenctl unlock", err, out)
	}
	if out, err := m2.Exec(ctx, "echo WRN-UNLOCK-"+strings.Repeat("b", 52)+" | warrenctl unlock 2>&1"); err == nil {
		t.Errorf("unlock with another key worked:\n%s", out)
	}
	if out, err := m2.Exec(ctx, "echo "+key+" | warrenctl unlock"); err != nil {
		t.Fatalf("unlock: %v\n%s", err, out)
	}
	execUntil(m2, "every sealed value opens after unlock", "warrenctl cluster keys --check", func(s string) bool { return strings.Contains(s, "sealed values open") })
	if out, err := m2.Exec(ctx, "warrenctl service create -d --name after --replicas 0 localhost/busybox:latest"); err != nil {
		t.Errorf("a change after unlock: %v\n%s", err, out)
	}
	// m1 never restarted: it was never locked.
	if out, _ := m1.Exec(ctx, "warrenctl node ls"); strings.Count(out, "locked") != 0 {
		t.Errorf("m1's node ls shows a lock:\n%s", out)
	}
}
