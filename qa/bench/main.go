// Command bench prints Warren's figures table (DESIGN.md §8): rates,
// latencies as p50/p99, resident memory and binary size. It starts real
// daemons from bin/ and measures them through their API; nothing is
// asserted, since the machines are shared and noisy.
//
//	go run ./qa/bench [-only manager,scheduler,...]
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
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
	{"node", benchNode},
	{"dns", benchDNS},
	{"mesh", benchMesh},
	{"ha", benchHA},
	{"fleet", benchFleet},
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
	flag.Parse()
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
