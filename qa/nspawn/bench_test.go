package nspawn

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"
)

// TestBench prints the appliance's figures (Bench). It measures, never
// asserts: WARREN_QA=bench go test -v -run TestBench ./qa/nspawn
// (qa/bench calls Bench itself for `make bench`).
func TestBench(t *testing.T) {
	if why := Enabled("bench"); why != "" {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	figs, err := Bench(ctx)
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "FIGURE\tMEASURED\tBUDGET\tNOTE")
	for _, f := range figs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.Name, f.Display(), f.Budget, f.Note)
	}
	w.Flush()
	fmt.Fprint(os.Stdout, b.String())
	if err != nil {
		t.Log(err)
	}
}
