// Package nft owns the node's nftables table, inet warren: published ports
// (DNAT to container backends, on this node or, through the mesh, on
// others), the NAT and forwarding rules that go with the container bridge
// and the mesh, and the admission of traffic to container addresses.
//
// The package has a pure core and one edge:
//
//   - Build turns the desired state (Config: bridge, subnet, cluster range,
//     mesh interface, published ports) into a Ruleset, a small model of
//     maps, chains and rules. It does no I/O.
//   - Ruleset.String renders that model in nft syntax; the golden files in
//     testdata are such renderings, and they load with nft -f.
//   - Table.Apply converts a Ruleset to google/nftables objects and replaces
//     the table in one netlink transaction: if it fails, the previous ruleset
//     stays in place. Table.Remove deletes the table.
//
// Warren never touches another table, and its chains only accept, translate
// (DNAT, SNAT, masquerade) or jump: traffic that is not Warren's passes
// through untouched. The exceptions are drops of packets for Warren's own
// addresses: for the cluster range, from anywhere but the bridge, the mesh
// (and lo) unless they belong to a published port's connection; and for
// 127.0.0.0/8 that arrive on the bridge or the mesh without belonging to a
// connection, which route_localnet there would otherwise let containers or
// other nodes send to the node's loopback services. See README.md for the
// ruleset and the reasons.
package nft
