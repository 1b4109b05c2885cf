package containerd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/qa/containerdtest"
	"github.com/warren-edge/warren/qa/testimage"
)

// ociRuntimeEnv names the OCI runtime the tests of this run use: runc
// when unset. TestMain runs them all a second time under crun when this
// machine can run it.
const ociRuntimeEnv = "WARREN_TEST_OCI_RUNTIME"

// ociBinary is Options.OCIBinary for this run's tests.
var ociBinary string

func TestMain(m *testing.M) {
	setting := os.Getenv(ociRuntimeEnv)
	if setting == "" {
		setting = OCIRuntimeRunc
	}
	bin, _, err := ChooseOCIBinary(setting, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ociBinary = bin
	code := m.Run()
	if code != 0 || os.Getenv(ociRuntimeEnv) != "" || os.Geteuid() != 0 {
		os.Exit(code)
	}
	// The same tests under crun, in a child of this test binary.
	if bin, why, _ := ChooseOCIBinary(OCIRuntimeAuto, ""); bin == "" {
		fmt.Fprintf(os.Stderr, "the tests did not run under crun: %s\n", why)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), ociRuntimeEnv+"="+OCIRuntimeCrun)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	fmt.Fprintln(os.Stderr, "the same tests under crun:")
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "under crun: %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// testNS is the containerd namespace of the tests: not "warren", so that a
// test's cgroups (/testNS/ID) never meet those of a real agent.
const testNS = "warrentest"

const busybox = "localhost/busybox:latest"

// env is one private containerd and a Runtime over it.
type env struct {
	t     testing.TB
	d     *containerdtest.Daemon
	r     *Runtime
	exits *exitLog
}

// setup starts a private containerd (skipping the test when the machine
// cannot), a Runtime over it, and imports the busybox test image.
// Everything is removed when the test ends, whatever its outcome.
func setup(t testing.TB) *env {
	t.Helper()
	if err := testimage.Available(); err != nil {
		t.Skip(err)
	}
	d := containerdtest.Start(t)
	e := &env{t: t, d: d}
	e.r = e.newRuntime()
	e.exits = watchExits(e.r)
	var buf bytes.Buffer
	if err := testimage.Build(&buf, testimage.Options{Name: busybox}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.r.ImportImage(context.Background(), &buf); err != nil {
		t.Fatalf("ImportImage: %v", err)
	}
	return e
}

func (e *env) newRuntime() *Runtime {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := New(ctx, Options{
		Socket:       e.d.Socket,
		Namespace:    testNS,
		FIFODir:      filepath.Join(e.d.Dir, "fifo"),
		ReconnectMin: 50 * time.Millisecond,
		ReconnectMax: 500 * time.Millisecond,
		OCIBinary:    ociBinary,
	})
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.t.Cleanup(func() { r.Close() })
	return r
}

// spec returns a busybox container spec with a unique ID starting with name.
func spec(name string, cmd ...string) runtime.ContainerSpec {
	return runtime.ContainerSpec{
		ID:      name + "-" + randomHex(3),
		Image:   busybox,
		Command: cmd,
		Labels:  map[string]string{"io.warren.task": name},
	}
}

// run creates and starts s.
func (e *env) run(s runtime.ContainerSpec) string {
	e.t.Helper()
	ctx := context.Background()
	if err := e.r.Create(ctx, s); err != nil {
		e.t.Fatalf("Create(%s): %v", s.ID, err)
	}
	if err := e.r.Start(ctx, s.ID); err != nil {
		e.t.Fatalf("Start(%s): %v", s.ID, err)
	}
	return s.ID
}

func (e *env) exec(id string, args ...string) (int, string) {
	e.t.Helper()
	code, out, err := e.r.Exec(context.Background(), id, args, 10*time.Second)
	if err != nil {
		e.t.Fatalf("Exec(%s, %q): %v", id, args, err)
	}
	return code, string(out)
}

func (e *env) inspect(id string) runtime.Container {
	e.t.Helper()
	c, err := e.r.Inspect(context.Background(), id)
	if err != nil {
		e.t.Fatalf("Inspect(%s): %v", id, err)
	}
	return c
}

// cgroupFile reads a file of id's cgroup in controller ctrl.
func cgroupFile(t testing.TB, ctrl, id, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, testNS, id, file))
	if err != nil {
		t.Fatalf("read cgroup file: %v", err)
	}
	return strings.TrimSpace(string(b))
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// exitLog collects everything a Runtime reports on Exits.
type exitLog struct {
	mu  sync.Mutex
	got []runtime.Exit
}

func watchExits(r *Runtime) *exitLog {
	l := &exitLog{}
	go func() {
		for e := range r.Exits() {
			l.mu.Lock()
			l.got = append(l.got, e)
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *exitLog) of(id string) []runtime.Exit {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []runtime.Exit
	for _, e := range l.got {
		if e.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// wait returns the first exit reported for id, failing t after d.
func (l *exitLog) wait(t testing.TB, id string, d time.Duration) runtime.Exit {
	t.Helper()
	var ex []runtime.Exit
	waitFor(t, d, fmt.Sprintf("the exit of %s on Exits", id), func() bool {
		ex = l.of(id)
		return len(ex) > 0
	})
	return ex[0]
}
