package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warren-edge/warren/daemons/agent/runtime"
)

// MaxExecOutput is how much of an exec'd command's output Exec returns.
const MaxExecOutput = 4096

// ErrExecTimeout is wrapped by Exec's error when the command outlived its
// timeout and was killed.
var ErrExecTimeout = errors.New("containerd: exec timed out")

// Exec runs args in the running container id, with the environment, user
// and working directory of the container's process, and returns its exit
// code and the first MaxExecOutput bytes of its stdout and stderr. A
// command still running after timeout (if positive) is killed and Exec
// returns an error wrapping ErrExecTimeout with the output so far.
func (r *Runtime) Exec(ctx context.Context, id string, args []string, timeout time.Duration) (int, []byte, error) {
	if len(args) == 0 {
		return -1, nil, fmt.Errorf("containerd: exec in %s: no command: %w", id, runtime.ErrInvalidSpec)
	}
	ctx = r.nsctx(ctx)
	out := &capBuffer{max: MaxExecOutput}
	proc, statusC, done, err := r.startExec(ctx, id, false, func(p *specs.Process) {
		p.Args, p.Terminal, p.ConsoleSize = args, false, nil
	}, cio.WithStreams(nil, out, out))
	if err != nil {
		return -1, nil, err
	}
	defer done()

	var timeoutC <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timeoutC = t.C
	}
	var es containerd.ExitStatus
	select {
	case es = <-statusC:
	case <-timeoutC:
		proc.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		<-statusC
		waitIO(proc)
		return -1, out.Bytes(), fmt.Errorf("containerd: exec %q in %s: %w after %v", args, id, ErrExecTimeout, timeout)
	case <-ctx.Done():
		proc.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		return -1, out.Bytes(), fmt.Errorf("containerd: exec %q in %s: %w", args, id, ctx.Err())
	}
	if err := es.Error(); err != nil {
		return -1, out.Bytes(), wrap("exec in "+id, err)
	}
	waitIO(proc)
	return int(es.ExitCode()), out.Bytes(), nil
}

// ExecStream runs x.Args in the running container id as Exec does (the
// environment, user and working directory of the container's process),
// with the session's streams attached: a terminal with x.TTY (resized
// from x.Resize), stdin from x.Stdin when set (closed in the process when
// it returns io.EOF). It returns the exit code once the process ended and
// its output is copied (a background child that holds the output open
// gets two seconds), or kills the process when ctx ends first.
func (r *Runtime) ExecStream(ctx context.Context, id string, x runtime.ExecIO) (int, error) {
	if len(x.Args) == 0 {
		return -1, fmt.Errorf("containerd: exec in %s: no command: %w", id, runtime.ErrInvalidSpec)
	}
	ctx = r.nsctx(ctx)

	var stdin io.Reader
	stdinEOF := make(chan struct{})
	if x.Stdin != nil {
		stdin = &eofSignal{r: x.Stdin, eof: stdinEOF}
	}
	// The shim wants both outputs (it fails to open an empty FIFO path
	// for one): what the caller does not take is discarded.
	stdout, stderr := x.Stdout, x.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil || x.TTY {
		stderr = io.Discard
	}
	copts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr)}
	if x.TTY {
		copts = append(copts, cio.WithTerminal)
	}
	proc, statusC, done, err := r.startExec(ctx, id, true, func(p *specs.Process) {
		p.Args, p.Terminal, p.ConsoleSize = x.Args, x.TTY, nil
		if x.TTY && x.Size.Width > 0 && x.Size.Height > 0 {
			p.ConsoleSize = &specs.Box{Width: uint(x.Size.Width), Height: uint(x.Size.Height)}
		}
	}, copts...)
	if err != nil {
		return -1, err
	}
	defer done()
	for {
		select {
		case es := <-statusC:
			if err := es.Error(); err != nil {
				return -1, wrap("exec in "+id, err)
			}
			drainIO(proc, 2*time.Second)
			return int(es.ExitCode()), nil
		case <-stdinEOF:
			stdinEOF = nil
			if err := proc.CloseIO(ctx, containerd.WithStdinCloser); err != nil && ctx.Err() == nil {
				return -1, wrap("exec in "+id+": close stdin", err)
			}
		case sz, ok := <-x.Resize:
			if !ok {
				x.Resize = nil
				continue
			}
			if x.TTY && sz.Width > 0 && sz.Height > 0 {
				proc.Resize(ctx, uint32(sz.Width), uint32(sz.Height))
			}
		case <-ctx.Done():
			proc.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
			return -1, fmt.Errorf("containerd: exec %q in %s: %w", x.Args, id, ctx.Err())
		}
	}
}

// startExec starts a process in the container id (ctx in the runtime's
// namespace): the container's own process spec (its environment, user and
// working directory) changed by set, with copts' streams. mustRun refuses
// a container whose task exists but is not running. done kills and
// deletes the process; call it once the process has ended or been given
// up on.
func (r *Runtime) startExec(ctx context.Context, id string, mustRun bool, set func(*specs.Process), copts ...cio.Opt) (containerd.Process, <-chan containerd.ExitStatus, func(), error) {
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, nil, nil, r.notFound("exec in", id, err)
	}
	task, err := c.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, nil, nil, fmt.Errorf("containerd: exec in %s: %w", id, runtime.ErrNotRunning)
	}
	if err != nil {
		return nil, nil, nil, wrap("exec in "+id, err)
	}
	if mustRun {
		if st, err := task.Status(ctx); err != nil {
			return nil, nil, nil, wrap("exec in "+id, err)
		} else if st.Status != containerd.Running {
			return nil, nil, nil, fmt.Errorf("containerd: exec in %s (%s): %w", id, st.Status, runtime.ErrNotRunning)
		}
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return nil, nil, nil, wrap("exec in "+id, err)
	}
	pspec := *spec.Process
	set(&pspec)
	if r.opts.FIFODir != "" {
		copts = append(copts, cio.WithFIFODir(r.opts.FIFODir))
	}
	proc, err := task.Exec(ctx, "exec-"+randomHex(8), &pspec, cio.NewCreator(copts...))
	if err != nil {
		return nil, nil, nil, classifyStartErr("exec in "+id, firstArg(pspec.Args), err)
	}
	done := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		proc.Delete(dctx, containerd.WithProcessKill)
	}
	statusC, err := proc.Wait(ctx)
	if err != nil {
		done()
		return nil, nil, nil, wrap("exec in "+id, err)
	}
	if err := proc.Start(ctx); err != nil {
		done()
		return nil, nil, nil, classifyStartErr("exec in "+id, firstArg(pspec.Args), err)
	}
	return proc, statusC, done, nil
}

// eofSignal closes eof when r returns io.EOF.
type eofSignal struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofSignal) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}

// drainIO waits up to d for the output copy to finish, then cancels it.
func drainIO(p containerd.Process, d time.Duration) {
	done := make(chan struct{})
	go func() { p.IO().Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		p.IO().Cancel()
	}
}

// waitIO waits briefly for the output copy to finish: a background child
// of the command may hold its output open for much longer.
func waitIO(p containerd.Process) {
	done := make(chan struct{})
	go func() { p.IO().Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(500 * time.Millisecond):
		p.IO().Cancel()
	}
}

// capBuffer keeps the first max bytes written to it and discards the rest,
// never blocking the writer.
type capBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (c *capBuffer) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - len(c.b); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		c.b = append(c.b, p[:room]...)
	}
	return len(p), nil
}

func (c *capBuffer) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.b...)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
