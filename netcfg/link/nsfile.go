package link

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Sandbox network namespaces are files: a network namespace bind-mounted on
// an empty file keeps existing with no process in it, like "ip netns add"
// makes them in /run/netns.

// ensureSharedDir creates dir and makes it a shared mount point, as iproute2
// does with /run/netns, so that namespace mounts made in it later also show
// in mount namespaces copied from this one before (containers' runtimes).
//
// Unlike iproute2's, dir is root's alone (0700, made so if it was not): a
// namespace file that anyone may open lets anyone keep a removed task's
// namespace, and its veth pair, alive for as long as they like. Only root
// opens them: the agent, containerd and runc. The paths still show in
// /proc/self/mountinfo, but the directory cannot be passed.
func ensureSharedDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	madeMount := false
	for {
		err := unix.Mount("", dir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			return nil
		}
		// EINVAL: dir is not a mount point yet. Make it one, once.
		if !errors.Is(err, unix.EINVAL) || madeMount {
			return fmt.Errorf("make %s a shared mount: %w", dir, err)
		}
		if err := unix.Mount(dir, dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mount %s on itself: %w", dir, err)
		}
		madeMount = true
	}
}

// openNetNSFile opens the network namespace mounted at path. It returns an
// error matching fs.ErrNotExist if path does not exist, and errNotNetNS if
// path exists but has no network namespace mounted on it (left over by a
// crash between creating the file and mounting).
func openNetNSFile(path string) (netns.NsHandle, error) {
	h, err := netns.GetFromPath(path)
	if err != nil {
		return netns.None(), err
	}
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(h), &st); err != nil {
		h.Close()
		return netns.None(), err
	}
	if st.Type != unix.NSFS_MAGIC {
		h.Close()
		return netns.None(), errNotNetNS
	}
	if t, err := unix.IoctlRetInt(int(h), unix.NS_GET_NSTYPE); err != nil || t != unix.CLONE_NEWNET {
		h.Close()
		return netns.None(), errNotNetNS
	}
	return h, nil
}

var errNotNetNS = errors.New("not a network namespace")

// createNetNSFile creates a network namespace and bind-mounts it on path,
// which must not exist.
func createNetNSFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		return err
	}
	f.Close()
	err = onOwnThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount the namespace on %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// removeNetNSFile unmounts the namespace at path and removes the file. A
// missing file or one with nothing mounted is not an error. The namespace
// itself goes away once nothing else refers to it.
func removeNetNSFile(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
