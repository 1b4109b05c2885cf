package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"golang.org/x/sys/unix"
)

// The settings of the agent's --oci-runtime.
const (
	OCIRuntimeAuto = "auto" // crun where it is installed and can run, else runc
	OCIRuntimeRunc = "runc"
	OCIRuntimeCrun = "crun"
)

// ChooseOCIBinary turns an --oci-runtime setting into Options.OCIBinary
// ("" for runc) and says why, for the log. crun is a C program: it starts
// a container for about 25-40 % less CPU than runc, a Go program that pays
// for its runtime's start on every create, start and delete (measured with
// BenchmarkParallelStart). "auto" takes crun when it is installed and the
// machine's cgroup layout lets it run; asking for crun where it cannot run
// is an error that says why.
func ChooseOCIBinary(setting, cgroupRoot string) (binary, why string, err error) {
	if cgroupRoot == "" {
		cgroupRoot = "/sys/fs/cgroup"
	}
	switch setting {
	case OCIRuntimeRunc:
		return "", "runc, as configured", nil
	case OCIRuntimeCrun, OCIRuntimeAuto:
	default:
		return "", "", fmt.Errorf("containerd: OCI runtime %q: want %s, %s or %s", setting, OCIRuntimeAuto, OCIRuntimeRunc, OCIRuntimeCrun)
	}
	path, err := exec.LookPath("crun")
	if err == nil {
		err = crunCgroupsOK(cgroupRoot)
	}
	switch {
	case err == nil:
		return path, "crun (" + setting + ")", nil
	case setting == OCIRuntimeCrun:
		return "", "", fmt.Errorf("containerd: OCI runtime crun: %w (install it, or use --oci-runtime=runc)", err)
	}
	return "", "runc: crun cannot be used: " + err.Error(), nil
}

// crunCgroupsOK says whether crun (1.8) can run containers with the
// cgroups mounted at root: pure cgroup v2 or v1 can, but a hybrid layout
// with any controller enabled on its cgroup2 hierarchy cannot ("cgroups in
// hybrid mode not supported, drop all controllers from cgroupv2").
func crunCgroupsOK(root string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		return fmt.Errorf("cgroups at %s: %w", root, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(root, "unified", "cgroup.controllers"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cgroups at %s: %w", root, err)
	}
	if c := strings.TrimSpace(string(b)); c != "" {
		return fmt.Errorf("the cgroups are hybrid with controllers on cgroup2 (%s), which crun refuses; boot with pure cgroup v2", c)
	}
	return nil
}

// checkOCIBinary says whether the OCI runtime binary can be found: the
// shim would only say so when the first container starts.
func checkOCIBinary(name string) error {
	if name == "" {
		return nil
	}
	if _, err := exec.LookPath(name); err != nil {
		return fmt.Errorf("containerd: OCI runtime %q: %w (install it, or leave the setting empty for runc)", name, err)
	}
	return nil
}

// runtimeOptions are the shim options each container is created with: the
// OCI runtime binary, when it is not runc. containerd keeps them with the
// container, so a container goes on being run by the binary it was made
// with, whatever the agent is configured with later.
func (r *Runtime) runtimeOptions() any {
	if r.opts.OCIBinary == "" {
		return nil
	}
	return &runcoptions.Options{BinaryName: r.opts.OCIBinary}
}

// ociVersion writes the spec version crun accepts. crun 1.8 (Debian 12)
// refuses every ociVersion but 1.0.x ("unknown version specified"), and
// containerd's client writes its runtime-spec package's (1.2); none of
// what Warren sets needs more than 1.0.2. runc ignores the version.
func (r *Runtime) ociVersion(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if r.opts.OCIBinary != "" {
		s.Version = "1.0.2"
	}
	return nil
}
