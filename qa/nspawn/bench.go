package nspawn

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Figure is one measured number for `make bench`.
type Figure struct {
	Name   string
	Value  float64
	Unit   string // "s", "MB", "MiB", "" (a score)
	Budget string // from DESIGN.md §8 where there is one
	Note   string
}

// Display formats the value with its unit.
func (f Figure) Display() string {
	switch f.Unit {
	case "":
		return strconv.FormatFloat(f.Value, 'f', 1, 64)
	case "s":
		return fmt.Sprintf("%.2f s", f.Value)
	default:
		return fmt.Sprintf("%.1f %s", f.Value, f.Unit)
	}
}

// Bench measures the appliance: image build time (from the last build,
// or a build now if there is none), image size (the tree, and the disk
// image compressed when it was built), boot of a qa host to warren-manager
// READY, resident memory of every Warren daemon on that idle host, and
// each unit's systemd-analyze security exposure. It needs root and the
// image tools (`make image-deps`); a figure it cannot take is left out and
// named in the error, the others are still returned.
func Bench(ctx context.Context) ([]Figure, error) {
	p, err := DefaultPaths()
	if err != nil {
		return nil, err
	}
	var figs []Figure
	var problems []string
	add := func(f Figure) { figs = append(figs, f) }
	fail := func(what string, err error) { problems = append(problems, fmt.Sprintf("%s: %v", what, err)) }

	// Security exposure needs only systemd-analyze.
	if out, err := exec.CommandContext(ctx, filepath.Join(p.Repo, "units/check.sh"), "--scores").Output(); err != nil {
		fail("unit security scores", err)
	} else {
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			f := strings.Fields(l)
			if len(f) != 2 {
				continue
			}
			v, _ := strconv.ParseFloat(f[1], 64)
			add(Figure{Name: "security exposure " + f[0], Value: v, Note: "systemd-analyze security --offline (0 best, 10 worst); max in units/security-thresholds"})
		}
	}
	if os.Geteuid() != 0 {
		return figs, fmt.Errorf("nspawn: bench: image and host figures need root")
	}

	if _, err := EnsureTree(ctx, p); err != nil {
		return figs, err
	}
	out := filepath.Join(p.Repo, "image/out")
	if s, ok := readSeconds(filepath.Join(out, "tree.build-seconds")); ok {
		add(Figure{Name: "image build (directory tree, mkosi)", Value: s, Unit: "s", Note: "last `make image-tree`"})
	}
	if s, ok := readSeconds(filepath.Join(out, "disk.build-seconds")); ok {
		add(Figure{Name: "image build (disk image with kernel, mkosi)", Value: s, Unit: "s", Note: "last `make image-disk`"})
	}
	if n, err := duBytes(p.Tree); err != nil {
		fail("tree size", err)
	} else {
		add(Figure{Name: "image size: directory tree", Value: float64(n) / 1e6, Unit: "MB"})
	}
	if st, err := os.Stat(filepath.Join(out, "warren.raw.zst")); err == nil {
		add(Figure{Name: "image size: disk image, zstd", Value: float64(st.Size()) / 1e6, Unit: "MB", Note: "warren.raw.zst (flash with zstdcat | dd)"})
		if raw, err := duBytes(filepath.Join(out, "warren.raw")); err == nil {
			add(Figure{Name: "image size: disk image, raw (allocated)", Value: float64(raw) / 1e6, Unit: "MB"})
		}
	}

	// One host: boot → manager READY, then idle memory.
	c, err := Boot(ctx, p, HostSpec{Name: "bench"})
	if err != nil {
		fail("boot", err)
		return figs, joinProblems(problems)
	}
	defer c.Close()
	h := c.Hosts[0]
	if s, err := h.ReadySeconds(ctx, "warren-manager.service"); err != nil {
		fail("manager READY", err)
	} else {
		add(Figure{Name: "booted host (nspawn) → warren-manager READY", Value: s, Unit: "s", Note: "nspawn start to ActiveEnterTimestamp (READY=1)"})
	}
	if s, err := h.ReadySeconds(ctx, "multi-user.target"); err == nil {
		add(Figure{Name: "booted host (nspawn) → multi-user.target", Value: s, Unit: "s"})
	}
	for _, d := range c.Running() {
		h.WaitActive(ctx, d+".service")
	}
	select {
	case <-time.After(5 * time.Second): // idle
	case <-ctx.Done():
		return figs, ctx.Err()
	}
	budgets := map[string]string{"warren-manager": "< 48 MB", "warren-agent": "< 32 MB", "warren-dns": "< 24 MB", "warren-ingress": "< 24 MB"}
	total := 0
	for _, d := range c.Running() {
		kib, err := h.RSSKiB(ctx, d+".service")
		if err != nil {
			fail(d+" RSS", err)
			continue
		}
		total += kib
		add(Figure{Name: "resident memory, idle host: " + d, Value: float64(kib) / 1024, Unit: "MiB", Budget: budgets[d], Note: "VmRSS of the main process"})
	}
	add(Figure{Name: "resident memory, idle host: all Warren daemons", Value: float64(total) / 1024, Unit: "MiB", Note: strings.Join(c.Running(), " + ")})
	if kib, err := h.RSSKiB(ctx, "containerd.service"); err == nil {
		add(Figure{Name: "resident memory, idle host: containerd (for reference)", Value: float64(kib) / 1024, Unit: "MiB"})
	}
	return figs, joinProblems(problems)
}

func joinProblems(p []string) error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("nspawn: bench: %s", strings.Join(p, "; "))
}

func readSeconds(path string) (float64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	return v, err == nil
}

// duBytes is the space a file or tree takes on disk (hard links once).
func duBytes(root string) (int64, error) {
	seen := map[uint64]bool{}
	var total int64
	err := filepath.Walk(root, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += st.Blocks * 512
		return nil
	})
	return total, err
}
