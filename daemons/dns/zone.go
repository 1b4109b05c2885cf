package dns

import (
	"context"
	"slices"

	"github.com/miekg/dns"
)

// TableSource gives the current answer table; a *Replica is one.
type TableSource interface {
	Table() *Table
}

// StaticTable is a TableSource that always gives the same table (tests,
// benchmarks).
type StaticTable struct{ T *Table }

// Table returns s.T.
func (s StaticTable) Table() *Table { return s.T }

// Zone is the link that answers the cluster domain, and the PTR names of
// task addresses, from the current table, authoritatively: records, NODATA
// or NXDOMAIN, the last two with the SOA in the authority section (RFC
// 2308). Every other query goes to next.
func Zone(tables TableSource, next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, w ResponseWriter, r *dns.Msg) {
		if len(r.Question) != 1 {
			writeRcode(w, r, dns.RcodeFormatError)
			return
		}
		t := tables.Table()
		ans, ok := t.Lookup(r.Question[0])
		if !ok {
			next.ServeDNS(ctx, w, r)
			return
		}
		m := NewReply(r, ans.Rcode)
		m.Authoritative = true
		m.RecursionAvailable = true
		m.Answer = ans.Records
		if len(ans.Extra) > 0 {
			m.Extra = slices.Concat(ans.Extra, m.Extra) // the OPT record stays last
		}
		if len(m.Answer) == 0 {
			m.Ns = []dns.RR{t.SOA()}
		}
		w.WriteMsg(m)
	})
}
