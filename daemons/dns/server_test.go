package dns

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warren-edge/warren/daemons/api"
)

// bigCluster has one service, web, with n healthy tasks.
func bigCluster(n int) *Table {
	s := service("s1", "web", "")
	var tasks []*api.Task
	for i := range n {
		tasks = append(tasks, runningTask(fmt.Sprintf("t%03d", i), s, uint64(i+1), "n1", fmt.Sprintf("10.0.%d.%d", i/200, i%200+1), ""))
	}
	return BuildTable(TableOptions{}, []*api.Service{s}, tasks)
}

func TestServerUDPAndTCP(t *testing.T) {
	_, addr := startServer(t, Guard(Zone(StaticTable{bigCluster(60)}, &passed{})))
	// 60 addresses do not fit 512 bytes: TC over UDP, all over TCP.
	resp := exchange(t, "udp", addr, question("web.warren.internal.", dns.TypeA))
	if !resp.Truncated || len(resp.Answer) == 0 || len(resp.Answer) >= 60 {
		t.Errorf("UDP query without EDNS for 60 tasks: TC %v, %d answers; want TC and some answers", resp.Truncated, len(resp.Answer))
	}
	resp = exchange(t, "udp", addr, withEDNS(question("web.warren.internal.", dns.TypeA), 4096))
	if resp.Truncated || len(resp.Answer) != 60 || resp.IsEdns0() == nil || resp.IsEdns0().UDPSize() != UDPSize {
		t.Errorf("UDP query with EDNS 4096 for 60 tasks: TC %v, %d answers, OPT %v; want 60 answers (they fit 1232) and our OPT", resp.Truncated, len(resp.Answer), resp.IsEdns0())
	}
	resp = exchange(t, "tcp", addr, question("web.warren.internal.", dns.TypeA))
	if resp.Truncated || len(resp.Answer) != 60 {
		t.Errorf("TCP query for 60 tasks: TC %v, %d answers; want all 60", resp.Truncated, len(resp.Answer))
	}
	if err := Probe(context.Background(), "udp", addr, "warren.internal"); err != nil {
		t.Errorf("Probe udp: %v", err)
	}
	if err := Probe(context.Background(), "tcp", addr, "warren.internal"); err != nil {
		t.Errorf("Probe tcp: %v", err)
	}
}

// rawUDP sends b and returns the response, or nil after a short wait.
func rawUDP(t *testing.T, addr string, b []byte) *dns.Msg {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 65535)
	n, err := c.Read(buf)
	if err != nil {
		return nil
	}
	m := new(dns.Msg)
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatalf("undecodable response to %x: %v", b, err)
	}
	return m
}

func TestServerBadPackets(t *testing.T) {
	s, addr := startServer(t, Guard(Zone(StaticTable{bigCluster(1)}, &passed{})))
	good, _ := question("web.warren.internal.", dns.TypeA).Pack()
	response, _ := new(dns.Msg).SetReply(question("web.warren.internal.", dns.TypeA)).Pack()
	// A header that promises a question the packet does not hold.
	cut := append([]byte(nil), good[:14]...)
	// A compression pointer to itself.
	loop := append(append([]byte(nil), good[:12]...), 0xc0, 12, 0, 1, 0, 1)
	// Larger than the read buffer, cut short to it: the 200 zero records
	// it promises unpack (as type 0) and make it oversized.
	huge := make([]byte, 5000)
	copy(huge, good)
	huge[11] = 200
	padded := withEDNS(question("web.warren.internal.", dns.TypeA), 1232)
	padded.IsEdns0().Option = []dns.EDNS0{&dns.EDNS0_PADDING{Padding: make([]byte, 2000)}}
	long, _ := padded.Pack()
	for _, c := range []struct {
		what  string
		b     []byte
		rcode int // -1: no answer
	}{
		{"fewer bytes than a header", []byte{1, 2, 3}, -1},
		{"a response", response, -1},
		{"a question cut short", cut, dns.RcodeFormatError},
		{"a compression loop", loop, dns.RcodeFormatError},
		{"a 5000-byte datagram", huge, dns.RcodeRefused},
		{"a 2000-byte query", long, dns.RcodeRefused},
		{"a good query", good, dns.RcodeSuccess},
	} {
		resp := rawUDP(t, addr.String(), c.b)
		switch {
		case c.rcode < 0 && resp != nil:
			t.Errorf("%s: answered %s; want no answer", c.what, dns.RcodeToString[resp.Rcode])
		case c.rcode >= 0 && resp == nil:
			t.Errorf("%s: no answer; want %s", c.what, dns.RcodeToString[c.rcode])
		case c.rcode >= 0 && resp.Rcode != c.rcode:
			t.Errorf("%s: answered %s; want %s", c.what, dns.RcodeToString[resp.Rcode], dns.RcodeToString[c.rcode])
		}
	}
	if st := s.Stats(); st.Queries != 3 || st.NoError != 1 || st.Refused != 2 {
		t.Errorf("after one good query, two oversized ones and bad packets, stats %+v; want 3 queries, 1 NOERROR, 2 REFUSED (miekg/dns answers FORMERR to what does not unpack itself)", st)
	}
}

func TestServerRecoversPanic(t *testing.T) {
	calls := 0
	s, addr := startServer(t, HandlerFunc(func(ctx context.Context, w ResponseWriter, r *dns.Msg) {
		calls++
		switch r.Question[0].Name {
		case "boom.":
			panic("boom")
		case "unpackable.": // an extended rcode without OPT does not pack
			w.WriteMsg(NewReply(r, dns.RcodeBadCookie))
			return
		}
		w.WriteMsg(NewReply(r, dns.RcodeSuccess))
	}))
	if resp := exchange(t, "udp", addr, question("boom.", dns.TypeA)); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("a handler that panics: answered %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if resp := exchange(t, "tcp", addr, question("fine.", dns.TypeA)); resp.Rcode != dns.RcodeSuccess {
		t.Errorf("after a panic: answered %s, want NOERROR", dns.RcodeToString[resp.Rcode])
	}
	if resp := exchange(t, "udp", addr, question("unpackable.", dns.TypeA)); resp.Rcode != dns.RcodeServerFailure {
		t.Errorf("a response that does not pack: answered %s, want SERVFAIL", dns.RcodeToString[resp.Rcode])
	}
	if st := s.Stats(); st.Panics != 1 || st.ServFail != 2 {
		t.Errorf("stats %+v; want 1 panic, and it and the unpackable response answered SERVFAIL", st)
	}
}
