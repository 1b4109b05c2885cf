package dns

import (
	"context"
	"net"
	"testing"

	"github.com/miekg/dns"
)

// discard is a ResponseWriter that fits and packs the response, as the
// server does, and drops it.
type discard struct {
	req *dns.Msg
}

func (d *discard) RemoteAddr() net.Addr { return nil }
func (d *discard) Network() string      { return "udp" }
func (d *discard) WriteMsg(m *dns.Msg) error {
	_, err := Fit(m, maxResponseSize(d.req, "udp"))
	return err
}

// BenchmarkChain is one query through Guard and Zone, fitted and packed,
// for a service of 10 healthy tasks with one port.
func BenchmarkChain(b *testing.B) {
	for _, c := range []struct {
		name  string
		qname string
		qtype uint16
	}{
		{"service-A", "svc-000.warren.internal.", dns.TypeA},
		{"nxdomain", "nope.warren.internal.", dns.TypeA},
		{"srv", "_tcp.svc-000.warren.internal.", dns.TypeSRV},
	} {
		b.Run(c.name, func(b *testing.B) {
			services, tasks := manyTasks(1, 10)
			h := Guard(Zone(StaticTable{BuildTable(TableOptions{}, services, tasks)}, &passed{}))
			r := withEDNS(question(c.qname, c.qtype), 1232)
			w := &discard{req: r}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				h.ServeDNS(ctx, w, r)
			}
		})
	}
}

// BenchmarkBuildTable is one rebuild of the answer table, as after each
// batch of watch events, for 1,000 tasks of 100 services.
func BenchmarkBuildTable(b *testing.B) {
	services, tasks := manyTasks(100, 10)
	b.ReportAllocs()
	for b.Loop() {
		BuildTable(TableOptions{}, services, tasks)
	}
}
