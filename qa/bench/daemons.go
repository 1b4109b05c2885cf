package main

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

	"github.com/warren-edge/warren/daemons/api/client"
)

// proc is a daemon the bench started from bin/.
type proc struct {
	cmd  *exec.Cmd
	dir  string
	done func() // stops it, once (stopOnInterrupt)
}

// startManager runs bin/warren manager on a fresh data dir.
func startManager(extra ...string) (*proc, *client.Client, error) {
	dir, err := os.MkdirTemp("", "warren-bench-")
	if err != nil {
		return nil, nil, err
	}
	sock := filepath.Join(dir, "api.sock")
	args := append([]string{"manager", "--data-dir", filepath.Join(dir, "data"), "--api-socket", sock, "--log-level", "warn"}, extra...)
	// At the priority warren-manager.service gives it (Nice=-10): the
	// control plane before the containers.
	cmd := exec.Command("nice", append([]string{"-n", "-10", binPath("warren")}, args...)...)
	cmd.Stderr = daemonLog("manager")
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w (run make build first)", binPath("warren"), err)
	}
	p := newProc(cmd, dir)
	c, err := client.New("unix://" + sock)
	if err != nil {
		p.stop()
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if err := c.Health(ctx); err == nil {
			return p, c, nil
		}
		select {
		case <-ctx.Done():
			p.stop()
			return nil, nil, fmt.Errorf("manager did not become healthy")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// newProc is the daemon cmd, started, with its data dir: stopped when
// the bench is interrupted, if not before.
func newProc(cmd *exec.Cmd, dir string) *proc {
	p := &proc{cmd: cmd, dir: dir}
	p.done = stopOnInterrupt(p.kill)
	return p
}

// stop stops the daemon and removes its data dir.
func (p *proc) stop() { p.done() }

func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(p.dir)
}

// rssMB reads a process's resident memory in MiB.
func rssMB(pid int) float64 { return statusMB(pid, "VmRSS") }

// statusMB reads a kB field of /proc/PID/status (VmRSS, VmHWM) in MiB.
func statusMB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return -1
}

func binPath(name string) string {
	if dir := os.Getenv("WARREN_BIN"); dir != "" {
		return filepath.Join(dir, name)
	}
	return filepath.Join("bin", name)
}
