package nspawn

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DiskImage is the disk image and the kernel and initramfs copied out of
// it, as `make image-disk` leaves them.
type DiskImage struct {
	Raw, Kernel, Initrd string
}

// DefaultDiskImage is image/out/warren.{raw,vmlinuz,initrd}.
func DefaultDiskImage(repo string) DiskImage {
	base := filepath.Join(repo, "image/out/warren")
	return DiskImage{Raw: base + ".raw", Kernel: base + ".vmlinuz", Initrd: base + ".initrd"}
}

// QemuBoot is one boot of the disk image in qemu with software emulation
// (TCG; this machine's /dev/kvm cannot boot a stock kernel). The disk is
// used with -snapshot, so the image stays as it was built.
type QemuBoot struct {
	cmd     *exec.Cmd
	start   time.Time
	mu      sync.Mutex
	console strings.Builder
	lines   chan string
	done    chan struct{}
	err     error
}

// BootQemu starts qemu on img with its serial console on a pipe. extraArgs
// are appended to the kernel command line.
func BootQemu(ctx context.Context, img DiskImage, extraArgs ...string) (*QemuBoot, error) {
	for _, f := range []string{img.Raw, img.Kernel, img.Initrd} {
		if _, err := os.Stat(f); err != nil {
			return nil, fmt.Errorf("nspawn: qemu: %w (make image-disk)", err)
		}
	}
	append_ := strings.Join(append([]string{"root=LABEL=root", "rw", "console=ttyS0", "panic=-1"}, extraArgs...), " ")
	args := []string{
		"-machine", "q35", "-accel", "tcg", "-cpu", "max", "-smp", "2", "-m", "1024",
		"-nographic", "-no-reboot", "-snapshot",
		"-kernel", img.Kernel, "-initrd", img.Initrd, "-append", append_,
		"-drive", "file=" + img.Raw + ",if=virtio,format=raw",
		"-nic", "none",
	}
	cmd := exec.Command("qemu-system-x86_64", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	cmd.Stdin = nil
	q := &QemuBoot{cmd: cmd, lines: make(chan string, 4096), done: make(chan struct{})}
	q.start = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nspawn: qemu: %w", err)
	}
	go func() {
		r := bufio.NewReader(stdout)
		for {
			l, err := r.ReadString('\n')
			if l != "" {
				q.mu.Lock()
				q.console.WriteString(l)
				q.mu.Unlock()
				select {
				case q.lines <- l:
				default:
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					q.err = err
				}
				break
			}
		}
		q.err = errors.Join(q.err, cmd.Wait())
		close(q.done)
	}()
	return q, nil
}

// WaitFor waits until a console line contains s and returns how long after
// qemu's start it came.
func (q *QemuBoot) WaitFor(ctx context.Context, s string) (time.Duration, error) {
	for {
		select {
		case l := <-q.lines:
			if strings.Contains(l, s) {
				return time.Since(q.start), nil
			}
		case <-q.done:
			// drain what is left
			for {
				select {
				case l := <-q.lines:
					if strings.Contains(l, s) {
						return time.Since(q.start), nil
					}
				default:
					return 0, fmt.Errorf("nspawn: qemu exited (%v) before the console said %q", q.err, s)
				}
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("nspawn: qemu: no %q on the console: %w", s, ctx.Err())
		}
	}
}

// Console is everything the serial console printed so far.
func (q *QemuBoot) Console() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.console.String()
}

// Close ends qemu (the process this package started, by its PID).
func (q *QemuBoot) Close() {
	select {
	case <-q.done:
		return
	default:
	}
	q.cmd.Process.Kill()
	<-q.done
}
