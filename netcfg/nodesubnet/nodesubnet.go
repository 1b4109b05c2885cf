// Package nodesubnet owns the layout of a node's container subnet: which of
// its addresses no container gets, and so how many containers it holds.
// netcfg/ipam hands the addresses out; the scheduler counts them, so that it
// never places more tasks on a node than the node's subnet holds. Both ask
// Capacity.
//
// The package is pure (net/netip only): the scheduler links no I/O.
package nodesubnet

import (
	"math"
	"net/netip"
)

// Reserved is how many addresses of a node subnet no container gets: the
// network address, the gateway (the first host address, which the node's
// bridge carries) and the broadcast address.
const Reserved = 3

// MaxBits is the longest prefix a node subnet may have: a /30 holds its
// reserved addresses and one container; a /31 none.
const MaxBits = 30

// Capacity returns how many containers a node subnet holds: its addresses
// less the Reserved ones (253 for a /24, 1 for a /30). An invalid prefix,
// an IPv6 prefix and one longer than MaxBits hold none. On a 32-bit
// platform the answer stops at math.MaxInt.
func Capacity(p netip.Prefix) int {
	if !p.IsValid() || !p.Addr().Is4() || p.Bits() > MaxBits {
		return 0
	}
	return int(min(uint64(1)<<(32-p.Bits())-Reserved, math.MaxInt))
}
