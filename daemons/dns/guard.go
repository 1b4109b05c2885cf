package dns

import (
	"context"

	"github.com/miekg/dns"
)

// Guard is the first link: it answers queries that are not well-formed
// standard queries of the Internet class itself, and passes the rest on.
//
//	response (QR set)                 dropped: answering answers loops
//	opcode other than QUERY           NOTIMP   (RFC 1035 §4.1.1, RFC 8906 §3.1.6)
//	QDCOUNT not 1                     FORMERR  (RFC 9619)
//	answer or authority records       FORMERR  (a query carries none)
//	two OPT records, OPT not at root  FORMERR  (RFC 6891 §6.1.1)
//	EDNS version above 0              BADVERS  (RFC 6891 §6.1.3)
//	packed length over MaxQuerySize   REFUSED
//	class other than IN               REFUSED  (only IN is served)
//	QTYPE 0, OPT, TKEY, TSIG          FORMERR  (not types one can ask for)
//	QTYPE AXFR, IXFR                  REFUSED  (no zone transfers)
//	QTYPE MAILA, MAILB, other 128–254 NOTIMP
//
// Unknown data types pass: under the cluster domain they get NODATA or
// NXDOMAIN like any other type (RFC 3597, RFC 8906 §3.1.4), and other
// names are forwarded.
func Guard(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, w ResponseWriter, r *dns.Msg) {
		if rcode, ok := check(r); !ok {
			if rcode >= 0 {
				writeRcode(w, r, rcode)
			}
			return
		}
		next.ServeDNS(ctx, w, r)
	})
}

// check returns (rcode, false) when r must be answered with rcode by the
// guard, (-1, false) when it must be dropped, and ok when it may pass.
func check(r *dns.Msg) (rcode int, ok bool) {
	if r.Response {
		return -1, false
	}
	if r.Opcode != dns.OpcodeQuery {
		return dns.RcodeNotImplemented, false
	}
	if len(r.Question) != 1 || len(r.Answer) > 0 || len(r.Ns) > 0 {
		return dns.RcodeFormatError, false
	}
	opts := 0
	for _, rr := range r.Extra {
		if opt, isOpt := rr.(*dns.OPT); isOpt {
			opts++
			if opt.Hdr.Name != "." {
				return dns.RcodeFormatError, false
			}
		}
	}
	if opts > 1 {
		return dns.RcodeFormatError, false
	}
	if opt := r.IsEdns0(); opt != nil && opt.Version() != 0 {
		return dns.RcodeBadVers, false
	}
	if r.Len() > MaxQuerySize {
		return dns.RcodeRefused, false
	}
	q := r.Question[0]
	if q.Qclass != dns.ClassINET {
		return dns.RcodeRefused, false
	}
	switch t := q.Qtype; {
	case t == dns.TypeNone, t == dns.TypeOPT, t == dns.TypeTKEY, t == dns.TypeTSIG:
		return dns.RcodeFormatError, false
	case t == dns.TypeAXFR, t == dns.TypeIXFR:
		return dns.RcodeRefused, false
	case t == dns.TypeANY:
	case t >= 128 && t <= 255:
		return dns.RcodeNotImplemented, false
	}
	return 0, true
}
