package opts

import (
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestParseFileRef(t *testing.T) {
	good := []struct {
		in   string
		want api.FileRef
	}{
		{"db", api.FileRef{Name: "db"}},
		{"db,target=pw,uid=10,gid=20,mode=0400", api.FileRef{Name: "db", Target: "pw", UID: 10, GID: 20, Mode: 0o400}},
		{"source=tls.crt,target=/etc/ssl/x.crt,mode=444", api.FileRef{Name: "tls.crt", Target: "/etc/ssl/x.crt", Mode: 0o444}},
	}
	for _, c := range good {
		got, err := ParseFileRef(api.KindSecret, c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseFileRef(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
	bad := map[string]string{
		"":                      "needs a name",
		"-db":                   "is not valid",
		"db,mode=0999":          "not a file mode",
		"db,mode=rw":            "not a file mode",
		"db,uid=-1":             "not a number",
		"db,owner=1":            "unknown option",
		"db,target":             "not KEY=VALUE",
		strings.Repeat("a", 65): "the limit is 64",
	}
	for in, want := range bad {
		if _, err := ParseFileRef(api.KindSecret, in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFileRef(%q) = %v, want an error with %q", in, err, want)
		}
	}
}
