package nspawn

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// TestDNSReadsOnly: warren-dns reads the cluster through the read-only
// socket, as a member of group warren-view only: it is not in group
// warren (whose api.sock is the whole API), and what reaches read.sock
// may read and watch but not write. The same for any local user put in
// group warren-view.
func TestDNSReadsOnly(t *testing.T) {
	c := NewCluster(t, HostSpec{Name: "n1"})
	h := c.Hosts[0]
	ctx := ctxFor(t, 2*time.Minute)
	if !fileExists(c.Paths.Bin + "/warrenctl") {
		t.Skip("no bin/warrenctl yet")
	}
	if _, err := h.WaitActive(ctx, "warren-dns.service"); err != nil {
		t.Fatal(err)
	}
	cl, _ := h.Client()
	if _, err := cl.CreateService(ctx, api.ServiceSpec{Name: "seen", Image: "localhost/busybox:latest", Replicas: 0}); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	out, err := h.Exec(ctx, "stat -c '%U %G %a' /run/warren/read.sock /run/warren/api.sock")
	if err != nil {
		t.Fatal(err)
	}
	if want := "root warren-view 660\nroot warren 660\n"; out != want {
		t.Errorf("read.sock and api.sock are\n%s\nwant\n%s", out, want)
	}
	// The dns daemon's groups: warren-view, never warren.
	pid, err := h.MainPID(ctx, "warren-dns.service")
	if err != nil || pid == 0 {
		t.Fatalf("warren-dns main pid: %d %v", pid, err)
	}
	gids, err := h.Exec(ctx, fmt.Sprintf("awk '/^Groups:/ {$1=\"\"; print}' /proc/%d/status; getent group warren warren-view | cut -d: -f1,3", pid))
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]string{}
	lines := strings.Split(strings.TrimSpace(gids), "\n")
	for _, l := range lines[1:] {
		name, gid, _ := strings.Cut(l, ":")
		groups[name] = gid
	}
	has := " " + strings.TrimSpace(lines[0]) + " "
	if groups["warren-view"] == "" || !strings.Contains(has, " "+groups["warren-view"]+" ") || strings.Contains(has, " "+groups["warren"]+" ") {
		t.Errorf("warren-dns runs with groups [%s]; want warren-view (%s) and not warren (%s)", strings.TrimSpace(has), groups["warren-view"], groups["warren"])
	}

	// A local user in group warren-view, as dns is.
	as := "setpriv --reuid=65534 --regid=65534 --groups=" + groups["warren-view"] + " "
	for _, tc := range []struct {
		what, cmd string
		ok        bool
		want      string
	}{
		{"read the services through read.sock", "warrenctl --host unix:///run/warren/read.sock service ls", true, "seen"},
		{"create a service through read.sock", "warrenctl --host unix:///run/warren/read.sock service create --name intruder --detach localhost/busybox:latest", false, "viewer"},
		{"remove a service through read.sock", "warrenctl --host unix:///run/warren/read.sock service rm seen", false, "viewer"},
		{"ask for a join token through read.sock", "warrenctl --host unix:///run/warren/read.sock join-token manager", false, "viewer"},
		{"use api.sock", "warrenctl service ls", false, "permission denied"},
	} {
		out, err := h.Exec(ctx, as+tc.cmd+" 2>&1")
		if (err == nil) != tc.ok || !strings.Contains(out, tc.want) {
			t.Errorf("nobody in group warren-view: %s (%s): %v\n%s\nwant ok=%v and %q", tc.what, tc.cmd, err, out, tc.ok, tc.want)
		} else {
			t.Logf("%s: %s", tc.what, lastLineOf(out))
		}
	}
}

func lastLineOf(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}
