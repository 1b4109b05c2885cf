// Package nft owns the node's nftables table, inet warren: published ports
// (DNAT to container backends) and the NAT and forwarding rules that go with
// the container bridge.
//
// The package has a pure core and one edge:
//
//   - Build turns the desired state (Config: bridge, subnet, published ports)
//     into a Ruleset, a small model of maps, chains and rules. It does no I/O.
//   - Ruleset.String renders that model in nft syntax; the golden files in
//     testdata are such renderings, and they load with nft -f.
//   - Table.Apply converts a Ruleset to google/nftables objects and replaces
//     the table in one netlink transaction: if it fails, the previous ruleset
//     stays in place. Table.Remove deletes the table.
//
// Warren never touches another table, and its chains only accept, translate
// (DNAT, masquerade) or jump: traffic that is not Warren's passes through
// untouched. The one exception is a drop of packets that arrive on Warren's
// own bridge for 127.0.0.0/8 without belonging to a connection, which
// route_localnet on the bridge would otherwise let containers send to the
// node's loopback services. See README.md for the ruleset and the reasons.
package nft
