// Package containerdtest runs a private containerd for tests and demos.
//
// StartDaemon starts `containerd --config DIR/config.toml` with its own root,
// state, gRPC and ttrpc sockets under DIR and the CRI plugin disabled, so it
// never touches the machine's own containerd. Stop removes every task,
// container and snapshot it holds, kills what is left (shims, container
// processes), stops the daemon and unmounts everything under DIR. Kill and
// Restart stop and restart the daemon alone, on the same directories, for
// tests of what happens while containerd is away: shims and containers keep
// running meanwhile.
//
// Start wraps StartDaemon for tests: it skips when the machine cannot run
// containers (not root, binaries missing) and registers Stop with t.Cleanup
// so nothing leaks even when the test fails.
package containerdtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
)

// Binaries the daemon needs on PATH.
var Binaries = []string{"containerd", "containerd-shim-runc-v2", "runc"}

// maxSocketPath is the longest unix socket path the kernel accepts, less
// the ".ttrpc" suffix.
const maxSocketPath = 107 - len(".ttrpc")

// Daemon is a running private containerd.
type Daemon struct {
	// Dir holds config.toml, root/, state/, the sockets and containerd.log.
	Dir string
	// Socket is the gRPC address to give containerd clients.
	Socket string
	// TTRPCSocket is the ttrpc address shims publish events to.
	TTRPCSocket string
	// Log is containerd's combined stdout and stderr.
	Log string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	ids     map[string]bool // "ns/id" of every task seen, for cleanup
	sockets map[string]bool // shim sockets of every task seen
	ownsDir bool
}

// Available reports why this machine cannot run a private containerd, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return errors.New("containerdtest: needs root (containerd, runc and overlayfs mounts)")
	}
	for _, b := range Binaries {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("containerdtest: %s not found on PATH: apt-get install containerd runc", b)
		}
	}
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		return errors.New("containerdtest: no /sys/fs/cgroup")
	}
	return nil
}

// Start starts a private containerd for t, or skips t when the machine cannot
// run one. The daemon and everything it ran are removed when t ends.
func Start(t testing.TB) *Daemon {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "wctd")
	if err != nil {
		t.Fatal(err)
	}
	d, err := StartDaemon(dir)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	d.ownsDir = true
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("containerd log tail (%s):\n%s", d.Log, d.LogTail(12))
		}
		if err := d.Stop(); err != nil {
			t.Errorf("containerdtest: stop: %v", err)
		}
	})
	return d
}

// StartDaemon starts containerd with its files in dir (created if needed;
// keep the path short, unix socket paths must stay under 108 bytes) and
// waits until it serves. Call Stop when done.
func StartDaemon(dir string) (*Daemon, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	d := &Daemon{
		Dir:         dir,
		Socket:      filepath.Join(dir, "c.sock"),
		TTRPCSocket: filepath.Join(dir, "c.sock.ttrpc"),
		Log:         filepath.Join(dir, "containerd.log"),
		ids:         map[string]bool{},
		sockets:     map[string]bool{},
	}
	if len(d.Socket) > maxSocketPath {
		return nil, fmt.Errorf("containerdtest: socket path %s is %d bytes, over the kernel's limit of %d; use a shorter dir",
			d.Socket, len(d.Socket), maxSocketPath)
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("containerdtest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(d.config()), 0o644); err != nil {
		return nil, fmt.Errorf("containerdtest: write config: %w", err)
	}
	if err := d.start(); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) config() string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(d.Dir, "root"), filepath.Join(d.Dir, "state"), d.Socket, d.TTRPCSocket, filepath.Join(d.Dir, "opt"))
}

// start runs containerd and waits until it answers.
func (d *Daemon) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return errors.New("containerdtest: containerd is already running")
	}
	logf, err := os.OpenFile(d.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("containerdtest: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("containerd", "--config", filepath.Join(d.Dir, "config.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: a ^C of the test does not reach it first, and
	// Stop cleans up in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("containerdtest: start containerd: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	d.cmd, d.done = cmd, done

	deadline := time.Now().Add(20 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-done:
			d.cmd = nil
			return fmt.Errorf("containerdtest: containerd exited at start: %s", d.LogTail(15))
		default:
		}
		if lastErr = ping(d.Socket); lastErr == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("containerdtest: containerd did not serve on %s within 20s: %v; log: %s", d.Socket, lastErr, d.LogTail(15))
}

func ping(socket string) error {
	if _, err := os.Stat(socket); err != nil {
		return err
	}
	c, err := containerd.New(socket, containerd.WithTimeout(time.Second))
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ok, err := c.IsServing(ctx)
	if err == nil && !ok {
		err = errors.New("not serving")
	}
	return err
}

// Kill kills containerd with SIGKILL, as a crash would, and leaves its shims
// and containers running. Restart brings it back.
func (d *Daemon) Kill() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rememberTasks()
	return d.killDaemon(syscall.SIGKILL, 0)
}

// Restart starts containerd again on the same directories after Kill.
func (d *Daemon) Restart() error {
	return d.start()
}

// Running reports whether the containerd process is up.
func (d *Daemon) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd != nil
}

func (d *Daemon) killDaemon(sig syscall.Signal, grace time.Duration) error {
	if d.cmd == nil {
		return nil
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(grace):
		d.cmd.Process.Kill()
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			return fmt.Errorf("containerdtest: containerd pid %d does not die", d.cmd.Process.Pid)
		}
	}
	d.cmd = nil
	return nil
}

// Stop removes all tasks, containers and snapshots, stops containerd, kills
// any process it left (shims, containers), unmounts everything under Dir and
// removes the runc state and cgroups of its containers. It is safe to call
// more than once and after a failed start.
func (d *Daemon) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	d.rememberTasks()
	if d.cmd != nil {
		if err := d.cleanThroughAPI(); err != nil {
			errs = append(errs, err)
		}
	}
	d.rememberTasks()
	if err := d.killDaemon(syscall.SIGTERM, 5*time.Second); err != nil {
		errs = append(errs, err)
	}
	// Whatever the API could not remove: container processes, then shims.
	d.killLeftovers()
	if err := d.unmountAll(); err != nil {
		errs = append(errs, err)
	}
	d.removeRuncState()
	if d.ownsDir {
		if err := os.RemoveAll(d.Dir); err != nil {
			errs = append(errs, fmt.Errorf("containerdtest: remove %s: %w", d.Dir, err))
		}
	}
	return errors.Join(errs...)
}

// cleanThroughAPI deletes every task, container and image in every namespace.
func (d *Daemon) cleanThroughAPI() error {
	c, err := containerd.New(d.Socket, containerd.WithTimeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("containerdtest: connect for cleanup: %w", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nss, err := c.NamespaceService().List(ctx)
	if err != nil {
		return fmt.Errorf("containerdtest: cleanup: list namespaces: %w", err)
	}
	var errs []error
	for _, ns := range nss {
		nctx := namespaces.WithNamespace(ctx, ns)
		ctrs, err := c.Containers(nctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("containerdtest: cleanup: list containers in %s: %w", ns, err))
			continue
		}
		for _, ctr := range ctrs {
			if task, err := ctr.Task(nctx, nil); err == nil {
				task.Kill(nctx, syscall.SIGKILL, containerd.WithKillAll)
				if ch, err := task.Wait(nctx); err == nil {
					select {
					case <-ch:
					case <-time.After(5 * time.Second):
					}
				}
				if _, err := task.Delete(nctx, containerd.WithProcessKill); err != nil {
					errs = append(errs, fmt.Errorf("containerdtest: cleanup: delete task %s/%s: %w", ns, ctr.ID(), err))
				}
			}
			if err := ctr.Delete(nctx, containerd.WithSnapshotCleanup); err != nil {
				errs = append(errs, fmt.Errorf("containerdtest: cleanup: delete container %s/%s: %w", ns, ctr.ID(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// Bundle returns the directory of the task bundle of container id in
// namespace ns; its rootfs/ is the container's root filesystem as mounted
// on the host while the task exists.
func (d *Daemon) Bundle(ns, id string) string {
	return filepath.Join(d.taskDir(), ns, id)
}

// taskDir is where containerd 1.6 keeps the bundles of v2 shims.
func (d *Daemon) taskDir() string {
	return filepath.Join(d.Dir, "state", "io.containerd.runtime.v2.task")
}

// rememberTasks records the namespace/ID and shim socket of every task
// bundle on disk so their runc state, cgroups and sockets can be removed
// once the bundles are gone.
func (d *Daemon) rememberTasks() {
	nss, _ := os.ReadDir(d.taskDir())
	for _, ns := range nss {
		ids, _ := os.ReadDir(filepath.Join(d.taskDir(), ns.Name()))
		for _, id := range ids {
			d.ids[ns.Name()+"/"+id.Name()] = true
			addr, err := os.ReadFile(filepath.Join(d.taskDir(), ns.Name(), id.Name(), "address"))
			if s := strings.TrimPrefix(strings.TrimSpace(string(addr)), "unix://"); err == nil && strings.HasPrefix(s, "/") {
				d.sockets[s] = true
			}
		}
	}
}

// killLeftovers kills the container processes and shims of bundles still on
// disk, and any shim serving this daemon's address, and removes the sockets
// of killed shims.
func (d *Daemon) killLeftovers() {
	nss, _ := os.ReadDir(d.taskDir())
	for _, ns := range nss {
		ids, _ := os.ReadDir(filepath.Join(d.taskDir(), ns.Name()))
		for _, id := range ids {
			b := filepath.Join(d.taskDir(), ns.Name(), id.Name())
			// Kill the container's init (and so its pid namespace) only if
			// the pid still belongs to the container's cgroup.
			if pid := readPid(filepath.Join(b, "init.pid")); pid > 0 {
				cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
				if bytes.Contains(cg, []byte("/"+ns.Name()+"/"+id.Name()+"\n")) {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
	pids, _ := ShimPIDs(d.Socket)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if p, _ := ShimPIDs(d.Socket); len(p) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A shim removes its socket when it exits cleanly; a killed one cannot.
	// The socket name hashes this daemon's address, so no other daemon's
	// shim uses it.
	for s := range d.sockets {
		os.Remove(s)
	}
}

// removeRuncState removes the runc state directories and the cgroups of the
// containers this daemon ran, which runc leaves when its shim was killed.
func (d *Daemon) removeRuncState() {
	ctrls, _ := os.ReadDir("/sys/fs/cgroup")
	nss := map[string]bool{}
	for nsid := range d.ids {
		ns, id, _ := strings.Cut(nsid, "/")
		nss[ns] = true
		os.RemoveAll(filepath.Join("/run/containerd/runc", ns, id))
		// The default cgroups path of a containerd container is /NS/ID;
		// cgroup directories are removed with rmdir, and only when empty.
		for _, c := range ctrls {
			removeCgroup(filepath.Join("/sys/fs/cgroup", c.Name(), ns, id))
		}
	}
	// The namespace directories go too when nothing else uses them (a
	// system containerd with the same namespace keeps its own).
	for ns := range nss {
		os.Remove(filepath.Join("/run/containerd/runc", ns))
		for _, c := range ctrls {
			os.Remove(filepath.Join("/sys/fs/cgroup", c.Name(), ns))
		}
	}
}

// removeCgroup removes an empty cgroup directory, retrying while the
// kernel still counts killed processes in it (EBUSY).
func removeCgroup(dir string) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || os.IsNotExist(err) || !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// unmountAll unmounts every mount point under Dir, deepest first.
func (d *Daemon) unmountAll() error {
	var errs []error
	for _, mp := range mountsUnder(d.Dir) {
		if err := syscall.Unmount(mp, 0); err != nil {
			if err2 := syscall.Unmount(mp, syscall.MNT_DETACH); err2 != nil {
				errs = append(errs, fmt.Errorf("containerdtest: unmount %s: %w", mp, err2))
			}
		}
	}
	return errors.Join(errs...)
}

// Mounts lists the mount points under Dir (deepest first): empty once
// Stop has run, and while no container has a root filesystem mounted.
func (d *Daemon) Mounts() []string {
	return mountsUnder(d.Dir)
}

func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	return mps
}

func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ShimPIDs lists the containerd-shim processes serving the containerd whose
// gRPC address is socket.
func ShimPIDs(socket string) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("containerd-shim")) {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if !strings.Contains(filepath.Base(args[0]), "containerd-shim") {
			continue
		}
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "-address" && args[i+1] == socket {
				pids = append(pids, pid)
				break
			}
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// PSS returns the proportional set size of pid in bytes, from
// /proc/PID/smaps_rollup.
func PSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "Pss:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no Pss line in /proc/%d/smaps_rollup", pid)
}

// LogTail returns the last n lines of containerd's log.
func (d *Daemon) LogTail(n int) string {
	b, err := os.ReadFile(d.Log)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.Contains(l, `msg="loading plugin`) { // start-up noise
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
