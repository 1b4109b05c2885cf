package dns

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/miekg/dns"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzServeDNS from fuzzSeeds")

// fuzzChain is the real chain with the table of testCluster and, in place
// of the forwarder (no network in a fuzz target), a next link that relays
// a canned upstream answer through the forwarder's relay.
func fuzzChain() Handler {
	services, tasks := testCluster()
	upstream := HandlerFunc(func(_ context.Context, w ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		m.SetEdns0(4096, true)
		rr, _ := dns.NewRR(r.Question[0].Name + " 60 IN A 192.0.2.1")
		if rr != nil {
			m.Answer = append(m.Answer, rr)
		}
		w.WriteMsg(relay(r, m))
	})
	return Guard(Zone(StaticTable{BuildTable(TableOptions{}, services, tasks)}, upstream))
}

// FuzzServeDNS feeds raw packets through unpacking (what miekg/dns's
// server does before the chain; a packet that does not unpack gets
// FORMERR from it) and the chain, over UDP and TCP. It fails on a panic,
// or on a response a client could not use: one that does not pack, is
// larger than the client's limit, is not a response to the query, carries
// an rcode the RFCs do not give for it, or comes twice.
func FuzzServeDNS(f *testing.F) {
	// The seeds are testdata/fuzz/FuzzServeDNS (see fuzzSeeds).
	h := fuzzChain()
	f.Fuzz(func(t *testing.T, raw []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(raw); err != nil {
			return
		}
		for _, network := range []string{"udp", "tcp"} {
			rec := newRecorder(r, network)
			h.ServeDNS(context.Background(), rec, r)
			if len(rec.msgs) > 1 {
				t.Fatalf("%s: %d responses to one query", network, len(rec.msgs))
			}
			if len(rec.msgs) == 0 {
				if !r.Response {
					t.Fatalf("%s: no response to a query (%v)", network, r)
				}
				continue
			}
			m := rec.msgs[0]
			if r.Response {
				t.Fatalf("%s: answered a response: %v", network, m)
			}
			if rec.sizes[0] > maxResponseSize(r, network) {
				t.Fatalf("%s: %d-byte response; the client takes %d", network, rec.sizes[0], maxResponseSize(r, network))
			}
			if !m.Response || m.Id != r.Id || m.Opcode != r.Opcode {
				t.Fatalf("%s: response QR %v id %d opcode %d to query id %d opcode %d", network, m.Response, m.Id, m.Opcode, r.Id, r.Opcode)
			}
			switch m.Rcode {
			case dns.RcodeSuccess, dns.RcodeNameError:
				if len(m.Question) != 1 || m.Question[0] != r.Question[0] {
					t.Fatalf("%s: answer to question %v is about %v", network, r.Question, m.Question)
				}
			case dns.RcodeFormatError, dns.RcodeNotImplemented, dns.RcodeRefused, dns.RcodeServerFailure, dns.RcodeBadVers:
			default:
				t.Fatalf("%s: rcode %d (%s)", network, m.Rcode, dns.RcodeToString[m.Rcode])
			}
			if (m.IsEdns0() != nil) != (r.IsEdns0() != nil) {
				t.Fatalf("%s: response OPT %v to query OPT %v", network, m.IsEdns0(), r.IsEdns0())
			}
		}
	})
}

type seed struct {
	name string
	raw  []byte
}

// fuzzSeeds are the corpus: good queries of each kind served, and each
// kind of bad input the Guard and miekg/dns answer.
func fuzzSeeds() []seed {
	var seeds []seed
	add := func(name string, m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			panic(fmt.Sprintf("seed %s: %v", name, err))
		}
		seeds = append(seeds, seed{name, b})
	}
	raw := func(name string, b []byte) { seeds = append(seeds, seed{name, b}) }
	q := func(name string, qtype uint16) *dns.Msg {
		m := question(name, qtype)
		m.Id = 0x1234
		return m
	}
	add("a-service", q("web.warren.internal.", dns.TypeA))
	add("a-service-edns", withEDNS(q("web.warren.internal.", dns.TypeA), 1232))
	add("aaaa-service", q("db.warren.internal.", dns.TypeAAAA))
	add("a-slot", q("web.2.warren.internal.", dns.TypeA))
	add("a-task", q("web.3.t-web3.warren.internal.", dns.TypeA))
	add("srv", withEDNS(q("_8080._tcp.web.warren.internal.", dns.TypeSRV), 512))
	add("srv-proto", q("_udp.web.warren.internal.", dns.TypeSRV))
	add("soa", q("warren.internal.", dns.TypeSOA))
	add("any", q("web.warren.internal.", dns.TypeANY))
	add("ptr", q("3.2.0.10.in-addr.arpa.", dns.TypePTR))
	add("nxdomain", q("nope.warren.internal.", dns.TypeA))
	add("nodata", q("web.warren.internal.", dns.TypeTXT))
	add("unknown-type", q("web.warren.internal.", 65280))
	add("mixed-case", q("WeB.WARREN.internal.", dns.TypeA))
	add("forwarded", withEDNS(q("example.com.", dns.TypeA), 4096))
	add("root", q(".", dns.TypeNS))
	m := q("web.warren.internal.", dns.TypeA)
	m.Response = true
	add("response", m)
	m = q("web.warren.internal.", dns.TypeA)
	m.Opcode = dns.OpcodeNotify
	add("notify", m)
	m = q("web.warren.internal.", dns.TypeA)
	m.Opcode = dns.OpcodeUpdate
	add("update", m)
	m = q("web.warren.internal.", dns.TypeA)
	m.Question = append(m.Question, m.Question[0])
	add("two-questions", m)
	m = q("web.warren.internal.", dns.TypeA)
	m.Question = nil
	add("no-question", m)
	m = withEDNS(q("web.warren.internal.", dns.TypeA), 1232)
	m.IsEdns0().SetVersion(1)
	add("edns-version-1", m)
	m = withEDNS(q("web.warren.internal.", dns.TypeA), 1232)
	m.Extra = append(m.Extra, m.Extra[0])
	add("two-opt", m)
	m = withEDNS(q("web.warren.internal.", dns.TypeA), 1232)
	m.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_PADDING{Padding: make([]byte, 1400)}}
	add("oversized", m)
	m = q("web.warren.internal.", dns.TypeA)
	m.Question[0].Qclass = dns.ClassCHAOS
	add("class-chaos", m)
	add("axfr", q("warren.internal.", dns.TypeAXFR))
	add("qtype-opt", q("warren.internal.", dns.TypeOPT))
	add("qtype-tsig", q("warren.internal.", dns.TypeTSIG))
	add("qtype-maila", q("warren.internal.", dns.TypeMAILA))
	m = q("web.warren.internal.", dns.TypeA)
	rr, _ := dns.NewRR("web.warren.internal. 5 IN A 10.0.0.1")
	m.Answer = []dns.RR{rr}
	add("answer-in-query", m)
	good, _ := q("web.warren.internal.", dns.TypeA).Pack()
	raw("short", good[:5])
	raw("cut-question", good[:len(good)-3])
	raw("pointer-loop", append(append([]byte(nil), good[:12]...), 0xc0, 12, 0, 1, 0, 1))
	raw("label-too-long", append(append([]byte(nil), good[:12]...), append([]byte{64}, make([]byte, 70)...)...))
	raw("empty", nil)
	return seeds
}

// TestFuzzCorpusIsCurrent checks that testdata holds the seeds (go test
// runs them as FuzzServeDNS's corpus); -update-corpus rewrites it.
func TestFuzzCorpusIsCurrent(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzServeDNS")
	for _, s := range fuzzSeeds() {
		path := filepath.Join(dir, s.name)
		want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s.raw)
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("%s is missing or stale (%v): run go test ./daemons/dns -run FuzzCorpus -update-corpus", path, err)
		}
	}
}
