package containerd

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warren-edge/warren/daemons/agent/runtime"
)

// Create makes the container: an overlayfs snapshot of its image and an
// OCI spec from the image config and spec. No process starts.
func (r *Runtime) Create(ctx context.Context, spec runtime.ContainerSpec) error {
	if err := validate(spec); err != nil {
		return err
	}
	ctx = r.nsctx(ctx)
	img, ref, err := r.getImage(ctx, "create "+spec.ID, spec.Image)
	if err != nil {
		return err
	}

	labels := make(map[string]string, len(spec.Labels)+2)
	for k, v := range spec.Labels {
		labels[k] = v
	}
	if spec.LogPath != "" {
		labels[labelLogPath] = spec.LogPath
	}
	if spec.Group != "" {
		labels[labelGroup] = spec.Group
	}

	create := func() error {
		_, err := r.client.NewContainer(ctx, spec.ID,
			containerd.WithImageName(ref),
			containerd.WithSnapshotter(r.opts.Snapshotter),
			containerd.WithNewSnapshot(spec.ID, img),
			containerd.WithRuntime(r.opts.Runtime, r.runtimeOptions()),
			containerd.WithNewSpec(append(specOpts(img, spec), r.ociVersion)...),
			containerd.WithContainerLabels(labels),
		)
		return err
	}
	snapshots := r.client.SnapshotService(r.opts.Snapshotter)
	exists := func() bool {
		_, err := r.client.ContainerService().Get(ctx, spec.ID)
		return err == nil
	}
	err = create()
	switch {
	case err != nil && errdefs.IsNotFound(err) && strings.Contains(err.Error(), "snapshot"):
		// The image is present but not unpacked (imported by another
		// tool, or its snapshots were pruned): unpack and try again.
		if uerr := img.Unpack(ctx, r.opts.Snapshotter); uerr != nil {
			return wrap("create "+spec.ID+": unpack "+ref, uerr)
		}
		snapshots.Remove(ctx, spec.ID)
		err = create()
	case err != nil && errdefs.IsAlreadyExists(err) && !exists():
		// A snapshot left by an earlier failed Create, with no container.
		snapshots.Remove(ctx, spec.ID)
		err = create()
	}
	if err != nil {
		alreadyExists := errdefs.IsAlreadyExists(err) && exists()
		if !alreadyExists {
			// A spec option may have failed after the snapshot was made.
			snapshots.Remove(ctx, spec.ID)
		}
		switch {
		case alreadyExists:
			return fmt.Errorf("containerd: create %s: a container with this ID exists: %w", spec.ID, err)
		case errdefs.IsInvalidArgument(err):
			return fmt.Errorf("containerd: create %s: %w: %w", spec.ID, runtime.ErrInvalidSpec, err)
		}
		return wrap("create "+spec.ID, err)
	}
	return nil
}

// validate rejects settings containerd or runc would refuse with a less
// helpful message, or not at all until Start.
func validate(spec runtime.ContainerSpec) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("containerd: create %s: %s: %w", spec.ID, fmt.Sprintf(format, a...), runtime.ErrInvalidSpec)
	}
	if spec.ID == "" {
		return bad("empty container ID")
	}
	if spec.MemoryLimit < 0 || (spec.MemoryLimit > 0 && spec.MemoryLimit < MinMemoryLimit) {
		return bad("memory limit %d bytes is below the minimum of %d bytes (%d MiB) a container needs to start",
			spec.MemoryLimit, MinMemoryLimit, MinMemoryLimit>>20)
	}
	if spec.NanoCPUs < 0 || (spec.NanoCPUs > 0 && cpuQuota(spec.NanoCPUs) < minCPUQuota) {
		return bad("CPU limit %.4f CPUs is below the minimum of %.2f", float64(spec.NanoCPUs)/1e9, float64(minCPUQuota)/cpuPeriod)
	}
	if spec.LogPath != "" && (!filepath.IsAbs(spec.LogPath) || filepath.Clean(spec.LogPath) != spec.LogPath) {
		return bad("log path %q is not absolute and clean (no . or .. parts)", spec.LogPath)
	}
	if spec.PidsLimit < 0 {
		return bad("pids limit %d is negative: 0 means none", spec.PidsLimit)
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return bad("mount destination %q is not absolute", m.Destination)
		}
		switch m.Type {
		case "bind":
			if !filepath.IsAbs(m.Source) {
				return bad("bind mount source %q is not absolute", m.Source)
			}
		case "tmpfs":
		default:
			return bad("mount type %q of %s: want bind or tmpfs", m.Type, m.Destination)
		}
	}
	return nil
}

// cpuQuota converts NanoCPUs to a CFS quota over cpuPeriod.
func cpuQuota(nano int64) int64 { return nano * cpuPeriod / 1e9 }

// specOpts builds the OCI spec of spec on top of containerd's defaults and
// img's config.
func specOpts(img containerd.Image, spec runtime.ContainerSpec) []oci.SpecOpts {
	opts := []oci.SpecOpts{oci.WithImageConfigArgs(img, spec.Args)}
	if len(spec.Command) > 0 {
		// docker --entrypoint semantics: the image's cmd goes too.
		opts = append(opts, oci.WithProcessArgs(append(append([]string{}, spec.Command...), spec.Args...)...))
	}
	opts = append(opts, requireArgs)
	if len(spec.Env) > 0 {
		opts = append(opts, oci.WithEnv(spec.Env))
	}
	if spec.WorkingDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkingDir))
	}
	if spec.User != "" {
		opts = append(opts, withUser(spec.User))
	}
	if spec.Hostname != "" {
		opts = append(opts, oci.WithHostname(spec.Hostname))
	}
	if len(spec.Mounts) > 0 {
		opts = append(opts, oci.WithMounts(ociMounts(spec.Mounts)))
	}
	if spec.ReadOnlyRoot {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if spec.MemoryLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(spec.MemoryLimit)))
	}
	if spec.NanoCPUs > 0 {
		opts = append(opts, oci.WithCPUCFS(cpuQuota(spec.NanoCPUs), cpuPeriod))
	}
	if spec.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(spec.CPUShares))
	}
	if spec.NetNSPath != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: spec.NetNSPath}))
	}
	if spec.Group != "" {
		opts = append(opts, oci.WithAnnotations(map[string]string{GroupAnnotation: spec.Group}))
	}
	return append(opts, confinement(spec)...)
}

// confinement is what limits a container beyond its resources: its
// capabilities, no_new_privs, a cgroup namespace of its own, its pids
// limit and, last (the profile allows system calls by the capabilities
// set before it), Docker's default seccomp profile as containerd ships it.
func confinement(spec runtime.ContainerSpec) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if spec.Capabilities != nil {
		opts = append(opts, oci.WithCapabilities(spec.Capabilities))
	}
	if spec.AllowNewPrivileges {
		opts = append(opts, oci.WithNewPrivileges)
	} else {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	// oci.WithNamespacedCgroup only sets the cgroup path (/NAMESPACE/ID,
	// the default already); the namespace is this. /proc/self/cgroup in
	// the container then shows "/" and the host's cgroup tree is hidden.
	opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.CgroupNamespace}))
	if spec.PidsLimit > 0 {
		opts = append(opts, oci.WithPidsLimit(spec.PidsLimit))
	}
	if !spec.SeccompUnconfined {
		opts = append(opts, seccomp.WithDefaultProfile())
	}
	return opts
}

// withUser sets the process's user and groups from the image's
// /etc/passwd and /etc/group; a user the image does not know is an
// invalid setting.
func withUser(user string) oci.SpecOpts {
	return func(ctx context.Context, cl oci.Client, c *containers.Container, s *oci.Spec) error {
		if err := oci.WithUser(user)(ctx, cl, c, s); err != nil {
			return fmt.Errorf("user %q: %w: %w", user, errdefs.ErrInvalidArgument, err)
		}
		if err := oci.WithAdditionalGIDs(user)(ctx, cl, c, s); err != nil {
			return fmt.Errorf("groups of user %q: %w: %w", user, errdefs.ErrInvalidArgument, err)
		}
		return nil
	}
}

// requireArgs fails a spec with no process to run.
func requireArgs(_ context.Context, _ oci.Client, c *containers.Container, s *oci.Spec) error {
	if s.Process == nil || len(s.Process.Args) == 0 {
		return fmt.Errorf("container %s has no command: the image sets no entrypoint or cmd and the spec no Command: %w",
			c.ID, errdefs.ErrInvalidArgument)
	}
	return nil
}

func ociMounts(ms []runtime.Mount) []specs.Mount {
	out := make([]specs.Mount, 0, len(ms))
	for _, m := range ms {
		switch m.Type {
		case "bind":
			opts := []string{"rbind", "rprivate"}
			if m.ReadOnly {
				opts = append(opts, "ro")
			} else {
				opts = append(opts, "rw")
			}
			out = append(out, specs.Mount{Type: "bind", Source: m.Source, Destination: m.Destination, Options: opts})
		case "tmpfs":
			mode := m.Mode
			if mode == 0 {
				mode = 0o1777
			}
			opts := []string{"nosuid", "nodev", fmt.Sprintf("mode=%o", mode)}
			if m.Size > 0 {
				opts = append(opts, fmt.Sprintf("size=%d", m.Size))
			}
			if m.ReadOnly {
				opts = append(opts, "ro")
			}
			out = append(out, specs.Mount{Type: "tmpfs", Source: "tmpfs", Destination: m.Destination, Options: opts})
		}
	}
	return out
}

// Start creates the container's task, its stdout and stderr appended by
// the shim to the log path given at Create, and starts it. A stopped task
// from an earlier run is deleted first.
func (r *Runtime) Start(ctx context.Context, id string) error {
	ctx = r.nsctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return r.notFound("start", id, err)
	}
	info, err := c.Info(ctx, containerd.WithoutRefreshedMetadata)
	if err != nil {
		return wrap("start "+id, err)
	}
	if old, err := c.Task(ctx, nil); err == nil {
		st, err := old.Status(ctx)
		if err != nil {
			return wrap("start "+id, err)
		}
		if st.Status != containerd.Stopped && st.Status != containerd.Created {
			return fmt.Errorf("containerd: start %s: already %s", id, st.Status)
		}
		if _, err := old.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return wrap("start "+id+": delete previous task", err)
		}
	}

	ioc := cio.NullIO
	if p := info.Labels[labelLogPath]; p != "" {
		var err error
		if ioc, err = logFile(p); err != nil {
			return fmt.Errorf("containerd: start %s: %w", id, err)
		}
	}
	task, err := c.NewTask(ctx, ioc)
	// The shim can die before containerd dials it ("failed to start shim:
	// ... dial unix /run/containerd/s/...: no such file or directory"):
	// seen about once in ten stop-then-start swaps of a global task on
	// this machine. The container is intact; a new shim usually starts.
	for wait := 100 * time.Millisecond; err != nil && shimStartFailed(err) && wait <= 400*time.Millisecond; wait *= 2 {
		select {
		case <-ctx.Done():
			return wrap("start "+id, ctx.Err())
		case <-time.After(wait):
		}
		task, err = c.NewTask(ctx, ioc)
	}
	if err != nil {
		return classifyStartErr("start "+id, specCommand(info), err)
	}
	if err := task.Start(ctx); err != nil {
		task.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
		return classifyStartErr("start "+id, specCommand(info), err)
	}
	return nil
}

// notFound maps a missing container to runtime.ErrNotFound.
func (r *Runtime) notFound(what, id string, err error) error {
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("containerd: %s %s: %w", what, id, runtime.ErrNotFound)
	}
	return wrap(what+" "+id, err)
}

// Stop sends SIGTERM to the container's process, waits up to grace, then
// kills every process of the container with SIGKILL, and returns how the
// process ended. A container that is not running returns its recorded exit
// (the zero Exit if it never ran).
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) (runtime.Exit, error) {
	ctx = r.nsctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return runtime.Exit{}, r.notFound("stop", id, err)
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return runtime.Exit{ID: id}, nil
	}
	if err != nil {
		return runtime.Exit{}, wrap("stop "+id, err)
	}
	waitC, err := task.Wait(ctx)
	if err != nil {
		return runtime.Exit{}, wrap("stop "+id, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return runtime.Exit{}, wrap("stop "+id, err)
	}
	switch st.Status {
	case containerd.Stopped:
		return r.exitOf(id, st.ExitStatus, st.ExitTime), nil
	case containerd.Created:
		// Created but never started: delete the task so no process stays.
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return runtime.Exit{}, wrap("stop "+id, err)
		}
		return runtime.Exit{ID: id}, nil
	}

	if err := task.Kill(ctx, syscall.SIGTERM); err != nil && !errdefs.IsNotFound(err) {
		return runtime.Exit{}, wrap("stop "+id+": SIGTERM", err)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case es := <-waitC:
		return r.exitStatus(id, es)
	case <-timer.C:
	case <-ctx.Done():
		return runtime.Exit{}, fmt.Errorf("containerd: stop %s: %w", id, ctx.Err())
	}
	if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
		return runtime.Exit{}, wrap("stop "+id+": SIGKILL", err)
	}
	select {
	case es := <-waitC:
		return r.exitStatus(id, es)
	case <-ctx.Done():
		return runtime.Exit{}, fmt.Errorf("containerd: stop %s: waiting after SIGKILL: %w", id, ctx.Err())
	}
}

func (r *Runtime) exitStatus(id string, es containerd.ExitStatus) (runtime.Exit, error) {
	if err := es.Error(); err != nil {
		return runtime.Exit{}, wrap("stop "+id+": wait", err)
	}
	return r.exitOf(id, es.ExitCode(), es.ExitTime()), nil
}

func (r *Runtime) exitOf(id string, code uint32, at time.Time) runtime.Exit {
	return runtime.Exit{ID: id, Code: int(code), At: at, OOMKilled: r.oomKilled(id, int(code))}
}

// Delete removes the container's task (killing its process if it runs),
// the container and its snapshot. A missing container is not an error.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	ctx = r.nsctx(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return wrap("delete "+id, err)
	}
	if task, err := c.Task(ctx, nil); err == nil {
		if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
			return wrap("delete "+id+": task", err)
		}
	} else if !errdefs.IsNotFound(err) {
		return wrap("delete "+id+": task", err)
	}
	if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
		return wrap("delete "+id, err)
	}
	r.state.forget(id)
	return nil
}

// List reports every container in the namespace with its task's state.
func (r *Runtime) List(ctx context.Context) ([]runtime.Container, error) {
	ctx = r.nsctx(ctx)
	cs, err := r.client.ContainerService().List(ctx)
	if err != nil {
		return nil, wrap("list containers", err)
	}
	resp, err := r.client.TaskService().List(ctx, &tasksapi.ListTasksRequest{})
	err = errgrpc.ToNative(err)
	if err != nil {
		return nil, wrap("list tasks", err)
	}
	tasks := make(map[string]*tasktypes.Process, len(resp.Tasks))
	for _, t := range resp.Tasks {
		tasks[t.ID] = t
	}
	out := make([]runtime.Container, 0, len(cs))
	for _, c := range cs {
		out = append(out, r.describeContainer(c, tasks[c.ID]))
	}
	return out, nil
}

// Inspect reports one container.
func (r *Runtime) Inspect(ctx context.Context, id string) (runtime.Container, error) {
	ctx = r.nsctx(ctx)
	c, err := r.client.ContainerService().Get(ctx, id)
	if err != nil {
		return runtime.Container{}, r.notFound("inspect", id, err)
	}
	var t *tasktypes.Process
	resp, err := r.client.TaskService().Get(ctx, &tasksapi.GetRequest{ContainerID: id})
	err = errgrpc.ToNative(err)
	switch {
	case err == nil:
		t = resp.Process
	case errdefs.IsNotFound(err):
	default:
		return runtime.Container{}, wrap("inspect "+id, err)
	}
	return r.describeContainer(c, t), nil
}

func (r *Runtime) describeContainer(c containers.Container, t *tasktypes.Process) runtime.Container {
	out := runtime.Container{ID: c.ID, Image: c.Image, Labels: map[string]string{}, State: runtime.StateCreated}
	for k, v := range c.Labels {
		if !strings.HasPrefix(k, labelPrefix) {
			out.Labels[k] = v
		}
	}
	if t == nil {
		return out
	}
	switch t.Status {
	case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
		out.State = runtime.StateRunning
		out.Pid = int(t.Pid)
		out.StartedAt = processStart(int(t.Pid))
	case tasktypes.Status_STOPPED:
		out.State = runtime.StateStopped
		e := r.exitOf(c.ID, t.ExitStatus, t.ExitedAt.AsTime())
		out.Exit = &e
	}
	return out
}

// processStart returns when pid started, from /proc (zero if unknown).
func processStart(pid int) time.Time {
	if pid <= 0 {
		return time.Time{}
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return time.Time{}
	}
	// Fields after the command (which may hold spaces) start at state.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return time.Time{}
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return time.Time{}
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64) // field 22 of stat
	if err != nil {
		return time.Time{}
	}
	bt := bootTime()
	if bt.IsZero() {
		return time.Time{}
	}
	const userHZ = 100 // USER_HZ is 100 on every Linux architecture Go supports
	return bt.Add(time.Duration(ticks) * time.Second / userHZ)
}

func bootTime() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return time.Unix(s, 0)
			}
		}
	}
	return time.Time{}
}

// specCommand is the command a container runs (its spec's first argument),
// or "" if its spec does not say.
func specCommand(info containers.Container) string {
	if info.Spec == nil {
		return ""
	}
	var s specs.Spec
	if err := json.Unmarshal(info.Spec.GetValue(), &s); err != nil || s.Process == nil {
		return ""
	}
	return firstArg(s.Process.Args)
}

// firstArg is args[0], or "" if there is none.
func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// logFile is the IO of a task whose stdout and stderr are appended to
// the file at p, by the shim, so output is kept while the agent is down.
//
// It is cio.LogFile but for one thing. For a file:// URI the runc shim
// (containerd 1.6 to 2.4, process/io.go copyPipes) opens the file once and
// shares it between its two copiers, counting them, but the stdout copier
// closes the file itself, not through the count: when stdout ends first
// (at the container's exit both end together), the stderr copier's last
// writes fail ("error copying stderr" in containerd's log) and are lost:
// the last words of a container that crashes. TestLogFile caught it, once
// in a clean-clone run. Here the shim gets the file as two plain paths
// that differ only in spelling, so it opens it once per stream, each
// O_APPEND, and each copier closes its own.
func logFile(p string) (cio.Creator, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	// The shim opens plain paths without O_CREATE.
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	f.Close()
	dir, base := filepath.Split(p)
	cfg := cio.Config{Stdout: p, Stderr: dir + "./" + base}
	return func(string) (cio.IO, error) { return logIO{cfg}, nil }, nil
}

// logIO is a task's IO that the shim does alone: nothing to wait for or
// close on this side.
type logIO struct{ cfg cio.Config }

func (l logIO) Config() cio.Config { return l.cfg }
func (logIO) Cancel()              {}
func (logIO) Wait()                {}
func (logIO) Close() error         { return nil }
