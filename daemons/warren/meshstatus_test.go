package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/warren-edge/warren/netcfg/atomicfile"
)

type reachSetter chan []string

func (r reachSetter) SetUnreachable(nodes []string) { r <- slices.Clone(nodes) }

// The follower sees each change of the mesh status file through inotify:
// with its clock reads an hour apart, only the watch can deliver them. A
// missing file means no node is out of reach; a bad one is skipped.
func TestFollowMeshStatusWatches(t *testing.T) {
	run := t.TempDir()
	path := filepath.Join(run, "mesh-status.json")
	want, write := followForTest(t, path, time.Hour)
	want("no file yet")
	write(`{"unreachable":["n1"]}`)
	want("the file made", "n1")
	write(`{"unreachable":["n2"],"not_peers":["n3"]}`)
	want("the file replaced", "n2", "n3")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	want("the file removed")
	write(`not json`)
	write(`{"unreachable":["n5"]}`)
	want("a bad file, then a good one", "n5")
}

// The directory may come after the follower starts, and go away and come
// back: it is read by the clock (50 ms here) until it can be watched.
func TestFollowMeshStatusDirectoryComesLater(t *testing.T) {
	run := filepath.Join(t.TempDir(), "warren")
	path := filepath.Join(run, "mesh-status.json")
	want, write := followForTest(t, path, 50*time.Millisecond)
	want("no directory yet")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	write(`{"unreachable":["n1"]}`)
	want("the directory and the file made", "n1")
	if err := os.RemoveAll(run); err != nil {
		t.Fatal(err)
	}
	want("the directory removed")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	write(`{"unreachable":["n4"]}`)
	want("the directory made again", "n4")
	write(`{"unreachable":["n6"]}`)
	want("the file replaced in it", "n6")
}

// followForTest runs followMeshStatusEvery on path, reading it by the
// clock every poll while its directory is not watched and once an hour
// while it is, until the test ends. want waits for what the replica is
// told next; write replaces the file as the agent does.
func followForTest(t *testing.T, path string, poll time.Duration) (want func(what string, nodes ...string), write func(string)) {
	got := make(reachSetter, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { followMeshStatusEvery(ctx, log, path, got, poll, time.Hour); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	want = func(what string, nodes ...string) {
		t.Helper()
		select {
		case g := <-got:
			if !slices.Equal(g, nodes) {
				t.Fatalf("%s: the replica was told %v; want %v", what, g, nodes)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the replica was told nothing in 10 s; want %v", what, nodes)
		}
	}
	write = func(s string) {
		t.Helper()
		if err := atomicfile.Write(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return want, write
}
