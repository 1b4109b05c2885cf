package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		subnet  string
		wantErr string
		gateway string
		size    int
	}{
		{subnet: "10.88.3.0/24", gateway: "10.88.3.1", size: 253},
		{subnet: "10.88.0.0/16", gateway: "10.88.0.1", size: 65533},
		{subnet: "192.168.7.4/30", gateway: "192.168.7.5", size: 1},
		{subnet: "10.88.3.5/24", wantErr: "ipam: subnet 10.88.3.5/24 has host bits set: use 10.88.3.0/24"},
		{subnet: "10.88.3.0/31", wantErr: "ipam: subnet 10.88.3.0/31 is too small: it needs room for network, gateway, broadcast and at least one container (/30 or larger)"},
		{subnet: "fd00::/64", wantErr: "ipam: subnet fd00::/64 is not IPv4: container subnets are IPv4 prefixes such as 10.88.3.0/24"},
	}
	for _, tt := range tests {
		p, err := New(netip.MustParsePrefix(tt.subnet))
		if tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("New(%s) error = %v, want %q", tt.subnet, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%s) error = %v", tt.subnet, err)
			continue
		}
		if got := p.Gateway().String(); got != tt.gateway {
			t.Errorf("New(%s).Gateway() = %s, want %s", tt.subnet, got, tt.gateway)
		}
		if got := p.Size(); got != tt.size {
			t.Errorf("New(%s).Size() = %d, want %d", tt.subnet, got, tt.size)
		}
	}
	if _, err := New(netip.Prefix{}); err == nil {
		t.Errorf("New(zero prefix) succeeded, want an error")
	}
}

func mustPool(t *testing.T, subnet string) *Pool {
	t.Helper()
	p, err := New(netip.MustParsePrefix(subnet))
	if err != nil {
		t.Fatalf("New(%s): %v", subnet, err)
	}
	return p
}

func mustAllocate(t *testing.T, p *Pool, owner string) netip.Addr {
	t.Helper()
	a, err := p.Allocate(owner)
	if err != nil {
		t.Fatalf("Allocate(%q): %v", owner, err)
	}
	return a
}

func TestAllocateSequence(t *testing.T) {
	// Each step allocates (owner != "" && !release) or releases, and says
	// which address the pool must answer with.
	type step struct {
		owner   string
		release bool
		want    string
	}
	tests := []struct {
		name   string
		subnet string
		steps  []step
	}{
		{
			name:   "first address after the gateway, then in order",
			subnet: "10.88.3.0/24",
			steps:  []step{{owner: "a", want: "10.88.3.2"}, {owner: "b", want: "10.88.3.3"}, {owner: "c", want: "10.88.3.4"}},
		},
		{
			name:   "same owner gets its address again",
			subnet: "10.88.3.0/24",
			steps:  []step{{owner: "a", want: "10.88.3.2"}, {owner: "b", want: "10.88.3.3"}, {owner: "a", want: "10.88.3.2"}},
		},
		{
			name:   "released address is not reused at once",
			subnet: "10.88.3.0/24",
			steps: []step{
				{owner: "a", want: "10.88.3.2"}, {owner: "b", want: "10.88.3.3"},
				{owner: "a", release: true},
				{owner: "c", want: "10.88.3.4"},
				{owner: "a", want: "10.88.3.5"},
			},
		},
		{
			name:   "wraps around to the start, skipping the gateway",
			subnet: "10.88.3.0/29", // hosts .2 .. .6
			steps: []step{
				{owner: "a", want: "10.88.3.2"}, {owner: "b", want: "10.88.3.3"}, {owner: "c", want: "10.88.3.4"},
				{owner: "d", want: "10.88.3.5"}, {owner: "e", want: "10.88.3.6"},
				{owner: "b", release: true}, {owner: "a", release: true},
				{owner: "f", want: "10.88.3.2"},
				{owner: "g", want: "10.88.3.3"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPool(t, tt.subnet)
			for i, s := range tt.steps {
				if s.release {
					p.Release(s.owner)
					if a, ok := p.Lookup(s.owner); ok {
						t.Fatalf("step %d: after Release(%q), Lookup = %s, want none", i, s.owner, a)
					}
					continue
				}
				got, err := p.Allocate(s.owner)
				if err != nil {
					t.Fatalf("step %d: Allocate(%q): %v", i, s.owner, err)
				}
				if got.String() != s.want {
					t.Fatalf("step %d: Allocate(%q) = %s, want %s", i, s.owner, got, s.want)
				}
			}
		})
	}
}

func TestAllocateFull(t *testing.T) {
	p := mustPool(t, "10.88.3.0/24")
	for i := range 253 {
		mustAllocate(t, p, fmt.Sprintf("c%d", i))
	}
	_, err := p.Allocate("one-too-many")
	if err == nil {
		t.Fatalf("Allocate on a full /24 succeeded, want an error")
	}
	if want := "ipam: subnet 10.88.3.0/24 is full (253 addresses in use)"; err.Error() != want {
		t.Errorf("Allocate on a full /24: error %q, want %q", err, want)
	}
	if !errors.Is(err, ErrFull) {
		t.Errorf("Allocate on a full /24: errors.Is(%v, ErrFull) = false", err)
	}
	// An existing owner still gets its address on a full pool.
	if a, err := p.Allocate("c7"); err != nil || a.String() != "10.88.3.9" {
		t.Errorf("Allocate(existing owner c7) on a full pool = %v, %v; want 10.88.3.9", a, err)
	}
	p.Release("c100")
	if a, err := p.Allocate("late"); err != nil || a.String() != "10.88.3.102" {
		t.Errorf("Allocate after releasing c100 = %v, %v; want its address 10.88.3.102", a, err)
	}
}

func TestAllocateEmptyOwner(t *testing.T) {
	p := mustPool(t, "10.88.3.0/24")
	if _, err := p.Allocate(""); err == nil {
		t.Errorf(`Allocate("") succeeded, want an error`)
	}
}

func TestOwnersAndRelease(t *testing.T) {
	p := mustPool(t, "10.88.3.0/24")
	for _, o := range []string{"c", "a", "b"} {
		mustAllocate(t, p, o)
	}
	p.Release("b")
	p.Release("never-allocated")
	if got, want := p.Owners(), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Errorf("Owners() = %v, want %v", got, want)
	}
	if got := p.InUse(); got != 2 {
		t.Errorf("InUse() = %d, want 2", got)
	}
	if a, ok := p.Lookup("a"); !ok || a.String() != "10.88.3.3" {
		t.Errorf(`Lookup("a") = %v, %v; want 10.88.3.3, true`, a, ok)
	}
}
