package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// idleSettle and idleWindow: how long the idle section lets a fresh
// cluster settle, then how long it counts CPU time over.
const (
	idleSettle = 10 * time.Second
	idleWindow = 60 * time.Second
)

// benchIdle measures what three idle managers cost (DESIGN §8, issue 15):
// a real cluster of bin/warren in network namespaces (newHACluster), left
// alone for idleSettle, then each process's CPU time (utime+stime) over
// idleWindow as a share of one core. It also counts the TCP segments each
// manager's namespace sends (only the managers talk on the LAN), and
// divides the CPU time by them: the cost of one message, both ends and
// the ACKs included.
func benchIdle(r *report) error {
	bin, err := filepath.Abs(binPath("warren"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%w (run make build first)", err)
	}
	c, _, err := newHACluster(bin)
	if err != nil {
		return err
	}
	defer c.Close()
	time.Sleep(idleSettle)
	ms := c.Managers()
	pids := make([]int, len(ms))
	cpu0 := make([]time.Duration, len(ms))
	segs0 := make([]int64, len(ms))
	for i, m := range ms {
		pids[i] = m.Manager.PID()
		cpu0[i], segs0[i] = cpuTime(pids[i]), tcpOutSegs(pids[i])
	}
	start := time.Now()
	time.Sleep(idleWindow)
	el := time.Since(start)
	var total time.Duration
	var segs int64
	var each []string
	for i, m := range ms {
		d := cpuTime(pids[i]) - cpu0[i]
		total += d
		segs += tcpOutSegs(pids[i]) - segs0[i]
		each = append(each, fmt.Sprintf("%s %.2f %%", m.Name, pct(d, el)))
	}
	r.add("three idle managers, CPU together", fmt.Sprintf("%.2f %% of one core (%s; over %s)", pct(total, el), strings.Join(each, ", "), idleWindow), "< 1 % of one core", "")
	if segs > 0 {
		r.add("three idle managers, TCP segments sent and CPU per segment", fmt.Sprintf("%.0f/s, %.0f µs each", float64(segs)/el.Seconds(), float64(total.Microseconds())/float64(segs)), "", "")
	}
	return nil
}

// pct is d as a percentage of one core over el.
func pct(d, el time.Duration) float64 { return 100 * d.Seconds() / el.Seconds() }

// tcpOutSegs reads Tcp OutSegs of the network namespace pid lives in.
func tcpOutSegs(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/snmp", pid))
	if err != nil {
		return 0
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "OutSegs" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}
