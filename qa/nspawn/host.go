package nspawn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warren-edge/warren/daemons/api/client"
)

// Host is one booted machine.
type Host struct {
	Spec  HostSpec
	Index int
	Addr  netip.Addr

	c       *Cluster
	dir     string
	root    string // the overlay's mount point
	ctrd    string // mount point of the containerd ext4
	netns   string
	cgroups []string // this host's cgroup directories, one per hierarchy

	mu       sync.Mutex
	proc     *machineProc
	launched time.Duration // CLOCK_MONOTONIC when nspawn was started last
	mounted  []string
}

// machineProc is one run of systemd-nspawn (a reboot makes a new one).
type machineProc struct {
	cmd    *exec.Cmd
	leader int
	done   chan struct{}
	err    error // nspawn's exit, after done
}

// NetNS is the path of the host's network namespace.
func (h *Host) NetNS() string { return "/run/netns/" + h.netns }

// Name is the host's name.
func (h *Host) Name() string { return h.Spec.Name }

func (h *Host) consoleLog() string { return filepath.Join(h.dir, "console.log") }

// Launched is CLOCK_MONOTONIC at the host's last (re)boot.
func (h *Host) Launched() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.launched
}

// Leader is the PID (in the build machine's PID namespace) of the host's
// systemd, or 0 when the host is not running.
func (h *Host) Leader() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.proc == nil {
		return 0
	}
	select {
	case <-h.proc.done:
		return 0
	default:
	}
	return h.proc.leader
}

func (h *Host) prepare(ctx context.Context) error {
	c := h.c
	h.dir = filepath.Join(c.dir, h.Spec.Name)
	h.root = filepath.Join(h.dir, "root")
	h.ctrd = filepath.Join(h.dir, "containerd")
	h.netns = fmt.Sprintf("wq%s-h%d", c.ID, h.Index)
	for _, d := range []string{"upper", "work", "root", "containerd"} {
		if err := os.MkdirAll(filepath.Join(h.dir, d), 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", c.Paths.Tree, filepath.Join(h.dir, "upper"), filepath.Join(h.dir, "work"))
	if err := syscall.Mount("overlay", h.root, "overlay", 0, opts); err != nil {
		return fmt.Errorf("nspawn: %s: overlay root: %w", h.Spec.Name, err)
	}
	h.mounted = append(h.mounted, h.root)

	// containerd's snapshots need a real file system, not overlayfs.
	img := filepath.Join(h.dir, "containerd.ext4")
	size := h.Spec.ContainerdSize
	if size == 0 {
		size = 2 << 30
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		return err
	}
	if err := os.Truncate(img, size); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=1,lazy_journal_init=1", img).CombinedOutput(); err != nil {
		return fmt.Errorf("nspawn: %s: mkfs.ext4: %v: %s", h.Spec.Name, err, out)
	}
	if out, err := exec.CommandContext(ctx, "mount", "-o", "loop", img, h.ctrd).CombinedOutput(); err != nil {
		return fmt.Errorf("nspawn: %s: mount %s: %v: %s", h.Spec.Name, img, err, out)
	}
	h.mounted = append(h.mounted, h.ctrd)

	if err := h.writeFiles(); err != nil {
		return err
	}
	if err := h.setupNet(ctx); err != nil {
		return err
	}
	return h.makeCgroups()
}

// writeFiles puts the host's identity and the spec's files into its root.
func (h *Host) writeFiles() error {
	files := map[string]string{
		"/etc/hostname":   h.Spec.Name + "\n",
		"/etc/machine-id": randomHex(16) + "\n",
	}
	mode := map[string]os.FileMode{}
	if h.Spec.Seed != nil {
		files["/var/lib/cloud/seed/nocloud/meta-data"] = h.Spec.Seed.MetaData
		files["/var/lib/cloud/seed/nocloud/user-data"] = h.Spec.Seed.UserData
	} else {
		files["/etc/cloud/cloud-init.disabled"] = "qa/nspawn: this host has no NoCloud seed\n"
	}
	if len(h.Spec.AuthorizedKeys) > 0 {
		files["/root/.ssh/authorized_keys"] = strings.Join(h.Spec.AuthorizedKeys, "\n") + "\n"
		mode["/root/.ssh/authorized_keys"] = 0o600
	}
	for p, content := range h.Spec.Files {
		files[p] = content
	}
	for p, content := range files {
		full := filepath.Join(h.root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		os.Remove(full)
		m := mode[p]
		if m == 0 {
			m = 0o644
		}
		if err := os.WriteFile(full, []byte(content), m); err != nil {
			return fmt.Errorf("nspawn: %s: %w", h.Spec.Name, err)
		}
	}
	if len(h.Spec.AuthorizedKeys) > 0 {
		os.Chmod(filepath.Join(h.root, "root/.ssh"), 0o700)
	}
	// Daemons the binary does not have yet are masked, so their units do
	// not restart forever and keep the boot from settling.
	for _, d := range h.c.masked {
		for _, u := range unitsOf(d) {
			p := filepath.Join(h.root, "etc/systemd/system", u)
			os.Remove(p)
			if err := os.Symlink("/dev/null", p); err != nil {
				return err
			}
		}
	}
	return nil
}

func unitsOf(daemon string) []string {
	switch daemon {
	case "dns":
		return []string{"warren-dns.service", "warren-dns.socket", "warren-dns-tcp.socket"}
	case "ingress":
		return []string{"warren-ingress.service", "warren-ingress.socket", "warren-ingress-https.socket"}
	}
	return []string{"warren-" + daemon + ".service", "warren-" + daemon + ".socket"}
}

func (h *Host) setupNet(ctx context.Context) error {
	lan := h.c.lanNS
	peer := fmt.Sprintf("wq%sv%d", h.c.ID, h.Index)
	steps := [][]string{
		{"netns", "add", h.netns},
		{"-n", h.netns, "link", "set", "lo", "up"},
		{"-n", h.netns, "link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", lan},
		{"-n", lan, "link", "set", peer, "master", "br0", "up"},
		{"-n", h.netns, "addr", "add", h.Addr.String() + "/24", "dev", "eth0"},
		{"-n", h.netns, "link", "set", "eth0", "up"},
		{"-n", h.netns, "route", "add", "default", "via", LanAddr.String()},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return fmt.Errorf("nspawn: %s: %w", h.Spec.Name, err)
		}
	}
	return nil
}

// makeCgroups makes a cgroup for this host under the caller's own in every
// hierarchy (v1 controllers, name=systemd, the unified one).
func (h *Host) makeCgroups() error {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var mnt string
		switch ctrl := parts[1]; {
		case ctrl == "":
			mnt = "/sys/fs/cgroup/unified"
			if _, err := os.Stat(mnt); err != nil {
				mnt = "/sys/fs/cgroup"
			}
		case strings.HasPrefix(ctrl, "name="):
			mnt = "/sys/fs/cgroup/" + strings.TrimPrefix(ctrl, "name=")
		default:
			mnt = "/sys/fs/cgroup/" + ctrl
			if _, err := os.Stat(mnt); err != nil {
				mnt = "/sys/fs/cgroup/" + strings.Split(ctrl, ",")[0]
			}
		}
		if _, err := os.Stat(filepath.Join(mnt, "cgroup.procs")); err != nil {
			continue
		}
		parent := filepath.Join(mnt, parts[2])
		dir := filepath.Join(parent, fmt.Sprintf("warren-qa-%s-%s", h.c.ID, h.Spec.Name))
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("nspawn: %s: cgroup %s: %w", h.Spec.Name, dir, err)
		}
		// A v1 cpuset cgroup takes no task before it has cpus and mems.
		for _, k := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(parent, k)); err == nil {
				os.WriteFile(filepath.Join(dir, k), b, 0o644)
			}
		}
		h.cgroups = append(h.cgroups, dir)
	}
	return sc.Err()
}

// nspawnArgs are the flags MACHINE-NOTES.md found necessary, each for the
// error it fixes.
func (h *Host) nspawnArgs() []string {
	args := []string{
		"--boot",
		"--directory=" + h.root,
		"--machine=" + h.c.ID + "-" + h.Spec.Name,
		"--hostname=" + h.Spec.Name,
		// No systemd on the build machine to register with.
		"--register=no", "--keep-unit",
		"--network-namespace-path=" + h.NetNS(),
		// With --network-namespace-path nspawn withholds CAP_NET_ADMIN;
		// containerd, runc and the agent need it and more.
		"--capability=all",
		// runc needs keyctl.
		"--system-call-filter=@keyring",
		"--bind=" + h.ctrd + ":/var/lib/containerd",
		// warren-mesh's userspace WireGuard (this kernel has no
		// module) needs a TUN; a device has /dev/net/tun.
		"--bind=/dev/net/tun",
		"--link-journal=no",
		"--timezone=off",
		"--resolv-conf=off",
		"--console=read-only",
	}
	for _, b := range []string{"warren", "warrenctl"} {
		if p := filepath.Join(h.c.Paths.Bin, b); fileExists(p) {
			args = append(args, "--bind-ro="+p+":/usr/bin/"+b)
		}
	}
	return args
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// start launches nspawn in the host's cgroups and waits for the boot to
// settle.
func (h *Host) start(ctx context.Context) error {
	// The shell puts itself into the host's cgroups, then becomes nspawn.
	script := `IFS=:
for d in $WQ_CGROUPS; do echo $$ > "$d/cgroup.procs" || exit 1; done
unset IFS WQ_CGROUPS
exec systemd-nspawn "$@"`
	console, err := os.OpenFile(h.consoleLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh"}, h.nspawnArgs()...)...)
	cmd.Env = append(os.Environ(),
		"WQ_CGROUPS="+strings.Join(h.cgroups, ":"),
		// /proc/sys/net writable (ip_forward and friends) for the agent.
		"SYSTEMD_NSPAWN_API_VFS_WRITABLE=network",
	)
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	h.removeChildCgroups()
	launched := monotonicNow()
	if err := cmd.Start(); err != nil {
		console.Close()
		return fmt.Errorf("nspawn: %s: %w", h.Spec.Name, err)
	}
	mp := &machineProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		mp.err = cmd.Wait()
		console.Close()
		close(mp.done)
	}()
	h.mu.Lock()
	h.proc, h.launched = mp, launched
	h.mu.Unlock()

	// PID 1 of the machine is nspawn's child named systemd.
	deadline := time.Now().Add(30 * time.Second)
	for mp.leader == 0 {
		select {
		case <-mp.done:
			return fmt.Errorf("nspawn: %s: systemd-nspawn exited while starting: %v (console: %s)", h.Spec.Name, mp.err, h.consoleTail(20))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if pid := childNamed(cmd.Process.Pid, "systemd"); pid > 0 {
			h.mu.Lock()
			mp.leader = pid
			h.mu.Unlock()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nspawn: %s: no systemd under nspawn after 30 s (console: %s)", h.Spec.Name, h.consoleTail(20))
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if _, err := h.WaitSettled(wctx); err != nil {
		return err
	}
	return nil
}

func (h *Host) consoleTail(n int) string {
	b, _ := os.ReadFile(h.consoleLog())
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// childNamed returns the PID of a child of ppid whose comm is name.
func childNamed(ppid int, name string) int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", ppid))
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", ppid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(f)
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if strings.TrimSpace(string(comm)) == name {
				return pid
			}
		}
	}
	return 0
}

// WaitSettled waits until `systemctl is-system-running` says running or
// degraded, and returns which.
func (h *Host) WaitSettled(ctx context.Context) (string, error) {
	var last string
	for {
		out, _ := h.Exec(ctx, "systemctl is-system-running")
		last = strings.TrimSpace(out)
		switch last {
		case "running", "degraded":
			return last, nil
		}
		select {
		case <-ctx.Done():
			jobs, _ := h.Exec(context.Background(), "systemctl list-jobs --no-pager | head -20")
			return last, fmt.Errorf("nspawn: %s: boot did not settle (is-system-running: %q): %w; jobs:\n%s", h.Spec.Name, last, ctx.Err(), jobs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Exec runs a shell command line on the host, as root, in all of its PID
// 1's namespaces, with a clean environment; it returns stdout and stderr
// together.
func (h *Host) Exec(ctx context.Context, cmdline string) (string, error) {
	leader := h.Leader()
	if leader == 0 {
		return "", fmt.Errorf("nspawn: %s is not running", h.Spec.Name)
	}
	cmd := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(leader), "-a", "--",
		"/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "TERM=dumb", "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0",
		"/bin/sh", "-c", cmdline)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %s: %w: %s", h.Spec.Name, cmdline, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// Unit returns properties of a unit (systemctl show).
func (h *Host) Unit(ctx context.Context, unit string, props ...string) (map[string]string, error) {
	args := []string{"systemctl", "show", unit}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	out, err := h.Exec(ctx, strings.Join(args, " "))
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// WaitUnit polls a unit's properties until ok accepts them.
func (h *Host) WaitUnit(ctx context.Context, unit string, props []string, ok func(map[string]string) bool) (map[string]string, error) {
	var last map[string]string
	for {
		m, err := h.Unit(ctx, unit, props...)
		if err == nil {
			last = m
			if ok(m) {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("nspawn: %s: %s: waited for a state it did not reach (last: %v): %w", h.Spec.Name, unit, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// APISocket is the host's /run/warren/api.sock, reachable from the build
// machine through the host's root.
func (h *Host) APISocket() string {
	return fmt.Sprintf("/proc/%d/root/run/warren/api.sock", h.Leader())
}

// Client is an API client on the host's api.sock.
func (h *Host) Client() (*client.Client, error) {
	return client.New("unix://" + h.APISocket())
}

// Journal returns the host's whole journal (every boot), from inside when
// the host runs, else from its journal files.
func (h *Host) Journal(ctx context.Context) (string, error) {
	if h.Leader() != 0 {
		return h.Exec(ctx, "journalctl --no-pager -o short-monotonic --no-hostname")
	}
	dir := filepath.Join(h.root, "var/log/journal")
	if !fileExists(dir) {
		return "", fmt.Errorf("nspawn: %s is down and has no persistent journal", h.Spec.Name)
	}
	out, err := exec.CommandContext(ctx, "journalctl", "--no-pager", "-o", "short-monotonic", "-D", dir).CombinedOutput()
	return string(out), err
}

// Reboot reboots the host (systemctl reboot inside, nspawn exits 133) and
// boots it again on the same root, then waits for it to settle.
func (h *Host) Reboot(ctx context.Context) error {
	h.mu.Lock()
	mp := h.proc
	h.mu.Unlock()
	if mp == nil {
		return fmt.Errorf("nspawn: %s is not running", h.Spec.Name)
	}
	h.Exec(ctx, "systemctl reboot")
	select {
	case <-mp.done:
	case <-ctx.Done():
		return fmt.Errorf("nspawn: %s: did not go down for reboot: %w", h.Spec.Name, ctx.Err())
	}
	var ee *exec.ExitError
	if !errors.As(mp.err, &ee) || ee.ExitCode() != 133 {
		return fmt.Errorf("nspawn: %s: nspawn ended with %v, not the reboot status 133", h.Spec.Name, mp.err)
	}
	return h.start(ctx)
}

// kill ends the machine: SIGKILL to its PID 1 ends its PID namespace and
// every process in it, and nspawn exits.
func (h *Host) kill() {
	h.mu.Lock()
	mp := h.proc
	h.mu.Unlock()
	if mp == nil {
		return
	}
	select {
	case <-mp.done:
		return
	default:
	}
	if mp.leader > 0 {
		syscall.Kill(mp.leader, syscall.SIGKILL)
	}
	select {
	case <-mp.done:
		return
	case <-time.After(10 * time.Second):
	}
	mp.cmd.Process.Kill()
	select {
	case <-mp.done:
	case <-time.After(5 * time.Second):
	}
}

// removeChildCgroups removes what an earlier boot's systemd left below the
// host's cgroups (empty directories), deepest first.
func (h *Host) removeChildCgroups() {
	for _, cg := range h.cgroups {
		var dirs []string
		filepath.WalkDir(cg, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && p != cg {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			syscall.Rmdir(d)
		}
	}
}

// killCgroups kills whatever is left in the host's cgroups (nothing, once
// its PID namespace is gone; this is the safety net).
func (h *Host) killCgroups() {
	for _, cg := range h.cgroups {
		filepath.WalkDir(cg, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			return nil
		})
	}
}

func (h *Host) teardown() error {
	var errs []error
	h.kill()
	h.killCgroups()
	time.Sleep(50 * time.Millisecond)
	h.removeChildCgroups()
	for _, cg := range h.cgroups {
		if err := syscall.Rmdir(cg); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("nspawn: %s: rmdir %s: %w", h.Spec.Name, cg, err))
		}
	}
	for i := len(h.mounted) - 1; i >= 0; i-- {
		if err := unmount(h.mounted[i]); err != nil {
			errs = append(errs, fmt.Errorf("nspawn: %s: %w", h.Spec.Name, err))
		}
	}
	h.mounted = nil
	if h.netns != "" && fileExists(h.NetNS()) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := ip(ctx, "netns", "del", h.netns); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	return errors.Join(errs...)
}

func unmount(p string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = syscall.Unmount(p, 0); err == nil || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err2 := syscall.Unmount(p, syscall.MNT_DETACH); err2 == nil {
		return nil
	}
	return fmt.Errorf("unmount %s: %w", p, err)
}
