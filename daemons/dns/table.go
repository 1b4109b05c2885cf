package dns

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/warren-edge/warren/daemons/api"
)

// DefaultDomain is the cluster domain. ".internal" is reserved for private
// use (ICANN, 2024), so it never collides with a public name.
const DefaultDomain = "warren.internal"

// DefaultTTL is the TTL of answers, and of NXDOMAIN and NODATA (the SOA
// minimum): short, so a task that stops or turns unhealthy leaves the
// caches of clients quickly.
const DefaultTTL = 5 * time.Second

// TableOptions say how a Table names things.
type TableOptions struct {
	// Domain is the cluster domain (default DefaultDomain).
	Domain string
	// TTL of the answers, in whole seconds (default DefaultTTL).
	TTL time.Duration
	// Index is the replica's index, written as the SOA serial.
	Index uint64
	// Unreachable are nodes this node's mesh does not reach now: their
	// tasks keep their own names but are left out of service, slot and
	// SRV answers, as unhealthy tasks are, so a client fails fast
	// instead of timing out.
	Unreachable map[string]bool
}

// Table is an immutable answer table for the cluster domain, built by
// BuildTable. Queries read it without locks; the only thing that changes
// in it is the round-robin position of each name.
type Table struct {
	domain string // canonical FQDN
	ttl    uint32
	index  uint64
	soa    *dns.SOA
	names  map[string]*entry // canonical owner name → records
	ptr    map[string]*dns.PTR

	services, tasks, healthy int
}

// entry is one name of the zone. A name with no records exists all the
// same (a service without healthy tasks, or an empty non-terminal such as
// 2.warren.internal above web.2.warren.internal): NODATA, not NXDOMAIN.
type entry struct {
	a, aaaa, srv []dns.RR
	extra        []dns.RR // SRV targets' addresses
	apex         bool
	next         atomic.Uint32 // round-robin position
}

// Answer is what a Table says about one question.
type Answer struct {
	// Rcode is dns.RcodeSuccess (with no Records: NODATA) or
	// dns.RcodeNameError (NXDOMAIN).
	Rcode   int
	Records []dns.RR
	// Extra holds the addresses of SRV targets.
	Extra []dns.RR
}

// Healthy says whether a task is answered under its service's name: the
// rule of api.Task.Serving, which ingress ports follow too.
func Healthy(t *api.Task) bool { return t.Serving() }

// taskAddr parses the task's address; it is invalid unless the task runs.
func taskAddr(t *api.Task) netip.Addr { return t.RunningAddr() }

// BuildTable builds the answer table of the cluster domain from the
// services and tasks the replica holds. It is a pure function: the same
// input gives the same table, names in the same order.
func BuildTable(o TableOptions, services []*api.Service, tasks []*api.Task) *Table {
	if o.Domain == "" {
		o.Domain = DefaultDomain
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	domain := dns.CanonicalName(o.Domain)
	ttl := uint32(max(o.TTL, 0) / time.Second)
	t := &Table{domain: domain, ttl: ttl, index: o.Index, ptr: make(map[string]*dns.PTR, len(tasks))}
	t.soa = &dns.SOA{Hdr: dns.RR_Header{Name: domain, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns: domain, Mbox: "hostmaster." + domain, Serial: uint32(o.Index),
		Refresh: 3600, Retry: 600, Expire: 86400, Minttl: ttl}

	t.names = make(map[string]*entry, len(services)+6*len(tasks))
	t.names[domain] = &entry{apex: true}
	b := builder{t: t, seen: make(map[ownerAddr]bool, 3*len(tasks)), glue: map[ownerTarget]bool{}}
	byID := make(map[string]*api.Service, len(services))
	validName := map[string]bool{}
	valid := func(name string) bool {
		ok, seen := validName[name]
		if !seen {
			ok = api.ValidateName(name) == nil
			validName[name] = ok
		}
		return ok
	}
	for _, s := range services {
		byID[s.ID] = s
		if valid(s.Spec.Name) {
			b.name(s.Spec.Name + "." + domain)
			t.services++
		}
	}
	sorted := slices.Clone(tasks)
	slices.SortFunc(sorted, func(x, y *api.Task) int {
		return cmp.Or(cmp.Compare(x.ServiceName, y.ServiceName), cmp.Compare(x.Slot, y.Slot),
			cmp.Compare(x.NodeID, y.NodeID), cmp.Compare(x.ID, y.ID))
	})
	for _, tk := range sorted {
		addr := taskAddr(tk)
		if !addr.IsValid() {
			continue
		}
		name, global, ports := tk.ServiceName, tk.Slot == 0, []api.PortConfig(nil)
		if s := byID[tk.ServiceID]; s != nil {
			name, global, ports = s.Spec.Name, s.Spec.IsGlobal(), s.Spec.Ports
		}
		if !valid(name) || !validLabel(tk.ID) || (global && !validLabel(tk.NodeID)) {
			continue // not a name DNS can carry; the API never makes one
		}
		group := strconv.FormatUint(tk.Slot, 10) // the slot, or the node of a global task
		if global {
			group = strings.ToLower(tk.NodeID)
		}
		svc := name + "." + domain
		taskName := name + "." + group + "." + strings.ToLower(tk.ID) + "." + domain
		t.tasks++
		b.addr(taskName, addr)
		if rev, err := dns.ReverseAddr(addr.String()); err == nil && t.ptr[rev] == nil {
			t.ptr[rev] = &dns.PTR{Hdr: dns.RR_Header{Name: rev, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: ttl}, Ptr: taskName}
		}
		slotName := name + "." + group + "." + domain
		if !Healthy(tk) || o.Unreachable[tk.NodeID] {
			b.name(slotName) // it exists, with nothing to answer: NODATA
			continue
		}
		t.healthy++
		b.addr(svc, addr)
		b.addr(slotName, addr)
		for _, p := range ports {
			proto := "_" + p.Proto() + "." + svc
			for _, owner := range []string{"_" + strconv.Itoa(int(p.Published)) + "." + proto, proto} {
				e := b.name(owner)
				e.srv = append(e.srv, &dns.SRV{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: ttl},
					Priority: 0, Weight: 1, Port: p.Target, Target: taskName})
				if !b.glued(owner, taskName) {
					e.extra = append(e.extra, addrRR(taskName, addr, ttl))
				}
			}
		}
	}
	return t
}

// builder adds names to a table under construction.
type builder struct {
	t    *Table
	seen map[ownerAddr]bool   // addresses added to a name
	glue map[ownerTarget]bool // SRV targets whose address a name has
}

type ownerAddr struct {
	owner string
	addr  netip.Addr
}

type ownerTarget struct{ owner, target string }

// name returns the entry of owner (a name under the domain), making it and
// the empty non-terminals between it and the domain.
func (b *builder) name(owner string) *entry {
	if e := b.t.names[owner]; e != nil {
		return e
	}
	e := &entry{}
	b.t.names[owner] = e
	for parent := owner; len(parent) > len(b.t.domain); {
		parent = parent[strings.IndexByte(parent, '.')+1:]
		if b.t.names[parent] == nil {
			b.t.names[parent] = &entry{}
		}
	}
	return e
}

// addr adds an address record to owner, once per address.
func (b *builder) addr(owner string, a netip.Addr) {
	e := b.name(owner)
	if k := (ownerAddr{owner, a}); b.seen[k] {
		return
	} else {
		b.seen[k] = true
	}
	rr := addrRR(owner, a, b.t.ttl)
	if a.Is4() {
		e.a = append(e.a, rr)
	} else {
		e.aaaa = append(e.aaaa, rr)
	}
}

// glued says whether owner's extra section has target's address already,
// and records that it now has.
func (b *builder) glued(owner, target string) bool {
	k := ownerTarget{owner, target}
	had := b.glue[k]
	b.glue[k] = true
	return had
}

func addrRR(owner string, a netip.Addr, ttl uint32) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: a.AsSlice()}
	}
	return &dns.AAAA{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()}
}

// validLabel says whether s can be one DNS label as it is (IDs are base36).
func validLabel(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Domain is the cluster domain as a canonical FQDN ("warren.internal.").
func (t *Table) Domain() string { return t.domain }

// Index is the replica index the table was built at.
func (t *Table) Index() uint64 { return t.index }

// Counts are the services known, the running tasks with an address, and
// those of them answered under their service's name.
func (t *Table) Counts() (services, tasks, healthy int) { return t.services, t.tasks, t.healthy }

// SOA is the zone's SOA record, for the authority section of negative
// answers.
func (t *Table) SOA() *dns.SOA { return t.soa }

// Lookup answers q from the table. ok is false when q is not the table's
// to answer: a name outside the cluster domain that is not the reverse name
// of a task address (and not a PTR question for one). Records are owned by
// the caller; names with several records come in rotated order, one step
// further for each query.
func (t *Table) Lookup(q dns.Question) (ans Answer, ok bool) {
	name := strings.ToLower(q.Name)
	if !strings.HasSuffix(name, t.domain) || (len(name) > len(t.domain) && name[len(name)-len(t.domain)-1] != '.') {
		if ptr := t.ptr[name]; ptr != nil && (q.Qtype == dns.TypePTR || q.Qtype == dns.TypeANY) {
			return Answer{Records: rename([]dns.RR{ptr}, q.Name, name)}, true
		}
		return Answer{}, false
	}
	e := t.names[name]
	if e == nil {
		return Answer{Rcode: dns.RcodeNameError}, true
	}
	var rrs []dns.RR
	switch q.Qtype {
	case dns.TypeA:
		rrs = e.a
	case dns.TypeAAAA:
		rrs = e.aaaa
	case dns.TypeSRV:
		rrs = e.srv
		ans.Extra = e.extra
	case dns.TypeSOA:
		if e.apex {
			rrs = []dns.RR{t.soa}
		}
	case dns.TypeANY: // RFC 8482 allows any subset; these are the useful ones
		rrs = slices.Concat(e.a, e.aaaa, e.srv)
		if e.apex {
			rrs = append(rrs, t.soa)
		}
		ans.Extra = e.extra
	}
	if len(rrs) > 1 {
		rrs = rotated(rrs, e.next.Add(1)-1)
	}
	ans.Records = rename(rrs, q.Name, name)
	return ans, true
}

// rotated returns a copy of rrs starting at position n modulo its length
// (the modulo in uint32: int is 32 bits on armv7).
func rotated(rrs []dns.RR, n uint32) []dns.RR {
	k := int(n % uint32(len(rrs)))
	out := make([]dns.RR, 0, len(rrs))
	return append(append(out, rrs[k:]...), rrs[:k]...)
}

// rename gives the records the owner name as the client spelt it (RFC 4343
// case preservation; 0x20 randomising resolvers compare it), copying them
// only when it differs from the canonical one.
func rename(rrs []dns.RR, asked, canonical string) []dns.RR {
	if asked == canonical || len(rrs) == 0 {
		return rrs
	}
	out := make([]dns.RR, len(rrs))
	for i, rr := range rrs {
		if rr.Header().Name == canonical {
			rr = dns.Copy(rr)
			rr.Header().Name = asked
		}
		out[i] = rr
	}
	return out
}
