package nodesubnet

import (
	"net/netip"
	"testing"
)

func TestCapacity(t *testing.T) {
	tests := []struct {
		prefix string
		want   int
	}{
		{"10.240.1.0/24", 253},
		{"10.240.1.0/26", 61},
		{"10.240.0.0/16", 65533},
		{"10.240.1.4/30", 1}, // network, gateway, one container, broadcast
		{"10.240.1.4/31", 0},
		{"10.240.1.4/32", 0},
		{"10.0.0.0/8", 1<<24 - 3},
		{"fd00::/64", 0},
		{"::ffff:10.240.1.0/120", 0}, // IPv4 in IPv6 is not an IPv4 subnet
	}
	for _, tt := range tests {
		if got := Capacity(netip.MustParsePrefix(tt.prefix)); got != tt.want {
			t.Errorf("Capacity(%s) = %d, want %d", tt.prefix, got, tt.want)
		}
	}
	if got := Capacity(netip.Prefix{}); got != 0 {
		t.Errorf("Capacity(zero Prefix) = %d, want 0", got)
	}
}

// TestMaxBits checks that MaxBits is the longest prefix with room for a
// container.
func TestMaxBits(t *testing.T) {
	at := func(bits int) int { return Capacity(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 240, 0, 0}), bits)) }
	if got := at(MaxBits); got < 1 {
		t.Errorf("Capacity(/%d) = %d, want at least 1 (MaxBits must leave room for a container)", MaxBits, got)
	}
	if got := at(MaxBits + 1); got != 0 {
		t.Errorf("Capacity(/%d) = %d, want 0 (MaxBits must be the longest prefix with room for a container)", MaxBits+1, got)
	}
}
