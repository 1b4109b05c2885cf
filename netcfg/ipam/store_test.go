package ipam

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	subnet := netip.MustParsePrefix("10.88.3.0/24")

	p, err := Load(path, subnet)
	if err != nil {
		t.Fatalf("Load(missing file): %v", err)
	}
	if n := p.InUse(); n != 0 {
		t.Fatalf("Load(missing file) has %d addresses in use, want 0", n)
	}
	a := mustAllocate(t, p, "a")
	b := mustAllocate(t, p, "b")
	mustAllocate(t, p, "c")
	p.Release("c") // .4 was handed out last and is free now
	if err := p.Save(path); err != nil {
		t.Fatalf("Save: %v", err)
	}

	q, err := Load(path, subnet)
	if err != nil {
		t.Fatalf("Load after Save: %v", err)
	}
	if got, ok := q.Lookup("a"); !ok || got != a {
		t.Errorf(`after reload Lookup("a") = %v, %v; want %v`, got, ok, a)
	}
	if got, ok := q.Lookup("b"); !ok || got != b {
		t.Errorf(`after reload Lookup("b") = %v, %v; want %v`, got, ok, b)
	}
	// The round robin position survives: .4 (released before the restart)
	// is not handed out next.
	if got := mustAllocate(t, q, "d"); got.String() != "10.88.3.5" {
		t.Errorf(`after reload Allocate("d") = %s, want 10.88.3.5 (continue after the last address handed out)`, got)
	}

	// No temporary files are left next to the pool file.
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v after Save, want only ipam.json", names)
	}
}

func TestSaveIsStable(t *testing.T) {
	dir := t.TempDir()
	p := mustPool(t, "10.88.3.0/24")
	for _, o := range []string{"zeta", "alpha", "mid"} {
		mustAllocate(t, p, o)
	}
	if err := p.Save(filepath.Join(dir, "1.json")); err != nil {
		t.Fatal(err)
	}
	if err := p.Save(filepath.Join(dir, "2.json")); err != nil {
		t.Fatal(err)
	}
	one, _ := os.ReadFile(filepath.Join(dir, "1.json"))
	two, _ := os.ReadFile(filepath.Join(dir, "2.json"))
	if string(one) != string(two) {
		t.Errorf("two Saves of the same pool differ:\n%s\n%s", one, two)
	}
	want := `{
  "version": 1,
  "subnet": "10.88.3.0/24",
  "last": "10.88.3.4",
  "allocations": {
    "alpha": "10.88.3.3",
    "mid": "10.88.3.4",
    "zeta": "10.88.3.2"
  }
}
`
	if string(one) != want {
		t.Errorf("Save wrote\n%s\nwant\n%s", one, want)
	}
}

func TestSaveToMissingDirectory(t *testing.T) {
	p := mustPool(t, "10.88.3.0/24")
	path := filepath.Join(t.TempDir(), "no-such-dir", "ipam.json")
	err := p.Save(path)
	if err == nil || !strings.Contains(err.Error(), "ipam: save "+path) {
		t.Errorf("Save(%s) error = %v, want one naming the file", path, err)
	}
	// A failed save is not a saved state: once the directory is there,
	// Save writes, though nothing changed since.
	mustAllocate(t, p, "a")
	if err := p.Save(path); err == nil {
		t.Fatalf("Save(%s) succeeded without its directory", path)
	}
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := p.Save(path); err != nil {
		t.Fatalf("Save once the directory is there: %v", err)
	}
	if q, err := Load(path, p.Subnet()); err != nil || q.InUse() != 1 {
		t.Errorf("after a failed Save and a good one, the file holds %v (err %v); want a's address", q.Owners(), err)
	}
}

// TestSaveCarriesEveryChangeBeforeIt saves from many goroutines at once, as
// the agent attaches tasks: Save commits them as a group, and yet when a
// caller's Save returns, the file holds that caller's change, allocation
// and release alike.
func TestSaveCarriesEveryChangeBeforeIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	p := mustPool(t, "10.88.0.0/20")
	const workers, rounds = 16, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				owner := fmt.Sprintf("w%d-r%d", w, r)
				a, err := p.Allocate(owner)
				if err != nil {
					t.Error(err)
					return
				}
				if err := p.Save(path); err != nil {
					t.Error(err)
					return
				}
				if got, ok := savedOwner(t, path, p.Subnet(), owner); !ok || got != a {
					t.Errorf("after %s's Save returned, the file gives it %v (held: %v); want %v", owner, got, ok, a)
				}
				if r%2 == 1 {
					continue
				}
				p.Release(owner)
				if err := p.Save(path); err != nil {
					t.Error(err)
					return
				}
				if got, ok := savedOwner(t, path, p.Subnet(), owner); ok {
					t.Errorf("after %s's release was saved, the file still gives it %v", owner, got)
				}
			}
		}()
	}
	wg.Wait()
	if q, err := Load(path, p.Subnet()); err != nil || q.InUse() != p.InUse() {
		t.Errorf("at the end the file holds %d addresses (err %v), the pool %d", q.InUse(), err, p.InUse())
	}
}

func savedOwner(t *testing.T, path string, subnet netip.Prefix, owner string) (netip.Addr, bool) {
	q, err := Load(path, subnet)
	if err != nil {
		t.Errorf("Load: %v", err)
		return netip.Addr{}, false
	}
	return q.Lookup(owner)
}

func TestLoadRejectsBadFiles(t *testing.T) {
	subnet := netip.MustParsePrefix("10.88.3.0/24")
	tests := []struct {
		name    string
		content string
		want    string // substring of the error, after the file name
	}{
		{
			name:    "subnet mismatch",
			content: `{"version":1,"subnet":"10.88.4.0/24","allocations":{}}`,
			want:    "file is for subnet 10.88.4.0/24, but the node's subnet is 10.88.3.0/24",
		},
		{
			name:    "address outside the subnet",
			content: `{"version":1,"subnet":"10.88.3.0/24","allocations":{"a":"10.88.4.2"}}`,
			want:    `owner "a": address 10.88.4.2 is not an allocatable address of 10.88.3.0/24`,
		},
		{
			name:    "gateway",
			content: `{"version":1,"subnet":"10.88.3.0/24","allocations":{"a":"10.88.3.1"}}`,
			want:    `owner "a": address 10.88.3.1 is not an allocatable address`,
		},
		{
			name:    "broadcast",
			content: `{"version":1,"subnet":"10.88.3.0/24","allocations":{"a":"10.88.3.255"}}`,
			want:    `owner "a": address 10.88.3.255 is not an allocatable address`,
		},
		{
			name:    "duplicate address",
			content: `{"version":1,"subnet":"10.88.3.0/24","allocations":{"b":"10.88.3.7","a":"10.88.3.7"}}`,
			want:    `address 10.88.3.7 is held by both "a" and "b"`,
		},
		{
			name:    "bad address",
			content: `{"version":1,"subnet":"10.88.3.0/24","allocations":{"a":"10.88.3.x"}}`,
			want:    `owner "a": bad address "10.88.3.x"`,
		},
		{
			name:    "empty owner",
			content: `{"version":1,"subnet":"10.88.3.0/24","allocations":{"":"10.88.3.2"}}`,
			want:    `address 10.88.3.2 has an empty owner`,
		},
		{
			name:    "unknown version",
			content: `{"version":2,"subnet":"10.88.3.0/24","allocations":{}}`,
			want:    "file format version 2, this agent reads version 1",
		},
		{
			name:    "last outside the subnet",
			content: `{"version":1,"subnet":"10.88.3.0/24","last":"10.1.1.1","allocations":{}}`,
			want:    "last address 10.1.1.1 is not an allocatable address of 10.88.3.0/24",
		},
		{
			name:    "truncated",
			content: `{"version":1,"subnet":"10.88.3.0/24","allocations":{"a":"10.88`,
			want:    "not a valid pool file",
		},
		{
			name:    "empty",
			content: ``,
			want:    "not a valid pool file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ipam.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path, subnet)
			if err == nil {
				t.Fatalf("Load(%s) with %s succeeded, want an error", path, tt.content)
			}
			if prefix := "ipam: load " + path + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("Load error %q does not start with %q", err, prefix)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load error %q does not contain %q", err, tt.want)
			}
		})
	}
}
