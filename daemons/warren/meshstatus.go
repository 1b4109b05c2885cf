package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	wapi "github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/wake"
)

// unreachableSetter is told which nodes the mesh does not reach now
// (warren-dns's and warren-ingress's replicas).
type unreachableSetter interface{ SetUnreachable(nodes []string) }

// How often followMeshStatus reads the file: every meshStatusPoll while
// its directory cannot be watched (it does not exist yet, or inotify
// failed), and every meshStatusSafety while it is watched, in case an
// event was lost.
const (
	meshStatusPoll   = 2 * time.Second
	meshStatusSafety = time.Minute
)

// followMeshStatus tells the replica which nodes the agent's mesh status
// file says are out of reach: at the start, then whenever the file
// changes. It watches the file's directory with inotify (the agent
// replaces the file by a rename), so an idle node does not wake to read
// it. A file that is missing means none (no mesh, or an agent that has
// not synced yet); one that cannot be read or parsed keeps the last good
// answer and is logged once.
func followMeshStatus(ctx context.Context, log *slog.Logger, path string, r unreachableSetter) {
	followMeshStatusEvery(ctx, log, path, r, meshStatusPoll, meshStatusSafety)
}

func followMeshStatusEvery(ctx context.Context, log *slog.Logger, path string, r unreachableSetter, poll, safety time.Duration) {
	path = filepath.Clean(path)
	dir := filepath.Dir(path)
	var w *fsnotify.Watcher
	defer func() {
		if w != nil {
			w.Close()
		}
	}()
	var last []byte
	warned := false
	for {
		if w == nil {
			w = watchDir(dir) // before the read: a change after it is an event
		}
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			b, err = []byte(`{"unreachable":[]}`), nil
		case err != nil && !warned:
			log.Warn("mesh status", "err", err)
			warned = true
		}
		if err == nil && !bytes.Equal(b, last) {
			if reach, perr := wapi.ParseMeshReach(b); perr != nil {
				if !warned {
					log.Warn("mesh status", "file", path, "err", perr)
					warned = true
				}
			} else {
				if len(reach.Unreachable) > 0 {
					log.Info("nodes out of this node's reach: their tasks are left out of answers", "nodes", reach.Unreachable)
				}
				r.SetUnreachable(reach.Out())
				last, warned = b, false
			}
		}
		if !waitMeshStatus(ctx, &w, path, dir, poll, safety) {
			return
		}
	}
}

// waitMeshStatus waits for a change of the file at path, or for the next
// read by the clock; false means ctx is done. It drops the watcher (*w)
// when the directory went away or the watcher failed, so that the caller
// watches again.
func waitMeshStatus(ctx context.Context, w **fsnotify.Watcher, path, dir string, poll, safety time.Duration) bool {
	var events <-chan fsnotify.Event
	var errs <-chan error
	wait := poll
	if *w != nil {
		events, errs, wait = (*w).Events, (*w).Errors, safety
	}
	timer := time.NewTimer(wake.Until(wait))
	defer timer.Stop()
	drop := func() {
		(*w).Close()
		*w = nil
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
			return true
		case ev, ok := <-events:
			switch {
			case !ok:
				drop()
				return true
			case filepath.Clean(ev.Name) == path:
				return true
			case filepath.Clean(ev.Name) == dir && ev.Has(fsnotify.Remove|fsnotify.Rename):
				drop()
				return true
			}
		case _, ok := <-errs:
			// An overflowed queue may have lost the event: read again.
			if !ok {
				drop()
			}
			return true
		}
	}
}

// watchDir watches dir for changes of its entries, or returns nil when
// it cannot (dir does not exist yet, or inotify failed).
func watchDir(dir string) *fsnotify.Watcher {
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
