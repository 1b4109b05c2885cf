// Package runtime is the small interface the agent drives containers through.
//
// The agent is a step function over this interface: it never imports
// containerd itself. The real implementation lives in
// daemons/agent/containerd; package runtime/fake holds an in-memory one for
// tests of the agent's logic.
//
// A container's ID is the Warren task ID. Labels carry the task's identity
// so that a restarted agent can adopt the containers it finds.
package runtime

import (
	"context"
	"errors"
	"io"
	"time"
)

// Sentinel errors. Implementations wrap them so the agent can turn them into
// a task status an operator can act on.
var (
	// ErrImageNotFound: the image is not on this node and could not be pulled.
	ErrImageNotFound = errors.New("runtime: image not found")
	// ErrNotFound: no container with that ID.
	ErrNotFound = errors.New("runtime: container not found")
	// ErrCommandNotFound: the container's executable does not exist in the image.
	ErrCommandNotFound = errors.New("runtime: executable not found in image")
	// ErrInvalidSpec: the runtime refused the container's settings (for
	// example a memory limit below what the kernel accepts).
	ErrInvalidSpec = errors.New("runtime: invalid container settings")
	// ErrUnavailable: the container engine does not answer.
	ErrUnavailable = errors.New("runtime: container engine unavailable")
	// ErrNotRunning: the container exists but runs no process (exec
	// needs one).
	ErrNotRunning = errors.New("runtime: container not running")
)

// Mount is a bind mount or a tmpfs in the container.
type Mount struct {
	Type        string // "bind" or "tmpfs"
	Source      string // host path for bind; ignored for tmpfs
	Destination string
	ReadOnly    bool
	// Size caps a tmpfs in bytes (0: the kernel's default); Mode is its
	// permission bits (0: 01777).
	Size int64
	Mode uint32
}

// ContainerSpec is everything the runtime needs to create one container.
type ContainerSpec struct {
	ID    string // the task ID; also the container ID in the engine
	Image string // a normalized image reference, e.g. docker.io/library/busybox:latest
	// Command replaces the image's entrypoint when set; Args replace the
	// image's cmd when set (docker's --entrypoint and trailing args).
	Command    []string
	Args       []string
	Env        []string // K=V, added to the image's environment
	WorkingDir string
	User       string
	Hostname   string
	Labels     map[string]string

	// NetNSPath is the network namespace the container joins (made by the
	// agent through netcfg). Empty means the runtime makes a fresh, empty one.
	NetNSPath string
	Mounts    []Mount

	ReadOnlyRoot bool
	MemoryLimit  int64  // bytes; 0 means none
	NanoCPUs     int64  // CPU limit in 1e-9 CPUs (quota over a 100 ms period); 0 means none
	CPUShares    uint64 // relative weight from the CPU reservation; 0 means default
	PidsLimit    int64  // pids.max of the container's cgroup; 0 means none

	// Confinement. Every container gets a cgroup namespace of its own, and
	// by default a seccomp filter (Docker's default profile) and
	// no_new_privs.
	//
	// Capabilities are the process's bounding, permitted and effective
	// sets, e.g. "CAP_CHOWN": nil means the runtime's default (Docker's
	// set), empty means none.
	Capabilities       []string
	SeccompUnconfined  bool // no seccomp filter
	AllowNewPrivileges bool // no_new_privs off: setuid binaries work

	// LogPath is the file the container's stdout and stderr are appended to.
	LogPath string
	// Group names the shim that serves this container: containers with the
	// same group share one shim process.
	Group string
}

// State of a container as the engine sees it.
type State string

const (
	StateCreated State = "created" // container exists, no process started
	StateRunning State = "running"
	StateStopped State = "stopped" // its process has exited
)

// Container is what List and Inspect report.
type Container struct {
	ID        string
	Image     string
	Labels    map[string]string
	State     State
	Pid       int
	StartedAt time.Time
	Exit      *Exit // set when State is StateStopped
}

// Exit describes how a container's process ended.
type Exit struct {
	ID        string
	Code      int
	At        time.Time
	OOMKilled bool
}

// Image is an image present on the node.
type Image struct {
	Name   string // normalized reference
	Digest string // manifest or index digest
	Size   int64  // bytes of its content on disk
}

// TermSize is a terminal's size in characters.
type TermSize struct{ Width, Height uint16 }

// ExecIO is the process of an exec session and its streams.
type ExecIO struct {
	Args []string
	// TTY gives the process a terminal of Size; its output then all goes
	// to Stdout.
	TTY  bool
	Size TermSize
	// Stdin is the process's input until it returns io.EOF (which closes
	// the process's stdin); nil: no input.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Resize carries new terminal sizes (TTY only); nil: none.
	Resize <-chan TermSize
}

// Runtime runs containers. All methods are safe for concurrent use.
type Runtime interface {
	// ImportImage loads an OCI-layout or docker-archive tarball and unpacks
	// what it holds. It returns the images it named.
	ImportImage(ctx context.Context, r io.Reader) ([]Image, error)
	// PullImage fetches ref from its registry and unpacks it.
	PullImage(ctx context.Context, ref string) (Image, error)
	// ListImages lists the images on this node.
	ListImages(ctx context.Context) ([]Image, error)
	// HasImage says whether ref is present (and unpacked).
	HasImage(ctx context.Context, ref string) (bool, error)

	// Create creates the container but starts no process.
	Create(ctx context.Context, spec ContainerSpec) error
	// Start starts the container's process. It returns once the process runs;
	// its exit is reported on Exits.
	Start(ctx context.Context, id string) error
	// Stop sends SIGTERM, waits up to grace, then SIGKILL, and returns how it
	// ended. Stopping a stopped container returns its recorded exit.
	Stop(ctx context.Context, id string, grace time.Duration) (Exit, error)
	// Delete removes the container, its process record and its filesystem.
	// Deleting a missing container is not an error.
	Delete(ctx context.Context, id string) error
	// List reports every container this runtime manages, adopted or not.
	List(ctx context.Context) ([]Container, error)
	// Inspect reports one container, or ErrNotFound.
	Inspect(ctx context.Context, id string) (Container, error)
	// Exec runs a command inside a running container and returns its exit
	// code and combined output (capped); used by exec health checks.
	Exec(ctx context.Context, id string, args []string, timeout time.Duration) (code int, output []byte, err error)
	// ExecStream runs a process inside a running container with its
	// streams attached (warrenctl service exec) and returns its exit code
	// once it ended and its output is written. When ctx ends first, the
	// process is killed. A container with no process gives ErrNotRunning;
	// a command that does not exist, ErrCommandNotFound.
	ExecStream(ctx context.Context, id string, x ExecIO) (code int, err error)

	// Exits delivers the exit of every container process this runtime runs,
	// including containers adopted from an earlier agent. The channel is
	// closed when the runtime is closed.
	Exits() <-chan Exit
	// Ping reports whether the engine answers.
	Ping(ctx context.Context) error
	Close() error
}
