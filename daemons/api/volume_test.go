package api_test

import (
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestValidateServiceSpecMounts(t *testing.T) {
	mounts := func(ms ...api.Mount) func(*api.ServiceSpec) {
		return func(s *api.ServiceSpec) { s.Mounts = ms; api.NormalizeSpec(s) }
	}
	vol := func(src, dst string) api.Mount { return api.Mount{Type: api.MountVolume, Source: src, Target: dst} }
	bind := func(src, dst string) api.Mount { return api.Mount{Type: api.MountBind, Source: src, Target: dst} }
	tmpfs := func(dst string) api.Mount { return api.Mount{Type: api.MountTmpfs, Target: dst} }
	runSpecCases(t, []specCase{
		{"volume", mounts(vol("data", "/data")), nil},
		{"bind", mounts(bind("/srv/www", "/www")), nil},
		{"tmpfs with size and mode", mounts(api.Mount{Type: api.MountTmpfs, Target: "/cache", Size: 64 << 20, Mode: "1777"}), nil},
		{"three kinds", mounts(vol("data", "/data"), bind("/srv", "/srv"), tmpfs("/tmp")), nil},
		{"same destination twice", mounts(vol("data", "/data"), tmpfs("/data/")), []string{"mounts[1].target"}},
		{"relative destination", mounts(vol("data", "data")), []string{"mounts[0].target"}},
		{"root destination", mounts(tmpfs("/")), []string{"mounts[0].target"}},
		{"no destination", mounts(vol("data", "")), []string{"mounts[0].target"}},
		{"dotdot destination", mounts(tmpfs("/a/../etc")), []string{"mounts[0].target"}},
		{"relative bind source", mounts(bind("srv", "/srv")), []string{"mounts[0].source"}},
		{"dotdot bind source", mounts(bind("/srv/../etc", "/srv")), []string{"mounts[0].source"}},
		{"bind without source", mounts(bind("", "/srv")), []string{"mounts[0].source"}},
		{"volume name not DNS-safe", mounts(vol("../x", "/data")), []string{"mounts[0].source"}},
		{"tmpfs with a source", mounts(api.Mount{Type: api.MountTmpfs, Source: "x", Target: "/t"}), []string{"mounts[0].source"}},
		{"bad mode", mounts(api.Mount{Type: api.MountTmpfs, Target: "/t", Mode: "999"}), []string{"mounts[0].mode"}},
		{"negative size", mounts(api.Mount{Type: api.MountTmpfs, Target: "/t", Size: -1}), []string{"mounts[0].size"}},
		{"size on a volume", mounts(api.Mount{Type: api.MountVolume, Source: "d", Target: "/t", Size: 1}), []string{"mounts[0]"}},
		{"unknown type", mounts(api.Mount{Type: "nfs", Target: "/t"}), []string{"mounts[0].type"}},
	})
}

func TestValidateVolumeSpec(t *testing.T) {
	for _, c := range []struct {
		spec api.VolumeSpec
		ok   bool
	}{
		{api.VolumeSpec{Name: "data"}, true},
		{api.VolumeSpec{Name: "data", Labels: map[string]string{"team": "web"}}, true},
		{api.VolumeSpec{Name: ""}, false},
		{api.VolumeSpec{Name: "../etc"}, false},
		{api.VolumeSpec{Name: "Data"}, false},
		{api.VolumeSpec{Name: "data", Labels: map[string]string{"bad key!": "x"}}, false},
	} {
		err := api.ValidateVolumeSpec(&c.spec)
		if (err == nil) != c.ok {
			t.Errorf("ValidateVolumeSpec(%+v) = %v, want ok %v", c.spec, err, c.ok)
		}
	}
}

func TestVolumeNames(t *testing.T) {
	s := api.ServiceSpec{Mounts: []api.Mount{
		{Type: api.MountVolume, Source: "b", Target: "/b"}, {Type: api.MountTmpfs, Target: "/t"},
		{Type: api.MountVolume, Source: "a", Target: "/a"}, {Type: api.MountVolume, Source: "b", Target: "/b2"},
	}}
	if got := s.VolumeNames(); len(got) != 2 || got[0] != "b" || got[1] != "a" {
		t.Errorf("VolumeNames() = %v, want [b a]", got)
	}
}
