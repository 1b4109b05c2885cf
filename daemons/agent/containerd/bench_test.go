package containerd

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/warren-edge/warren/qa/containerdtest"
)

// BenchmarkCreateStart measures Create+Start of a busybox `sleep` container
// until its process runs, with every container of a run in one shim group
// ("grouped") or each in its own shim ("ungrouped"), and grouped without
// the default seccomp profile ("grouped-unconfined": what the filter
// costs; runc builds it for every container). The containers of a run
// keep running until its end, when the shims' memory is read:
//
//	go test -run '^$' -bench CreateStart -benchtime 20x ./daemons/agent/containerd/
//
// Reported per run: p50-ms and p99-ms of create+start, create-p50-ms of
// Create alone, shims (processes),
// shim-PSS-MiB (their total proportional set size, /proc/PID/smaps_rollup)
// and shim-PSS-KiB/ctr (that total over the containers). Timings are
// printed, never asserted.
func BenchmarkCreateStart(b *testing.B) {
	e := setup(b)
	for _, v := range []struct {
		name                string
		grouped, unconfined bool
	}{{"grouped", true, false}, {"ungrouped", false, false}, {"grouped-unconfined", true, true}} {
		b.Run(v.name, func(b *testing.B) {
			var ids []string
			lat := make([]time.Duration, 0, b.N)
			createLat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				s := spec(fmt.Sprintf("bench%d", i), "sleep", "100000")
				if v.grouped {
					s.Group = "bench-" + v.name
				}
				s.SeccompUnconfined = v.unconfined
				t0 := time.Now()
				if err := e.r.Create(bg, s); err != nil {
					b.Fatal(err)
				}
				createLat = append(createLat, time.Since(t0))
				if err := e.r.Start(bg, s.ID); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
				ids = append(ids, s.ID)
			}
			b.StopTimer()

			b.ReportMetric(ms(percentile(lat, 50)), "p50-ms")
			b.ReportMetric(ms(percentile(lat, 99)), "p99-ms")
			b.ReportMetric(ms(percentile(createLat, 50)), "create-p50-ms")
			time.Sleep(500 * time.Millisecond) // let the shims settle
			pids, _ := containerdtest.ShimPIDs(e.d.Socket)
			var pss int64
			for _, p := range pids {
				n, err := containerdtest.PSS(p)
				if err != nil {
					b.Fatalf("PSS of shim %d: %v", p, err)
				}
				pss += n
			}
			b.ReportMetric(float64(len(pids)), "shims")
			b.ReportMetric(float64(pss)/(1<<20), "shim-PSS-MiB")
			b.ReportMetric(float64(pss)/1024/float64(len(ids)), "shim-PSS-KiB/ctr")

			for _, id := range ids {
				if err := e.r.Delete(bg, id); err != nil {
					b.Errorf("Delete(%s): %v", id, err)
				}
			}
		})
	}
}

// percentile returns the p-th percentile of ds (nearest rank), sorting ds.
func percentile(ds []time.Duration, p int) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := (len(ds)*p+99)/100 - 1
	if i < 0 {
		i = 0
	}
	return ds[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
