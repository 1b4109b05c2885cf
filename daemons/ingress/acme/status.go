package acme

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warren-edge/warren/daemons/api"
)

// CertStatus is how one routed host's certificate stands on this node.
// No key material.
type CertStatus struct {
	Host      string
	Source    string // api.TLSAcme or api.TLSSecret
	Challenge string // with acme
	Secret    string // with secret
	// Issuer is the certificate's issuer (its common name); NotBefore
	// and NotAfter its validity. Zero until there is a certificate.
	Issuer    string
	NotBefore time.Time
	NotAfter  time.Time
	// State is as api.IngressCert's: "pending", "valid", "expiring"
	// (past the renewal point), "expired" or "error".
	State string
	// Error is the last error getting the certificate (it may be set
	// while an older certificate is still valid).
	Error string
}

// Status returns every routed host with a certificate source, sorted by
// host.
func (m *Manager) Status() []CertStatus {
	t := *m.table.Load()
	now := time.Now()
	out := make([]CertStatus, 0, len(t))
	for host, p := range t {
		st := CertStatus{Host: host, Source: p.Source, Challenge: p.Challenge, Secret: p.Secret}
		m.mu.Lock()
		st.Error = m.lastErr[host]
		m.mu.Unlock()
		if p.Err != "" {
			st.Error = p.Err
		}
		if c := m.certFor(p, host, nil); c != nil && c.Leaf != nil {
			st.Issuer = c.Leaf.Issuer.CommonName
			st.NotBefore, st.NotAfter = c.Leaf.NotBefore, c.Leaf.NotAfter
		}
		st.State = certState(st, now, m.ratio)
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// certState is the state of st at now, for a renewal at ratio of the
// lifetime.
func certState(st CertStatus, now time.Time, ratio float64) string {
	switch {
	case st.NotAfter.IsZero() && st.Error != "":
		return "error"
	case st.NotAfter.IsZero():
		return "pending"
	case !now.Before(st.NotAfter):
		return "expired"
	case now.After(st.NotBefore.Add(time.Duration(ratio * float64(st.NotAfter.Sub(st.NotBefore))))):
		return "expiring"
	default:
		return "valid"
	}
}

// API is st as the API shows a route's certificate.
func (st CertStatus) API() api.IngressCert {
	return api.IngressCert{State: st.State, Source: st.Source, Issuer: st.Issuer, NotAfter: st.NotAfter, Error: st.Error}
}

var expiryDesc = prometheus.NewDesc("warren_ingress_certificate_expiry_seconds",
	"When the certificate served for a host expires (unix time of its NotAfter).", []string{"host"}, nil)

// Describe and Collect make the Manager a prometheus.Collector:
// warren_ingress_certificate_expiry_seconds{host} and
// warren_ingress_certificate_errors_total{host}.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	ch <- expiryDesc
	m.errorsSeen.Describe(ch)
}

func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	for _, st := range m.Status() {
		if !st.NotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(st.NotAfter.Unix()), st.Host)
		}
	}
	m.errorsSeen.Collect(ch)
}

var _ prometheus.Collector = (*Manager)(nil)
