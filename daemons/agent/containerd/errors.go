package containerd

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-edge/warren/daemons/agent/runtime"
)

// MinMemoryLimit is the smallest memory limit Create accepts. runc writes
// the limit while its own init process already sits in the container's
// cgroup, and the kernel refuses a limit below that usage: about 1.8 to
// 2.5 MB with runc 1.1.5 on cgroup v1 (2 MiB failed 11 times in 15, 2.5 MiB
// never). 4 MiB leaves room for that and for the container's first process.
const MinMemoryLimit = 4 << 20

// minCPUQuota is the kernel's smallest CFS quota, in microseconds.
const minCPUQuota = 1000

// cpuPeriod is the CFS period NanoCPUs are expressed over, in microseconds.
const cpuPeriod = 100000

// execNotFound matches runc's message for a missing executable, in the
// forms runc 1.1 gives for a name looked up on PATH and for a path, and
// crun's (1.8), which says the same for both.
var execNotFound = regexp.MustCompile("exec: \"([^\"]*)\": (executable file not found in \\$PATH|stat [^:]*: no such file or directory|no such file or directory)" +
	"|executable file `([^`]*)` not found in \\$PATH: No such file or directory")

// execDenied matches runc's message for a command that is not executable,
// and crun's, which does not name the command.
var execDenied = regexp.MustCompile(`exec: "([^"]*)": permission denied|open executable: (Permission denied)`)

// classifyStartErr turns the error of creating or starting a process into
// one wrapping a runtime sentinel when it is one the agent can act on.
// what names the operation and id for the message; cmd is the command
// that was started, for messages that do not name it ("" if unknown).
func classifyStartErr(what, cmd string, err error) error {
	msg := err.Error()
	if m := execNotFound.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("containerd: %s: command %q not found in the image: %w", what, m[1]+m[3], runtime.ErrCommandNotFound)
	}
	if m := execDenied.FindStringSubmatch(msg); m != nil {
		if m[1] != "" {
			cmd = m[1]
		}
		return fmt.Errorf("containerd: %s: command %q in the image is not executable: %w", what, cmd, runtime.ErrCommandNotFound)
	}
	if strings.Contains(msg, "unable to set memory limit") || strings.Contains(msg, "OOM-killed") ||
		strings.Contains(msg, "memory.limit_in_bytes") || strings.Contains(msg, "memory.max") {
		return fmt.Errorf("containerd: %s: the memory limit is too low for the container to start (at least %d MiB is needed): %w: %w",
			what, MinMemoryLimit>>20, runtime.ErrInvalidSpec, errors.New(runcMessage(msg)))
	}
	return wrap(what, err)
}

// shimStartFailed says whether creating a task failed because its shim
// did not come up, or was the service's shim that exited with its last
// task while the new one joined it ("failed to create shim task: ttrpc:
// closed", seen in stop-first updates): a failure worth another try,
// which starts a new shim.
func shimStartFailed(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "failed to start shim") ||
		strings.Contains(msg, "failed to create shim task") && strings.Contains(msg, "ttrpc: closed")
}

// wrap adds context to err and, when containerd itself is unreachable,
// runtime.ErrUnavailable.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if isUnavailable(err) {
		return fmt.Errorf("containerd: %s: %w: %w", what, runtime.ErrUnavailable, err)
	}
	return fmt.Errorf("containerd: %s: %w", what, err)
}

// isUnavailable says whether err means containerd did not answer.
func isUnavailable(err error) bool {
	if errdefs.IsUnavailable(err) {
		return true
	}
	if s, ok := status.FromError(errors.Unwrap(err)); ok && s.Code() == codes.Unavailable {
		return true
	}
	if s, ok := status.FromError(err); ok && s.Code() == codes.Unavailable {
		return true
	}
	return strings.Contains(err.Error(), "connection refused") && !errors.Is(err, context.Canceled)
}

// runcMessage trims the layers of context containerd puts around runc's
// own message ("failed to create shim task: OCI runtime create failed: ...").
func runcMessage(msg string) string {
	for _, p := range []string{"error during container init: ", "unable to start container process: "} {
		if i := strings.LastIndex(msg, p); i >= 0 {
			msg = msg[i+len(p):]
			break
		}
	}
	return strings.TrimSuffix(msg, ": unknown")
}
