package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is one child process the harness started. Its output goes to
// LogPath (appended to across restarts).
type Proc struct {
	Name    string
	LogPath string
	argv    []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error // how it exited, once done is closed
}

// startProc runs argv with its output appended to logPath.
func startProc(name, logPath string, argv []string) (*Proc, error) {
	p := &Proc{Name: name, LogPath: logPath, argv: argv}
	return p, p.start()
}

func (p *Proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("cluster: %s is running (pid %d)", p.Name, p.cmd.Process.Pid)
		}
	}
	f, err := os.OpenFile(p.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %s log: %w", p.Name, err)
	}
	defer f.Close()
	fmt.Fprintf(f, "=== %s: %s\n", time.Now().Format("15:04:05.000"), strings.Join(p.argv, " "))
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group (a ^C of the test reaches the harness first),
	// and killed with the test binary if that dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cluster: start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err = cmd, done, nil
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// PID is the process's ID (0 before the first start).
func (p *Proc) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Exited returns the process's exit error once it has exited (nil for a
// clean exit) and whether it has.
func (p *Proc) Exited() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return true, errors.New("never started")
	}
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Wait waits up to d for the process to exit.
func (p *Proc) Wait(d time.Duration) (exited bool, err error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true, nil
	}
	select {
	case <-done:
		return p.Exited()
	case <-time.After(d):
		return false, nil
	}
}

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (p *Proc) Kill() error {
	return p.Signal(syscall.SIGKILL, 10*time.Second)
}

// Stop sends SIGTERM, then SIGKILL after grace.
func (p *Proc) Stop(grace time.Duration) error {
	if err := p.Signal(syscall.SIGTERM, grace); err == nil {
		return nil
	}
	return p.Kill()
}

// Signal sends sig to the process (by its PID, never by name) and waits up
// to wait for it to exit.
func (p *Proc) Signal(sig syscall.Signal, wait time.Duration) error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-done:
		return nil
	default:
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		return fmt.Errorf("cluster: %s (pid %d) still runs %s after %v", p.Name, cmd.Process.Pid, wait, sig)
	}
}

// Restart starts the process again with the same arguments.
func (p *Proc) Restart() error { return p.start() }

// Log returns the whole log.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// LogTail returns the last n lines of the log.
func (p *Proc) LogTail(n int) string {
	return tail(p.Log(), n)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CountLog counts the occurrences of substr in the log.
func (p *Proc) CountLog(substr string) int {
	b, _ := os.ReadFile(p.LogPath)
	return bytes.Count(b, []byte(substr))
}
