package nspawn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Enabled says why hosts cannot boot here, or "" when they can: root, and
// WARREN_QA set to nspawn (make qa) or qemu (make qa-slow).
func Enabled(kind string) string {
	if os.Geteuid() != 0 {
		return "qa hosts need root"
	}
	if v := os.Getenv("WARREN_QA"); v == "" || !strings.Contains(v, kind) {
		return "qa hosts run in `make qa` (WARREN_QA=nspawn) and `make qa-slow` (WARREN_QA=qemu); WARREN_QA=" + v
	}
	return ""
}

// NewCluster boots hosts for a test: it skips the test where hosts cannot
// boot (not root, or WARREN_QA unset), builds the image tree if needed,
// and registers a cleanup that writes each host's journal when the test
// failed and always tears everything down.
func NewCluster(t testing.TB, specs ...HostSpec) *Cluster {
	t.Helper()
	if why := Enabled("nspawn"); why != "" {
		t.Skip(why)
	}
	p, err := DefaultPaths()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if took, err := EnsureTree(ctx, p); err != nil {
		t.Fatal(err)
	} else if took > 0 {
		t.Logf("built the image tree in %.0f s", took.Seconds())
	}
	start := time.Now()
	c, err := Boot(ctx, p, specs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dir := filepath.Join(p.Logs, strings.ReplaceAll(t.Name(), "/", "_"))
			t.Log(c.WriteJournals(dir, 60))
		}
		if err := c.Close(); err != nil {
			t.Errorf("tearing down the hosts: %v", err)
		}
	})
	t.Logf("booted %d host(s) in %.1f s (masked, not in this warren binary yet: %v)", len(specs), time.Since(start).Seconds(), c.Masked())
	return c
}
