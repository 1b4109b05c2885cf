package nft

import (
	"fmt"
	"net/netip"
	"strings"
)

// Names of the maps and fixed chains of table inet warren. Port chains are
// named after their port ("tcp-8080", "tcp-192-0-2-1-8080"), so they never
// collide with these.
const (
	MapPortsAny  = "published-any"  // ports on all local addresses
	MapPortsAddr = "published-addr" // ports bound to one host address

	ChainPrerouting  = "prerouting"
	ChainOutput      = "output"
	ChainPublished   = "published"
	ChainPostrouting = "postrouting"
	ChainForward     = "forward"
	ChainInput       = "input"
)

// loopback is 127.0.0.0/8.
var loopback = netip.MustParsePrefix("127.0.0.0/8")

// Build computes the ruleset of table inet warren for cfg. It is a pure
// function: the same Config always gives the same Ruleset, whatever the order
// of cfg.Ports.
//
// Packets addressed to a local address of the node (fib daddr type local),
// arriving (prerouting) or sent by the node itself (output), are looked up by
// protocol and port, first among ports bound to their destination address,
// then among ports on all addresses, and go to the port's chain, which
// DNATs them to a backend. Ports without backends get no entry: their
// packets reach the node's own stack, which refuses them unless a process
// of the node listens there.
func Build(cfg Config) (*Ruleset, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	onBridge := MatchIfname{Out: true, Name: cfg.Bridge}
	fromBridge := MatchIfname{Name: cfg.Bridge}
	fromSubnet := MatchAddr{Prefix: cfg.Subnet}
	toCluster := MatchAddr{Dst: true, Prefix: cfg.Cluster}

	anyAddr := &Map{Name: MapPortsAny, Key: KeyProtoPort}
	bound := &Map{Name: MapPortsAddr, Key: KeyAddrProtoPort}
	var portChains []*Chain
	for _, p := range cfg.Ports {
		if len(p.Backends) == 0 {
			continue
		}
		name := portChainName(p)
		elem := MapElement{Proto: p.Proto, Port: p.Port, Goto: name}
		if p.allAddrs() {
			anyAddr.Elements = append(anyAddr.Elements, elem)
		} else {
			elem.Addr = p.HostAddr
			bound.Elements = append(bound.Elements, elem)
		}
		portChains = append(portChains, &Chain{Name: name, Rules: dnatRules(p)})
	}

	toPublished := []Rule{{Match: []Match{MatchFibDaddrLocal{}}, Action: ActionJump{Chain: ChainPublished}}}
	rs := &Ruleset{Maps: []*Map{bound, anyAddr}}
	rs.Chains = append(rs.Chains,
		&Chain{
			Name:  ChainPrerouting,
			Hook:  &Hook{Type: "nat", Hook: "prerouting", Priority: -100},
			Rules: toPublished,
		},
		&Chain{
			Name:  ChainOutput,
			Hook:  &Hook{Type: "nat", Hook: "output", Priority: -100},
			Rules: toPublished,
		},
		&Chain{
			Name: ChainPublished,
			Rules: []Rule{
				{Action: ActionVmap{Key: KeyAddrProtoPort, Map: MapPortsAddr}},
				{Match: []Match{MatchIPv4{}}, Action: ActionVmap{Key: KeyProtoPort, Map: MapPortsAny}},
			},
		},
	)
	rs.Chains = append(rs.Chains, portChains...)

	postrouting := []Rule{
		// Containers reach the world with the node's address; other
		// nodes' containers see their own address (through the mesh).
		{Match: []Match{fromSubnet, MatchAddr{Dst: true, Not: true, Prefix: cfg.Cluster}, MatchIfname{Out: true, Not: true, Name: cfg.Bridge}}, Action: ActionMasquerade{}},
		// localhost:PORT on the node: 127.0.0.1 cannot be a source
		// on the bridge, so it becomes the bridge's address.
		{Match: []Match{onBridge, MatchAddr{Prefix: loopback}}, Action: ActionMasquerade{}},
		// Hairpin: a container reaching a published port that leads
		// to a container on the same bridge must see the answer come
		// back through the node.
		{Match: []Match{onBridge, fromSubnet, MatchCtDNAT{}}, Action: ActionMasquerade{}},
	}
	var forward []Rule
	if cfg.Mesh != "" {
		// The mesh's MTU is smaller than the containers' (WireGuard's
		// overhead): TCP connections through it advertise an MSS that
		// fits, whether or not ICMP "fragmentation needed" gets through.
		// Before the accepts, which would end the chain for SYN-ACKs
		// (ct state established) before they got here.
		forward = append(forward, Rule{Match: []Match{MatchIfname{Out: true, Name: cfg.Mesh}, MatchTCPSyn{}}, Action: ActionClampMSS{}})
	}
	// Admission: container addresses (the cluster range) take traffic
	// only from the bridge, the mesh, and translated connections of
	// published ports; anything else addressed to them (a LAN host with
	// a route to a container subnet through this node) is dropped.
	forward = append(forward, []Rule{
		{Match: []Match{MatchCtEstablished{}}, Action: ActionAccept{}},
		{Match: []Match{MatchCtDNAT{}}, Action: ActionAccept{}},
		{Match: []Match{fromBridge}, Action: ActionAccept{}},
	}...)
	// The node's own container addresses (the bridge's, where warren-dns
	// listens) answer the node itself (lo), its containers and the mesh.
	admitted := []Match{toCluster, MatchIfname{Not: true, Name: "lo"}, MatchIfname{Not: true, Name: cfg.Bridge}}
	if cfg.Mesh != "" {
		// A published port whose backend runs on another node: the
		// answer must come back through this node, so the connection
		// leaves with the bridge's address, which every node routes to
		// this one through the mesh. (A local backend keeps the client's
		// address: SNAT only where it is needed.)
		postrouting = append(postrouting, Rule{Match: []Match{MatchIfname{Out: true, Name: cfg.Mesh}, MatchCtDNAT{}}, Action: ActionSNAT{To: cfg.gateway()}})
		forward = append(forward, Rule{Match: []Match{MatchIfname{Name: cfg.Mesh}}, Action: ActionAccept{}})
		admitted = append(admitted, MatchIfname{Not: true, Name: cfg.Mesh})
	}
	input := []Rule{
		// route_localnet on the bridge makes the node accept
		// 127.0.0.0/8 from it; only answers to the node's own
		// localhost connections may come that way.
		{Match: []Match{fromBridge, MatchAddr{Dst: true, Prefix: loopback}, MatchCtEstablished{Not: true}}, Action: ActionDrop{}},
	}
	if cfg.Mesh != "" {
		// The same on the mesh, which needs route_localnet for
		// localhost:PORT to reach a backend on another node.
		input = append(input, Rule{Match: []Match{MatchIfname{Name: cfg.Mesh}, MatchAddr{Dst: true, Prefix: loopback}, MatchCtEstablished{Not: true}}, Action: ActionDrop{}})
	}
	input = append(input, Rule{Match: append(admitted, MatchCtEstablished{Not: true}), Action: ActionDrop{}})
	forward = append(forward, Rule{Match: []Match{toCluster}, Action: ActionDrop{}})

	rs.Chains = append(rs.Chains,
		&Chain{
			Name:  ChainPostrouting,
			Hook:  &Hook{Type: "nat", Hook: "postrouting", Priority: 100},
			Rules: postrouting,
		},
		&Chain{
			Name:  ChainForward,
			Hook:  &Hook{Type: "filter", Hook: "forward", Priority: 0},
			Rules: forward,
		},
		&Chain{
			Name:  ChainInput,
			Hook:  &Hook{Type: "filter", Hook: "input", Priority: 0},
			Rules: input,
		},
	)
	return rs, nil
}

// dnatRules spreads new connections of p evenly over its backends: backend
// i (of n) is taken with probability 1/(n-i) if none before it was, which
// makes 1/n for each; the last one takes the rest. Only the first packet of
// a connection goes through nat chains, so the rules cost nothing after it.
//
// (One rule with "numgen random mod n map { ... }" would do the same, but
// google/nftables marks anonymous maps' keys big-endian while numgen's are
// host-endian, so nft would list such a map with wrong keys.)
func dnatRules(p PublishedPort) []Rule {
	n := len(p.Backends)
	rules := make([]Rule, n)
	for i, b := range p.Backends {
		match := []Match{MatchL4Proto{Proto: p.Proto}}
		if i < n-1 {
			match = append(match, MatchRandom{Mod: uint32(n - i)})
		}
		rules[i] = Rule{Match: match, Action: ActionDNAT{To: b}}
	}
	return rules
}

// portChainName names the chain that forwards p: "tcp-8080", or
// "tcp-192-0-2-1-8080" for a port bound to 192.0.2.1.
func portChainName(p PublishedPort) string {
	if p.allAddrs() {
		return fmt.Sprintf("%s-%d", p.Proto, p.Port)
	}
	return fmt.Sprintf("%s-%s-%d", p.Proto, strings.ReplaceAll(p.HostAddr.String(), ".", "-"), p.Port)
}

// Chain returns the chain called name, or nil.
func (rs *Ruleset) Chain(name string) *Chain {
	for _, c := range rs.Chains {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Map returns the map called name, or nil.
func (rs *Ruleset) Map(name string) *Map {
	for _, m := range rs.Maps {
		if m.Name == name {
			return m
		}
	}
	return nil
}
