package containerd

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkParallelStart creates and starts 100 busybox containers, P at a
// time, in one shim group or each in its own shim, and reports the wall
// time and the CPU time the whole machine spent per container (containerd,
// shims, runc and this client; from /proc/stat). On 2 cores the CPU figure
// bounds how fast a node can scale a service up:
//
//	go test -run '^$' -bench ParallelStart -benchtime 1x ./daemons/agent/containerd/
//
// Timings are printed, never asserted.
func BenchmarkParallelStart(b *testing.B) {
	e := setup(b)
	for _, c := range []struct {
		p, groups int // groups 0: each container in a shim of its own
	}{{1, 1}, {8, 1}, {8, 4}, {8, 8}, {8, 0}} {
		name := fmt.Sprintf("P%d-groups%d", c.p, c.groups)
		b.Run(name, func(b *testing.B) {
			const n = 100
			ids := make([]string, n)
			for i := range ids {
				s := spec(fmt.Sprintf("par%d", i), "sleep", "100000")
				ids[i] = s.ID
			}
			cpu0, t0 := cpuTicks(), time.Now()
			sem := make(chan struct{}, c.p)
			var wg sync.WaitGroup
			for i, id := range ids {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					s := spec("par", "sleep", "100000")
					s.ID = id
					if c.groups > 0 {
						s.Group = fmt.Sprintf("%s-%d", name, i%c.groups)
					}
					if err := e.r.Create(bg, s); err != nil {
						b.Errorf("container %d: %v", i, err)
						return
					}
					if err := e.r.Start(bg, s.ID); err != nil {
						b.Errorf("container %d: %v", i, err)
					}
				}()
			}
			wg.Wait()
			wall, cpu := time.Since(t0), cpuTicks()-cpu0
			b.ReportMetric(wall.Seconds(), "wall-s")
			b.ReportMetric(float64(cpu)*1000/float64(clockTicks)/n, "cpu-ms/ctr")
			for _, id := range ids {
				e.r.Stop(bg, id, time.Millisecond)
				if err := e.r.Delete(bg, id); err != nil {
					b.Errorf("Delete(%s): %v", id, err)
				}
			}
		})
	}
}

// clockTicks is USER_HZ, the unit of /proc/stat.
const clockTicks = 100

// cpuTicks is the machine's busy time so far (all but idle and iowait),
// in clock ticks.
func cpuTicks() int64 {
	data, _ := os.ReadFile("/proc/stat")
	fields := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
	var t int64
	for i, f := range fields[1:] {
		if i == 3 || i == 4 {
			continue
		}
		v, _ := strconv.ParseInt(f, 10, 64)
		t += v
	}
	return t
}
