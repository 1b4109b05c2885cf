package nspawn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// RepoRoot is the Warren checkout this package is in (the directory with
// go.mod), found from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/warren-edge/warren\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("nspawn: not inside the Warren checkout (no go.mod of github.com/warren-edge/warren above the working directory)")
		}
		dir = parent
	}
}

// Paths are where a cluster's ingredients come from.
type Paths struct {
	Repo string // the checkout
	Tree string // the image tree (default Repo/image/out/tree, or $WARREN_QA_TREE)
	Bin  string // warren and warrenctl (default Repo/bin)
	// Work holds the hosts' overlays and files while they run (default
	// /var/tmp/warren-qa).
	Work string
	// Logs receives each host's journal when a test fails (default
	// Work/logs).
	Logs string
}

// DefaultPaths fills Paths from the checkout and the environment.
func DefaultPaths() (Paths, error) {
	repo, err := RepoRoot()
	if err != nil {
		return Paths{}, err
	}
	p := Paths{Repo: repo, Tree: os.Getenv("WARREN_QA_TREE"), Bin: filepath.Join(repo, "bin"), Work: "/var/tmp/warren-qa"}
	if p.Tree == "" {
		p.Tree = filepath.Join(repo, "image", "out", "tree")
	}
	p.Logs = filepath.Join(p.Work, "logs")
	return p, nil
}

var (
	treeOnce sync.Once
	treeErr  error
	treeTook time.Duration
)

// EnsureTree makes sure the image tree and the binaries exist and are
// current: `make image-tree` (which rebuilds only when mkosi.conf, image/
// or units/ changed) and `make bin/warren`, once per process. With
// $WARREN_QA_TREE set the tree is taken as it is. It returns how long the
// image build took in this call (0 when the tree was current).
func EnsureTree(ctx context.Context, p Paths) (time.Duration, error) {
	treeOnce.Do(func() {
		if os.Getenv("WARREN_QA_TREE") != "" {
			if _, err := os.Stat(filepath.Join(p.Tree, "usr/lib/systemd/systemd")); err != nil {
				treeErr = fmt.Errorf("nspawn: WARREN_QA_TREE=%s is not an image tree: %w", p.Tree, err)
			}
			return
		}
		if err := run(ctx, p.Repo, "make", "--no-print-directory", "bin/warren"); err != nil {
			treeErr = err
			return
		}
		stamp := filepath.Join(p.Tree, ".warren-built")
		before, _ := os.Stat(stamp)
		start := time.Now()
		if err := run(ctx, p.Repo, "make", "--no-print-directory", "image-tree"); err != nil {
			treeErr = fmt.Errorf("nspawn: building the image tree: %w", err)
			return
		}
		if after, err := os.Stat(stamp); err == nil && (before == nil || !after.ModTime().Equal(before.ModTime())) {
			treeTook = time.Since(start)
		}
	})
	took := treeTook
	treeTook = 0 // reported once
	return took, treeErr
}

func run(ctx context.Context, dir string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		tail := string(out)
		if len(tail) > 4000 {
			tail = "..." + tail[len(tail)-4000:]
		}
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail)
	}
	return nil
}

// HasCommand says whether the warren binary has daemon subcommand name
// (`warren NAME --help` succeeds). Daemons still being written are masked
// on the hosts, so their restart loops do not keep boots from settling.
func HasCommand(bin, name string) bool {
	cmd := exec.Command(filepath.Join(bin, "warren"), name, "--help")
	return cmd.Run() == nil
}
