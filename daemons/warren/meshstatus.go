package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"time"

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
	dir := wake.NewDir(filepath.Dir(path))
	defer dir.Close()
	var last []byte
	warned := false
	for {
		dir.Watch() // before the read: a change after it is an event
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
		if _, ok := dir.Wait(ctx, poll, safety, func(p string) bool { return p == path }); !ok {
			return
		}
	}
}
