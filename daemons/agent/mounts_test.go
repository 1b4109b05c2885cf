package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestCheckBind(t *testing.T) {
	root := t.TempDir()
	allowed := filepath.Join(root, "allowed")
	other := filepath.Join(root, "other")
	for _, d := range []string{filepath.Join(allowed, "www"), other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// A link inside the allowed folder that leads out of it, and one
	// outside that leads in.
	if err := os.Symlink(other, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(allowed, "www"), filepath.Join(other, "in")); err != nil {
		t.Fatal(err)
	}
	allow := []string{allowed}
	tests := []struct {
		src     string
		allow   []string
		want    string // the path to mount
		wantErr string
	}{
		{src: allowed, allow: allow, want: allowed},
		{src: filepath.Join(allowed, "www"), allow: allow, want: filepath.Join(allowed, "www")},
		{src: filepath.Join(allowed, "www") + "/", allow: allow, want: filepath.Join(allowed, "www")},
		{src: "/etc", allow: nil, wantErr: "bind source /etc is not under a path this node allows: add it with warren agent --allow-bind (none allowed by default)"},
		{src: "/etc", allow: allow, wantErr: "is not under a path this node allows: add it with warren agent --allow-bind (allowed: " + allowed + ")"},
		{src: allowed + "x", allow: allow, wantErr: "is not under a path this node allows"},
		{src: filepath.Join(allowed, "escape"), allow: allow, wantErr: "leads to " + other + ", which is not under a path this node allows"},
		{src: filepath.Join(other, "in"), allow: allow, wantErr: "is not under a path this node allows"},
		{src: allowed + "/www/../../other", allow: allow, wantErr: "holds '..'"},
		{src: "www", allow: allow, wantErr: "is not an absolute path"},
		{src: filepath.Join(allowed, "missing"), allow: allow, wantErr: "no such file"},
	}
	for _, tt := range tests {
		got, err := CheckBind(tt.allow, tt.src)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CheckBind(%v, %q) = %q, %v; want an error with %q", tt.allow, tt.src, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CheckBind(%v, %q) = %q, %v; want %q", tt.allow, tt.src, got, err, tt.want)
		}
	}
}

// A removed volume's data goes only on a list the managers say they keep:
// a node record without it (from a manager older than volumes, during an
// upgrade) deletes nothing; one with it deletes what is neither listed
// nor mounted.
func TestDropVolumesOnlyOnAKnownList(t *testing.T) {
	a, _ := testAgent(t)
	a.cfg.DataDir = t.TempDir()
	a.synced = true
	for _, v := range []string{"kept", "gone", "mounted"} {
		if err := os.MkdirAll(filepath.Join(a.cfg.DataDir, VolumesDir, v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a.tasks["t1"] = &api.Task{Meta: api.Meta{ID: "t1"}, NodeID: "n1", DesiredState: api.TaskRunning,
		Spec: api.ServiceSpec{Mounts: []api.Mount{{Type: api.MountVolume, Source: "mounted", Target: "/data"}}}}
	exists := func(v string) bool {
		_, err := os.Stat(filepath.Join(a.cfg.DataDir, VolumesDir, v))
		return err == nil
	}
	a.dropVolumes(&api.Node{}) // an older manager's record: no list
	if !exists("gone") || !exists("kept") {
		t.Fatalf("a record with no volume list deleted data")
	}
	a.dropVolumes(&api.Node{Volumes: []string{"kept"}, VolumesKnown: true})
	if exists("gone") || !exists("kept") || !exists("mounted") {
		t.Errorf("after a known list: gone %t, kept %t, mounted %t; want only gone deleted", exists("gone"), exists("kept"), exists("mounted"))
	}
}
