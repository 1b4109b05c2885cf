package nft

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// The expressions below mirror, register for register, what nft 1.0.6
// generates for the text that Ruleset.String renders (see
// "nft --debug=netlink"), so that nft lists the table Apply loaded exactly
// as it would list the rendered text. TestApplyMatchesNft checks this.

// elementsPerMessage keeps a message of map elements well under the 64 KiB
// a netlink attribute can hold (an element is under 100 bytes).
const elementsPerMessage = 256

// queue adds to c the messages that create rs in table t: chains first (map
// elements and rules refer to them), then maps, then rules.
func (rs *Ruleset) queue(c *nftables.Conn, t *nftables.Table) error {
	chains := make(map[string]*nftables.Chain, len(rs.Chains))
	for _, ch := range rs.Chains {
		nc := &nftables.Chain{Name: ch.Name, Table: t}
		if ch.Hook != nil {
			hook, err := hookNum(ch.Hook.Hook)
			if err != nil {
				return err
			}
			policy := nftables.ChainPolicyAccept
			nc.Hooknum = hook
			nc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(ch.Hook.Priority))
			nc.Type = nftables.ChainType(ch.Hook.Type)
			nc.Policy = &policy
		}
		chains[ch.Name] = c.AddChain(nc)
	}
	for _, m := range rs.Maps {
		set := &nftables.Set{
			Table:        t,
			Name:         m.Name,
			IsMap:        true,
			KeyType:      m.Key.setType(),
			DataType:     nftables.TypeVerdict,
			KeyByteOrder: binaryutil.BigEndian,
		}
		elems := make([]nftables.SetElement, len(m.Elements))
		for i, e := range m.Elements {
			if _, ok := chains[e.Goto]; !ok {
				return fmt.Errorf("map %s: element %s: no chain %s", m.Name, e, e.Goto)
			}
			elems[i] = nftables.SetElement{
				Key:         m.Key.elementKey(e),
				VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: e.Goto},
			}
		}
		// A netlink attribute holds at most 64 KiB: send the elements in
		// several messages, as nft does.
		first := elems[:min(len(elems), elementsPerMessage)]
		if err := c.AddSet(set, first); err != nil {
			return fmt.Errorf("map %s: %w", m.Name, err)
		}
		for rest := elems[len(first):]; len(rest) > 0; rest = rest[min(len(rest), elementsPerMessage):] {
			if err := c.SetAddElements(set, rest[:min(len(rest), elementsPerMessage)]); err != nil {
				return fmt.Errorf("map %s: %w", m.Name, err)
			}
		}
	}
	for _, ch := range rs.Chains {
		for _, r := range ch.Rules {
			exprs, err := r.exprs()
			if err != nil {
				return fmt.Errorf("chain %s: rule %q: %w", ch.Name, r, err)
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: chains[ch.Name], Exprs: exprs})
		}
	}
	return nil
}

func hookNum(name string) (*nftables.ChainHook, error) {
	switch name {
	case "prerouting":
		return nftables.ChainHookPrerouting, nil
	case "input":
		return nftables.ChainHookInput, nil
	case "forward":
		return nftables.ChainHookForward, nil
	case "output":
		return nftables.ChainHookOutput, nil
	case "postrouting":
		return nftables.ChainHookPostrouting, nil
	}
	return nil, fmt.Errorf("unknown hook %q", name)
}

func (k MapKey) setType() nftables.SetDatatype {
	if k == KeyAddrProtoPort {
		return nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	}
	return nftables.MustConcatSetType(nftables.TypeInetProto, nftables.TypeInetService)
}

// elementKey encodes e as the concatenation the map's lookup builds: each
// field in network order, padded to a 4-byte register.
func (k MapKey) elementKey(e MapElement) []byte {
	var key []byte
	if k == KeyAddrProtoPort {
		a := e.Addr.As4()
		key = append(key, a[:]...)
	}
	key = append(key, e.Proto.number(), 0, 0, 0)
	key = binary.BigEndian.AppendUint16(key, e.Port)
	return append(key, 0, 0)
}

// Registers as nft uses them: reg 1 is the first 16-byte register (the
// 4-byte registers 8 to 11), verdicts go to reg 0.
const (
	reg1   = 1
	reg2   = 2
	reg32x = 8 // first 4-byte register; field i of a concatenation is in reg32x+i
)

// ctStatusDNAT is IPS_DST_NAT of linux/netfilter/nf_conntrack_common.h.
const ctStatusDNAT = 1 << 5

// TCP header flags (byte 13) and the maximum segment size option's kind.
const (
	tcpSYN       = 0x02
	tcpRST       = 0x04
	tcpOptMaxseg = 2
)

// exprs converts r to expressions.
func (r Rule) exprs() ([]expr.Any, error) {
	var out []expr.Any
	ipv4 := false // "meta nfproto ipv4" emitted; nft adds it once, before the first ip header field
	needIPv4 := func() {
		if !ipv4 {
			out = append(out, nfprotoIPv4()...)
			ipv4 = true
		}
	}
	for _, m := range r.Match {
		switch m := m.(type) {
		case MatchFibDaddrLocal:
			out = append(out,
				&expr.Fib{Register: reg1, FlagDADDR: true, ResultADDRTYPE: true},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			)
		case MatchIPv4:
			needIPv4()
		case MatchL4Proto:
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{m.Proto.number()}},
			)
		case MatchIfname:
			key := expr.MetaKeyIIFNAME
			if m.Out {
				key = expr.MetaKeyOIFNAME
			}
			out = append(out,
				&expr.Meta{Key: key, Register: reg1},
				&expr.Cmp{Op: cmpOp(m.Not), Register: reg1, Data: ifname(m.Name)},
			)
		case MatchAddr:
			needIPv4()
			out = append(out, addrMatch(m)...)
		case MatchCtEstablished:
			op := expr.CmpOpNeq // state & (established|related) != 0
			if m.Not {
				op = expr.CmpOpEq
			}
			out = append(out, ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED, op)...)
		case MatchRandom:
			out = append(out,
				&expr.Numgen{Register: reg1, Modulus: m.Mod, Type: unix.NFT_NG_RANDOM},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(0)},
			)
		case MatchCtDNAT:
			out = append(out, ctBits(expr.CtKeySTATUS, ctStatusDNAT, expr.CmpOpNeq)...)
		case MatchTCPSyn:
			// nft adds "meta l4proto tcp" before the first tcp header
			// field; the flags are byte 13 of the TCP header.
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
				&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 1, Mask: []byte{tcpSYN | tcpRST}, Xor: []byte{0}},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{tcpSYN}},
			)
		default:
			return nil, fmt.Errorf("no netlink form for match %T", m)
		}
	}
	switch a := r.Action.(type) {
	case ActionAccept:
		out = append(out, &expr.Verdict{Kind: expr.VerdictAccept})
	case ActionDrop:
		out = append(out, &expr.Verdict{Kind: expr.VerdictDrop})
	case ActionJump:
		out = append(out, &expr.Verdict{Kind: expr.VerdictJump, Chain: a.Chain})
	case ActionMasquerade:
		out = append(out, &expr.Masq{})
	case ActionVmap:
		// The key is a concatenation: field i goes to 4-byte register 8+i
		// (8 is the start of reg 1).
		if a.Key == KeyAddrProtoPort {
			needIPv4()
			out = append(out,
				&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg32x + 1},
				&expr.Payload{DestRegister: reg32x + 2, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			)
		} else {
			out = append(out,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1},
				&expr.Payload{DestRegister: reg32x + 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			)
		}
		out = append(out, &expr.Lookup{SourceRegister: reg1, SetName: a.Map, IsDestRegSet: true, DestRegister: unix.NFT_REG_VERDICT})
	case ActionDNAT:
		out = append(out, dnatExprs(a.To)...)
	case ActionSNAT:
		addr := a.To.As4()
		out = append(out,
			&expr.Immediate{Register: reg1, Data: addr[:]},
			&expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1},
		)
	case ActionClampMSS:
		// rt tcpmss is in host order; the option is written in network
		// order at offset 2 (after kind and length) of option 2 (maxseg).
		// nft lists the rule the same without the byteorder (which then
		// writes 20485 for 1360, and the kernel, only lowering, keeps the
		// SYN's MSS): TestMeshClampsMSS is what catches that.
		out = append(out,
			&expr.Rt{Register: reg1, Key: expr.RtTCPMSS},
			&expr.Byteorder{SourceRegister: reg1, DestRegister: reg1, Op: expr.ByteorderHton, Len: 2, Size: 2},
			&expr.Exthdr{Op: expr.ExthdrOpTcpopt, Type: tcpOptMaxseg, Offset: 2, Len: 2, SourceRegister: reg1},
		)
	default:
		return nil, fmt.Errorf("no netlink form for action %T", a)
	}
	return out, nil
}

func cmpOp(not bool) expr.CmpOp {
	if not {
		return expr.CmpOpNeq
	}
	return expr.CmpOpEq
}

func nfprotoIPv4() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: []byte{unix.NFPROTO_IPV4}},
	}
}

// ifname pads an interface name to IFNAMSIZ, as the kernel stores it.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// addrMatch compares ip saddr or daddr with a prefix: whole bytes are
// compared directly, other prefix lengths through a mask.
func addrMatch(m MatchAddr) []expr.Any {
	offset := uint32(12) // saddr
	if m.Dst {
		offset = 16
	}
	bits := m.Prefix.Bits()
	a := m.Prefix.Masked().Addr().As4()
	if bits%8 == 0 {
		n := uint32(bits / 8)
		return []expr.Any{
			&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
			&expr.Cmp{Op: cmpOp(m.Not), Register: reg1, Data: a[:n]},
		}
	}
	var maskBytes [4]byte
	binary.BigEndian.PutUint32(maskBytes[:], ^uint32(0)<<(32-bits))
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: maskBytes[:], Xor: make([]byte, 4)},
		&expr.Cmp{Op: cmpOp(m.Not), Register: reg1, Data: a[:]},
	}
}

// ctBits tests bits of a conntrack key (state or status): key & bits, then
// cmp op 0.
func ctBits(key expr.CtKey, bits uint32, op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: key},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: reg1, Data: make([]byte, 4)},
	}
}

// dnatExprs translates to one backend.
func dnatExprs(to netip.AddrPort) []expr.Any {
	a := to.Addr().As4()
	return []expr.Any{
		&expr.Immediate{Register: reg1, Data: a[:]},
		&expr.Immediate{Register: reg2, Data: binaryutil.BigEndian.PutUint16(to.Port())},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg1, RegProtoMin: reg2, Specified: true},
	}
}
