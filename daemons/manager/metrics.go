package manager

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/store"
)

// metrics are the manager's Prometheus series, on a registry of its own so
// that several managers can run in one test process.
type metrics struct {
	reg       *prometheus.Registry
	raftState prometheus.Gauge
	applyDur  prometheus.Histogram
	applyN    prometheus.Histogram
	raftApply prometheus.Histogram
	reconcile prometheus.Histogram
	apiDur    *prometheus.HistogramVec
	watchers  prometheus.Gauge
	events    *prometheus.CounterVec
}

var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

func newMetrics(st *core.Store) *metrics {
	x := &metrics{
		reg: prometheus.NewRegistry(),
		raftState: prometheus.NewGauge(prometheus.GaugeOpts{Name: "warren_raft_state",
			Help: "Raft state of this manager: 0 follower, 1 candidate, 2 leader, 3 shutdown."}),
		applyDur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "warren_fsm_apply_batch_seconds",
			Help: "Time to apply one batch of committed entries to the state database.", Buckets: latencyBuckets}),
		applyN: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "warren_fsm_apply_batch_entries",
			Help: "Entries per applied batch.", Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}}),
		raftApply: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "warren_raft_apply_seconds",
			Help: "Time from proposing a write to its commit and apply.", Buckets: latencyBuckets}),
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "warren_reconcile_seconds",
			Help: "Time of one reconcile pass of the leader, including its commit.", Buckets: latencyBuckets}),
		apiDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "warren_api_request_seconds",
			Help: "API request latency by route.", Buckets: latencyBuckets}, []string{"method", "route", "code"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{Name: "warren_watch_streams",
			Help: "Open watch streams."}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warren_events_total",
			Help: "Cluster events this manager's FSM derived or recorded, by type."}, []string{"type"}),
	}
	for _, t := range api.EventTypes {
		x.events.WithLabelValues(t) // every type shows, at 0 until it happens
	}
	x.reg.MustRegister(x.raftState, x.applyDur, x.applyN, x.raftApply, x.reconcile, x.apiDur, x.watchers, x.events,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&stateCollector{st: st})
	return x
}

func (x *metrics) observeApply(n int, d time.Duration) {
	x.applyDur.Observe(d.Seconds())
	x.applyN.Observe(float64(n))
}

// countEvents counts the events of one applied batch, by type.
func (x *metrics) countEvents(types []string) {
	for _, t := range types {
		x.events.WithLabelValues(t).Inc()
	}
}

func (x *metrics) setRaftState(code int) { x.raftState.Set(float64(code)) }

func (x *metrics) observeCommit(d time.Duration) { x.raftApply.Observe(d.Seconds()) }

func (x *metrics) observeReconcile(d time.Duration) { x.reconcile.Observe(d.Seconds()) }

// watchersDelta counts watch streams opening (+1) and closing (-1).
func (x *metrics) watchersDelta(delta int) { x.watchers.Add(float64(delta)) }

func (x *metrics) handler() http.Handler {
	return promhttp.HandlerFor(x.reg, promhttp.HandlerOpts{})
}

// instrument records the latency of a route.
func (x *metrics) instrument(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h(sw, r)
		x.apiDur.WithLabelValues(r.Method, route, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// stateCollector reports counts from the state database at scrape time.
type stateCollector struct{ st *core.Store }

var (
	descIndex    = prometheus.NewDesc("warren_raft_applied_index", "Last Raft index applied to the state database.", nil, nil)
	descServices = prometheus.NewDesc("warren_services", "Services in the cluster.", nil, nil)
	descTasks    = prometheus.NewDesc("warren_tasks", "Tasks by observed state.", []string{"state"}, nil)
	descNodes    = prometheus.NewDesc("warren_nodes", "Nodes by state.", []string{"state"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descIndex
	ch <- descServices
	ch <- descTasks
	ch <- descNodes
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.st.View(func(v *store.View) error {
		ch <- prometheus.MustNewConstMetric(descIndex, prometheus.GaugeValue, float64(v.Index()))
		ch <- prometheus.MustNewConstMetric(descServices, prometheus.GaugeValue, float64(v.ServiceCount()))
		tasks := map[api.TaskState]int{}
		for _, t := range v.Tasks(store.TaskFilter{}) {
			tasks[t.Status.State]++
		}
		for s, n := range tasks {
			ch <- prometheus.MustNewConstMetric(descTasks, prometheus.GaugeValue, float64(n), string(s))
		}
		nodes := map[string]int{}
		for _, n := range v.Nodes() {
			nodes[n.Status.State]++
		}
		for s, n := range nodes {
			ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(n), s)
		}
		return nil
	})
}
