package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"pgregory.net/rapid"
)

// TestPoolProperties drives a pool with random Allocate, Release and
// Save+Load sequences and checks after every step that no address is held by
// two owners, that reserved addresses are never handed out, and that the pool
// agrees with a simple model of who holds what.
func TestPoolProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bits := rapid.IntRange(26, 30).Draw(t, "bits") // 1 .. 61 addresses: fills up often
		subnet := netip.PrefixFrom(netip.MustParseAddr("10.88.3.0"), bits).Masked()
		p, err := New(subnet)
		if err != nil {
			t.Fatalf("New(%s): %v", subnet, err)
		}
		owners := rapid.SampledFrom(func() []string {
			var o []string
			for i := range 80 {
				o = append(o, fmt.Sprintf("sandbox-%d", i))
			}
			return o
		}())
		model := map[string]netip.Addr{} // owner -> address, as the pool must see it
		var last netip.Addr              // address handed out most recently

		t.Repeat(map[string]func(*rapid.T){
			"allocate": func(t *rapid.T) {
				o := owners.Draw(t, "owner")
				a, err := p.Allocate(o)
				if held, ok := model[o]; ok {
					if err != nil || a != held {
						t.Fatalf("Allocate(%q) = %v, %v; want its existing %s", o, a, err, held)
					}
					return
				}
				if len(model) == p.Size() {
					if !errors.Is(err, ErrFull) {
						t.Fatalf("Allocate(%q) on a full pool: error %v, want ErrFull", o, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Allocate(%q) with %d of %d in use: %v", o, len(model), p.Size(), err)
				}
				if want := nextFree(subnet, model, last); a != want {
					t.Fatalf("Allocate(%q) = %s, want %s (the first free address after %v, round robin)", o, a, want, last)
				}
				model[o] = a
				last = a
			},
			"release": func(t *rapid.T) {
				o := owners.Draw(t, "owner")
				p.Release(o)
				delete(model, o)
			},
			"reload": func(t *rapid.T) {
				// What Save writes and Load reads, without the fsyncs
				// (store_test.go covers the files).
				data, err := p.encode()
				if err != nil {
					t.Fatalf("encode: %v", err)
				}
				q, err := New(subnet)
				if err != nil {
					t.Fatal(err)
				}
				if err := q.decode(data); err != nil {
					t.Fatalf("decode of what encode wrote: %v\n%s", err, data)
				}
				p = q
			},
			"": func(t *rapid.T) {
				seen := map[netip.Addr]string{}
				for _, o := range p.Owners() {
					a, ok := p.Lookup(o)
					if !ok {
						t.Fatalf("Owners() lists %q but Lookup finds no address", o)
					}
					if prev, dup := seen[a]; dup {
						t.Fatalf("address %s held by both %q and %q", a, prev, o)
					}
					seen[a] = o
					if a == p.Gateway() || !subnet.Contains(a) || a == subnet.Addr() || a == lastAddr(subnet) {
						t.Fatalf("owner %q holds %s: gateway, network, broadcast or outside %s", o, a, subnet)
					}
					if model[o] != a {
						t.Fatalf("owner %q holds %s, model says %s", o, a, model[o])
					}
				}
				if len(seen) != len(model) {
					t.Fatalf("pool has %d owners, model has %d", len(seen), len(model))
				}
			},
		})
	})
}

// nextFree is the model of the round robin: the first address after last
// (or after the gateway) that nobody holds, wrapping around before broadcast.
func nextFree(subnet netip.Prefix, held map[string]netip.Addr, last netip.Addr) netip.Addr {
	taken := map[netip.Addr]bool{}
	for _, a := range held {
		taken[a] = true
	}
	first, end := subnet.Addr().Next().Next(), lastAddr(subnet)
	a := first
	if last.IsValid() {
		a = last.Next()
	}
	for {
		if a == end {
			a = first
		}
		if !taken[a] {
			return a
		}
		a = a.Next()
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	u := toUint(p.Addr()) | (1<<(32-p.Bits()) - 1)
	return fromUint(u)
}

// encode returns the JSON file form of p, as Save writes it.
func (p *Pool) encode() ([]byte, error) {
	p.mu.Lock()
	f := p.fileLocked()
	p.mu.Unlock()
	return marshal(f)
}
