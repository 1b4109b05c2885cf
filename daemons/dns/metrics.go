package dns

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exposes the counters of a Server, a Forwarder and a Replica
// (any may be nil) as Prometheus metrics, read when scraped: queries pay
// nothing for them beyond the atomic counters they bump anyway.
type Collector struct {
	Server    *Server
	Forwarder *Forwarder
	Replica   *Replica
}

var (
	descQueries   = prometheus.NewDesc("warren_dns_queries_total", "Queries received.", nil, nil)
	descResponses = prometheus.NewDesc("warren_dns_responses_total", "Responses sent, by rcode.", []string{"rcode"}, nil)
	descTruncated = prometheus.NewDesc("warren_dns_truncated_total", "UDP responses cut to fit, with TC set.", nil, nil)
	descPanics    = prometheus.NewDesc("warren_dns_panics_total", "Handler panics, answered SERVFAIL.", nil, nil)
	descForwarded = prometheus.NewDesc("warren_dns_forwarded_total", "Queries forwarded upstream.", nil, nil)
	descFwdFailed = prometheus.NewDesc("warren_dns_forward_failures_total", "Forwarded queries no upstream answered.", nil, nil)
	descFwdShed   = prometheus.NewDesc("warren_dns_forward_shed_total", "Queries refused forwarding because too many were in flight.", nil, nil)
	descServices  = prometheus.NewDesc("warren_dns_services", "Services in the answer table.", nil, nil)
	descTasks     = prometheus.NewDesc("warren_dns_tasks", "Running tasks with an address in the answer table, by whether they are answered under their service name.", []string{"healthy"}, nil)
	descIndex     = prometheus.NewDesc("warren_dns_replica_index", "Index of the cluster state the answer table was built from.", nil, nil)
	descConnected = prometheus.NewDesc("warren_dns_manager_connected", "1 while the watch on the local manager is open.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descQueries, descResponses, descTruncated, descPanics,
		descForwarded, descFwdFailed, descFwdShed, descServices, descTasks, descIndex, descConnected} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if s := c.Server; s != nil {
		st := s.Stats()
		counter(descQueries, st.Queries)
		for rcode, n := range map[string]uint64{"NOERROR": st.NoError, "FORMERR": st.FormErr, "SERVFAIL": st.ServFail,
			"NXDOMAIN": st.NXDomain, "NOTIMP": st.NotImp, "REFUSED": st.Refused, "other": st.Other} {
			counter(descResponses, n, rcode)
		}
		counter(descTruncated, st.Truncated)
		counter(descPanics, st.Panics)
	}
	if f := c.Forwarder; f != nil {
		st := f.Stats()
		counter(descForwarded, st.Forwarded)
		counter(descFwdFailed, st.Failed)
		counter(descFwdShed, st.Shed)
	}
	if r := c.Replica; r != nil {
		t := r.Table()
		s, n, h := t.Counts()
		gauge(descServices, float64(s))
		gauge(descTasks, float64(h), "true")
		gauge(descTasks, float64(n-h), "false")
		gauge(descIndex, float64(t.Index()))
		connected := 0.0
		if r.Connected() {
			connected = 1
		}
		gauge(descConnected, connected)
	}
}
