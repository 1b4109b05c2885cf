package nspawn

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQemuDiskImageBoots boots the disk image (kernel and initramfs from
// `make image-disk`) in qemu with software emulation and waits for the
// serial console to report warren-manager started, which for a Type=notify
// unit means its READY=1 came. Slow: `make qa-slow` only.
func TestQemuDiskImageBoots(t *testing.T) {
	if why := Enabled("qemu"); why != "" {
		t.Skip(why)
	}
	p, err := DefaultPaths()
	if err != nil {
		t.Fatal(err)
	}
	img := DefaultDiskImage(p.Repo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// The journal goes to the serial console: systemd logs each unit's
	// "Started UNIT - DESCRIPTION" there in full (status lines are cut to
	// the console width).
	q, err := BootQemu(ctx, img, "systemd.journald.forward_to_console=1", "systemd.show_status=0")
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	defer func() {
		dir := filepath.Join(p.Logs, t.Name())
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "console.log"), []byte(q.Console()), 0o644)
		if t.Failed() {
			t.Logf("console in %s; last lines:\n%s", dir, lastLines(q.Console(), 40))
		}
	}()
	kernel, err := q.WaitFor(ctx, "Run /init as init process")
	if err != nil {
		t.Fatal(err)
	}
	root, err := q.WaitFor(ctx, "systemd[1]: ")
	if err != nil {
		t.Fatal(err)
	}
	ready, err := q.WaitFor(ctx, "Started warren-manager.service")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("qemu (TCG): initramfs at %.1f s, systemd at %.1f s, warren-manager READY at %.1f s (cloud-init ran: %v)",
		kernel.Seconds(), root.Seconds(), ready.Seconds(), strings.Contains(q.Console(), "cloud-init["))
	if c := q.Console(); strings.Contains(c, "Failed to start warren-") || strings.Contains(c, "Dependency failed for warren-") {
		t.Errorf("a Warren unit failed to start on the console:\n%s", lastLines(q.Console(), 40))
	}
}
