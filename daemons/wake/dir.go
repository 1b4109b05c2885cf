package wake

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchDir watches dir for changes of its entries (inotify), so that a
// loop waits for a file to change instead of reading it on a clock; it
// returns nil when it cannot (dir does not exist yet, or inotify failed),
// and the loop then reads on its clock.
func WatchDir(dir string) *fsnotify.Watcher {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil
	}
	return w
}

// ForChange waits until an entry of dir that match accepts (by its
// cleaned path) is changed, until the next multiple of d on the wall
// clock, or until ctx ends (ok is false then). changed says a change
// ended the wait, or an overflowed queue, which may have lost one. *w is
// dir's watcher (WatchDir), or nil to wait for the clock alone; ForChange
// closes it and sets it to nil when dir went away or the watcher failed,
// so that the caller watches again.
func ForChange(ctx context.Context, w **fsnotify.Watcher, dir string, d time.Duration, match func(path string) bool) (changed, ok bool) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	if *w != nil {
		events, errs = (*w).Events, (*w).Errors
	}
	timer := time.NewTimer(Until(d))
	defer timer.Stop()
	drop := func() {
		(*w).Close()
		*w = nil
	}
	dir = filepath.Clean(dir)
	for {
		select {
		case <-ctx.Done():
			return false, false
		case <-timer.C:
			return false, true
		case ev, open := <-events:
			switch name := filepath.Clean(ev.Name); {
			case !open:
				drop()
				return false, true
			case name == dir && ev.Has(fsnotify.Remove|fsnotify.Rename):
				drop()
				return false, true
			case match(name):
				return true, true
			}
		case _, open := <-errs:
			if !open {
				drop()
			}
			return true, true
		}
	}
}
