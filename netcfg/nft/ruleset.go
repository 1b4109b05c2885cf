package nft

import (
	"fmt"
	"net/netip"
	"strings"
)

// TableName is the name of Warren's table; its family is inet.
const TableName = "warren"

// Ruleset is the model of table inet warren: what Build computes from a
// Config, what String renders and what Table.Apply loads into the kernel.
type Ruleset struct {
	Maps   []*Map
	Chains []*Chain
}

// MapKey says what a verdict map is keyed by.
type MapKey int

// The keys of Warren's verdict maps.
const (
	// KeyProtoPort is "meta l4proto . th dport": ports on all addresses.
	KeyProtoPort MapKey = iota
	// KeyAddrProtoPort is "ip daddr . meta l4proto . th dport": ports bound
	// to one host address.
	KeyAddrProtoPort
)

func (k MapKey) String() string {
	if k == KeyAddrProtoPort {
		return "ip daddr . meta l4proto . th dport"
	}
	return "meta l4proto . th dport"
}

// nftType is the key's type in nft syntax.
func (k MapKey) nftType() string {
	if k == KeyAddrProtoPort {
		return "ipv4_addr . inet_proto . inet_service"
	}
	return "inet_proto . inet_service"
}

// Map is a named verdict map from a published port to the chain that
// forwards it.
type Map struct {
	Name     string
	Key      MapKey
	Elements []MapElement
}

// MapElement is one entry of a Map: a port and the chain to go to.
type MapElement struct {
	Addr  netip.Addr // only for KeyAddrProtoPort
	Proto Proto
	Port  uint16
	Goto  string
}

func (e MapElement) String() string {
	s := fmt.Sprintf("%s . %d : goto %s", e.Proto, e.Port, e.Goto)
	if e.Addr.IsValid() {
		s = e.Addr.String() + " . " + s
	}
	return s
}

// Chain is a chain of the table. Base chains have a Hook; their policy is
// always accept.
type Chain struct {
	Name  string
	Hook  *Hook
	Rules []Rule
}

// Hook makes a chain a base chain.
type Hook struct {
	Type     string // "nat" or "filter"
	Hook     string // "prerouting", "input", "forward", "output", "postrouting"
	Priority int
}

// String renders the hook as the first line of an nft chain block.
func (h Hook) String() string {
	return fmt.Sprintf("type %s hook %s priority %s; policy accept;", h.Type, h.Hook, priorityName(h.Hook, h.Priority))
}

// priorityName renders a priority the way nft 1.0.6 accepts it: names only
// where nft allows them (dstnat is not accepted for the output hook).
func priorityName(hook string, p int) string {
	switch {
	case p == 0:
		return "filter"
	case p == -100 && hook == "prerouting":
		return "dstnat"
	case p == 100 && hook == "postrouting":
		return "srcnat"
	}
	return fmt.Sprint(p)
}

// Rule is a list of matches followed by one action.
type Rule struct {
	Match  []Match
	Action Action
}

func (r Rule) String() string {
	parts := make([]string, 0, len(r.Match)+1)
	for _, m := range r.Match {
		parts = append(parts, m.String())
	}
	parts = append(parts, r.Action.String())
	return strings.Join(parts, " ")
}

// Match is a condition of a rule. The implementations are the types of this
// package named Match*.
type Match interface {
	fmt.Stringer
	isMatch()
}

// Action is what a rule does when it matches. The implementations are the
// types of this package named Action*.
type Action interface {
	fmt.Stringer
	isAction()
}

// MatchFibDaddrLocal matches packets addressed to a local address of the
// node: "fib daddr type local".
type MatchFibDaddrLocal struct{}

// MatchIPv4 matches IPv4 packets: "meta nfproto ipv4".
type MatchIPv4 struct{}

// MatchL4Proto matches a transport protocol: "meta l4proto tcp".
type MatchL4Proto struct{ Proto Proto }

// MatchIfname matches the input or output interface by name.
type MatchIfname struct {
	Out  bool // oifname instead of iifname
	Not  bool
	Name string
}

// MatchAddr matches the IPv4 source or destination address against a prefix.
type MatchAddr struct {
	Dst    bool // ip daddr instead of ip saddr
	Not    bool
	Prefix netip.Prefix
}

// MatchCtEstablished matches packets of established or related connections,
// or with Not those of no such connection.
type MatchCtEstablished struct{ Not bool }

// MatchRandom matches one packet in Mod, at random: "numgen random mod
// Mod == 0". A chain of DNAT rules with Mod = N, N-1, ..., 2 and a last rule
// without it spreads new connections evenly over N backends.
type MatchRandom struct{ Mod uint32 }

// MatchCtDNAT matches packets of connections that were destination-NATed:
// "ct status dnat".
type MatchCtDNAT struct{}

// MatchTCPSyn matches TCP packets with SYN set and RST clear, the first
// two of a connection (SYN and SYN-ACK): "tcp flags syn / syn,rst", as nft
// 1.0.6 lists "tcp flags & (syn | rst) == syn".
type MatchTCPSyn struct{}

func (MatchFibDaddrLocal) isMatch() {}
func (MatchIPv4) isMatch()          {}
func (MatchL4Proto) isMatch()       {}
func (MatchIfname) isMatch()        {}
func (MatchAddr) isMatch()          {}
func (MatchCtEstablished) isMatch() {}
func (MatchCtDNAT) isMatch()        {}
func (MatchRandom) isMatch()        {}
func (MatchTCPSyn) isMatch()        {}

func (MatchFibDaddrLocal) String() string { return "fib daddr type local" }
func (MatchIPv4) String() string          { return "meta nfproto ipv4" }
func (m MatchL4Proto) String() string     { return "meta l4proto " + string(m.Proto) }
func (MatchCtDNAT) String() string        { return "ct status dnat" }
func (m MatchRandom) String() string      { return fmt.Sprintf("numgen random mod %d == 0", m.Mod) }
func (MatchTCPSyn) String() string        { return "tcp flags syn / syn,rst" }

func (m MatchIfname) String() string {
	s := "iifname "
	if m.Out {
		s = "oifname "
	}
	if m.Not {
		s += "!= "
	}
	return s + `"` + m.Name + `"`
}

func (m MatchAddr) String() string {
	s := "ip saddr "
	if m.Dst {
		s = "ip daddr "
	}
	if m.Not {
		s += "!= "
	}
	if m.Prefix.IsSingleIP() {
		return s + m.Prefix.Addr().String()
	}
	return s + m.Prefix.String()
}

func (m MatchCtEstablished) String() string {
	if m.Not {
		return "ct state ! established,related"
	}
	return "ct state established,related"
}

// ActionAccept accepts the packet (in this table; other tables still see it).
type ActionAccept struct{}

// ActionDrop drops the packet.
type ActionDrop struct{}

// ActionJump jumps to a regular chain and comes back.
type ActionJump struct{ Chain string }

// ActionMasquerade rewrites the source address to the outgoing interface's.
type ActionMasquerade struct{}

// ActionSNAT rewrites the source address to To: "snat ip to ADDR".
type ActionSNAT struct {
	To netip.Addr
}

// ActionVmap looks the packet up in a verdict map; no entry means go on.
type ActionVmap struct {
	Key MapKey
	Map string
}

// ActionDNAT rewrites the destination to To. The rule must match the
// transport protocol first (MatchL4Proto): nft refuses a port translation
// without one.
type ActionDNAT struct {
	To netip.AddrPort
}

// ActionClampMSS lowers the MSS option of a TCP packet to what the route's
// MTU allows (the route the packet takes, so the outgoing interface's MTU
// unless the route sets one): "tcp option maxseg size set rt mtu". The
// kernel only ever lowers the option, and leaves packets without one alone.
// The rule goes on (this is not a verdict).
type ActionClampMSS struct{}

func (ActionAccept) isAction()     {}
func (ActionDrop) isAction()       {}
func (ActionJump) isAction()       {}
func (ActionMasquerade) isAction() {}
func (ActionSNAT) isAction()       {}
func (ActionVmap) isAction()       {}
func (ActionDNAT) isAction()       {}
func (ActionClampMSS) isAction()   {}

func (ActionAccept) String() string     { return "accept" }
func (ActionDrop) String() string       { return "drop" }
func (a ActionJump) String() string     { return "jump " + a.Chain }
func (ActionMasquerade) String() string { return "masquerade" }
func (a ActionVmap) String() string     { return a.Key.String() + " vmap @" + a.Map }
func (ActionClampMSS) String() string   { return "tcp option maxseg size set rt mtu" }

func (a ActionDNAT) String() string { return "dnat ip to " + a.To.String() }
func (a ActionSNAT) String() string { return "snat ip to " + a.To.String() }
