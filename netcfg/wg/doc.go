// Package wg is the node's end of the fleet's WireGuard mesh: its key pair,
// the interface (kernel WireGuard where the module exists, the embedded
// userspace implementation otherwise), and the plan that keeps the
// interface's peers equal to the other nodes' records.
//
// Two processes share the work:
//
//   - Serve (warren mesh, unit warren-mesh.service) owns the interface. In
//     kernel mode it creates the link and idles; in userspace mode it runs
//     golang.zx2c4.com/wireguard's device on a TUN in-process and serves
//     the UAPI socket in /run/wireguard. It holds no key: a restart brings
//     back an empty device, which the agent fills again.
//   - Mesh (inside warren-agent) configures it through wgctrl, which drives
//     both modes with the same calls: the private key (generated on first
//     start, 0600 in the agent's data dir, never sent anywhere), the listen
//     port, one peer per other node with that node's container subnet as
//     allowed IPs, a persistent keepalive, the interface's MTU and address,
//     and a route per peer subnet.
//
// So an agent restart touches nothing that did not change: peers whose
// records are the same are left alone and their sessions keep going. A
// peer's endpoint is set only when it is new or its record's endpoint
// changed, so WireGuard's own roaming (a peer found again at the address
// its authenticated packets come from) is not undone on every pass.
//
// Plan is pure: the current device and the wanted peers in, a wgtypes.Config
// out.
package wg
