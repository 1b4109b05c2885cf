package containerd

// Tests of the pure parts; they need neither root nor containerd.

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warren-edge/warren/daemons/agent/runtime"
)

func TestShimStartFailed(t *testing.T) {
	for msg, want := range map[string]bool{
		`failed to start shim: start failed: dial unix /run/containerd/s/0a1b: connect: no such file or directory: unknown`:                                                       true,
		`failed to create shim task: ttrpc: closed: unknown`:                                                                                                                      true,
		`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`: false,
		`ttrpc: closed`: false,
	} {
		if got := shimStartFailed(errors.New(msg)); got != want {
			t.Errorf("shimStartFailed(%q) = %v, want %v", msg, got, want)
		}
	}
}

func TestClassifyStartErr(t *testing.T) {
	// Messages as containerd 1.6.20 and runc 1.1.5 give them.
	for _, c := range []struct {
		msg      string
		want     error
		mentions string
	}{
		{`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`,
			runtime.ErrCommandNotFound, `"nope"`},
		{`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/bin/nope": stat /bin/nope: no such file or directory: unknown`,
			runtime.ErrCommandNotFound, `"/bin/nope"`},
		{`OCI runtime exec failed: exec failed: unable to start container process: exec: "nope": executable file not found in $PATH: unknown`,
			runtime.ErrCommandNotFound, `"nope"`},
		{`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/etc/passwd": permission denied: unknown`,
			runtime.ErrCommandNotFound, "not executable"},
		{`failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: error setting cgroup config for procHooks process: unable to set memory limit to 4096 (current usage: 1826816, peak usage: 1990656): unknown`,
			runtime.ErrInvalidSpec, "unable to set memory limit to 4096 (current usage: 1826816"},
		// crun 1.8.1, as the runc v2 shim's BinaryName.
		{"failed to create shim task: OCI runtime create failed: executable file `no-such-command` not found in $PATH: No such file or directory: unknown",
			runtime.ErrCommandNotFound, `"no-such-command"`},
		{"OCI runtime exec failed: executable file `/bin/nope` not found in $PATH: No such file or directory: unknown",
			runtime.ErrCommandNotFound, `"/bin/nope"`},
		{"failed to create shim task: OCI runtime create failed: open executable: Permission denied: unknown",
			runtime.ErrCommandNotFound, `"/etc/passwd" in the image is not executable`},
		{`connection error: desc = "transport: Error while dialing: dial unix /run/containerd/containerd.sock: connect: connection refused": unavailable`,
			runtime.ErrUnavailable, "connection refused"},
	} {
		err := classifyStartErr("start x", "/etc/passwd", errors.New(c.msg))
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.mentions) || !strings.HasPrefix(err.Error(), "containerd: start x: ") {
			t.Errorf("classifyStartErr(%q) = %v; want an error wrapping %v that mentions %s", c.msg, err, c.want, c.mentions)
		}
	}
	if err := classifyStartErr("start x", "", errors.New("something else")); errors.Is(err, runtime.ErrCommandNotFound) || errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("an unknown error was classified: %v", err)
	}
}

func TestValidate(t *testing.T) {
	ok := runtime.ContainerSpec{ID: "a", Image: "busybox", MemoryLimit: MinMemoryLimit, NanoCPUs: 10_000_000,
		LogPath: "/var/log/a.log", Mounts: []runtime.Mount{{Type: "bind", Source: "/x", Destination: "/y"}, {Type: "tmpfs", Destination: "/t"}}}
	if err := validate(ok); err != nil {
		t.Fatalf("validate(%+v) = %v", ok, err)
	}
	for name, mutate := range map[string]func(*runtime.ContainerSpec){
		"empty ID":          func(s *runtime.ContainerSpec) { s.ID = "" },
		"memory too low":    func(s *runtime.ContainerSpec) { s.MemoryLimit = MinMemoryLimit - 1 },
		"negative memory":   func(s *runtime.ContainerSpec) { s.MemoryLimit = -1 },
		"cpu too low":       func(s *runtime.ContainerSpec) { s.NanoCPUs = 9_999_999 },
		"relative log path": func(s *runtime.ContainerSpec) { s.LogPath = "a.log" },
		"log path with ..":  func(s *runtime.ContainerSpec) { s.LogPath = "/var/log/../../etc/x.log" },
		"negative pids":     func(s *runtime.ContainerSpec) { s.PidsLimit = -1 },
		"bad mount type":    func(s *runtime.ContainerSpec) { s.Mounts = []runtime.Mount{{Type: "nfs", Destination: "/y"}} },
		"relative source": func(s *runtime.ContainerSpec) {
			s.Mounts = []runtime.Mount{{Type: "bind", Source: "x", Destination: "/y"}}
		},
		"relative dest": func(s *runtime.ContainerSpec) { s.Mounts = []runtime.Mount{{Type: "tmpfs", Destination: "y"}} },
	} {
		s := ok
		mutate(&s)
		if err := validate(s); !errors.Is(err, runtime.ErrInvalidSpec) {
			t.Errorf("validate with %s = %v, want ErrInvalidSpec", name, err)
		}
	}
	if q := cpuQuota(1_500_000_000); q != 150000 {
		t.Errorf("cpuQuota(1.5 CPU) = %d, want 150000", q)
	}
}

func TestNormalizeRef(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                  "docker.io/library/busybox:latest",
		"busybox:1.35":             "docker.io/library/busybox:1.35",
		"localhost/busybox:latest": "localhost/busybox:latest",
		"127.0.0.1:5000/a/b":       "127.0.0.1:5000/a/b:latest",
	} {
		if got, err := NormalizeRef(in); err != nil || got != want {
			t.Errorf("NormalizeRef(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NormalizeRef("Busybox"); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("NormalizeRef of an invalid reference: %v, want ErrInvalidSpec", err)
	}
	for in, want := range map[string]string{"latest": "", "1.35": "", "busybox:1": "docker.io/library/busybox:1", "x/y": "docker.io/x/y:latest"} {
		if got := ociRefName(in); got != want {
			t.Errorf("ociRefName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCapBuffer(t *testing.T) {
	b := &capBuffer{max: 10}
	for _, s := range []string{"hello ", "world", "!!!"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want all of it accepted", s, n, err)
		}
	}
	if got := string(b.Bytes()); got != "hello worl" {
		t.Errorf("capped output = %q, want %q", got, "hello worl")
	}
}

func TestTaskStateDedupes(t *testing.T) {
	s := newTaskState()
	s.started("a")
	s.started("b")
	at := time.Unix(100, 5)
	if !s.exited("a", at) {
		t.Errorf("first exit of a not new")
	}
	if s.exited("a", at) {
		t.Errorf("the same exit of a reported twice")
	}
	if gone := s.swapRunning(map[string]bool{}); len(gone) != 1 || gone[0] != "b" {
		t.Errorf("swapRunning = %v, want [b] (a already exited)", gone)
	}
	s.started("a")
	if !s.exited("a", at.Add(time.Second)) {
		t.Errorf("a second run's exit is not new")
	}
	s.oomed("a")
	if !s.oomSeen("a") {
		t.Errorf("OOM not remembered")
	}
	s.started("a")
	if s.oomSeen("a") {
		t.Errorf("OOM of an earlier run carried into a new run")
	}
}

func TestExitQueueNeverBlocksAndCloses(t *testing.T) {
	q := newExitQueue()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.run(ctx); close(done) }()
	for i := 0; i < 1000; i++ {
		q.push(runtime.Exit{ID: "x", Code: i})
	}
	for i := 0; i < 1000; i++ {
		if e := <-q.out; e.Code != i {
			t.Fatalf("exit %d came out as %d: order lost", i, e.Code)
		}
	}
	cancel()
	<-done
	q.close()
	if _, ok := <-q.out; ok {
		t.Errorf("out not closed")
	}
}

func TestReadCounter(t *testing.T) {
	f := filepath.Join(t.TempDir(), "memory.oom_control")
	os.WriteFile(f, []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), 0o644)
	if n, err := readCounter(f, "oom_kill"); err != nil || n != 2 {
		t.Errorf("readCounter = %d, %v; want 2", n, err)
	}
	if _, err := readCounter(f, "nope"); err == nil {
		t.Errorf("readCounter of a missing key succeeded")
	}
}

func TestNewWithoutContainerd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := New(ctx, Options{Socket: sock, ConnectTimeout: 500 * time.Millisecond})
	if !errors.Is(err, runtime.ErrUnavailable) || !strings.Contains(err.Error(), sock) {
		t.Errorf("New with no containerd = %v; want ErrUnavailable naming the socket", err)
	}
}

// TestConfinement checks the OCI spec a container gets, on top of
// containerd's defaults, for the confinement settings of ContainerSpec.
func TestConfinement(t *testing.T) {
	gen := func(spec runtime.ContainerSpec) *oci.Spec {
		t.Helper()
		ctx := namespaces.WithNamespace(context.Background(), "warrentest")
		s, err := oci.GenerateSpec(ctx, nil, &containers.Container{ID: "c1"}, confinement(spec)...)
		if err != nil {
			t.Fatalf("GenerateSpec(confinement(%+v)): %v", spec, err)
		}
		return s
	}
	hasCgroupNS := func(s *oci.Spec) bool {
		return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.CgroupNamespace && n.Path == "" })
	}

	def := gen(runtime.ContainerSpec{})
	if def.Linux.Seccomp == nil || def.Linux.Seccomp.DefaultAction != specs.ActErrno || len(def.Linux.Seccomp.Syscalls) == 0 {
		t.Errorf("default spec: seccomp %+v, want Docker's default profile (errno by default, a list of allowed calls)", def.Linux.Seccomp)
	}
	if !def.Process.NoNewPrivileges {
		t.Errorf("default spec: NoNewPrivileges false, want true")
	}
	if !hasCgroupNS(def) {
		t.Errorf("default spec: namespaces %+v, want a new cgroup namespace", def.Linux.Namespaces)
	}
	if def.Linux.Resources.Pids != nil {
		t.Errorf("default spec: pids %+v, want no limit when PidsLimit is 0", def.Linux.Resources.Pids)
	}
	if caps := def.Process.Capabilities.Effective; !slices.Contains(caps, "CAP_CHOWN") || slices.Contains(caps, "CAP_SYS_ADMIN") {
		t.Errorf("default spec: effective capabilities %q, want containerd's default set (with CAP_CHOWN, without CAP_SYS_ADMIN)", caps)
	}

	open := gen(runtime.ContainerSpec{SeccompUnconfined: true, AllowNewPrivileges: true, PidsLimit: 100,
		Capabilities: []string{"CAP_NET_ADMIN", "CAP_SYS_ADMIN"}})
	if open.Linux.Seccomp != nil {
		t.Errorf("SeccompUnconfined: seccomp %+v, want none", open.Linux.Seccomp)
	}
	if open.Process.NoNewPrivileges {
		t.Errorf("AllowNewPrivileges: NoNewPrivileges true, want false")
	}
	if p := open.Linux.Resources.Pids; p == nil || p.Limit == nil || *p.Limit != 100 {
		t.Errorf("PidsLimit 100: pids %+v, want a limit of 100", p)
	}
	c := open.Process.Capabilities
	for _, set := range [][]string{c.Bounding, c.Permitted, c.Effective} {
		if !slices.Equal(set, []string{"CAP_NET_ADMIN", "CAP_SYS_ADMIN"}) {
			t.Errorf("Capabilities [CAP_NET_ADMIN CAP_SYS_ADMIN]: sets %+v, want exactly those in bounding, permitted and effective", c)
			break
		}
	}

	// The seccomp profile follows the capabilities: with CAP_SYS_ADMIN
	// the default profile allows mount, without it it does not.
	allows := func(s *oci.Spec, call string) bool {
		for _, sc := range s.Linux.Seccomp.Syscalls {
			if sc.Action == specs.ActAllow && slices.Contains(sc.Names, call) {
				return true
			}
		}
		return false
	}
	admin := gen(runtime.ContainerSpec{Capabilities: []string{"CAP_SYS_ADMIN"}})
	if !allows(admin, "mount") || allows(def, "mount") {
		t.Errorf("seccomp allows mount with CAP_SYS_ADMIN: %v, by default: %v; want true, false (the profile must come after the capabilities)",
			allows(admin, "mount"), allows(def, "mount"))
	}

	none := gen(runtime.ContainerSpec{Capabilities: []string{}})
	if c := none.Process.Capabilities; len(c.Bounding)+len(c.Permitted)+len(c.Effective)+len(c.Inheritable)+len(c.Ambient) != 0 {
		t.Errorf("Capabilities []: sets %+v, want all empty", c)
	}
}

func TestOCIMountsTmpfsOptions(t *testing.T) {
	got := ociMounts([]runtime.Mount{
		{Type: "tmpfs", Destination: "/t"},
		{Type: "tmpfs", Destination: "/u", Size: 8 << 20, Mode: 0o1770},
		{Type: "bind", Source: "/var/lib/warren/agent/volumes/data", Destination: "/data", ReadOnly: true},
	})
	want := [][]string{
		{"nosuid", "nodev", "mode=1777"},
		{"nosuid", "nodev", "mode=1770", "size=8388608"},
		{"rbind", "rprivate", "ro"},
	}
	for i, m := range got {
		if !slices.Equal(m.Options, want[i]) {
			t.Errorf("ociMounts: mount %d (%s) options %v, want %v", i, m.Destination, m.Options, want[i])
		}
	}
}

func TestChooseOCIBinary(t *testing.T) {
	// A cgroup root that is not cgroup2: hybrid when unified/ has
	// controllers, legacy when it has none or is absent.
	root := t.TempDir()
	unified := filepath.Join(root, "unified")
	if err := os.Mkdir(unified, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := crunCgroupsOK(root); err != nil {
		t.Errorf("no unified/cgroup.controllers: %v; want crun allowed", err)
	}
	os.WriteFile(filepath.Join(unified, "cgroup.controllers"), []byte("\n"), 0o644)
	if err := crunCgroupsOK(root); err != nil {
		t.Errorf("no controllers on cgroup2: %v; want crun allowed", err)
	}
	os.WriteFile(filepath.Join(unified, "cgroup.controllers"), []byte("hugetlb\n"), 0o644)
	if err := crunCgroupsOK(root); err == nil || !strings.Contains(err.Error(), "hugetlb") {
		t.Errorf("hugetlb on cgroup2: %v; want an error naming it", err)
	}
	if err := crunCgroupsOK(filepath.Join(root, "missing")); err == nil {
		t.Error("a missing cgroup root: want an error")
	}

	if bin, why, err := ChooseOCIBinary("runc", root); bin != "" || err != nil || why == "" {
		t.Errorf(`ChooseOCIBinary("runc") = %q, %q, %v; want "" and a reason`, bin, why, err)
	}
	if _, _, err := ChooseOCIBinary("youki", root); err == nil || !strings.Contains(err.Error(), "auto, runc or crun") {
		t.Errorf(`ChooseOCIBinary("youki") = %v; want an error naming the choices`, err)
	}
	// crun where it cannot run: auto falls back to runc and says why;
	// asking for crun is an error that says why.
	bin, why, err := ChooseOCIBinary("auto", root)
	if bin != "" || err != nil || !strings.HasPrefix(why, "runc: crun cannot be used: ") {
		t.Errorf(`ChooseOCIBinary("auto") on hybrid cgroups = %q, %q, %v; want runc with the reason`, bin, why, err)
	}
	if _, _, err := ChooseOCIBinary("crun", root); err == nil || !strings.Contains(err.Error(), "--oci-runtime=runc") {
		t.Errorf(`ChooseOCIBinary("crun") on hybrid cgroups = %v; want an error saying what to do`, err)
	}
	os.Remove(filepath.Join(unified, "cgroup.controllers"))
	bin, why, err = ChooseOCIBinary("auto", root)
	if _, lerr := exec.LookPath("crun"); lerr == nil && (bin == "" || err != nil || !strings.HasPrefix(why, "crun")) {
		t.Errorf(`ChooseOCIBinary("auto") with crun installed = %q, %q, %v; want crun`, bin, why, err)
	}
}
