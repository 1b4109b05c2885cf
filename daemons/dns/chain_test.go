package dns

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/warren-edge/warren/daemons/api"
)

// passed is a next handler that records that it was reached and answers
// NOERROR with no records.
type passed struct{ n int }

func (p *passed) ServeDNS(_ context.Context, w ResponseWriter, r *dns.Msg) {
	p.n++
	w.WriteMsg(NewReply(r, dns.RcodeSuccess))
}

func TestGuard(t *testing.T) {
	mod := func(f func(m *dns.Msg)) *dns.Msg {
		m := question("web.warren.internal.", dns.TypeA)
		f(m)
		return m
	}
	a := func(name string) dns.RR {
		rr, _ := dns.NewRR(name + " 5 IN A 10.0.0.1")
		return rr
	}
	big := mod(func(m *dns.Msg) {
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_PADDING{Padding: make([]byte, 1300)})
	})
	for _, c := range []struct {
		what  string
		req   *dns.Msg
		rcode int // -1: no response
		pass  bool
	}{
		{"a plain query", question("web.warren.internal.", dns.TypeA), dns.RcodeSuccess, true},
		{"a query with EDNS", withEDNS(question("web.warren.internal.", dns.TypeA), 4096), dns.RcodeSuccess, true},
		{"an unknown type", question("web.warren.internal.", 65280), dns.RcodeSuccess, true},
		{"ANY", question("web.warren.internal.", dns.TypeANY), dns.RcodeSuccess, true},
		{"a response", mod(func(m *dns.Msg) { m.Response = true }), -1, false},
		{"NOTIFY", mod(func(m *dns.Msg) { m.Opcode = dns.OpcodeNotify }), dns.RcodeNotImplemented, false},
		{"UPDATE", mod(func(m *dns.Msg) { m.Opcode = dns.OpcodeUpdate }), dns.RcodeNotImplemented, false},
		{"opcode 3", mod(func(m *dns.Msg) { m.Opcode = 3 }), dns.RcodeNotImplemented, false},
		{"IQUERY", mod(func(m *dns.Msg) { m.Opcode = dns.OpcodeIQuery }), dns.RcodeNotImplemented, false},
		{"no question", mod(func(m *dns.Msg) { m.Question = nil }), dns.RcodeFormatError, false},
		{"two questions", mod(func(m *dns.Msg) { m.Question = append(m.Question, m.Question[0]) }), dns.RcodeFormatError, false},
		{"an answer record", mod(func(m *dns.Msg) { m.Answer = []dns.RR{a("web.warren.internal.")} }), dns.RcodeFormatError, false},
		{"an authority record", mod(func(m *dns.Msg) { m.Ns = []dns.RR{a("web.warren.internal.")} }), dns.RcodeFormatError, false},
		{"two OPT records", mod(func(m *dns.Msg) { m.SetEdns0(1232, false); m.Extra = append(m.Extra, m.Extra[0]) }), dns.RcodeFormatError, false},
		{"OPT not at the root", mod(func(m *dns.Msg) { m.SetEdns0(1232, false); m.Extra[0].Header().Name = "x." }), dns.RcodeFormatError, false},
		{"EDNS version 1", mod(func(m *dns.Msg) { m.SetEdns0(1232, false); m.IsEdns0().SetVersion(1) }), dns.RcodeBadVers, false},
		{"an oversized query", big, dns.RcodeRefused, false},
		{"class CHAOS", mod(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassCHAOS }), dns.RcodeRefused, false},
		{"class ANY", mod(func(m *dns.Msg) { m.Question[0].Qclass = dns.ClassANY }), dns.RcodeRefused, false},
		{"class 42", mod(func(m *dns.Msg) { m.Question[0].Qclass = 42 }), dns.RcodeRefused, false},
		{"AXFR", question("warren.internal.", dns.TypeAXFR), dns.RcodeRefused, false},
		{"IXFR", question("warren.internal.", dns.TypeIXFR), dns.RcodeRefused, false},
		{"QTYPE OPT", question("warren.internal.", dns.TypeOPT), dns.RcodeFormatError, false},
		{"QTYPE TSIG", question("warren.internal.", dns.TypeTSIG), dns.RcodeFormatError, false},
		{"QTYPE TKEY", question("warren.internal.", dns.TypeTKEY), dns.RcodeFormatError, false},
		{"QTYPE 0", question("warren.internal.", 0), dns.RcodeFormatError, false},
		{"MAILA", question("warren.internal.", dns.TypeMAILA), dns.RcodeNotImplemented, false},
		{"QTYPE 200", question("warren.internal.", 200), dns.RcodeNotImplemented, false},
	} {
		next := &passed{}
		resp := serve(Guard(next), c.req)
		what := fmt.Sprintf("Guard on %s", c.what)
		if (next.n > 0) != c.pass {
			t.Errorf("%s: passed on %d times, want pass=%v", what, next.n, c.pass)
		}
		if c.rcode < 0 {
			if resp != nil {
				t.Errorf("%s: answered %s; want no answer", what, dns.RcodeToString[resp.Rcode])
			}
			continue
		}
		if resp == nil {
			t.Errorf("%s: no answer; want %s", what, dns.RcodeToString[c.rcode])
			continue
		}
		if resp.Rcode != c.rcode || resp.Id != c.req.Id || !resp.Response || resp.Opcode != c.req.Opcode {
			t.Errorf("%s: answered rcode %s id %d QR %v opcode %d; want %s, id %d, QR, opcode %d",
				what, dns.RcodeToString[resp.Rcode], resp.Id, resp.Response, resp.Opcode, dns.RcodeToString[c.rcode], c.req.Id, c.req.Opcode)
		}
		if (resp.IsEdns0() != nil) != (c.req.IsEdns0() != nil) {
			t.Errorf("%s: response OPT %v; want one exactly when the query had one", what, resp.IsEdns0())
		}
		if opt := resp.IsEdns0(); opt != nil && opt.Version() != 0 {
			t.Errorf("%s: response EDNS version %d, want 0", what, opt.Version())
		}
	}
}

func TestZoneAnswers(t *testing.T) {
	services, tasks := testCluster()
	tb := BuildTable(TableOptions{Index: 7}, services, tasks)
	next := &passed{}
	h := Guard(Zone(StaticTable{tb}, next))
	for _, c := range []struct {
		name    string
		qtype   uint16
		rcode   int
		answers int
		soa     bool
	}{
		{"web.warren.internal.", dns.TypeA, dns.RcodeSuccess, 2, false},
		{"web.warren.internal.", dns.TypeTXT, dns.RcodeSuccess, 0, true},
		{"nope.warren.internal.", dns.TypeA, dns.RcodeNameError, 0, true},
		{"_8080._tcp.web.warren.internal.", dns.TypeSRV, dns.RcodeSuccess, 2, false},
	} {
		resp := serve(h, withEDNS(question(c.name, c.qtype), 1232))
		what := fmt.Sprintf("query %s %s", c.name, dns.TypeToString[c.qtype])
		if resp.Rcode != c.rcode || len(resp.Answer) != c.answers || !resp.Authoritative {
			t.Errorf("%s: rcode %s, %d answers, AA %v; want %s, %d answers, AA", what, dns.RcodeToString[resp.Rcode], len(resp.Answer), resp.Authoritative, dns.RcodeToString[c.rcode], c.answers)
		}
		hasSOA := len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA && resp.Ns[0].Header().Ttl == 5
		if hasSOA != c.soa {
			t.Errorf("%s: authority %v; want the SOA (TTL 5) = %v", what, resp.Ns, c.soa)
		}
		if opt := resp.IsEdns0(); opt == nil || resp.Extra[len(resp.Extra)-1] != dns.RR(opt) {
			t.Errorf("%s: additional %v; want the OPT record last", what, resp.Extra)
		}
	}
	if next.n != 0 {
		t.Errorf("cluster names were passed on %d times; want 0", next.n)
	}
	serve(h, question("example.com.", dns.TypeA))
	serve(h, question("9.9.9.10.in-addr.arpa.", dns.TypePTR))
	if next.n != 2 {
		t.Errorf("example.com and an unknown PTR were passed on %d times; want 2", next.n)
	}
}

func TestFitDropsExtraBeforeTruncating(t *testing.T) {
	s := service("s1", "web", "", api.PortConfig{Target: 80, Published: 8080})
	var tasks []*api.Task
	for i := range 16 {
		tasks = append(tasks, runningTask(fmt.Sprintf("task%02dxxxxxxxxxxxxxxxxxxx", i), s, uint64(i+1), "n1", fmt.Sprintf("10.0.0.%d", i+1), ""))
	}
	h := Zone(StaticTable{BuildTable(TableOptions{}, []*api.Service{s}, tasks)}, &passed{})
	// 16 SRV records fit 1232 bytes, their 16 addresses as well do not:
	// the addresses go, without TC.
	r := withEDNS(question("_8080._tcp.web.warren.internal.", dns.TypeSRV), 1232)
	rec := newRecorder(r, "udp")
	h.ServeDNS(context.Background(), rec, r)
	resp := rec.msg()
	if resp.Truncated || len(resp.Answer) != 16 || len(resp.Extra) != 1 || rec.sizes[0] > 1232 {
		t.Errorf("SRV of 16 tasks within 1232 bytes: TC %v, %d answers, %d additional, %d bytes; want all 16 answers, only the OPT, no TC",
			resp.Truncated, len(resp.Answer), len(resp.Extra), rec.sizes[0])
	}
	// Without EDNS (512 bytes) the SRV records are cut, with TC.
	r = question("_8080._tcp.web.warren.internal.", dns.TypeSRV)
	rec = newRecorder(r, "udp")
	h.ServeDNS(context.Background(), rec, r)
	if resp := rec.msg(); !resp.Truncated || len(resp.Answer) >= 16 || rec.sizes[0] > 512 {
		t.Errorf("SRV of 16 tasks in 512 bytes: TC %v, %d answers, %d bytes; want TC and fewer answers", resp.Truncated, len(resp.Answer), rec.sizes[0])
	}
	// Over TCP everything comes.
	r = question("_8080._tcp.web.warren.internal.", dns.TypeSRV)
	rec = newRecorder(r, "tcp")
	h.ServeDNS(context.Background(), rec, r)
	if resp := rec.msg(); resp.Truncated || len(resp.Answer) != 16 || len(resp.Extra) != 16 {
		t.Errorf("SRV of 16 tasks over TCP: TC %v, %d answers, %d additional; want 16 and 16", resp.Truncated, len(resp.Answer), len(resp.Extra))
	}
}

func TestNewReplyCopiesQuestionCase(t *testing.T) {
	r := question("WeB.WaRReN.InTeRnAl.", dns.TypeA)
	services, tasks := testCluster()
	resp := serve(Zone(StaticTable{BuildTable(TableOptions{}, services, tasks)}, &passed{}), r)
	if resp.Question[0].Name != r.Question[0].Name || len(resp.Answer) == 0 || !strings.EqualFold(resp.Answer[0].Header().Name, "web.warren.internal.") || resp.Answer[0].Header().Name != r.Question[0].Name {
		t.Errorf("query %s: question %s, answer %v; want the name spelt as asked in both", r.Question[0].Name, resp.Question[0].Name, resp.Answer)
	}
}
