package dnsbench

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestRun runs the measurement briefly so that it keeps working; the
// figures are printed, never checked. With WARREN_BIN set it measures
// that bin/warren as make bench does.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a manager and loads a DNS server")
	}
	cfg := Config{Binary: "/nonexistent/warren", Duration: 300 * time.Millisecond, Rounds: 2}
	if os.Getenv("WARREN_BIN") != "" {
		cfg = Config{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	figs, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(figs) < 5 {
		t.Errorf("Run returned %d figures, want at least 5: %v", len(figs), figs)
	}
	for _, f := range figs {
		t.Logf("%s: %s %s", f.Name, f.Value, f.Budget)
	}
}
