// Package containerd implements runtime.Runtime over a containerd daemon
// (1.6 or later) with the runc v2 shim.
//
// Each Warren container is a containerd container in one namespace
// ("warren" by default) with an overlayfs snapshot of its image. Its
// stdout and stderr go to a file the shim itself appends to, so logs keep
// flowing while the agent is down. Containers that share a ContainerSpec.Group
// share one shim process. Exits come from containerd's event stream, which
// is re-subscribed after containerd restarts; exits missed meanwhile are
// synthesized from the task list. README.md in this folder has the design.
package containerd

import (
	"context"
	"fmt"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/containerd/v2/pkg/namespaces"

	"github.com/warren-edge/warren/daemons/agent/runtime"
)

// Defaults for Options.
const (
	DefaultSocket      = "/run/containerd/containerd.sock"
	DefaultNamespace   = "warren"
	DefaultSnapshotter = "overlayfs"
	DefaultRuntime     = "io.containerd.runc.v2"
)

// GroupAnnotation is the OCI spec annotation by which containerd's runc v2
// shim (1.6 and later) puts several containers into one shim process.
const GroupAnnotation = "io.containerd.runc.v2.group"

// Labels this package sets on containers for itself. List and Inspect do
// not report them.
const (
	labelPrefix  = "io.warren.runtime."
	labelLogPath = labelPrefix + "log-path"
	labelGroup   = labelPrefix + "group"
)

// Options configure New. The zero value talks to the system containerd.
type Options struct {
	// Socket is containerd's gRPC address; DefaultSocket if empty.
	Socket string
	// Namespace holds Warren's containers and images; DefaultNamespace if empty.
	Namespace string
	// Snapshotter unpacks images and makes root filesystems;
	// DefaultSnapshotter if empty.
	Snapshotter string
	// Runtime is the containerd runtime (shim) name; DefaultRuntime if empty.
	// Grouping needs the runc v2 shim.
	Runtime string
	// OCIBinary is the OCI runtime the runc v2 shim runs: "" for runc (the
	// shim's default), or crun (a path, or a name on PATH), which speaks
	// runc's command line and starts a container for less CPU.
	// ChooseOCIBinary picks it; New checks that it can be found.
	OCIBinary string
	// FIFODir is where Exec makes the FIFOs of its output; containerd's
	// default (/run/containerd/fifo) if empty.
	FIFODir string
	// PlainHTTPRegistries are registry hosts ("host:port") pulled over plain
	// HTTP. localhost, 127.0.0.1 and ::1 always are.
	PlainHTTPRegistries []string
	// ConnectTimeout bounds how long New waits for containerd to answer;
	// 10 s if zero.
	ConnectTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between attempts to
	// re-subscribe to containerd's events; 100 ms and 2 s if zero.
	ReconnectMin, ReconnectMax time.Duration
	// CgroupRoot is where the cgroup hierarchies are mounted, read to tell
	// an OOM kill from another SIGKILL; /sys/fs/cgroup if empty.
	CgroupRoot string
}

func (o Options) withDefaults() Options {
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.Snapshotter == "" {
		o.Snapshotter = DefaultSnapshotter
	}
	if o.Runtime == "" {
		o.Runtime = DefaultRuntime
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = 100 * time.Millisecond
	}
	if o.ReconnectMax <= 0 {
		o.ReconnectMax = 2 * time.Second
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = o.ReconnectMin
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = "/sys/fs/cgroup"
	}
	return o
}

// Runtime is a runtime.Runtime over containerd. Its methods are safe for
// concurrent use.
type Runtime struct {
	opts     Options
	client   *containerd.Client
	resolver remotes.Resolver

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	exits *exitQueue
	state *taskState

	closeOnce sync.Once
}

var _ runtime.Runtime = (*Runtime)(nil)

// New connects to containerd and subscribes to its task events. It returns
// once the subscription is live, so no exit of a container started after
// New returns can be missed; if containerd does not answer within
// Options.ConnectTimeout it returns an error wrapping runtime.ErrUnavailable.
func New(ctx context.Context, opts Options) (*Runtime, error) {
	opts = opts.withDefaults()
	if err := checkOCIBinary(opts.OCIBinary); err != nil {
		return nil, err
	}
	client, err := containerd.New(opts.Socket,
		containerd.WithDefaultNamespace(opts.Namespace),
		containerd.WithTimeout(opts.ConnectTimeout))
	if err != nil {
		return nil, fmt.Errorf("containerd: connect %s: %w: %w", opts.Socket, runtime.ErrUnavailable, err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &Runtime{
		opts:     opts,
		client:   client,
		resolver: newResolver(opts.PlainHTTPRegistries),
		ctx:      rctx,
		cancel:   cancel,
		exits:    newExitQueue(),
		state:    newTaskState(),
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.exits.run(rctx)
	}()

	synced := make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.watchEvents(synced)
	}()

	wait, cancelWait := context.WithTimeout(ctx, opts.ConnectTimeout)
	defer cancelWait()
	select {
	case <-synced:
		return r, nil
	case <-wait.Done():
		r.Close()
		return nil, fmt.Errorf("containerd: no answer from %s within %v (is containerd running?): %w: %w",
			opts.Socket, opts.ConnectTimeout, runtime.ErrUnavailable, wait.Err())
	}
}

// Client returns the underlying containerd client, for tests and tools.
func (r *Runtime) Client() *containerd.Client { return r.client }

// Namespace returns the containerd namespace this runtime manages.
func (r *Runtime) Namespace() string { return r.opts.Namespace }

// nsctx returns ctx in this runtime's containerd namespace.
func (r *Runtime) nsctx(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.opts.Namespace)
}

// Ping asks containerd for its version.
func (r *Runtime) Ping(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
	}
	if _, err := r.client.Version(r.nsctx(ctx)); err != nil {
		return fmt.Errorf("containerd: ping %s: %w: %w", r.opts.Socket, runtime.ErrUnavailable, err)
	}
	return nil
}

// Close stops the event subscription, closes the Exits channel and the
// connection. Containers keep running.
func (r *Runtime) Close() error {
	var err error
	r.closeOnce.Do(func() {
		r.cancel()
		r.wg.Wait()
		r.exits.close()
		if cerr := r.client.Close(); cerr != nil {
			err = fmt.Errorf("containerd: close: %w", cerr)
		}
	})
	return err
}

// Exits delivers every container exit seen in this namespace.
func (r *Runtime) Exits() <-chan runtime.Exit { return r.exits.out }

func newResolver(plain []string) remotes.Resolver {
	plainSet := map[string]bool{}
	for _, h := range plain {
		plainSet[h] = true
	}
	return docker.NewResolver(docker.ResolverOptions{
		Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(func(host string) (bool, error) {
			if plainSet[host] {
				return true, nil
			}
			return docker.MatchLocalhost(host)
		})),
	})
}
