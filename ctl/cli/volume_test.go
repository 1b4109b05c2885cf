package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

func TestVolumesAndMounts(t *testing.T) {
	c := startCluster(t)
	if got := c.must("volume", "create", "data", "--label", "team=web").stdout; got != "data\n" {
		t.Errorf("volume create data printed %q, want the name", got)
	}
	c.must("volume", "create", "dump")
	if got := c.must("__complete", "volume", "rm", "d").stdout; !strings.HasPrefix(got, "data\ndump\n:") {
		t.Errorf("warrenctl volume rm d<TAB> completes %q, want data and dump", got)
	}
	c.must("volume", "rm", "dump")
	rows := tableRows(c.must("volume", "ls").stdout)
	if len(rows) != 1 || strings.Join(rows[0], " ") != "data - team=web" {
		t.Errorf("volume ls before any task = %q, want data unbound with its label", rows)
	}

	// Bad mounts change nothing.
	for _, tc := range []struct{ mount, says string }{
		{"type=volume,src=nope,dst=/data", "no volume nope: create it with warrenctl volume create nope"},
		{"type=bind,src=etc,dst=/x", `bind source "etc": must be an absolute path (a path on the host)`},
		{"type=tmpfs,dst=/", "cannot mount over the container's root"},
		{"type=nfs,dst=/x", `type "nfs" is not volume, bind or tmpfs`},
	} {
		r := c.run("service", "create", "--name", "bad", "--mount", tc.mount, "localhost/busybox", "sleep", "1000")
		if r.code == 0 || !strings.Contains(r.stderr, tc.says) {
			t.Errorf("service create --mount %s: exit %d, stderr %q; want an error saying %q", tc.mount, r.code, r.stderr, tc.says)
		}
	}
	if svcs, _ := c.m.Client.Services(c.ctx, client.ReadOptions{}); len(svcs) != 0 {
		t.Errorf("after the refused creates: %d services, want 0", len(svcs))
	}

	c.must("service", "create", "--name", "db", "--mount", "type=volume,src=data,dst=/data",
		"--mount", "type=tmpfs,dst=/cache,size=64m,mode=1770", "localhost/busybox", "sleep", "1000")
	rows = tableRows(c.must("volume", "ls").stdout)
	if len(rows) != 1 || rows[0][1] != "node-1" {
		t.Errorf("volume ls after db's task ran = %q, want data on node-1", rows)
	}
	var vols []api.Volume
	if err := json.Unmarshal([]byte(c.must("volume", "inspect", "data").stdout), &vols); err != nil || len(vols) != 1 || vols[0].NodeID == "" {
		t.Errorf("volume inspect data = %+v, %v; want one volume bound to a node", vols, err)
	}
	pretty := c.must("service", "inspect", "--pretty", "db").stdout
	for _, want := range []string{"Mounts:", "Target = /data", "Type = volume", "Source = data", "Target = /cache", "Size = 64MiB", "Mode = 1770"} {
		if !strings.Contains(pretty, want) {
			t.Errorf("service inspect --pretty db lacks %q:\n%s", want, pretty)
		}
	}
	if r := c.run("volume", "rm", "data"); r.code == 0 || !strings.Contains(r.stderr, "volume data is in use by service db") {
		t.Errorf("volume rm data while db uses it: exit %d, stderr %q; want refused naming db", r.code, r.stderr)
	}

	c.must("service", "update", "db", "--mount-rm", "/cache", "--mount-add", "type=tmpfs,dst=/scratch")
	svc, err := c.m.Client.Service(c.ctx, "db", client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := mountsString(svc.Spec.Mounts); got != "type=volume,src=data,dst=/data type=tmpfs,dst=/scratch" {
		t.Errorf("db's mounts after update = %s, want the volume and /scratch", got)
	}

	// A bind the node does not allow rejects the task, and says why.
	r := c.run("service", "create", "--name", "www", "--mount", "type=bind,src=/etc,dst=/x", "localhost/busybox", "sleep", "1000")
	if r.code == 0 || !strings.Contains(r.stderr, "bind source /etc is not under a path this node allows: add it with warren agent --allow-bind (none allowed by default)") {
		t.Errorf("service create with a bind of /etc: exit %d, stderr %q; want the task rejected naming --allow-bind", r.code, r.stderr)
	}

	c.must("service", "rm", "db")
	c.must("service", "rm", "www")
	c.waitFor("volume rm data to go through once db is removed", func() bool { return c.run("volume", "rm", "data").code == 0 })
	if rows := tableRows(c.must("volume", "ls").stdout); len(rows) != 0 {
		t.Errorf("volume ls after rm = %q, want none", rows)
	}
}

func mountsString(ms []api.Mount) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.String())
	}
	return strings.Join(s, " ")
}
