package manifest

import (
	"slices"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestReadMounts(t *testing.T) {
	const in = `name: db
image: localhost/db
mounts:
  - {type: volume, source: data, target: /var/lib/db}
  - {type: tmpfs, target: /cache, size: 64m, mode: "1777"}
  - {type: bind, source: /srv/www, target: /www, readOnly: true}
`
	docs, err := Read("db.yaml", []byte(in))
	if err != nil || len(docs) != 1 {
		t.Fatalf("Read(db.yaml) = %d documents, %v; want 1", len(docs), err)
	}
	want := []api.Mount{
		{Type: "volume", Source: "data", Target: "/var/lib/db"},
		{Type: "tmpfs", Target: "/cache", Size: 64 << 20, Mode: "1777"},
		{Type: "bind", Source: "/srv/www", Target: "/www", ReadOnly: true},
	}
	if got := docs[0].Spec.Mounts; !slices.Equal(got, want) {
		t.Errorf("Read(db.yaml) mounts = %+v, want %+v", got, want)
	}
	if _, err := Read("bad.yaml", []byte("name: db\nimage: x\nmounts:\n  - {type: volume, src: data, target: /d}\n")); err == nil {
		t.Errorf("Read of a mount with an unknown field (src) = nil, want a problem")
	}
}
