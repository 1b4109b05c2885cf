package link

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread that is in the network namespace ns and returns
// fn's error. The caller's thread is never moved: fn runs on a new goroutine
// locked to its thread, which goes back to its original namespace afterwards.
// If it cannot, the thread stays locked and the Go runtime ends it with the
// goroutine, so no goroutine ever runs in a namespace it did not ask for.
//
// Only fn itself runs in ns: goroutines that fn starts do not. Sockets that
// fn opens stay in ns and may be used from any goroutine.
func Do(ns netns.NsHandle, fn func() error) error {
	return onOwnThread(func() error {
		if err := unix.Setns(int(ns), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		return fn()
	})
}

// NewNetNS creates a network namespace and returns a handle to it. The
// namespace lives as long as the handle (or anything else) refers to it;
// no thread is left in it.
func NewNetNS() (netns.NsHandle, error) {
	h := netns.None()
	err := onOwnThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		var err error
		h, err = netns.Get()
		return err
	})
	if err != nil {
		h.Close()
		return netns.None(), fmt.Errorf("link: new network namespace: %w", err)
	}
	return h, nil
}

// onOwnThread runs fn, which may change its thread's network namespace, on a
// goroutine locked to an OS thread, and puts the thread back into the
// namespace it had before. See Do.
func onOwnThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get the thread's network namespace: %w", err)
			return
		}
		defer orig.Close()
		ferr := fn()
		if err := unix.Setns(int(orig), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: it dies with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("return the thread to its network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
