package containerd

// Tests against a private containerd (root, containerd, runc and
// busybox-static needed; they skip otherwise).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/qa/containerdtest"
	"github.com/warren-edge/warren/qa/testimage"
)

var bg = context.Background()

func TestImportImages(t *testing.T) {
	e := setup(t)
	var buf bytes.Buffer
	if err := testimage.BuildDockerArchive(&buf, testimage.Options{Name: "busybox"}); err != nil {
		t.Fatal(err)
	}
	imgs, err := e.r.ImportImage(bg, &buf)
	if err != nil {
		t.Fatalf("ImportImage(docker archive): %v", err)
	}
	if len(imgs) != 1 || imgs[0].Name != "docker.io/library/busybox:latest" || !strings.HasPrefix(imgs[0].Digest, "sha256:") || imgs[0].Size == 0 {
		t.Fatalf("ImportImage(docker archive) = %+v, want docker.io/library/busybox:latest with digest and size", imgs)
	}
	buf.Reset()
	testimage.Build(&buf, testimage.Options{Name: "busybox:oci"})
	imgs, err = e.r.ImportImage(bg, &buf)
	if err != nil || len(imgs) != 1 || imgs[0].Name != "docker.io/library/busybox:oci" {
		t.Fatalf("ImportImage(OCI layout named busybox:oci) = %+v, %v; want the normalized name", imgs, err)
	}
	for _, ref := range []string{"busybox", "docker.io/library/busybox:latest", "busybox:oci", busybox} {
		if ok, err := e.r.HasImage(bg, ref); err != nil || !ok {
			t.Errorf("HasImage(%q) = %v, %v; want true", ref, ok, err)
		}
	}
	if ok, err := e.r.HasImage(bg, "alpine"); err != nil || ok {
		t.Errorf("HasImage(alpine) = %v, %v; want false", ok, err)
	}
	list, err := e.r.ListImages(bg)
	if err != nil || len(list) != 3 {
		t.Errorf("ListImages = %+v, %v; want 3 images", list, err)
	}
	// Both imported images run.
	for _, ref := range []string{"busybox", "busybox:oci"} {
		s := spec("imp", "sh", "-c", "exit 0")
		s.Image = ref
		id := e.run(s)
		if ex := e.exits.wait(t, id, 10*time.Second); ex.Code != 0 {
			t.Errorf("container of %s exited %+v", ref, ex)
		}
	}
	if _, err := e.r.ImportImage(bg, strings.NewReader("not a tarball")); err == nil {
		t.Errorf("ImportImage(junk) succeeded")
	}
}

func TestRunHTTPDWithMounts(t *testing.T) {
	e := setup(t)
	www := t.TempDir()
	os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from warren\n"), 0o644)
	s := spec("web", "httpd", "-f", "-p", "8080", "-h", "/www")
	s.NetNSPath = newNetNS(t) // a fresh one from the runtime has loopback down
	s.Mounts = []runtime.Mount{
		{Type: "bind", Source: www, Destination: "/www", ReadOnly: true},
		{Type: "tmpfs", Destination: "/scratch"},
	}
	s.ReadOnlyRoot = true
	s.Env = []string{"GREETING=hi"}
	s.WorkingDir = "/tmp"
	s.User = "nobody"
	s.Hostname = "web-1"
	id := e.run(s)

	c := e.inspect(id)
	if c.State != runtime.StateRunning || c.Pid == 0 || c.Image != busybox || c.Labels["io.warren.task"] != "web" {
		t.Fatalf("Inspect = %+v, want running %s with its labels", c, busybox)
	}
	if c.StartedAt.IsZero() || time.Since(c.StartedAt) > time.Minute {
		t.Errorf("StartedAt = %v, want about now", c.StartedAt)
	}
	for k := range c.Labels {
		if strings.HasPrefix(k, labelPrefix) {
			t.Errorf("internal label %s leaked into Inspect", k)
		}
	}
	var out string
	waitFor(t, 5*time.Second, "httpd to answer", func() bool {
		_, out, _ = e.r.execString(id, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/")
		return strings.Contains(out, "hello from warren")
	})
	checks := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"id", "-u"}, 0, "65534"},
		{[]string{"pwd"}, 0, "/tmp"},
		{[]string{"hostname"}, 0, "web-1"},
		{[]string{"sh", "-c", "echo $GREETING"}, 0, "hi"},
		{[]string{"sh", "-c", "touch /rootfile"}, 1, "Read-only file system"},
		{[]string{"sh", "-c", "touch /www/x"}, 1, "Read-only file system"},
		{[]string{"sh", "-c", "echo ok > /scratch/f && cat /scratch/f"}, 0, "ok"},
	}
	for _, c := range checks {
		code, out := e.exec(id, c.args...)
		if code != c.wantCode || !strings.Contains(out, c.wantOut) {
			t.Errorf("Exec(%q) = %d, %q; want %d and output containing %q", c.args, code, out, c.wantCode, c.wantOut)
		}
	}
}

// execString is Exec with the output as a string, for polling.
func (r *Runtime) execString(id string, args ...string) (int, string, error) {
	code, out, err := r.Exec(bg, id, args, 5*time.Second)
	return code, string(out), err
}

// newNetNS makes a network namespace with loopback up, as the agent's
// netcfg would, and removes it when t ends.
func newNetNS(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	name := "wt-" + randomHex(4)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s link set lo up: %v: %s", name, err, out)
	}
	return "/run/netns/" + name
}

func TestNetworkNamespace(t *testing.T) {
	e := setup(t)
	path := newNetNS(t)

	srv := spec("srv", "httpd", "-f", "-p", "8080", "-h", "/etc")
	srv.NetNSPath = path
	sid := e.run(srv)
	var want syscall.Stat_t
	if err := syscall.Stat(path, &want); err != nil {
		t.Fatal(err)
	}
	var got syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", e.inspect(sid).Pid), &got); err != nil {
		t.Fatal(err)
	}
	if got.Ino != want.Ino {
		t.Errorf("container's netns inode %d, want %d (the one at %s)", got.Ino, want.Ino, path)
	}
	// A second container in the same namespace reaches the first on loopback.
	cli := spec("cli", "sleep", "1000")
	cli.NetNSPath = path
	cid := e.run(cli)
	code, out := e.exec(cid, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/passwd")
	if code != 0 || !strings.Contains(out, "nobody") {
		t.Errorf("wget from a container in the same netns = %d, %q", code, out)
	}
	// One without NetNSPath gets its own: nothing listens there.
	other := e.run(spec("other", "sleep", "1000"))
	if code, _ := e.exec(other, "wget", "-q", "-O", "-", "http://127.0.0.1:8080/passwd"); code == 0 {
		t.Errorf("a container without NetNSPath reached the other namespace")
	}
}

func TestResourceLimits(t *testing.T) {
	e := setup(t)
	s := spec("lim", "sleep", "1000")
	s.MemoryLimit = 32 << 20
	s.NanoCPUs = 500_000_000
	s.CPUShares = 512
	id := e.run(s)
	if got := cgroupFile(t, "memory", id, "memory.limit_in_bytes"); got != strconv.Itoa(32<<20) {
		t.Errorf("memory.limit_in_bytes = %s, want %d", got, 32<<20)
	}
	if got := cgroupFile(t, "cpu", id, "cpu.cfs_quota_us"); got != "50000" {
		t.Errorf("cpu.cfs_quota_us = %s, want 50000 (0.5 CPU)", got)
	}
	if got := cgroupFile(t, "cpu", id, "cpu.cfs_period_us"); got != "100000" {
		t.Errorf("cpu.cfs_period_us = %s, want 100000", got)
	}
	if got := cgroupFile(t, "cpu", id, "cpu.shares"); got != "512" {
		t.Errorf("cpu.shares = %s, want 512", got)
	}
	// Inside, the container sees the same limit through its own cgroup.
	if code, out := e.exec(id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); code == 0 && strings.TrimSpace(out) != strconv.Itoa(32<<20) {
		t.Errorf("limit seen inside = %q", out)
	}
}

func TestExitCode(t *testing.T) {
	e := setup(t)
	id := e.run(spec("exit3", "sh", "-c", "exit 3"))
	ex := e.exits.wait(t, id, 10*time.Second)
	if ex.Code != 3 || ex.OOMKilled || ex.At.IsZero() {
		t.Errorf("exit = %+v, want code 3, not OOM, with a time", ex)
	}
	c := e.inspect(id)
	if c.State != runtime.StateStopped || c.Exit == nil || c.Exit.Code != 3 {
		t.Errorf("Inspect after exit = %+v (exit %+v), want stopped with code 3", c, c.Exit)
	}
	if got, err := e.r.Stop(bg, id, time.Second); err != nil || got.Code != 3 {
		t.Errorf("Stop of a stopped container = %+v, %v; want its recorded exit", got, err)
	}
	// Starting it again runs a new process and reports its exit too.
	if err := e.r.Start(bg, id); err != nil {
		t.Fatalf("second Start: %v", err)
	}
	waitFor(t, 10*time.Second, "a second exit", func() bool { return len(e.exits.of(id)) == 2 })
	time.Sleep(300 * time.Millisecond)
	if n := len(e.exits.of(id)); n != 2 {
		t.Errorf("%d exits reported for two runs", n)
	}
}

func TestOOMKilled(t *testing.T) {
	e := setup(t)
	// The shell holds 64 MB of output in a variable: past a 16 MiB limit.
	s := spec("oom", "sh", "-c", `x=$(head -c 64000000 /dev/zero | tr "\0" a); echo survived`)
	s.MemoryLimit = 16 << 20
	id := e.run(s)
	ex := e.exits.wait(t, id, 30*time.Second)
	if !ex.OOMKilled || ex.Code != 137 {
		t.Errorf("exit = %+v, want code 137 and OOMKilled", ex)
	}
	if c := e.inspect(id); c.Exit == nil || !c.Exit.OOMKilled {
		t.Errorf("Inspect exit = %+v, want OOMKilled", c.Exit)
	}
	// A second runtime, which never saw the OOM event, reads it from the cgroup.
	r2 := e.newRuntime()
	if c, err := r2.Inspect(bg, id); err != nil || c.Exit == nil || !c.Exit.OOMKilled {
		t.Errorf("Inspect through a new runtime = %+v, %v; want OOMKilled", c.Exit, err)
	}
	// A SIGKILL that is not an OOM is not reported as one.
	kid := e.run(spec("kill", "sleep", "1000"))
	if ex, err := e.r.Stop(bg, kid, 0); err != nil || ex.Code != 137 || ex.OOMKilled {
		t.Errorf("Stop with no grace = %+v, %v; want 137, not OOMKilled", ex, err)
	}
}

func TestStartErrors(t *testing.T) {
	e := setup(t)
	s := spec("nf", "no-such-command", "x")
	e.r.Create(bg, s)
	err := e.r.Start(bg, s.ID)
	if !errors.Is(err, runtime.ErrCommandNotFound) || !strings.Contains(err.Error(), "no-such-command") {
		t.Errorf("Start with a missing command: %v; want ErrCommandNotFound naming it", err)
	}
	s = spec("nf2", "/bin/nope")
	e.r.Create(bg, s)
	if err := e.r.Start(bg, s.ID); !errors.Is(err, runtime.ErrCommandNotFound) || !strings.Contains(err.Error(), "/bin/nope") {
		t.Errorf("Start with a missing path: %v; want ErrCommandNotFound naming it", err)
	}
	if c := e.inspect(s.ID); c.State != runtime.StateCreated {
		t.Errorf("after a failed Start the container is %s, want created", c.State)
	}
	s = spec("nx", "/etc/passwd")
	e.r.Create(bg, s)
	if err := e.r.Start(bg, s.ID); !errors.Is(err, runtime.ErrCommandNotFound) || !strings.Contains(err.Error(), "/etc/passwd") {
		t.Errorf("Start of a file that is not executable: %v; want ErrCommandNotFound naming it", err)
	}

	s = spec("mem", "sleep", "1")
	s.MemoryLimit = 1 << 20
	if err := e.r.Create(bg, s); !errors.Is(err, runtime.ErrInvalidSpec) || !strings.Contains(err.Error(), "memory limit") {
		t.Errorf("Create with a 1 MiB memory limit: %v; want ErrInvalidSpec about the memory limit", err)
	}
	s = spec("img", "sleep", "1")
	s.Image = "localhost/missing:1"
	if err := e.r.Create(bg, s); !errors.Is(err, runtime.ErrImageNotFound) || !strings.Contains(err.Error(), "localhost/missing:1") {
		t.Errorf("Create with a missing image: %v; want ErrImageNotFound naming it", err)
	}
	if err := e.r.Start(bg, "no-such-container"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Start of a missing container: %v; want ErrNotFound", err)
	}
	if _, err := e.r.Inspect(bg, "no-such-container"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Inspect of a missing container: %v; want ErrNotFound", err)
	}
	s = spec("dup", "sleep", "1")
	e.r.Create(bg, s)
	if err := e.r.Create(bg, s); err == nil {
		t.Errorf("Create of an existing ID succeeded")
	}
}

func TestStopGrace(t *testing.T) {
	e := setup(t)
	stubborn := e.run(spec("stubborn", "sh", "-c", `trap "" TERM; sleep 1000`))
	polite := e.run(spec("polite", "sh", "-c", `trap "exit 0" TERM; while true; do sleep 0.1; done`))
	time.Sleep(200 * time.Millisecond) // let the shells install their traps

	t0 := time.Now()
	ex, err := e.r.Stop(bg, stubborn, time.Second)
	took := time.Since(t0)
	if err != nil || ex.Code != 137 {
		t.Errorf("Stop(stubborn) = %+v, %v; want SIGKILL's 137", ex, err)
	}
	if took < time.Second || took > 5*time.Second {
		t.Errorf("Stop(stubborn, 1s) took %v, want the grace period then a kill", took)
	}
	t0 = time.Now()
	ex, err = e.r.Stop(bg, polite, 10*time.Second)
	if err != nil || ex.Code != 0 {
		t.Errorf("Stop(polite) = %+v, %v; want its own exit 0", ex, err)
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("Stop(polite) took %v", took)
	}
	for _, id := range []string{stubborn, polite} {
		if c := e.inspect(id); c.State != runtime.StateStopped {
			t.Errorf("after Stop %s is %s", id, c.State)
		}
		e.exits.wait(t, id, 5*time.Second)
	}
	// A created, never started container stops to a zero exit.
	s := spec("idle", "sleep", "1")
	e.r.Create(bg, s)
	if ex, err := e.r.Stop(bg, s.ID, time.Second); err != nil || ex.Code != 0 {
		t.Errorf("Stop of a created container = %+v, %v", ex, err)
	}
	if _, err := e.r.Stop(bg, "missing", time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Stop of a missing container: %v; want ErrNotFound", err)
	}
}

func TestLogFile(t *testing.T) {
	e := setup(t)
	logs := filepath.Join(t.TempDir(), "logs")
	s := spec("log", "sh", "-c", "echo to-stdout; echo to-stderr >&2")
	s.LogPath = filepath.Join(logs, "a", "container.log")
	os.MkdirAll(filepath.Dir(s.LogPath), 0o755)
	os.WriteFile(s.LogPath, []byte("earlier\n"), 0o644)
	id := e.run(s)
	e.exits.wait(t, id, 10*time.Second)
	// The shim copies stdout and stderr on their own: the exit can be
	// reported before the last of it is in the file (seen once in a
	// clean-clone make test: stdout there, stderr not yet).
	waitFor(t, 5*time.Second, "the log to hold the earlier content, then stdout and stderr", func() bool {
		b, _ := os.ReadFile(s.LogPath)
		return strings.HasPrefix(string(b), "earlier\n") && strings.Contains(string(b), "to-stdout\n") && strings.Contains(string(b), "to-stderr\n")
	})

	// stderr written after stdout has ended is kept (logFile: the runc
	// shim's own file log closed the file under the stderr copier, and
	// lost this line every time).
	s = spec("late", "sh", "-c", "echo out; exec 1>&-; sleep 0.3; echo last-words >&2; exit 3")
	s.LogPath = filepath.Join(logs, "late.log")
	id = e.run(s)
	e.exits.wait(t, id, 10*time.Second)
	waitFor(t, 5*time.Second, "stderr after stdout closed in the log", func() bool {
		b, _ := os.ReadFile(s.LogPath)
		return string(b) == "out\nlast-words\n"
	})

	// copy+truncate rotation: the shim appends (O_APPEND), so after a
	// truncate the next lines land at the start, not after a hole.
	s = spec("rot", "sh", "-c", `i=0; while true; do echo line$i; i=$((i+1)); sleep 0.02; done`)
	s.LogPath = filepath.Join(logs, "rot.log")
	e.run(s)
	waitFor(t, 5*time.Second, "log lines", func() bool {
		b, _ := os.ReadFile(s.LogPath)
		return bytes.Count(b, []byte("\n")) > 20
	})
	if err := os.Truncate(s.LogPath, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	b, _ := os.ReadFile(s.LogPath)
	if len(b) == 0 || b[0] == 0 || !strings.HasPrefix(string(b), "line") {
		t.Errorf("after truncate the log starts with %q, want new lines at offset 0", b[:min(len(b), 20)])
	}
	if len(b) > 4096 {
		t.Errorf("after truncate the log holds %d bytes in 200ms: the old offset was kept", len(b))
	}
}

func TestExec(t *testing.T) {
	e := setup(t)
	id := e.run(spec("ex", "sleep", "1000"))
	if code, out := e.exec(id, "sh", "-c", "echo out; echo err >&2; exit 4"); code != 4 || !strings.Contains(out, "out\n") || !strings.Contains(out, "err\n") {
		t.Errorf("Exec = %d, %q; want 4 and both streams", code, out)
	}
	if code, out := e.exec(id, "sh", "-c", "yes | head -c 100000"); code != 0 || len(out) != MaxExecOutput {
		t.Errorf("Exec of 100000 bytes of output = %d, %d bytes; want %d bytes", code, len(out), MaxExecOutput)
	}
	t0 := time.Now()
	code, _, err := e.r.Exec(bg, id, []string{"sleep", "30"}, 300*time.Millisecond)
	if !errors.Is(err, ErrExecTimeout) || code != -1 {
		t.Errorf("Exec past its timeout = %d, %v; want ErrExecTimeout", code, err)
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("Exec with a 300ms timeout took %v", took)
	}
	if _, _, err := e.r.Exec(bg, id, []string{"no-such-cmd"}, time.Second); !errors.Is(err, runtime.ErrCommandNotFound) {
		t.Errorf("Exec of a missing command: %v; want ErrCommandNotFound", err)
	}
	if _, _, err := e.r.Exec(bg, "missing", []string{"true"}, time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Exec in a missing container: %v; want ErrNotFound", err)
	}
	// No exec exit is reported as the container's.
	time.Sleep(200 * time.Millisecond)
	if ex := e.exits.of(id); len(ex) != 0 {
		t.Errorf("exec exits reported as container exits: %+v", ex)
	}
	if c := e.inspect(id); c.State != runtime.StateRunning {
		t.Errorf("container is %s after execs", c.State)
	}
}

// syncBuf is a buffer written by the copy goroutines of cio.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestExecStream(t *testing.T) {
	e := setup(t)
	id := e.run(spec("exs", "sleep", "1000"))
	var out, errb syncBuf
	code, err := e.r.ExecStream(bg, id, runtime.ExecIO{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, Stdout: &out, Stderr: &errb})
	if err != nil || code != 3 || out.String() != "out\n" || errb.String() != "err\n" {
		t.Errorf("ExecStream = %d, %v, stdout %q, stderr %q; want 3 and the streams apart", code, err, out.String(), errb.String())
	}
	// Stdin to its end: cat exits when it closes.
	out = syncBuf{}
	code, err = e.r.ExecStream(bg, id, runtime.ExecIO{Args: []string{"cat"}, Stdin: strings.NewReader("line one\nline two\n"), Stdout: &out})
	if err != nil || code != 0 || out.String() != "line one\nline two\n" {
		t.Errorf("ExecStream cat = %d, %v, %q; want its input back and exit 0", code, err, out.String())
	}
	// A terminal of the size asked, resized.
	out = syncBuf{}
	resize := make(chan runtime.TermSize, 1)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, err = e.r.ExecStream(bg, id, runtime.ExecIO{Args: []string{"sh", "-c", "stty size; read x; stty size"}, TTY: true,
			Size: runtime.TermSize{Width: 91, Height: 17}, Stdin: pr, Stdout: &out, Resize: resize})
	}()
	waitFor(t, 10*time.Second, "the first size", func() bool { return strings.Contains(out.String(), "17 91") })
	resize <- runtime.TermSize{Width: 120, Height: 40}
	time.Sleep(200 * time.Millisecond)
	io.WriteString(pw, "go\r")
	<-done
	if err != nil || code != 0 || !strings.Contains(out.String(), "40 120") {
		t.Errorf("ExecStream with a TTY = %d, %v, %q; want sizes 17 91 then 40 120", code, err, out.String())
	}
	pw.Close()
	// A session whose context ends kills its process.
	ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if _, err := e.r.ExecStream(ctx, id, runtime.ExecIO{Args: []string{"sleep", "30"}}); err == nil || time.Since(t0) > 5*time.Second {
		t.Errorf("ExecStream past its context = %v after %v; want an error at once", err, time.Since(t0))
	}
	if _, err := e.r.ExecStream(bg, id, runtime.ExecIO{Args: []string{"no-such-cmd"}}); !errors.Is(err, runtime.ErrCommandNotFound) {
		t.Errorf("ExecStream of a missing command: %v; want ErrCommandNotFound", err)
	}
	stopped := e.run(spec("exstop", "true"))
	waitFor(t, 10*time.Second, "the container to exit", func() bool { return e.inspect(stopped).State == runtime.StateStopped })
	if _, err := e.r.ExecStream(bg, stopped, runtime.ExecIO{Args: []string{"true"}}); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("ExecStream in a stopped container: %v; want ErrNotRunning", err)
	}
}

func TestEntrypointAndArgs(t *testing.T) {
	e := setup(t)
	var buf bytes.Buffer
	testimage.Build(&buf, testimage.Options{Name: "localhost/ep:1", Entrypoint: []string{"echo", "ep"}, Cmd: []string{"default"}})
	if _, err := e.r.ImportImage(bg, &buf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name          string
		command, args []string
		want          string
	}{
		{"image", nil, nil, "ep default"},
		{"args", nil, []string{"a", "b"}, "ep a b"},
		{"command", []string{"echo", "cmd"}, nil, "cmd"},
		{"both", []string{"echo", "cmd"}, []string{"x"}, "cmd x"},
	} {
		s := spec(c.name)
		s.Image, s.Command, s.Args = "localhost/ep:1", c.command, c.args
		s.LogPath = filepath.Join(dir, c.name+".log")
		id := e.run(s)
		e.exits.wait(t, id, 10*time.Second)
		b, _ := os.ReadFile(s.LogPath)
		if got := strings.TrimSpace(string(b)); got != c.want {
			t.Errorf("%s: Command %q Args %q printed %q, want %q", c.name, c.command, c.args, got, c.want)
		}
	}
}

func TestShimGroups(t *testing.T) {
	e := setup(t)
	var ids []string
	for i := 0; i < 5; i++ {
		s := spec(fmt.Sprintf("g%d", i), "sleep", "1000")
		s.Group = "svc-a"
		ids = append(ids, e.run(s))
	}
	shims, _ := containerdtest.ShimPIDs(e.d.Socket)
	if len(shims) != 1 {
		t.Fatalf("5 containers in one group run %d shims, want 1", len(shims))
	}
	s := spec("solo", "sleep", "1000")
	solo := e.run(s)
	s = spec("b0", "sleep", "1000")
	s.Group = "svc-b"
	e.run(s)
	if shims, _ := containerdtest.ShimPIDs(e.d.Socket); len(shims) != 3 {
		t.Errorf("groups a (5), b (1) and an ungrouped container run %d shims, want 3", len(shims))
	}
	// The shim was started for the group's first container; deleting that
	// container leaves the shim serving the others.
	if err := e.r.Delete(bg, ids[0]); err != nil {
		t.Fatal(err)
	}
	if code, out := e.exec(ids[1], "echo", "still"); code != 0 || out != "still\n" {
		t.Errorf("Exec in the group after deleting its first container = %d, %q", code, out)
	}
	if ex, err := e.r.Stop(bg, ids[2], 100*time.Millisecond); err != nil || ex.Code != 137 {
		t.Errorf("Stop in the group = %+v, %v", ex, err)
	}
	e.exits.wait(t, ids[2], 5*time.Second)
	for _, id := range append(ids[1:], solo) {
		if err := e.r.Delete(bg, id); err != nil {
			t.Errorf("Delete(%s): %v", id, err)
		}
	}
	waitFor(t, 10*time.Second, "group a's and the solo shim to exit", func() bool {
		p, _ := containerdtest.ShimPIDs(e.d.Socket)
		return len(p) == 1
	})
}

func TestDeleteLeavesNothing(t *testing.T) {
	e := setup(t)
	s := spec("del", "sleep", "1000")
	s.LogPath = filepath.Join(t.TempDir(), "del.log")
	id := e.run(s)
	rootfs := filepath.Join(e.d.Bundle(testNS, id), "rootfs")
	if !isMounted(rootfs) {
		t.Fatalf("%s is not mounted while the container runs", rootfs)
	}
	if err := e.r.Delete(bg, id); err != nil {
		t.Fatalf("Delete of a running container: %v", err)
	}
	if _, err := e.r.Inspect(bg, id); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Inspect after Delete: %v; want ErrNotFound", err)
	}
	if cs, _ := e.r.List(bg); len(cs) != 0 {
		t.Errorf("List after Delete = %+v", cs)
	}
	ctx := e.r.nsctx(bg)
	if _, err := e.r.client.SnapshotService(DefaultSnapshotter).Stat(ctx, id); err == nil {
		t.Errorf("snapshot %s still exists", id)
	}
	if isMounted(rootfs) {
		t.Errorf("%s still mounted", rootfs)
	}
	if _, err := os.Stat(e.d.Bundle(testNS, id)); err == nil {
		t.Errorf("bundle %s still exists", e.d.Bundle(testNS, id))
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", testNS, id)); err == nil {
		t.Errorf("memory cgroup of %s still exists", id)
	}
	if shims, _ := containerdtest.ShimPIDs(e.d.Socket); len(shims) != 0 {
		waitFor(t, 5*time.Second, "the shim to exit", func() bool {
			p, _ := containerdtest.ShimPIDs(e.d.Socket)
			return len(p) == 0
		})
	}
	if err := e.r.Delete(bg, id); err != nil {
		t.Errorf("second Delete: %v; want nil", err)
	}
	if _, err := os.Stat(s.LogPath); err != nil {
		t.Errorf("the log file went with the container: %v", err)
	}
}

func isMounted(path string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

func TestAdoption(t *testing.T) {
	e := setup(t)
	s := spec("adopt", "sh", "-c", `i=0; while [ ! -e /tmp/stop ]; do echo tick$i; i=$((i+1)); sleep 0.05; done; exit 7`)
	s.LogPath = filepath.Join(t.TempDir(), "adopt.log")
	id := e.run(s)
	if err := e.r.Close(); err != nil {
		t.Fatal(err)
	}
	// While no runtime is connected, the shim keeps writing the log.
	size := func() int64 { fi, _ := os.Stat(s.LogPath); return fi.Size() }
	before := size()
	time.Sleep(300 * time.Millisecond)
	if after := size(); after <= before {
		t.Errorf("log did not grow while the agent was away (%d → %d bytes)", before, after)
	}

	r2 := e.newRuntime()
	exits2 := watchExits(r2)
	cs, err := r2.List(bg)
	if err != nil || len(cs) != 1 || cs[0].ID != id || cs[0].State != runtime.StateRunning || cs[0].Labels["io.warren.task"] != "adopt" {
		t.Fatalf("List from a new runtime = %+v, %v; want the running container with its labels", cs, err)
	}
	if code, _, err := r2.Exec(bg, id, []string{"touch", "/tmp/stop"}, 5*time.Second); err != nil || code != 0 {
		t.Fatalf("Exec: %d, %v", code, err)
	}
	if ex := exits2.wait(t, id, 10*time.Second); ex.Code != 7 {
		t.Errorf("adopted container's exit = %+v, want code 7", ex)
	}
}

func TestContainerdRestart(t *testing.T) {
	e := setup(t)
	stopFile := `while [ ! -e /tmp/stop ]; do sleep 0.05; done; exit `
	early := e.run(spec("early", "sh", "-c", stopFile+"5"))
	late := e.run(spec("late", "sh", "-c", stopFile+"6"))
	earlyPid := e.inspect(early).Pid
	lost := e.run(spec("lost", "sleep", "100000"))
	lostPid := e.inspect(lost).Pid
	lostShim := parentOf(lostPid)

	if err := e.d.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := e.r.Ping(bg); !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("Ping with containerd down: %v; want ErrUnavailable", err)
	}
	if _, err := e.r.List(bg); !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("List with containerd down: %v; want ErrUnavailable", err)
	}
	// early exits while containerd is down: write its stop file through
	// the rootfs mount on the host.
	if err := os.WriteFile(filepath.Join(e.d.Bundle(testNS, early), "rootfs", "tmp", "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "early's process to end", func() bool { return !alive(earlyPid) })
	// lost's shim dies with its container while containerd is down.
	syscall.Kill(lostShim, syscall.SIGKILL)
	syscall.Kill(lostPid, syscall.SIGKILL)
	waitFor(t, 5*time.Second, "lost's shim and process to die", func() bool { return !alive(lostPid) && !alive(lostShim) })
	time.Sleep(500 * time.Millisecond) // longer than the reconnect backoff
	if err := e.d.Restart(); err != nil {
		t.Fatal(err)
	}

	ex := e.exits.wait(t, early, 20*time.Second)
	if ex.Code != 5 {
		t.Errorf("exit of the container that ended while containerd was down = %+v, want code 5", ex)
	}
	if ex := e.exits.wait(t, lost, 10*time.Second); ex.Code != 137 {
		t.Errorf("exit of the container whose shim died = %+v, want 137", ex)
	}
	if err := e.r.Ping(bg); err != nil {
		t.Errorf("Ping after restart: %v", err)
	}
	if c := e.inspect(late); c.State != runtime.StateRunning {
		t.Errorf("late is %s after the restart, want running", c.State)
	}
	// The new subscription delivers later exits.
	e.exec(late, "touch", "/tmp/stop")
	if ex := e.exits.wait(t, late, 10*time.Second); ex.Code != 6 {
		t.Errorf("exit after the restart = %+v, want code 6", ex)
	}
	// The shim may still deliver its own copy of early's exit: no duplicate.
	time.Sleep(time.Second)
	for _, id := range []string{early, lost} {
		if n := len(e.exits.of(id)); n != 1 {
			t.Errorf("%s's exit was reported %d times: %+v", id, n, e.exits.of(id))
		}
	}
	if err := e.r.Delete(bg, lost); err != nil {
		t.Errorf("Delete of the container whose shim died: %v", err)
	}
}

// TestDaemonStopAfterCrash checks the helper every other test relies on:
// with containerd killed (a test that failed between Kill and Restart),
// Stop still removes the containers, shims and mounts.
func TestDaemonStopAfterCrash(t *testing.T) {
	e := setup(t)
	id := e.run(spec("orphan", "sleep", "100000"))
	pid := e.inspect(id).Pid
	shims, _ := containerdtest.ShimPIDs(e.d.Socket)
	if err := e.d.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Stop(); err != nil {
		t.Errorf("Stop after Kill: %v", err)
	}
	if alive(pid) {
		t.Errorf("container process %d survived Stop", pid)
	}
	for _, p := range shims {
		if alive(p) {
			t.Errorf("shim %d survived Stop", p)
		}
	}
	if m := e.d.Mounts(); len(m) != 0 {
		t.Errorf("mounts left under %s: %v", e.d.Dir, m)
	}
	if _, err := os.Stat(filepath.Join("/run/containerd/runc", testNS, id)); err == nil {
		t.Errorf("runc state of %s left behind", id)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", testNS, id)); err == nil {
		t.Errorf("memory cgroup of %s left behind", id)
	}
}

// alive says whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// parentOf returns the parent pid of pid.
func parentOf(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func TestCreateRecovers(t *testing.T) {
	e := setup(t)
	ctx := e.r.nsctx(bg)
	// An image imported without unpacking (as `ctr image import
	// --no-unpack` leaves it): Create unpacks it.
	var buf bytes.Buffer
	// (Other applets than busybox's: a layer of its own, not unpacked yet.)
	testimage.Build(&buf, testimage.Options{Name: "localhost/raw:1", Applets: []string{"sh", "true"}})
	if _, err := e.r.client.Import(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.r.HasImage(bg, "localhost/raw:1"); ok {
		t.Fatalf("HasImage of an image never unpacked = true")
	}
	s := spec("raw", "sh", "-c", "exit 0")
	s.Image = "localhost/raw:1"
	id := e.run(s)
	if ex := e.exits.wait(t, id, 10*time.Second); ex.Code != 0 {
		t.Errorf("container of a lazily unpacked image exited %+v", ex)
	}
	// A snapshot left behind with no container does not block Create.
	s = spec("stale", "sh", "-c", "exit 0")
	if _, err := e.r.client.SnapshotService(DefaultSnapshotter).Prepare(ctx, s.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.r.Create(bg, s); err != nil {
		t.Errorf("Create over a stale snapshot: %v", err)
	}
	// An invalid spec leaves no snapshot behind.
	s = spec("bad-user", "true")
	s.User = "no-such-user"
	if err := e.r.Create(bg, s); !errors.Is(err, runtime.ErrInvalidSpec) || !strings.Contains(err.Error(), "no-such-user") {
		t.Errorf("Create with an unknown user: %v; want ErrInvalidSpec naming the user", err)
	}
	if _, err := e.r.client.SnapshotService(DefaultSnapshotter).Stat(ctx, s.ID); err == nil {
		t.Errorf("a failed Create left snapshot %s", s.ID)
	}
}

// confined runs s with a command that prints its /proc/self/status and
// /proc/self/cgroup to its log, then sleeps; it returns the status
// fields, the cgroup lines and the container's PID.
func (e *env) confined(s runtime.ContainerSpec) (status map[string]string, cgroups []string, pid int) {
	e.t.Helper()
	s.Command = []string{"sh", "-c", "cat /proc/self/status; echo CGROUPS; cat /proc/self/cgroup; echo END; exec sleep 1000"}
	s.LogPath = filepath.Join(e.d.Dir, "logs", s.ID+".log")
	id := e.run(s)
	var out string
	waitFor(e.t, 10*time.Second, "the container of "+s.ID+" to print its status", func() bool {
		b, _ := os.ReadFile(s.LogPath)
		out = string(b)
		return strings.Contains(out, "END\n")
	})
	st, cg, _ := strings.Cut(strings.TrimSuffix(out, "END\n"), "CGROUPS\n")
	status = map[string]string{}
	for line := range strings.Lines(st) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			status[k] = strings.TrimSpace(v)
		}
	}
	return status, strings.Fields(cg), e.inspect(id).Pid
}

// TestConfinementInARealContainer checks what runc gives a container for
// ContainerSpec's confinement settings, as the container itself sees it.
func TestConfinementInARealContainer(t *testing.T) {
	e := setup(t)
	hostNS, err := os.Readlink("/proc/self/ns/cgroup")
	if err != nil {
		t.Skipf("no cgroup namespaces here: %v", err)
	}

	t.Run("defaults", func(t *testing.T) {
		s := spec("conf")
		s.PidsLimit = 321
		st, cgroups, pid := e.confined(s)
		if st["Seccomp"] != "2" || st["NoNewPrivs"] != "1" {
			t.Errorf("default container: Seccomp %q NoNewPrivs %q, want 2 (filtered) and 1", st["Seccomp"], st["NoNewPrivs"])
		}
		// containerd's (Docker's) default set: 0x00000000a80425fb.
		if st["CapEff"] != "00000000a80425fb" {
			t.Errorf("default container: CapEff %q, want Docker's default set 00000000a80425fb", st["CapEff"])
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/cgroup", pid)); err != nil || ns == hostNS {
			t.Errorf("default container: cgroup namespace %q (%v), the host's is %q; want one of its own", ns, err, hostNS)
		}
		for _, l := range cgroups {
			if !strings.HasSuffix(l, ":/") {
				t.Errorf("default container: /proc/self/cgroup line %q, want every cgroup at / in its own namespace", l)
			}
		}
		if got := cgroupFile(t, "pids", s.ID, "pids.max"); got != "321" {
			t.Errorf("PidsLimit 321: pids.max = %q, want 321", got)
		}
	})

	t.Run("opted out", func(t *testing.T) {
		s := spec("open")
		s.SeccompUnconfined, s.AllowNewPrivileges = true, true
		st, _, _ := e.confined(s)
		if st["Seccomp"] != "0" || st["NoNewPrivs"] != "0" {
			t.Errorf("SeccompUnconfined and AllowNewPrivileges: Seccomp %q NoNewPrivs %q, want 0 and 0", st["Seccomp"], st["NoNewPrivs"])
		}
		if got := cgroupFile(t, "pids", s.ID, "pids.max"); got != "max" {
			t.Errorf("PidsLimit 0: pids.max = %q, want max", got)
		}
	})

	t.Run("no capabilities", func(t *testing.T) {
		s := spec("nocap")
		s.Capabilities = []string{}
		st, _, _ := e.confined(s)
		if st["CapEff"] != "0000000000000000" || st["CapBnd"] != "0000000000000000" || st["CapPrm"] != "0000000000000000" {
			t.Errorf("Capabilities []: CapEff %q CapPrm %q CapBnd %q, want all 0000000000000000", st["CapEff"], st["CapPrm"], st["CapBnd"])
		}
	})

	t.Run("one capability", func(t *testing.T) {
		s := spec("onecap")
		s.Capabilities = []string{"CAP_NET_BIND_SERVICE"} // bit 10
		st, _, _ := e.confined(s)
		if st["CapEff"] != "0000000000000400" {
			t.Errorf("Capabilities [CAP_NET_BIND_SERVICE]: CapEff %q, want 0000000000000400", st["CapEff"])
		}
	})

	t.Run("user", func(t *testing.T) {
		s := spec("user")
		s.User = "65534"
		st, _, _ := e.confined(s)
		if uid := strings.Fields(st["Uid"]); len(uid) != 4 || uid[0] != "65534" || uid[1] != "65534" {
			t.Errorf("User 65534: Uid %q, want 65534 (real and effective)", st["Uid"])
		}
	})
}

// A shim that dies takes every container of its group with it, whatever
// service each belongs to (the agent puts small services in shared
// shims), and each of their exits is reported, so that the agent restarts
// them all; a container of another group runs on.
func TestSharedShimCrashReportsEveryContainer(t *testing.T) {
	e := setup(t)
	var shared []string
	for _, svc := range []string{"svc-a", "svc-b", "svc-c"} {
		s := spec(svc, "sleep", "1000")
		s.Group = "shared-0"
		s.Labels["io.warren.service"] = svc
		shared = append(shared, e.run(s))
	}
	before, _ := containerdtest.ShimPIDs(e.d.Socket)
	other := spec("other", "sleep", "1000")
	other.Group = "shared-1"
	otherID := e.run(other)
	after, _ := containerdtest.ShimPIDs(e.d.Socket)
	if len(before) != 1 || len(after) != 2 {
		t.Fatalf("shims: %v for the shared group, %v with another group; want 1, then 2", before, after)
	}
	if err := syscall.Kill(before[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, id := range shared {
		e.exits.wait(t, id, 20*time.Second)
		waitFor(t, 10*time.Second, id+" to be seen stopped", func() bool {
			c, err := e.r.Inspect(bg, id)
			return err == nil && c.State != runtime.StateRunning
		})
	}
	if c := e.inspect(otherID); c.State != runtime.StateRunning {
		t.Errorf("the container of another shim is %s, want running", c.State)
	}
	// Each can be started again, in a new shim.
	for _, id := range shared {
		if err := e.r.Start(bg, id); err != nil {
			t.Errorf("Start(%s) after its shim died: %v", id, err)
		}
	}
}
