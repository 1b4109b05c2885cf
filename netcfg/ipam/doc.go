// Package ipam owns the addresses of one node's container subnet.
//
// A Pool hands out IPv4 addresses from a subnet such as 10.88.3.0/24 to
// owners (sandbox ids). The network address, the gateway (the first host
// address, which the node's bridge carries) and the broadcast address are never
// handed out. An owner holds at most one address, and asking again returns the
// same one, so callers can retry freely.
//
// Released addresses are not reused at once: the search for a free address
// starts after the last address handed out and wraps around, so a stale ARP
// entry or conntrack flow aimed at a departed container does not reach the
// next one.
//
// The package is pure apart from Load and Save, which persist a Pool as JSON so
// that addresses survive agent restarts. Save is atomic: a crash leaves either
// the old or the new file, never a torn one. Callers must Save after Allocate
// and before they use the address, or a crash could hand it out twice.
package ipam
