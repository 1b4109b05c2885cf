package wg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/warren-edge/warren/netcfg/link"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
)

// The modes of a node's mesh interface.
const (
	ModeKernel    = "kernel"
	ModeUserspace = "userspace"
)

// DefaultIface is the mesh interface's name on a node.
const DefaultIface = "warren-wg"

// DefaultMTU is the interface's MTU until the agent sets the one computed
// from the underlay: 1500 less WireGuard's overhead over IPv6.
const DefaultMTU = 1420

// Device is the mesh interface while Serve runs.
type Device struct {
	Name string
	Mode string

	dev  *device.Device // userspace only
	uapi net.Listener   // userspace only
	errs chan error
}

// Open makes the mesh interface name: a kernel WireGuard link if the kernel
// has WireGuard, else a TUN driven by the userspace implementation with
// its UAPI socket in /run/wireguard, so that wgctrl configures both the same
// way. An interface of that name that exists already is taken over in
// kernel mode (it survives its process); in userspace mode a leftover TUN is
// replaced. The device carries no key and no peer until the agent sets them.
func Open(name string, log *slog.Logger) (*Device, error) {
	if err := link.CheckIfname(name); err != nil {
		return nil, fmt.Errorf("wg: %w", err)
	}
	if l, err := netlink.LinkByName(name); err == nil && l.Type() == "wireguard" {
		return &Device{Name: name, Mode: ModeKernel}, nil
	} else if err == nil {
		// A leftover of a userspace device whose process died: a TUN
		// nobody reads.
		if err := netlink.LinkDel(l); err != nil {
			return nil, fmt.Errorf("wg: remove the stale interface %s: %w", name, err)
		}
	}
	err := netlink.LinkAdd(&netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: DefaultMTU}})
	if err == nil {
		return &Device{Name: name, Mode: ModeKernel}, nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EINVAL) {
		log.Info("kernel WireGuard refused; using the userspace implementation", "err", err)
	}
	return openUserspace(name, log)
}

func openUserspace(name string, log *slog.Logger) (*Device, error) {
	td, err := tun.CreateTUN(name, DefaultMTU)
	if err != nil {
		return nil, fmt.Errorf("wg: create the TUN device %s (is /dev/net/tun there, and does the daemon have CAP_NET_ADMIN?): %w", name, err)
	}
	f, err := ipc.UAPIOpen(name)
	if err != nil {
		td.Close()
		return nil, fmt.Errorf("wg: open the control socket /run/wireguard/%s.sock: %w", name, err)
	}
	lg := &device.Logger{
		Verbosef: func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...)) },
		Errorf:   func(format string, args ...any) { log.Warn(fmt.Sprintf(format, args...)) },
	}
	dev := device.NewDevice(td, conn.NewDefaultBind(), lg)
	l, err := ipc.UAPIListen(name, f)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("wg: listen on the control socket: %w", err)
	}
	d := &Device{Name: name, Mode: ModeUserspace, dev: dev, uapi: l, errs: make(chan error, 1)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				d.errs <- err
				return
			}
			go dev.IpcHandle(c)
		}
	}()
	return d, nil
}

// Wait returns when ctx ends or a userspace device fails.
func (d *Device) Wait(ctx context.Context) error {
	if d.dev == nil {
		<-ctx.Done()
		return nil
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-d.errs:
		return fmt.Errorf("wg: control socket: %w", err)
	case <-d.dev.Wait():
		return errors.New("wg: the userspace device stopped")
	}
}

// Close stops a userspace device (its interface goes with it). A kernel
// interface stays: the peers keep their sessions with nobody serving.
func (d *Device) Close() error {
	if d.dev == nil {
		return nil
	}
	d.uapi.Close()
	d.dev.Close()
	os.Remove("/run/wireguard/" + d.Name + ".sock")
	return nil
}
