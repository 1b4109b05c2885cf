package dns

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// upstream is a small DNS server on loopback standing in for the host's
// resolver. It answers NAME. A with 192.0.2.1, big.example. with 100
// addresses (truncated over UDP), fail.example. with SERVFAIL, other.
// with an answer to another question, and never answers slow.example.
type upstream struct {
	addr netip.AddrPort
	mu   sync.Mutex
	seen []*dns.Msg // queries received
	nets []string
	got  chan struct{}
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{got: make(chan struct{}, 100)}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		network := "udp"
		if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
			network = "tcp"
		}
		u.mu.Lock()
		u.seen = append(u.seen, r.Copy())
		u.nets = append(u.nets, network)
		u.mu.Unlock()
		u.got <- struct{}{}
		m := new(dns.Msg).SetReply(r)
		m.RecursionAvailable = true
		if opt := r.IsEdns0(); opt != nil {
			m.SetEdns0(4096, opt.Do())
		}
		q := r.Question[0]
		switch q.Name {
		case "slow.example.":
			return
		case "fail.example.":
			m.Rcode = dns.RcodeServerFailure
		case "other.example.":
			m.Question[0].Name = "else.example."
		case "big.example.":
			for i := range 100 {
				rr, _ := dns.NewRR(fmt.Sprintf("big.example. 60 IN A 192.0.2.%d", i+1))
				m.Answer = append(m.Answer, rr)
			}
		default:
			rr, _ := dns.NewRR(q.Name + " 60 IN A 192.0.2.1")
			m.Answer = append(m.Answer, rr)
		}
		if network == "udp" {
			m.Truncate(maxResponseSize(r, "udp"))
		}
		w.WriteMsg(m)
	})
	pc, l := listenPair(t)
	u.addr = netip.MustParseAddrPort(pc.LocalAddr().String())
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		go srv.ActivateAndServe()
		t.Cleanup(func() { srv.Shutdown() })
	}
	// Wait until it answers.
	c := &dns.Client{Timeout: time.Second}
	for range 50 {
		if _, _, err := c.Exchange(question("ready.", dns.TypeA), u.addr.String()); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	u.mu.Lock()
	u.seen, u.nets = nil, nil
	u.mu.Unlock()
	for len(u.got) > 0 {
		<-u.got
	}
	return u
}

func (u *upstream) queries() ([]*dns.Msg, []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen), slices.Clone(u.nets)
}

// forwarding serves the whole chain with a forwarder to ups on loopback.
func forwarding(t *testing.T, cfg ForwarderConfig) (*Forwarder, netip.AddrPort) {
	t.Helper()
	cfg.Logger = quiet()
	f := NewForwarder(cfg)
	_, addr := startServer(t, Guard(Zone(StaticTable{bigCluster(1)}, f)))
	return f, addr
}

func TestForward(t *testing.T) {
	up := startUpstream(t)
	f, addr := forwarding(t, ForwarderConfig{Upstreams: []netip.AddrPort{up.addr}})

	q := question("ExAmple.COM.", dns.TypeA)
	q.SetEdns0(1232, true)
	resp := exchange(t, "udp", addr, q)
	if resp.Rcode != dns.RcodeSuccess || fmt.Sprint(addrsOf(resp.Answer)) != "[192.0.2.1]" || resp.Id != q.Id || resp.Question[0].Name != "ExAmple.COM." {
		t.Fatalf("forwarded ExAmple.COM. A: rcode %s, answers %v, id %d, question %s; want 192.0.2.1 with id %d and the name as asked",
			dns.RcodeToString[resp.Rcode], resp.Answer, resp.Id, resp.Question[0].Name, q.Id)
	}
	if opt := resp.IsEdns0(); opt == nil || !opt.Do() || opt.UDPSize() != UDPSize {
		t.Errorf("response OPT %v; want ours (payload %d) with the DO bit the query had", opt, UDPSize)
	}
	seen, _ := up.queries()
	if len(seen) != 1 {
		t.Fatalf("upstream saw %d queries, want 1", len(seen))
	}
	if s := seen[0]; !s.RecursionDesired || s.IsEdns0() == nil || s.IsEdns0().UDPSize() != UDPSize || !s.IsEdns0().Do() {
		t.Errorf("upstream got %v; want RD, and OPT with payload %d and DO", s, UDPSize)
	}

	// A query without EDNS gets an answer without OPT.
	resp = exchange(t, "udp", addr, question("example.org.", dns.TypeA))
	if resp.IsEdns0() != nil || len(resp.Answer) != 1 {
		t.Errorf("forwarded example.org. without EDNS: OPT %v, %d answers; want no OPT, 1 answer", resp.IsEdns0(), len(resp.Answer))
	}
	// Cluster names never go upstream.
	exchange(t, "udp", addr, question("nope.warren.internal.", dns.TypeA))
	if seen, _ := up.queries(); len(seen) != 2 {
		t.Errorf("upstream saw %d queries after a cluster name, want 2", len(seen))
	}
	if st := f.Stats(); st.Forwarded != 2 || st.Failed != 0 {
		t.Errorf("forwarder stats %+v; want 2 forwarded, 0 failed", st)
	}
}

func TestForwardTruncatedAnswerAsksOverTCP(t *testing.T) {
	up := startUpstream(t)
	_, addr := forwarding(t, ForwarderConfig{Upstreams: []netip.AddrPort{up.addr}})
	resp := exchange(t, "udp", addr, withEDNS(question("big.example.", dns.TypeA), 1232))
	if !resp.Truncated || len(resp.Answer) == 0 {
		t.Errorf("100 addresses over UDP in 1232 bytes: TC %v, %d answers; want TC", resp.Truncated, len(resp.Answer))
	}
	resp = exchange(t, "tcp", addr, question("big.example.", dns.TypeA))
	if resp.Truncated || len(resp.Answer) != 100 {
		t.Errorf("100 addresses over TCP: TC %v, %d answers; want all 100", resp.Truncated, len(resp.Answer))
	}
	if _, nets := up.queries(); !slices.Contains(nets, "tcp") {
		t.Errorf("upstream was asked over %v; want TCP after its truncated UDP answer", nets)
	}
}

func TestForwardFailover(t *testing.T) {
	bad, good := startUpstream(t), startUpstream(t)
	// A port nothing listens on.
	pc, _ := net.ListenPacket("udp4", "127.0.0.1:0")
	dead := netip.MustParseAddrPort(pc.LocalAddr().String())
	pc.Close()
	f, addr := forwarding(t, ForwarderConfig{Upstreams: []netip.AddrPort{dead, bad.addr, good.addr}, Timeout: 500 * time.Millisecond})
	for i := range 3 {
		resp := exchange(t, "udp", addr, question("fail.example.", dns.TypeA))
		// Both live upstreams answer SERVFAIL for fail.example.
		if resp.Rcode != dns.RcodeServerFailure {
			t.Errorf("query %d for fail.example.: %s, want the upstreams' SERVFAIL", i, dns.RcodeToString[resp.Rcode])
		}
	}
	resp := exchange(t, "udp", addr, question("example.net.", dns.TypeA))
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("example.net. with a dead first upstream: %s, %d answers; want an answer from a live one", dns.RcodeToString[resp.Rcode], len(resp.Answer))
	}
	// The upstream that answered is asked first from then on.
	before := [2]int{len(must(bad.queries())), len(must(good.queries()))}
	for range 3 {
		exchange(t, "udp", addr, question("example.net.", dns.TypeA))
	}
	after := [2]int{len(must(bad.queries())), len(must(good.queries()))}
	if after[0]-before[0]+after[1]-before[1] != 3 {
		t.Errorf("3 queries after a success reached the live upstreams %d times (%v → %v); want once each: the last good one is asked first", after[0]-before[0]+after[1]-before[1], before, after)
	}
	if f.Stats().Failed != 0 {
		t.Errorf("stats %+v; want no failure: SERVFAIL relayed from upstreams is an answer", f.Stats())
	}
}

func must[T any](v T, _ ...any) T { return v }

func TestForwardFailures(t *testing.T) {
	up := startUpstream(t)
	for _, c := range []struct {
		what string
		ups  []netip.AddrPort
		name string
	}{
		{"no upstream", nil, "example.com."},
		{"an answer to another question", []netip.AddrPort{up.addr}, "other.example."},
		{"an upstream that never answers", []netip.AddrPort{up.addr}, "slow.example."},
	} {
		f, addr := forwarding(t, ForwarderConfig{Upstreams: c.ups, Timeout: 300 * time.Millisecond})
		start := time.Now()
		resp := exchange(t, "udp", addr, question(c.name, dns.TypeA))
		if resp.Rcode != dns.RcodeServerFailure || len(resp.Answer) != 0 {
			t.Errorf("%s: %s with %d answers; want SERVFAIL", c.what, dns.RcodeToString[resp.Rcode], len(resp.Answer))
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: answered after %s; want within the 300ms timeout and some slack", c.what, d)
		}
		if f.Stats().Failed != 1 {
			t.Errorf("%s: stats %+v; want 1 failure", c.what, f.Stats())
		}
	}
}

func TestForwardSheds(t *testing.T) {
	up := startUpstream(t)
	f, addr := forwarding(t, ForwarderConfig{Upstreams: []netip.AddrPort{up.addr}, MaxInFlight: 1, Timeout: 2 * time.Second})
	go (&dns.Client{Timeout: 3 * time.Second}).Exchange(question("slow.example.", dns.TypeA), addr.String())
	select {
	case <-up.got:
	case <-time.After(3 * time.Second):
		t.Fatal("the slow query never reached the upstream")
	}
	start := time.Now()
	resp := exchange(t, "udp", addr, question("example.com.", dns.TypeA))
	if resp.Rcode != dns.RcodeServerFailure || time.Since(start) > time.Second || f.Stats().Shed != 1 {
		t.Errorf("a query while MaxInFlight=1 is busy: %s after %s, stats %+v; want SERVFAIL at once, 1 shed",
			dns.RcodeToString[resp.Rcode], time.Since(start), f.Stats())
	}
}

func TestParseResolvConf(t *testing.T) {
	text := `# generated by NetworkManager
search lan example.com
nameserver 192.168.1.1
nameserver  fe80::1%eth0
nameserver 127.0.0.53
nameserver not-an-address
nameserver
options edns0 trust-ad
`
	got := ParseResolvConf(text)
	want := []netip.AddrPort{netip.MustParseAddrPort("192.168.1.1:53"), netip.MustParseAddrPort("[fe80::1%eth0]:53"), netip.MustParseAddrPort("127.0.0.53:53")}
	if !slices.Equal(got, want) {
		t.Errorf("ParseResolvConf = %v, want %v", got, want)
	}
	for in, want := range map[string]string{"10.0.0.1": "10.0.0.1:53", "10.0.0.1:5353": "10.0.0.1:5353", "::1": "[::1]:53", "[::1]:54": "[::1]:54", "[fd00::1]": "[fd00::1]:53"} {
		if got, err := ParseUpstream(in); err != nil || got.String() != want {
			t.Errorf("ParseUpstream(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	if _, err := ParseUpstream("dns.google"); err == nil {
		t.Errorf("ParseUpstream(dns.google) succeeded; want an error (no names: resolving them needs a resolver)")
	}
}

func TestSelfFilter(t *testing.T) {
	ap := netip.MustParseAddrPort
	pfx := netip.MustParsePrefix
	bridge := Socket{Addr: ap("0.0.0.0:53"), Device: "warren0"}
	specific := Socket{Addr: ap("10.240.1.1:53")}
	wildcard := Socket{Addr: ap("0.0.0.0:53")}
	reach := map[Socket][]netip.Prefix{
		bridge:   {pfx("10.240.1.1/32")},
		specific: {pfx("10.240.1.1/32")},
		wildcard: {pfx("10.240.1.1/32"), pfx("192.168.1.20/32"), pfx("127.0.0.0/8"), pfx("::1/128")},
	}
	ups := []netip.AddrPort{ap("127.0.0.53:53"), ap("10.240.1.1:53"), ap("192.168.1.20:53"), ap("192.168.1.1:53"), ap("127.0.0.1:5353"), ap("[::1]:53")}
	for _, c := range []struct {
		sock Socket
		kept []netip.AddrPort
	}{
		// On the bridge (warren-dns.socket): loopback resolvers are not us.
		{bridge, []netip.AddrPort{ap("127.0.0.53:53"), ap("192.168.1.20:53"), ap("192.168.1.1:53"), ap("127.0.0.1:5353"), ap("[::1]:53")}},
		{specific, []netip.AddrPort{ap("127.0.0.53:53"), ap("192.168.1.20:53"), ap("192.168.1.1:53"), ap("127.0.0.1:5353"), ap("[::1]:53")}},
		// On every address: every local address on our port is us.
		{wildcard, []netip.AddrPort{ap("192.168.1.1:53"), ap("127.0.0.1:5353")}},
	} {
		kept, dropped := SelfFilter(ups, []Socket{c.sock}, reach)
		if !slices.Equal(kept, c.kept) || len(kept)+len(dropped) != len(ups) {
			t.Errorf("SelfFilter(%v, listening on %+v) kept %v, dropped %v; want to keep %v", ups, c.sock, kept, dropped, c.kept)
		}
	}
}

func TestSocketReach(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := SocketOf(pc.LocalAddr(), pc.(*net.UDPConn))
	if s.Device != "" || s.Addr.String() != pc.LocalAddr().String() {
		t.Errorf("SocketOf(%s) = %+v; want its address and no device", pc.LocalAddr(), s)
	}
	if ap, ok := s.ProbeAddr(); !ok || ap != s.Addr {
		t.Errorf("ProbeAddr of %+v = %v, %v; want its own address", s, ap, ok)
	}
	w := Socket{Addr: netip.MustParseAddrPort("0.0.0.0:53")}
	if ap, ok := w.ProbeAddr(); !ok || !ap.Addr().IsLoopback() {
		t.Errorf("ProbeAddr of an unbound wildcard socket = %v, %v; want loopback", ap, ok)
	}
	if reach := w.Reach(); !slices.Contains(reach, netip.MustParsePrefix("127.0.0.0/8")) {
		t.Errorf("Reach of an unbound wildcard socket = %v; want the loopback range in it", reach)
	}
	nodev := Socket{Addr: netip.MustParseAddrPort("0.0.0.0:53"), Device: "no-such-dev0"}
	if ap, ok := nodev.ProbeAddr(); ok {
		t.Errorf("ProbeAddr of a socket on a missing device = %v; want none", ap)
	}
}

func TestResolvConfFollowsChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resolv.conf")
	write := func(text string, mtime time.Time) {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(path, mtime, mtime)
	}
	self := Socket{Addr: netip.MustParseAddrPort("10.240.1.1:53")}
	rc := &ResolvConf{Path: path, Logger: quiet(), Filter: func(ups []netip.AddrPort) ([]netip.AddrPort, []netip.AddrPort) {
		return SelfFilter(ups, []Socket{self}, map[Socket][]netip.Prefix{self: {netip.MustParsePrefix("10.240.1.1/32")}})
	}}
	f := NewForwarder(ForwarderConfig{Logger: quiet()})
	t0 := time.Now().Add(-time.Hour)
	write("nameserver 10.240.1.1\nnameserver 192.168.1.1\n", t0)
	ups, changed, err := rc.Load(f)
	if err != nil || !changed || fmt.Sprint(ups) != "[192.168.1.1:53]" {
		t.Errorf("first Load = %v, %v, %v; want [192.168.1.1:53] (ourselves skipped), changed", ups, changed, err)
	}
	if _, changed, _ := rc.Load(f); changed {
		t.Errorf("Load of an unchanged file says changed")
	}
	write("nameserver 192.168.7.1\n", t0.Add(time.Minute))
	ups, changed, err = rc.Load(f)
	if err != nil || !changed || fmt.Sprint(f.Upstreams()) != "[192.168.7.1:53]" {
		t.Errorf("Load after DHCP rewrote the file = %v, %v, %v; want [192.168.7.1:53], changed", ups, changed, err)
	}
	os.Remove(path)
	if ups, changed, err := rc.Load(f); err != nil || changed || fmt.Sprint(ups) != "[192.168.7.1:53]" {
		t.Errorf("Load of a vanished file = %v, %v, %v; want the last list kept, unchanged", ups, changed, err)
	}
	write("nameserver 10.240.1.1\n", t0.Add(2*time.Minute))
	if _, _, err := rc.Load(f); !errors.Is(err, ErrNoUpstream) {
		t.Errorf("Load of a file naming only ourselves: err %v; want ErrNoUpstream", err)
	}
}
