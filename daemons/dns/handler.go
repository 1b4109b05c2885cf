package dns

import (
	"context"
	"net"

	"github.com/miekg/dns"
)

// Handler answers one DNS query: it writes at most one response to w, or
// passes the query to the next handler it was made with. r is unpacked and,
// past the Guard, well formed with exactly one question. A handler must not
// keep w or r after it returns, nor change r.
type Handler interface {
	ServeDNS(ctx context.Context, w ResponseWriter, r *dns.Msg)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, w ResponseWriter, r *dns.Msg)

// ServeDNS calls f(ctx, w, r).
func (f HandlerFunc) ServeDNS(ctx context.Context, w ResponseWriter, r *dns.Msg) { f(ctx, w, r) }

// ResponseWriter takes the one response to a query. The Server's writer
// truncates UDP responses to what the client can take (setting TC) and
// packs them with name compression.
type ResponseWriter interface {
	// WriteMsg sends the response; a second call is an error.
	WriteMsg(m *dns.Msg) error
	// RemoteAddr is the client.
	RemoteAddr() net.Addr
	// Network is "udp" or "tcp".
	Network() string
}

// Sizes of messages.
const (
	// UDPSize is the EDNS(0) payload size warren-dns advertises and uses
	// upstream: 1232 bytes, which fits the IPv6 minimum MTU without
	// fragmentation (DNS flag day 2020).
	UDPSize = 1232
	// MaxQuerySize bounds a query's packed length; a larger one is
	// REFUSED. A query is one question and an OPT record, well under it.
	MaxQuerySize = 1232
	// readSize is the UDP read buffer; a datagram larger than it arrives
	// cut short and fails to unpack (FORMERR).
	readSize = 4096
)

// NewReply makes the response skeleton to r: same ID, opcode, RD and CD
// bits and question, QR and RA set, the given rcode, and an OPT record when
// r had one (EDNS version 0, payload UDPSize, r's DO bit).
func NewReply(r *dns.Msg, rcode int) *dns.Msg {
	m := new(dns.Msg)
	m.Id = r.Id
	m.Response = true
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.CheckingDisabled = r.CheckingDisabled
	m.RecursionAvailable = true
	m.Rcode = rcode
	if len(r.Question) == 1 {
		m.Question = []dns.Question{r.Question[0]}
	}
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(UDPSize, opt.Do())
	}
	return m
}

// writeRcode answers r with an empty response carrying rcode.
func writeRcode(w ResponseWriter, r *dns.Msg, rcode int) {
	w.WriteMsg(NewReply(r, rcode))
}

// maxResponseSize is how large a response to r may be on network: the
// client's EDNS payload size (at least 512, at most UDPSize) over UDP, 512
// without EDNS, 65535 over TCP.
func maxResponseSize(r *dns.Msg, network string) int {
	if network == "tcp" {
		return dns.MaxMsgSize
	}
	if opt := r.IsEdns0(); opt != nil {
		return int(min(max(opt.UDPSize(), dns.MinMsgSize), UDPSize))
	}
	return dns.MinMsgSize
}
