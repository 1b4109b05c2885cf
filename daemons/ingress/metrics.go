package ingress

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the proxy's Prometheus series, labelled by route key
// (Route.Key; "" for requests no route took), so their number is
// bounded by the routes of the tables.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	upstream  *prometheus.CounterVec
	backends  *prometheus.GaugeVec
	collector []prometheus.Collector
}

func newMetrics() *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_ingress_requests_total",
			Help: "HTTP requests by route and status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "warren_ingress_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by route.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warren_ingress_upstream_errors_total",
			Help: "Failed attempts to get a response from a route's backends (connect errors, resets, timeouts).",
		}, []string{"route"}),
		backends: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warren_ingress_backends",
			Help: "Backends a route balances over in the current table.",
		}, []string{"route"}),
	}
	m.collector = []prometheus.Collector{m.requests, m.duration, m.upstream, m.backends}
	return m
}

// Describe and Collect make the metrics one prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collector {
		c.Describe(ch)
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collector {
		c.Collect(ch)
	}
}

// setBackends sets the backends gauge to the table's routes, deleting
// the series of routes that are gone.
func (m *metrics) setBackends(old, cur map[string]int) {
	for k := range old {
		if _, ok := cur[k]; !ok {
			m.backends.DeleteLabelValues(k)
		}
	}
	for k, n := range cur {
		m.backends.WithLabelValues(k).Set(float64(n))
	}
}

func codeClass(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}
