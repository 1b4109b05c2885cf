package ingress

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// BenchmarkProxy: parallel GETs through the proxy to one backend; it
// reports requests a second.
func BenchmarkProxy(b *testing.B) {
	port, ips := loopbackBackends(b, 1, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	p := New(Config{})
	p.SetTable(tableFor(ips, api.IngressRoute{Host: "web.example", Port: port}))
	front := httptest.NewServer(p)
	defer front.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", front.URL+"/", nil)
			req.Host = "web.example"
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("GET: %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
