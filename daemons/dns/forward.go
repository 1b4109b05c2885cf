package dns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/warren-edge/warren/daemons/wake"
)

// ForwarderConfig tunes a Forwarder; zero values take the defaults.
type ForwarderConfig struct {
	// Upstreams are the resolvers to ask, in order of preference; see
	// SetUpstreams.
	Upstreams []netip.AddrPort
	// Timeout bounds one attempt at one upstream (default 2s). The query's
	// context bounds them all.
	Timeout time.Duration
	// MaxInFlight bounds the queries being forwarded at once (default
	// 256); more get SERVFAIL at once rather than piling up goroutines
	// and sockets on a small device.
	MaxInFlight int
	Logger      *slog.Logger
}

// Forwarder is the last link: it asks the upstream resolvers, the one that
// answered last first, and relays the answer. It does not cache: the host's
// resolver (systemd-resolved, a router) usually does. A query with no
// usable upstream gets SERVFAIL.
//
// Upstream queries carry a fresh random ID, a fresh socket (random source
// port), the client's question, RD, CD and DO bits and an OPT record of
// UDPSize; the answer must echo the question. A truncated UDP answer is
// asked again over TCP. The client gets the upstream's sections with its
// own ID and question spelling, and an OPT record only if it sent one.
type Forwarder struct {
	cfg       ForwarderConfig
	log       *slog.Logger
	upstreams atomic.Pointer[[]netip.AddrPort]
	preferred atomic.Uint32
	sem       chan struct{}
	udp, tcp  *dns.Client

	forwarded, failed, shed atomic.Uint64
}

// NewForwarder makes a forwarder.
func NewForwarder(cfg ForwarderConfig) *Forwarder {
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	f := &Forwarder{cfg: cfg, log: cfg.Logger, sem: make(chan struct{}, cfg.MaxInFlight),
		udp: &dns.Client{Net: "udp", UDPSize: UDPSize, Timeout: cfg.Timeout},
		tcp: &dns.Client{Net: "tcp", Timeout: cfg.Timeout}}
	f.SetUpstreams(cfg.Upstreams)
	return f
}

// SetUpstreams replaces the upstream resolvers; queries in flight finish
// with the old ones.
func (f *Forwarder) SetUpstreams(ups []netip.AddrPort) {
	ups = slices.Clone(ups)
	f.upstreams.Store(&ups)
	f.preferred.Store(0)
}

// Upstreams returns the upstream resolvers in use.
func (f *Forwarder) Upstreams() []netip.AddrPort { return slices.Clone(*f.upstreams.Load()) }

// ForwardStats count the forwarder's work since it started.
type ForwardStats struct {
	Forwarded uint64 // queries sent upstream
	Failed    uint64 // of them, answered SERVFAIL because no upstream answered
	Shed      uint64 // answered SERVFAIL at once: MaxInFlight were in flight
}

// Stats returns the counters.
func (f *Forwarder) Stats() ForwardStats {
	return ForwardStats{Forwarded: f.forwarded.Load(), Failed: f.failed.Load(), Shed: f.shed.Load()}
}

// ServeDNS forwards r.
func (f *Forwarder) ServeDNS(ctx context.Context, w ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		writeRcode(w, r, dns.RcodeFormatError)
		return
	}
	ups := *f.upstreams.Load()
	if len(ups) == 0 {
		f.failed.Add(1)
		writeRcode(w, r, dns.RcodeServerFailure)
		return
	}
	select {
	case f.sem <- struct{}{}:
		defer func() { <-f.sem }()
	default:
		f.shed.Add(1)
		writeRcode(w, r, dns.RcodeServerFailure)
		return
	}
	f.forwarded.Add(1)

	q := new(dns.Msg)
	q.RecursionDesired = r.RecursionDesired
	q.CheckingDisabled = r.CheckingDisabled
	q.AuthenticatedData = r.AuthenticatedData
	q.Question = []dns.Question{r.Question[0]}
	do := false
	if opt := r.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	q.SetEdns0(UDPSize, do)

	start := f.preferred.Load()
	var resp *dns.Msg
	var lastErr error
	for i := range uint32(len(ups)) {
		n := (start + i) % uint32(len(ups))
		m, err := f.exchange(ctx, q, ups[n])
		if err != nil {
			lastErr = err
			f.log.Debug("upstream failed", "upstream", ups[n], "name", q.Question[0].Name, "err", err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		resp = m
		if m.Rcode == dns.RcodeServerFailure || m.Rcode == dns.RcodeRefused {
			continue // another upstream may do better; keep this answer if none does
		}
		if n != start {
			f.preferred.CompareAndSwap(start, n)
		}
		break
	}
	if resp == nil {
		f.failed.Add(1)
		f.log.Debug("no upstream answered", "name", q.Question[0].Name, "err", lastErr)
		writeRcode(w, r, dns.RcodeServerFailure)
		return
	}
	w.WriteMsg(relay(r, resp))
}

// exchange asks one upstream, over UDP and then TCP if the answer was
// truncated, and checks the answer is to the question asked.
func (f *Forwarder) exchange(ctx context.Context, q *dns.Msg, up netip.AddrPort) (*dns.Msg, error) {
	q.Id = dns.Id()
	addr := up.String()
	m, _, err := f.udp.ExchangeContext(ctx, q, addr)
	if err == nil && m.Truncated {
		q.Id = dns.Id()
		m, _, err = f.tcp.ExchangeContext(ctx, q, addr)
	}
	if err != nil {
		return nil, err
	}
	if !m.Response || len(m.Question) != 1 || !sameQuestion(m.Question[0], q.Question[0]) {
		return nil, fmt.Errorf("dns: %s answered another question", addr)
	}
	return m, nil
}

func sameQuestion(a, b dns.Question) bool {
	return a.Qtype == b.Qtype && a.Qclass == b.Qclass && strings.EqualFold(a.Name, b.Name)
}

// relay turns an upstream's answer into the answer to r.
func relay(r, m *dns.Msg) *dns.Msg {
	m.Id = r.Id
	m.Opcode = r.Opcode
	m.RecursionDesired = r.RecursionDesired
	m.Question = []dns.Question{r.Question[0]}
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			extra = append(extra, rr)
		}
	}
	m.Extra = extra
	if opt := r.IsEdns0(); opt != nil {
		m.SetEdns0(UDPSize, opt.Do())
	} else if m.Rcode > 0xF {
		m.Rcode = dns.RcodeServerFailure // an extended rcode needs EDNS the client did not speak
	}
	if m.Rcode < 0 || m.Rcode > 0xFFF {
		m.Rcode = dns.RcodeServerFailure
	}
	return m
}

// ParseUpstream reads an upstream resolver: ADDR (port 53), ADDR:PORT or
// [IPv6]:PORT.
func ParseUpstream(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("dns: upstream %q: use ADDR, ADDR:PORT or [IPv6]:PORT", s)
	}
	return netip.AddrPortFrom(a, 53), nil
}

// ReadResolvConf returns the nameservers of a resolv.conf(5) file, port 53.
func ReadResolvConf(path string) ([]netip.AddrPort, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	return ParseResolvConf(string(b)), nil
}

// ParseResolvConf returns the nameservers of resolv.conf(5) text; lines it
// cannot read are skipped, as the C library does.
func ParseResolvConf(text string) []netip.AddrPort {
	var ups []netip.AddrPort
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(f[1]); err == nil {
			ups = append(ups, netip.AddrPortFrom(a, 53))
		}
	}
	return ups
}

// ErrNoUpstream says no upstream resolver is left to forward to.
var ErrNoUpstream = errors.New("dns: no upstream resolver")

// ResolvConf keeps a Forwarder's upstreams equal to the nameservers of a
// resolv.conf file minus those Filter drops, re-reading the file when it
// changes (DHCP on an edge device rewrites it) and filtering again each
// time (the addresses that are this server change as interfaces come up).
type ResolvConf struct {
	Path   string
	Filter func(ups []netip.AddrPort) (kept, dropped []netip.AddrPort)
	Logger *slog.Logger

	stamp string // size and mtime of the file read
	all   []netip.AddrPort
}

// Load applies the file's upstreams to f. It returns the upstreams in use,
// whether they changed, and an error if none is usable.
func (rc *ResolvConf) Load(f *Forwarder) (ups []netip.AddrPort, changed bool, err error) {
	log := rc.Logger
	if log == nil {
		log = slog.Default()
	}
	fi, err := os.Stat(rc.Path)
	if err == nil {
		if stamp := fmt.Sprint(fi.Size(), fi.ModTime().UnixNano()); stamp != rc.stamp {
			var all []netip.AddrPort
			if all, err = ReadResolvConf(rc.Path); err == nil {
				rc.stamp, rc.all = stamp, all
			}
		}
	}
	if err != nil && rc.stamp == "" {
		return f.Upstreams(), false, fmt.Errorf("dns: read upstreams: %w", err)
	}
	kept, dropped := rc.all, []netip.AddrPort(nil)
	if rc.Filter != nil {
		kept, dropped = rc.Filter(rc.all)
	}
	if changed = !slices.Equal(kept, f.Upstreams()); changed {
		f.SetUpstreams(kept)
		if len(dropped) > 0 {
			log.Warn("skipping upstreams that are this server", "resolv_conf", rc.Path, "skipped", dropped)
		}
	}
	if len(kept) == 0 {
		return kept, changed, fmt.Errorf("%w in %s (nameservers %v): pass --upstream ADDR, or --resolv-conf /run/systemd/resolve/resolv.conf on a host running systemd-resolved", ErrNoUpstream, rc.Path, rc.all)
	}
	return kept, changed, nil
}

// Follow calls Load every interval until ctx ends, logging changes.
func (rc *ResolvConf) Follow(ctx context.Context, f *Forwarder, every time.Duration) {
	log := rc.Logger
	if log == nil {
		log = slog.Default()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wake.Until(every)):
		}
		ups, changed, err := rc.Load(f)
		switch {
		case err != nil && changed:
			log.Error("upstreams changed", "upstreams", ups, "err", err)
		case changed:
			log.Info("upstreams changed", "upstreams", ups, "resolv_conf", rc.Path)
		}
	}
}
