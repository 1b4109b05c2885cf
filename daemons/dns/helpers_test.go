package dns

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/warren-edge/warren/daemons/dns/internal/loopback"
)

// recorder is a ResponseWriter that fits, packs and unpacks the response
// as the Server's writer would, and keeps what the client would read.
type recorder struct {
	req     *dns.Msg
	network string
	msgs    []*dns.Msg
	sizes   []int
}

func newRecorder(req *dns.Msg, network string) *recorder {
	return &recorder{req: req, network: network}
}

func (r *recorder) RemoteAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(10, 0, 0, 9), Port: 5555} }
func (r *recorder) Network() string      { return r.network }

func (r *recorder) WriteMsg(m *dns.Msg) error {
	if len(r.msgs) > 0 {
		return errors.New("recorder: second response")
	}
	b, err := Fit(m, maxResponseSize(r.req, r.network))
	if err != nil {
		return err
	}
	got := new(dns.Msg)
	if err := got.Unpack(b); err != nil {
		return err
	}
	r.msgs = append(r.msgs, got)
	r.sizes = append(r.sizes, len(b))
	return nil
}

// msg is the one response, or nil.
func (r *recorder) msg() *dns.Msg {
	if len(r.msgs) == 0 {
		return nil
	}
	return r.msgs[0]
}

func question(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func withEDNS(m *dns.Msg, size uint16) *dns.Msg {
	m.SetEdns0(size, false)
	return m
}

// serve runs h on r as a client would see it.
func serve(h Handler, r *dns.Msg) *dns.Msg {
	rec := newRecorder(r, "udp")
	h.ServeDNS(context.Background(), rec, r)
	return rec.msg()
}

// listenPair listens on one loopback port for both UDP and TCP.
func listenPair(t testing.TB) (net.PacketConn, net.Listener) {
	t.Helper()
	pc, l, err := loopback.ListenPair()
	if err != nil {
		t.Fatal(err)
	}
	return pc, l
}

// startServer serves h on 127.0.0.1, UDP and TCP on the same port, until
// the test ends.
func startServer(t testing.TB, h Handler) (*Server, netip.AddrPort) {
	t.Helper()
	pc, l := listenPair(t)
	s := NewServer(ServerConfig{Handler: h, PacketConn: pc, Listener: l, Logger: quiet()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case <-s.Started():
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	return s, netip.MustParseAddrPort(pc.LocalAddr().String())
}

// exchange sends m to addr over network and returns the response.
func exchange(t testing.TB, network string, addr netip.AddrPort, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 3 * time.Second, UDPSize: 65535}
	resp, _, err := c.Exchange(m, addr.String())
	if err != nil {
		t.Fatalf("query %s over %s: %v", m.Question[0].String(), network, err)
	}
	return resp
}

// addrsOf lists the A and AAAA records' addresses in order.
func addrsOf(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	return out
}

// quiet is a logger for tests: silent unless -v.
func quiet() *slog.Logger {
	if testing.Verbose() {
		return slog.Default()
	}
	return slog.New(slog.DiscardHandler)
}
