package nspawn

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Daemons are the Warren units a host runs, in start order.
var Daemons = []string{"warren-manager", "warren-agent", "warren-dns", "warren-ingress"}

// Running lists the Warren daemons this cluster runs (the ones the binary
// has).
func (c *Cluster) Running() []string {
	var out []string
	for _, d := range Daemons {
		masked := false
		for _, m := range c.masked {
			if d == "warren-"+m {
				masked = true
			}
		}
		if !masked {
			out = append(out, d)
		}
	}
	return out
}

// MainPID is a service's main process (in the build machine's PID
// namespace it is a different number; this is the host's own).
func (h *Host) MainPID(ctx context.Context, unit string) (int, error) {
	m, err := h.Unit(ctx, unit, "MainPID")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(m["MainPID"])
}

// WaitActive waits until unit is active (for Type=notify: READY=1 came).
func (h *Host) WaitActive(ctx context.Context, unit string) (map[string]string, error) {
	return h.WaitUnit(ctx, unit, []string{"ActiveState", "SubState", "MainPID", "NRestarts", "Result", "ActiveEnterTimestampMonotonic"},
		func(m map[string]string) bool { return m["ActiveState"] == "active" })
}

// ReadySeconds is how long after the host's last boot began unit became
// active (READY=1 for Type=notify units): its ActiveEnterTimestampMonotonic
// against CLOCK_MONOTONIC at nspawn's start, the same clock.
func (h *Host) ReadySeconds(ctx context.Context, unit string) (float64, error) {
	m, err := h.WaitActive(ctx, unit)
	if err != nil {
		return 0, err
	}
	us, err := strconv.ParseInt(m["ActiveEnterTimestampMonotonic"], 10, 64)
	if err != nil || us == 0 {
		return 0, fmt.Errorf("nspawn: %s: %s has no ActiveEnterTimestampMonotonic (%q)", h.Spec.Name, unit, m["ActiveEnterTimestampMonotonic"])
	}
	return (time.Duration(us)*time.Microsecond - h.Launched()).Seconds(), nil
}

// RSSKiB is the resident memory of a unit's main process, from inside the
// host.
func (h *Host) RSSKiB(ctx context.Context, unit string) (int, error) {
	pid, err := h.MainPID(ctx, unit)
	if err != nil {
		return 0, err
	}
	if pid == 0 {
		return 0, fmt.Errorf("nspawn: %s: %s has no main process", h.Spec.Name, unit)
	}
	out, err := h.Exec(ctx, fmt.Sprintf("grep VmRSS /proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(out)
	if len(f) < 2 {
		return 0, fmt.Errorf("nspawn: %s: VmRSS of %s: %q", h.Spec.Name, unit, out)
	}
	return strconv.Atoi(f[1])
}

// CopyIn writes a file into the running host's root.
func (h *Host) CopyIn(path string, data []byte, mode os.FileMode) error {
	full := filepath.Join(h.root, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, data, mode)
}

// SSHKey makes an ed25519 key pair in dir and returns the private key's
// path and the public key line.
func SSHKey(dir string) (string, string, error) {
	key := filepath.Join(dir, "id_ed25519")
	out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "warren-qa", "-f", key).CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	return key, strings.TrimSpace(string(pub)), err
}

// SSH runs a command on a host over SSH from the test's side of the
// network, as user, with the key.
func (c *Cluster) SSH(ctx context.Context, key, user string, h *Host, command string) (string, error) {
	return c.LanExec(ctx, "ssh", "-i", key,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
		user+"@"+h.Addr.String(), command)
}
