package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
