// Command bench prints Warren's figures table (DESIGN.md §8): rates,
// latencies as p50/p99, resident memory and binary size. It starts real
// daemons from bin/ and measures them through their API; nothing is
// asserted, since the machines are shared and noisy.
//
//	go run ./qa/bench [-only manager,scheduler,...]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// row is one line of the table.
type row struct {
	figure, value, budget, reference string
}

type section struct {
	name string
	run  func(r *report) error
}

var sections = []section{
	{"manager", benchManager},
	{"secrets", benchSecrets},
	{"events", benchEvents},
	{"node", benchNode},
	{"shape", benchShape},
	{"dns", benchDNS},
	{"mesh", benchMesh},
	{"ha", benchHA},
	{"idle", benchIdle},
	{"fleet", benchFleet},
	{"rollout", benchRollout},
	{"ingress", benchIngress},
	{"offline", benchOffline},
	{"appliance", benchAppliance},
	{"scheduler", benchScheduler},
	{"binary", benchBinary},
}

type report struct {
	rows []row
}

func (r *report) add(figure, value, budget, reference string) {
	r.rows = append(r.rows, row{figure, value, budget, reference})
	fmt.Fprintf(os.Stderr, "  %s: %s\n", figure, value)
}

func main() {
	only := flag.String("only", "", "comma-separated sections to run (default all): "+names())
	output := flag.String("o", "table", "what to print on stdout: table, or json (the same figures, to compare runs)")
	flag.Parse()
	if *output != "table" && *output != "json" {
		fmt.Fprintf(os.Stderr, "bench: -o %s: use table or json\n", *output)
		os.Exit(2)
	}
	// The daemons the bench starts log to files, not between the lines
	// of the table.
	var err error
	if logDir, err = os.MkdirTemp("", "warren-bench-logs-"); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "bench: the daemons' logs are in %s\n", logDir)
	stopLiveOnSignal()
	want := map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s != "" {
			want[s] = true
		}
	}
	r := &report{}
	failed := false
	for _, s := range sections {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench %s...\n", s.name)
		start := time.Now()
		if err := s.run(r); err != nil {
			fmt.Fprintf(os.Stderr, "bench %s: %v\n", s.name, err)
			r.add(s.name, "FAILED: "+err.Error(), "", "")
			failed = true
		}
		fmt.Fprintf(os.Stderr, "bench %s took %s\n", s.name, time.Since(start).Round(time.Millisecond))
	}
	if *output == "json" {
		type figure struct {
			Figure    string `json:"figure"`
			Measured  string `json:"measured"`
			Budget    string `json:"budget,omitempty"`
			Reference string `json:"reference,omitempty"`
		}
		out := make([]figure, 0, len(r.rows))
		for _, x := range r.rows {
			out = append(out, figure{x.figure, x.value, x.budget, x.reference})
		}
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		enc.Encode(out)
		if failed {
			os.Exit(1)
		}
		return
	}
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "FIGURE\tMEASURED\tBUDGET\tREFERENCE")
	for _, x := range r.rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", x.figure, x.value, x.budget, x.reference)
	}
	w.Flush()
	if failed {
		os.Exit(1)
	}
}

// logDir holds the logs of the daemons the bench starts.
var logDir string

// daemonLog is a log file in logDir for a daemon the bench starts (its
// stderr); os.Stderr if it cannot be made.
func daemonLog(name string) *os.File {
	f, err := os.CreateTemp(logDir, name+"-*.log")
	if err != nil {
		return os.Stderr
	}
	return f
}

func names() string {
	var n []string
	for _, s := range sections {
		n = append(n, s.name)
	}
	sort.Strings(n)
	return strings.Join(n, ",")
}

// percentiles returns p50 and p99 of ds.
func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)*50/100], s[min(len(s)-1, len(s)*99/100)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// live is what the sections have started and not stopped yet
// (containerd daemons, network namespaces, clusters), stopped if the
// bench is interrupted: an interrupted bench left them running.
var live struct {
	sync.Mutex
	next     int
	stop     map[int]func()
	stopping bool // interrupted: what starts now is stopped at once
}

// stopOnInterrupt registers stop to run if the bench is interrupted
// (stopLiveOnSignal). The func it returns runs stop, once, and forgets it.
func stopOnInterrupt(stop func()) (done func()) {
	var once sync.Once
	run := func() { once.Do(stop) }
	live.Lock()
	if live.stopping {
		live.Unlock()
		run()
		return run
	}
	if live.stop == nil {
		live.stop = map[int]func(){}
	}
	id := live.next
	live.next++
	live.stop[id] = run
	live.Unlock()
	return func() {
		live.Lock()
		delete(live.stop, id)
		live.Unlock()
		run()
	}
}

// stopLiveOnSignal stops what is live, the latest first, and exits, on
// SIGINT, SIGTERM or SIGHUP, or when what reads its output went away
// (SIGPIPE: `make bench | head` would otherwise die on its next line).
func stopLiveOnSignal() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	go func() {
		s := <-sig
		for s == syscall.SIGPIPE && !outputGone() {
			s = <-sig
		}
		fmt.Fprintf(os.Stderr, "bench: %v: stopping what it started\n", s) // on a broken pipe it fails, and that is all
		live.Lock()
		live.stopping = true
		ids := slices.Sorted(maps.Keys(live.stop))
		stops := make([]func(), 0, len(ids))
		for _, id := range slices.Backward(ids) {
			stops = append(stops, live.stop[id])
		}
		live.Unlock()
		for _, stop := range stops {
			stop()
		}
		os.Exit(1)
	}()
}

// outputGone says whether what reads the bench's output (stdout or
// stderr) went away. Once SIGPIPE is caught, it comes for a write to any
// pipe or connection whose other end closed, a section's own (the DNS
// bench's TCP client, say), and that write fails with EPIPE for the
// section to handle; only a closed output stops the bench. A pipe whose
// reader is gone polls POLLERR.
func outputGone() bool {
	fds := []unix.PollFd{{Fd: 1, Events: unix.POLLOUT}, {Fd: 2, Events: unix.POLLOUT}}
	if _, err := unix.Poll(fds, 0); err != nil {
		return false
	}
	for _, f := range fds {
		if f.Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			return true
		}
	}
	return false
}
