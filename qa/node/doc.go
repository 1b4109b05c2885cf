// Package node holds the integration tests of one Warren node on this
// machine, as root: a private containerd, a real manager, the real
// warren-agent binary with its bridge, veths and nftables rules inside a
// network namespace the test makes to play the node, and a second
// namespace that plays a client on the node's network. Nothing touches the
// machine's own network.
//
//	client ns (192.168.77.2) ──veth── node ns (192.168.77.1, .3)
//	                                   └─ warren0 10.240.0.1/24 ── task namespaces
package node
