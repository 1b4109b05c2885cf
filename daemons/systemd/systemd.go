// Package systemd is how every Warren daemon lives under systemd: it takes
// its sockets from socket activation by name (or binds them itself when run
// by hand), reports READY=1, STATUS= and STOPPING=1, and sends WATCHDOG=1
// only while the daemon's own health check passes, so a hung daemon is
// restarted.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

var (
	once     sync.Once
	inherits map[string][]*os.File
)

// inherited returns the file descriptors systemd passed, by name. They are
// read once; the LISTEN_* variables are then cleared so children do not
// see them.
func inherited() map[string][]*os.File {
	once.Do(func() {
		inherits = activation.FilesWithNames()
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	})
	return inherits
}

// inheritedFile returns the first socket systemd passed under name.
func inheritedFile(name string) (*os.File, bool) {
	if fs := inherited()[name]; len(fs) > 0 {
		return fs[0], true
	}
	return nil, false
}

// inheritedListener makes a listener of the stream socket systemd passed
// under name; ok says whether there was one.
func inheritedListener(name string) (l net.Listener, ok bool, err error) {
	f, ok := inheritedFile(name)
	if !ok {
		return nil, false, nil
	}
	l, err = net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, true, fmt.Errorf("systemd: socket %q from systemd: %w", name, err)
	}
	return l, true, nil
}

// Has says whether systemd passed a socket of that name.
func Has(name string) bool { return len(inherited()[name]) > 0 }

// Activated says whether systemd passed any sockets.
func Activated() bool { return len(inherited()) > 0 }

// UnixListener returns the listener systemd passed under name, or binds a
// unix socket at path itself: a stale socket file is replaced, a live one
// is an error. A socket it binds gets mode 0660 and, if group "warren"
// exists, that group.
func UnixListener(name, path string) (net.Listener, error) {
	return UnixListenerFor(name, path, "warren")
}

// UnixListenerFor is UnixListener for a socket of group (when the daemon
// binds it itself).
func UnixListenerFor(name, path, group string) (net.Listener, error) {
	if l, ok, err := inheritedListener(name); ok {
		return l, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("systemd: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
		c.Close()
		return nil, fmt.Errorf("systemd: %s is in use by a running daemon: stop it first, or pick another path", path)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("systemd: listen on %s: %w", path, err)
	}
	os.Chmod(path, 0o660)
	if g, err := user.LookupGroup(group); err == nil {
		if gid, err := strconv.Atoi(g.Gid); err == nil {
			os.Chown(path, 0, gid)
		}
	}
	return l, nil
}

// TCPListener returns the stream listener systemd passed under name, or
// listens on addr.
func TCPListener(name, addr string) (net.Listener, error) {
	if l, ok, err := inheritedListener(name); ok {
		return l, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("systemd: listen on %s: %w", addr, err)
	}
	return l, nil
}

// PacketConn returns the datagram socket systemd passed under name, or
// listens on addr (udp).
func PacketConn(name, addr string) (net.PacketConn, error) {
	if f, ok := inheritedFile(name); ok {
		pc, err := net.FilePacketConn(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("systemd: socket %q from systemd: %w", name, err)
		}
		return pc, nil
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("systemd: listen on %s/udp: %w", addr, err)
	}
	return pc, nil
}

// Notify sends a state line to systemd ("READY=1", "STATUS=..."); it does
// nothing when not run by systemd.
func Notify(state string) {
	daemon.SdNotify(false, state)
}

// Ready reports READY=1 with a status line.
func Ready(status string) { Notify("READY=1\nSTATUS=" + status) }

// Status reports a one-line state.
func Status(status string) { Notify("STATUS=" + status) }

// Stopping reports STOPPING=1.
func Stopping() { Notify("STOPPING=1\nSTATUS=stopping") }

// Watchdog pings systemd's watchdog at half its interval while check
// passes, and updates STATUS= from status each time. It returns when ctx
// ends. Without a watchdog (not under systemd, or no WatchdogSec=) it
// only updates the status every 10 s.
func Watchdog(ctx context.Context, log *slog.Logger, check func(context.Context) error, status func() string) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		interval = 20 * time.Second
	}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cctx, cancel := context.WithTimeout(ctx, interval/3)
		err := check(cctx)
		cancel()
		if err != nil {
			if !failing && !errors.Is(err, context.Canceled) {
				log.Error("health check failed; not feeding the watchdog", "err", err)
			}
			failing = true
			Status("unhealthy: " + err.Error())
			continue
		}
		if failing {
			log.Info("health check passes again")
			failing = false
		}
		Notify("WATCHDOG=1\nSTATUS=" + status())
	}
}

// Signals are the signals that stop a daemon.
var Signals = []os.Signal{syscall.SIGTERM, syscall.SIGINT}
