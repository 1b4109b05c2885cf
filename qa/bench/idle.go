package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	var sw0 int64
	for i, m := range ms {
		pids[i] = m.Manager.PID()
		cpu0[i], segs0[i] = cpuTime(pids[i]), tcpOutSegs(pids[i])
		sw0 += ctxSwitches(pids[i])
	}
	start := time.Now()
	time.Sleep(idleWindow)
	el := time.Since(start)
	var total time.Duration
	var segs, sw int64
	var each []string
	for i, m := range ms {
		d := cpuTime(pids[i]) - cpu0[i]
		total += d
		segs += tcpOutSegs(pids[i]) - segs0[i]
		sw += ctxSwitches(pids[i])
		each = append(each, fmt.Sprintf("%s %.2f %%", m.Name, pct(d, el)))
	}
	r.add("three idle managers, CPU together", fmt.Sprintf("%.2f %% of one core (%s; over %s)", pct(total, el), strings.Join(each, ", "), idleWindow), "< 1 % of one core", "")
	if segs > 0 {
		r.add("three idle managers, TCP segments sent and CPU per segment", fmt.Sprintf("%.0f/s, %.0f µs each", float64(segs)/el.Seconds(), float64(total.Microseconds())/float64(segs)), "", "")
	}
	r.add("three idle managers, thread context switches (wakeups)", fmt.Sprintf("%.0f/s", float64(sw-sw0)/el.Seconds()), "", "")
	c.Close()
	return benchIdleNode(r)
}

// benchIdleNode measures one idle node (issue 15): a single-manager
// cluster with its agent on a real containerd (startBenchNode) and
// warren-dns, no services, left alone for idleSettle, then the three
// daemons' CPU time over idleWindow. containerd's own is not counted: it
// is not Warren's.
func benchIdleNode(r *report) error {
	n, err := startBenchNode()
	if err != nil {
		return err
	}
	defer n.close()
	// The mesh status's directory exists, as on a booted node
	// (tmpfiles.d): warren-dns watches it instead of reading on a clock.
	meshDir := filepath.Join(n.dir, "mesh")
	if err := os.MkdirAll(meshDir, 0o755); err != nil {
		return err
	}
	dns := exec.Command(binPath("warren"), "dns", "--api-socket", strings.TrimPrefix(n.c.Host(), "unix://"),
		"--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:9", "--log-level", "warn",
		"--mesh-status", filepath.Join(meshDir, "status.json"))
	dns.Stderr = daemonLog("dns")
	if err := dns.Start(); err != nil {
		return err
	}
	defer stopOnInterrupt(func() { dns.Process.Signal(syscall.SIGTERM); dns.Wait() })()
	time.Sleep(idleSettle)
	r.add("warren-dns resident memory, idle (no services)", fmt.Sprintf("%.1f MB (%.1f MB anonymous)", rssMB(dns.Process.Pid), statusMB(dns.Process.Pid, "RssAnon")), "< 24 MB", "")
	procs := []struct {
		name string
		pid  int
	}{{"manager", n.mgr.cmd.Process.Pid}, {"agent", n.agent.Process.Pid}, {"dns", dns.Process.Pid}}
	cpu0 := make([]time.Duration, len(procs))
	sw0 := make([]int64, len(procs))
	for i, p := range procs {
		cpu0[i], sw0[i] = cpuTime(p.pid), ctxSwitches(p.pid)
	}
	start := time.Now()
	time.Sleep(idleWindow)
	el := time.Since(start)
	var total time.Duration
	var each, eachSw []string
	var sw int64
	for i, p := range procs {
		if !running(p.pid) {
			return fmt.Errorf("%s exited while idle (see the logs)", p.name)
		}
		d, n := cpuTime(p.pid)-cpu0[i], ctxSwitches(p.pid)-sw0[i]
		total, sw = total+d, sw+n
		each = append(each, fmt.Sprintf("%s %.2f %%", p.name, pct(d, el)))
		eachSw = append(eachSw, fmt.Sprintf("%s %.0f", p.name, float64(n)/el.Seconds()))
	}
	r.add("one idle node (manager + agent + dns, 1 manager), CPU together", fmt.Sprintf("%.2f %% of one core (%s; over %s)", pct(total, el), strings.Join(each, ", "), idleWindow), "< 0.3 % of one core", "")
	r.add("one idle node, thread context switches (wakeups)", fmt.Sprintf("%.0f/s (%s)", float64(sw)/el.Seconds(), strings.Join(eachSw, ", ")), "", "")
	return nil
}

// running says whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	f := procStat(pid)
	return len(f) > 0 && f[0] != "Z"
}

// ctxSwitches is how many times pid's threads left the CPU (voluntary
// and not), summed over its threads: the wakeups an idle daemon pays for,
// steadier from run to run than its CPU time on a shared machine.
func ctxSwitches(pid int) int64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if name, val, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(name, "ctxt_switches") {
				v, _ := strconv.ParseInt(strings.TrimSpace(val), 10, 64)
				n += v
			}
		}
	}
	return n
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
