package manager_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
	"github.com/warren-edge/warren/daemons/pki"
)

// TestVolumesThroughAFollower makes, reads and removes volumes through a
// follower (passed on to the leader), and checks who may call the routes.
func TestVolumesThroughAFollower(t *testing.T) {
	c := managertest.StartCluster(t, 3, managertest.Options{})
	leader := c.WaitLeader()
	f := c.Followers()[0]
	cx := ctx(t)

	if _, err := f.Client.CreateVolume(cx, api.VolumeSpec{Name: "data", Node: leader.ID, Labels: map[string]string{"team": "web"}}); err != nil {
		t.Fatalf("volume create data --node %s on a follower: %v", leader.ID, err)
	}
	if _, err := f.Client.CreateVolume(cx, api.VolumeSpec{Name: "spare"}); err != nil {
		t.Fatalf("volume create spare: %v", err)
	}
	if _, err := f.Client.CreateVolume(cx, api.VolumeSpec{Name: "data"}); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("volume create data again = %v, want a conflict", err)
	}
	if _, err := f.Client.CreateVolume(cx, api.VolumeSpec{Name: "x", Node: "nowhere"}); !api.NotFound(err) {
		t.Errorf("volume create x --node nowhere = %v, want not found", err)
	}
	if _, err := f.Client.CreateVolume(cx, api.VolumeSpec{Name: "Bad/Name"}); !api.IsCode(err, api.CodeInvalid) {
		t.Errorf("volume create Bad/Name = %v, want invalid", err)
	}
	v, err := f.Client.Volume(cx, "data")
	if err != nil || v.NodeID != leader.ID || v.Spec.Labels["team"] != "web" {
		t.Errorf("volume inspect data = %+v, %v; want it on %s with label team=web", v, err, leader.ID)
	}
	if vs, err := leader.Client.Volumes(cx, client.ReadOptions{Consistent: true}); err != nil || len(vs) != 2 {
		t.Errorf("volume ls = %+v, %v; want data and spare", vs, err)
	}

	// A service that mounts a missing volume changes nothing.
	spec := api.ServiceSpec{Name: "db", Image: "localhost/busybox", Replicas: 1,
		Mounts: []api.Mount{{Type: api.MountVolume, Source: "nope", Target: "/data"}}}
	if _, err := f.Client.CreateService(cx, spec); err == nil || !strings.Contains(err.Error(), "no volume nope: create it with warrenctl volume create nope") {
		t.Errorf("service create mounting a missing volume = %v, want the no-volume error", err)
	}
	if svcs, _ := leader.Client.Services(cx, client.ReadOptions{Consistent: true}); len(svcs) != 0 {
		t.Errorf("after the refused create: %d services, want 0", len(svcs))
	}
	spec.Mounts[0].Source = "data"
	if _, err := f.Client.CreateService(cx, spec); err != nil {
		t.Fatalf("service create db mounting data: %v", err)
	}
	// No agent runs here, so no node is ready: db's task waits for the
	// volume's node, and says so. It holds the volume all the same.
	want := "no node can run it: volume data lives on node " + leader.ID + ", which is not ready"
	eventually(t, "db's task waits for the volume's node", 10*time.Second, func() error {
		ts, err := leader.Client.Tasks(cx, client.TaskQuery{Service: "db"})
		if err != nil || len(ts) != 1 || ts[0].Status.State != api.TaskPending || ts[0].Status.Err != want {
			return errorf("tasks of db: %v; want one pending saying %q", describeTasks(ts), want)
		}
		return nil
	})
	if err := f.Client.RemoveVolume(cx, "data"); !api.IsCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "in use by service db") {
		t.Errorf("volume rm data while db uses it = %v, want a conflict naming db", err)
	}
	if _, err := leader.Client.Volume(cx, "data"); err != nil {
		t.Errorf("the refused rm removed data: %v", err)
	}
	if err := f.Client.RemoveVolume(cx, "spare"); err != nil {
		t.Errorf("volume rm spare: %v", err)
	}
	if _, err := leader.Client.Volume(cx, "spare"); !api.NotFound(err) {
		t.Errorf("volume inspect spare after rm = %v, want not found", err)
	}

	// Who may call: readers read, writers write, nodes neither.
	as := func(id string, role pki.Role) func(*http.Request) (pki.Identity, bool) {
		return func(*http.Request) (pki.Identity, bool) { return pki.Identity{NodeID: id, Role: role}, true }
	}
	for _, tc := range []struct {
		name         string
		h            http.Handler
		method, path string
		want         int
	}{
		{"the read-only socket lists", f.ReadOnlyHandler(), "GET", "/v1/volumes", 200},
		{"the read-only socket inspects", f.ReadOnlyHandler(), "GET", "/v1/volumes/data", 200},
		{"the read-only socket creates", f.ReadOnlyHandler(), "POST", "/v1/volumes", 403},
		{"the read-only socket removes", f.ReadOnlyHandler(), "DELETE", "/v1/volumes/data", 403},
		{"a manager certificate lists", f.PeerHandler(as(leader.ID, pki.RoleManager)), "GET", "/v1/volumes", 403},
		{"a manager certificate removes", f.PeerHandler(as(leader.ID, pki.RoleManager)), "DELETE", "/v1/volumes/data", 403},
	} {
		var body *strings.Reader
		if tc.method == "POST" {
			body = strings.NewReader(`{"name":"x"}`)
		} else {
			body = strings.NewReader("")
		}
		rec := httptest.NewRecorder()
		tc.h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, body))
		if rec.Code != tc.want {
			t.Errorf("%s: %s %s = %d %s; want %d", tc.name, tc.method, tc.path, rec.Code, strings.TrimSpace(rec.Body.String()), tc.want)
		}
	}
	if _, err := leader.Client.Volume(cx, "data"); err != nil {
		t.Errorf("volume data after the refused calls: %v", err)
	}
}

func describeTasks(ts []api.Task) string {
	var b strings.Builder
	for _, t := range ts {
		b.WriteString(t.ID + " " + string(t.Status.State) + " node=" + t.NodeID + " err=" + t.Status.Err + "; ")
	}
	return b.String()
}
