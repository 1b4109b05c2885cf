package opts

import (
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestParseMount(t *testing.T) {
	tests := []struct {
		in      string
		want    api.Mount
		wantErr string
	}{
		{in: "type=volume,src=data,dst=/data", want: api.Mount{Type: "volume", Source: "data", Target: "/data"}},
		{in: "src=data,dst=/data/,readonly", want: api.Mount{Type: "volume", Source: "data", Target: "/data", ReadOnly: true}},
		{in: "type=bind,source=/srv/www,target=/www,ro", want: api.Mount{Type: "bind", Source: "/srv/www", Target: "/www", ReadOnly: true}},
		{in: "type=bind,src=/srv//www/,destination=/www,readonly=false", want: api.Mount{Type: "bind", Source: "/srv/www", Target: "/www"}},
		{in: "type=tmpfs,dst=/cache,size=64m,mode=1777", want: api.Mount{Type: "tmpfs", Target: "/cache", Size: 64 << 20, Mode: "1777"}},
		{in: "type=TMPFS,dst=/cache", want: api.Mount{Type: "tmpfs", Target: "/cache"}},
		// ".." is kept as written, for the API to refuse.
		{in: "type=bind,src=/srv/../etc,dst=/x", want: api.Mount{Type: "bind", Source: "/srv/../etc", Target: "/x"}},

		{in: "", wantErr: "empty mount"},
		{in: "type=nfs,dst=/x", wantErr: `type "nfs" is not volume, bind or tmpfs`},
		{in: "type=volume,src=data", wantErr: "a destination in the container is required"},
		{in: "type=tmpfs,dst=/x,size=lots", wantErr: `size "lots" is not a size`},
		{in: "type=tmpfs,dst=/x,size=0", wantErr: `size "0" is not a size`},
		{in: "type=tmpfs,dst=/x,mode=999", wantErr: `mode "999" is not octal`},
		{in: "type=volume,src=d,dst=/x,readonly=maybe", wantErr: "use true or false"},
		{in: "type=volume,src=d,dst=/x,color=red", wantErr: `unknown field "color"`},
		{in: "type=volume,,dst=/x", wantErr: "an empty field"},
	}
	for _, tt := range tests {
		got, err := ParseMount(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseMount(%q) = %+v, %v; want an error with %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseMount(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestSetMounts(t *testing.T) {
	have := []api.Mount{{Type: "volume", Source: "a", Target: "/a"}, {Type: "tmpfs", Target: "/t"}}
	got, err := SetMounts(have, []string{"/t/"}, []string{"type=volume,src=b,dst=/a", "type=tmpfs,dst=/u"})
	if err != nil {
		t.Fatalf("SetMounts: %v", err)
	}
	want := []api.Mount{{Type: "volume", Source: "b", Target: "/a"}, {Type: "tmpfs", Target: "/u"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("SetMounts(rm /t/, add b at /a and /u) = %+v, want %+v", got, want)
	}
	if _, err := SetMounts(have, []string{"/nothing"}, nil); err == nil || !strings.Contains(err.Error(), "mounts nothing there") {
		t.Errorf("SetMounts(rm /nothing) = %v, want an error saying nothing is mounted there", err)
	}
	if len(have) != 2 || have[0].Source != "a" {
		t.Errorf("SetMounts changed its input: %+v", have)
	}
}
