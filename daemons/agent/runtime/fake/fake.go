// Package fake is an in-memory runtime.Runtime for tests of the agent and
// for demos on machines without containerd.
//
// It keeps containers and images in maps, records every call, and lets a
// test drive what a real engine would do on its own: make a running
// container exit with a code or be OOM-killed, make an image missing or
// pullable, make a command missing, make the engine unavailable, fail the
// next call of a method. Several Runtimes can share one engine (Reopen), as
// an agent restarted over the same containerd would: containers survive
// and their exits reach every open Runtime.
//
// Nothing sleeps: Stop never waits for its grace period.
package fake

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/agent/runtime"
)

// MinMemoryLimit mirrors the containerd runtime's smallest accepted limit.
const MinMemoryLimit = 4 << 20

// Exit codes the fake reports for signals, as a shim does (128 + signal).
const (
	CodeSIGTERM = 128 + 15
	CodeSIGKILL = 128 + 9
)

// Call is one recorded call: the method's name and the container ID or
// image reference it was called with.
type Call struct {
	Method string
	ID     string
}

func (c Call) String() string { return c.Method + "(" + c.ID + ")" }

// ExecFunc answers Exec for a container.
type ExecFunc func(id string, args []string) (code int, output []byte, err error)

// ExecStreamFunc runs an exec session for ExecStream: it reads x.Stdin,
// writes x.Stdout and x.Stderr and returns the exit code.
type ExecStreamFunc func(ctx context.Context, id string, x runtime.ExecIO) (code int, err error)

type container struct {
	spec      runtime.ContainerSpec
	state     runtime.State
	pid       int
	startedAt time.Time
	exit      *runtime.Exit
}

// engine is the state Runtimes opened over the same "containerd" share.
type engine struct {
	mu          sync.Mutex
	now         func() time.Time
	images      map[string]runtime.Image
	pullable    map[string]bool
	containers  map[string]*container
	missingCmd  map[string]bool
	ignoresTerm map[string]bool
	execFn      ExecFunc
	execStream  ExecStreamFunc
	failNext    map[string]error
	unavailable bool
	nextPid     int
	calls       []Call
	open        []*Runtime
}

// Runtime is the fake. The zero value is not usable; call New.
type Runtime struct {
	e      *engine
	exits  chan runtime.Exit
	queue  []runtime.Exit
	notify chan struct{}
	done   chan struct{}
	closed bool
	wg     sync.WaitGroup
}

var _ runtime.Runtime = (*Runtime)(nil)

// New returns a fake over a fresh, empty engine.
func New() *Runtime {
	e := &engine{
		now:         time.Now,
		images:      map[string]runtime.Image{},
		pullable:    map[string]bool{},
		containers:  map[string]*container{},
		missingCmd:  map[string]bool{},
		ignoresTerm: map[string]bool{},
		failNext:    map[string]error{},
		nextPid:     1000,
	}
	return e.open1()
}

func (e *engine) open1() *Runtime {
	r := &Runtime{e: e, exits: make(chan runtime.Exit), notify: make(chan struct{}, 1), done: make(chan struct{})}
	e.mu.Lock()
	e.open = append(e.open, r)
	e.mu.Unlock()
	r.wg.Add(1)
	go r.forward()
	return r
}

// Reopen returns a new Runtime over the same engine, as a restarted agent
// would get: it lists the same containers and receives their exits. The
// receiver stays usable until closed.
func (r *Runtime) Reopen() *Runtime { return r.e.open1() }

// SetClock makes the fake read time from now (for exit and start times).
func (r *Runtime) SetClock(now func() time.Time) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.now = now
}

// --- what a test sets up ---

// AddImage makes ref (normalized) present on the node.
func (r *Runtime) AddImage(ref string) {
	n := Normalize(ref)
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.images[n] = runtime.Image{Name: n, Digest: "sha256:" + fmt.Sprintf("%064x", len(n)), Size: 1 << 20}
}

// RemoveImage makes ref missing from the node.
func (r *Runtime) RemoveImage(ref string) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	delete(r.e.images, Normalize(ref))
}

// SetPullable says whether PullImage of ref succeeds.
func (r *Runtime) SetPullable(ref string, ok bool) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.pullable[Normalize(ref)] = ok
}

// SetCommandMissing makes Start fail with ErrCommandNotFound for containers
// whose executable (Command[0], or Args[0] without Command) is cmd.
func (r *Runtime) SetCommandMissing(cmd string, missing bool) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.missingCmd[cmd] = missing
}

// SetIgnoresSIGTERM makes Stop of id end by SIGKILL (code 137) rather than
// SIGTERM (code 143).
func (r *Runtime) SetIgnoresSIGTERM(id string, ignores bool) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.ignoresTerm[id] = ignores
}

// SetExec answers Exec calls; by default Exec returns code 0 and no output.
func (r *Runtime) SetExec(fn ExecFunc) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.execFn = fn
}

// SetExecStream runs ExecStream sessions; by default a session runs
// "echo ARGS..." (it writes its arguments, but the first, and exits 0)
// and "exit N" (exits N); other commands are not found.
func (r *Runtime) SetExecStream(fn ExecStreamFunc) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.execStream = fn
}

// FailNext makes the next call of method (e.g. "Start") return err.
func (r *Runtime) FailNext(method string, err error) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.failNext[method] = err
}

// SetUnavailable makes every call fail with runtime.ErrUnavailable, as if
// containerd were down. Exits and running containers are unaffected.
func (r *Runtime) SetUnavailable(down bool) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.unavailable = down
}

// Exit makes running container id's process exit with code.
func (r *Runtime) Exit(id string, code int) error { return r.e.exit(id, code, false) }

// OOM makes running container id's process die for lack of memory
// (code 137, OOMKilled).
func (r *Runtime) OOM(id string) error { return r.e.exit(id, CodeSIGKILL, true) }

// --- what a test inspects ---

// Calls returns the calls made so far, through every Runtime of the engine.
func (r *Runtime) Calls() []Call {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	return append([]Call(nil), r.e.calls...)
}

// CallsTo returns the IDs or references method was called with, in order.
func (r *Runtime) CallsTo(method string) []string {
	var ids []string
	for _, c := range r.Calls() {
		if c.Method == method {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// ResetCalls forgets the recorded calls.
func (r *Runtime) ResetCalls() {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	r.e.calls = nil
}

// Spec returns the spec container id was created with.
func (r *Runtime) Spec(id string) (runtime.ContainerSpec, bool) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	c, ok := r.e.containers[id]
	if !ok {
		return runtime.ContainerSpec{}, false
	}
	return c.spec, true
}

// Normalize is a simplified docker reference normalization:
// "busybox" → "docker.io/library/busybox:latest".
func Normalize(ref string) string {
	name, tag := ref, "latest"
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		name, tag = ref[:i], ""
	} else if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		name, tag = ref[:i], ref[i+1:]
	}
	first, _, hasSlash := strings.Cut(name, "/")
	switch {
	case !hasSlash:
		name = "docker.io/library/" + name
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		name = "docker.io/" + name
	}
	if tag == "" {
		return name + ref[strings.IndexByte(ref, '@'):]
	}
	return name + ":" + tag
}

// --- runtime.Runtime ---

// begin records a call and returns the error it must fail with, if any.
// The caller holds e.mu.
func (e *engine) begin(method, id string) error {
	e.calls = append(e.calls, Call{Method: method, ID: id})
	if err, ok := e.failNext[method]; ok {
		delete(e.failNext, method)
		return err
	}
	if e.unavailable {
		return fmt.Errorf("fake: %s %s: %w", method, id, runtime.ErrUnavailable)
	}
	return nil
}

// ImportImage reads the names from an OCI image layout (index.json
// annotations) or `docker save` tarball (manifest.json RepoTags), such as
// qa/testimage builds, and makes those images present. Blobs are not checked.
func (r *Runtime) ImportImage(ctx context.Context, rd io.Reader) ([]runtime.Image, error) {
	names, size, err := tarballNames(rd)
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	if berr := r.e.begin("ImportImage", strings.Join(names, ",")); berr != nil {
		return nil, berr
	}
	if err != nil {
		return nil, fmt.Errorf("fake: import: %w: %w", runtime.ErrInvalidSpec, err)
	}
	var out []runtime.Image
	for _, n := range names {
		img := runtime.Image{Name: Normalize(n), Digest: "sha256:" + fmt.Sprintf("%064x", size), Size: size}
		r.e.images[img.Name] = img
		out = append(out, img)
	}
	return out, nil
}

func tarballNames(rd io.Reader) (names []string, size int64, err error) {
	tr := tar.NewReader(rd)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read tarball: %w", err)
		}
		size += h.Size
		switch h.Name {
		case "index.json":
			var idx struct {
				Manifests []struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"manifests"`
			}
			if err := json.NewDecoder(tr).Decode(&idx); err != nil {
				return nil, 0, fmt.Errorf("index.json: %w", err)
			}
			for _, m := range idx.Manifests {
				if n := m.Annotations["io.containerd.image.name"]; n != "" {
					names = append(names, n)
				} else if n := m.Annotations["org.opencontainers.image.ref.name"]; strings.ContainsAny(n, "/:") {
					names = append(names, n)
				}
			}
		case "manifest.json":
			var mf []struct{ RepoTags []string }
			if err := json.NewDecoder(tr).Decode(&mf); err != nil {
				return nil, 0, fmt.Errorf("manifest.json: %w", err)
			}
			for _, m := range mf {
				names = append(names, m.RepoTags...)
			}
		}
	}
	if len(names) == 0 {
		return nil, size, errors.New("the tarball names no image")
	}
	return names, size, nil
}

func (r *Runtime) PullImage(ctx context.Context, ref string) (runtime.Image, error) {
	n := Normalize(ref)
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	if err := r.e.begin("PullImage", n); err != nil {
		return runtime.Image{}, err
	}
	if !r.e.pullable[n] {
		return runtime.Image{}, fmt.Errorf("fake: pull %s: %w", n, runtime.ErrImageNotFound)
	}
	img := runtime.Image{Name: n, Digest: "sha256:" + fmt.Sprintf("%064x", len(n)), Size: 1 << 20}
	r.e.images[n] = img
	return img, nil
}

func (r *Runtime) ListImages(ctx context.Context) ([]runtime.Image, error) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	if err := r.e.begin("ListImages", ""); err != nil {
		return nil, err
	}
	out := make([]runtime.Image, 0, len(r.e.images))
	for _, img := range r.e.images {
		out = append(out, img)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (r *Runtime) HasImage(ctx context.Context, ref string) (bool, error) {
	n := Normalize(ref)
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	if err := r.e.begin("HasImage", n); err != nil {
		return false, err
	}
	_, ok := r.e.images[n]
	return ok, nil
}

func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) error {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	if err := r.e.begin("Create", spec.ID); err != nil {
		return err
	}
	if spec.ID == "" {
		return fmt.Errorf("fake: create: empty ID: %w", runtime.ErrInvalidSpec)
	}
	if _, ok := r.e.containers[spec.ID]; ok {
		return fmt.Errorf("fake: create %s: already exists", spec.ID)
	}
	n := Normalize(spec.Image)
	if _, ok := r.e.images[n]; !ok {
		return fmt.Errorf("fake: create %s: image %s is not on this node: %w", spec.ID, n, runtime.ErrImageNotFound)
	}
	if spec.MemoryLimit < 0 || (spec.MemoryLimit > 0 && spec.MemoryLimit < MinMemoryLimit) {
		return fmt.Errorf("fake: create %s: memory limit %d below %d: %w", spec.ID, spec.MemoryLimit, MinMemoryLimit, runtime.ErrInvalidSpec)
	}
	spec.Image = n
	spec.Labels = copyLabels(spec.Labels)
	r.e.containers[spec.ID] = &container{spec: spec, state: runtime.StateCreated}
	return nil
}

func (r *Runtime) Start(ctx context.Context, id string) error {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	if err := r.e.begin("Start", id); err != nil {
		return err
	}
	c, ok := r.e.containers[id]
	if !ok {
		return fmt.Errorf("fake: start %s: %w", id, runtime.ErrNotFound)
	}
	if c.state == runtime.StateRunning {
		return fmt.Errorf("fake: start %s: already running", id)
	}
	cmd := c.spec.Command
	if len(cmd) == 0 {
		cmd = c.spec.Args
	}
	if len(cmd) > 0 && r.e.missingCmd[cmd[0]] {
		return fmt.Errorf("fake: start %s: command %q not found in the image: %w", id, cmd[0], runtime.ErrCommandNotFound)
	}
	r.e.nextPid++
	c.state, c.pid, c.startedAt, c.exit = runtime.StateRunning, r.e.nextPid, r.e.now(), nil
	return nil
}

func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) (runtime.Exit, error) {
	r.e.mu.Lock()
	if err := r.e.begin("Stop", id); err != nil {
		r.e.mu.Unlock()
		return runtime.Exit{}, err
	}
	c, ok := r.e.containers[id]
	if !ok {
		r.e.mu.Unlock()
		return runtime.Exit{}, fmt.Errorf("fake: stop %s: %w", id, runtime.ErrNotFound)
	}
	switch c.state {
	case runtime.StateCreated:
		r.e.mu.Unlock()
		return runtime.Exit{ID: id}, nil
	case runtime.StateStopped:
		e := *c.exit
		r.e.mu.Unlock()
		return e, nil
	}
	code := CodeSIGTERM
	if r.e.ignoresTerm[id] {
		code = CodeSIGKILL
	}
	r.e.mu.Unlock()
	if err := r.e.exit(id, code, false); err != nil {
		return runtime.Exit{}, err
	}
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	return *r.e.containers[id].exit, nil
}

func (r *Runtime) Delete(ctx context.Context, id string) error {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	if err := r.e.begin("Delete", id); err != nil {
		return err
	}
	delete(r.e.containers, id)
	return nil
}

func (r *Runtime) List(ctx context.Context) ([]runtime.Container, error) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	if err := r.e.begin("List", ""); err != nil {
		return nil, err
	}
	out := make([]runtime.Container, 0, len(r.e.containers))
	for _, c := range r.e.containers {
		out = append(out, c.describe())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (r *Runtime) Inspect(ctx context.Context, id string) (runtime.Container, error) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	if err := r.e.begin("Inspect", id); err != nil {
		return runtime.Container{}, err
	}
	c, ok := r.e.containers[id]
	if !ok {
		return runtime.Container{}, fmt.Errorf("fake: inspect %s: %w", id, runtime.ErrNotFound)
	}
	return c.describe(), nil
}

func (r *Runtime) Exec(ctx context.Context, id string, args []string, timeout time.Duration) (int, []byte, error) {
	r.e.mu.Lock()
	if err := r.e.begin("Exec", id); err != nil {
		r.e.mu.Unlock()
		return -1, nil, err
	}
	c, ok := r.e.containers[id]
	if !ok {
		r.e.mu.Unlock()
		return -1, nil, fmt.Errorf("fake: exec in %s: %w", id, runtime.ErrNotFound)
	}
	if c.state != runtime.StateRunning {
		r.e.mu.Unlock()
		return -1, nil, fmt.Errorf("fake: exec in %s: the container is not running", id)
	}
	if len(args) > 0 && r.e.missingCmd[args[0]] {
		r.e.mu.Unlock()
		return -1, nil, fmt.Errorf("fake: exec in %s: command %q not found: %w", id, args[0], runtime.ErrCommandNotFound)
	}
	fn := r.e.execFn
	r.e.mu.Unlock()
	if fn == nil {
		return 0, nil, nil
	}
	return fn(id, args)
}

func (r *Runtime) ExecStream(ctx context.Context, id string, x runtime.ExecIO) (int, error) {
	r.e.mu.Lock()
	if err := r.e.begin("ExecStream", id); err != nil {
		r.e.mu.Unlock()
		return -1, err
	}
	c, ok := r.e.containers[id]
	if !ok {
		r.e.mu.Unlock()
		return -1, fmt.Errorf("fake: exec in %s: %w", id, runtime.ErrNotFound)
	}
	if c.state != runtime.StateRunning {
		r.e.mu.Unlock()
		return -1, fmt.Errorf("fake: exec in %s: %w", id, runtime.ErrNotRunning)
	}
	if len(x.Args) == 0 || r.e.missingCmd[x.Args[0]] {
		r.e.mu.Unlock()
		return -1, fmt.Errorf("fake: exec in %s: command %q not found: %w", id, x.Args, runtime.ErrCommandNotFound)
	}
	fn := r.e.execStream
	r.e.mu.Unlock()
	if fn != nil {
		return fn(ctx, id, x)
	}
	switch x.Args[0] {
	case "echo":
		if x.Stdout != nil {
			fmt.Fprintln(x.Stdout, strings.Join(x.Args[1:], " "))
		}
		return 0, nil
	case "exit":
		if len(x.Args) == 2 {
			if n, err := strconv.Atoi(x.Args[1]); err == nil {
				return n, nil
			}
		}
	}
	return -1, fmt.Errorf("fake: exec in %s: command %q not found: %w", id, x.Args[0], runtime.ErrCommandNotFound)
}

func (r *Runtime) Exits() <-chan runtime.Exit { return r.exits }

func (r *Runtime) Ping(ctx context.Context) error {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	return r.e.begin("Ping", "")
}

// Close closes the Exits channel. Containers stay in the engine.
func (r *Runtime) Close() error {
	r.e.mu.Lock()
	if r.closed {
		r.e.mu.Unlock()
		return nil
	}
	r.closed = true
	for i, o := range r.e.open {
		if o == r {
			r.e.open = append(r.e.open[:i], r.e.open[i+1:]...)
			break
		}
	}
	r.e.mu.Unlock()
	close(r.done)
	r.wg.Wait()
	close(r.exits)
	return nil
}

// Reboot is the machine restarting under the fake: every container loses
// its process and its exit, as containerd's containers do (they remain,
// with no task: created). Open Runtimes hear of no exit.
func (r *Runtime) Reboot() {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	for _, c := range r.e.containers {
		c.state, c.pid, c.exit, c.startedAt = runtime.StateCreated, 0, nil, time.Time{}
	}
}

// --- internals ---

func (e *engine) exit(id string, code int, oom bool) error {
	e.mu.Lock()
	c, ok := e.containers[id]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("fake: exit %s: %w", id, runtime.ErrNotFound)
	}
	if c.state != runtime.StateRunning {
		e.mu.Unlock()
		return fmt.Errorf("fake: exit %s: not running (%s)", id, c.state)
	}
	ex := runtime.Exit{ID: id, Code: code, At: e.now(), OOMKilled: oom}
	c.state, c.pid, c.exit = runtime.StateStopped, 0, &ex
	open := append([]*Runtime(nil), e.open...)
	e.mu.Unlock()
	for _, r := range open {
		r.push(ex)
	}
	return nil
}

func (c *container) describe() runtime.Container {
	out := runtime.Container{
		ID: c.spec.ID, Image: c.spec.Image, Labels: copyLabels(c.spec.Labels),
		State: c.state, Pid: c.pid, StartedAt: c.startedAt,
	}
	if c.exit != nil {
		e := *c.exit
		out.Exit = &e
	}
	return out
}

func copyLabels(l map[string]string) map[string]string {
	out := make(map[string]string, len(l))
	for k, v := range l {
		out[k] = v
	}
	return out
}

func (r *Runtime) push(e runtime.Exit) {
	r.e.mu.Lock()
	r.queue = append(r.queue, e)
	r.e.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// forward moves queued exits to the Exits channel until Close, so that
// making a container exit never blocks a test.
func (r *Runtime) forward() {
	defer r.wg.Done()
	for {
		r.e.mu.Lock()
		var (
			next runtime.Exit
			ok   bool
		)
		if len(r.queue) > 0 {
			next, ok = r.queue[0], true
		}
		r.e.mu.Unlock()
		if !ok {
			select {
			case <-r.notify:
				continue
			case <-r.done:
				return
			}
		}
		select {
		case r.exits <- next:
			r.e.mu.Lock()
			r.queue = r.queue[1:]
			r.e.mu.Unlock()
		case <-r.done:
			return
		}
	}
}

// ErrInjected is a convenient error for FailNext.
var ErrInjected = errors.New("fake: injected failure")
