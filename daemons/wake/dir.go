package wake

import (
	"context"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Dir follows the entries of a directory: through inotify while the
// directory can be watched, so that a loop waits for a file to change
// instead of reading it on a clock, and on a clock while it cannot (it
// does not exist yet, or inotify failed). A Dir belongs to one goroutine.
type Dir struct {
	path string
	w    *fsnotify.Watcher // nil: not watched
}

// NewDir follows the directory at path; call Watch before the first read.
func NewDir(path string) *Dir { return &Dir{path: filepath.Clean(path)} }

// Watch watches the directory if it is not watched (it may exist only
// now, or have come back). Call it before reading what a change would
// make stale: a change after it is an event.
func (d *Dir) Watch() {
	if d.w != nil {
		return
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return
	}
	if err := w.Add(d.path); err != nil {
		w.Close()
		return
	}
	d.w = w
}

// Wait waits until an entry that match accepts (by its cleaned path) is
// changed, until the next multiple of poll on the wall clock while the
// directory is not watched and of safety while it is, or until ctx ends
// (ok is false then). changed says a change ended the wait, or an
// overflowed queue, which may have lost one. When the directory went away
// or the watcher failed, it stops watching, so that the next Watch
// watches again.
func (d *Dir) Wait(ctx context.Context, poll, safety time.Duration, match func(path string) bool) (changed, ok bool) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	wait := poll
	if d.w != nil {
		events, errs, wait = d.w.Events, d.w.Errors, safety
	}
	timer := time.NewTimer(Until(wait))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, false
		case <-timer.C:
			return false, true
		case ev, open := <-events:
			switch name := filepath.Clean(ev.Name); {
			case !open:
				d.Close()
				return false, true
			case name == d.path && ev.Has(fsnotify.Remove|fsnotify.Rename):
				d.Close()
				return false, true
			case match(name):
				return true, true
			}
		case _, open := <-errs:
			if !open {
				d.Close()
			}
			return true, true
		}
	}
}

// Close stops watching.
func (d *Dir) Close() {
	if d.w != nil {
		d.w.Close()
		d.w = nil
	}
}
