package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	ctrd "github.com/warren-edge/warren/daemons/agent/containerd"
	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/qa/testimage"
)

// floor runs containers through containerd and an OCI runtime alone, in a
// containerd namespace of its own on a bench node's containerd: the floor
// under Warren's figures for starting containers. Its containers get no
// network namespace of Warren's (that work is Warren's own cost).
type floor struct {
	r   *ctrd.Runtime
	ids []string
}

// newFloor connects to the containerd at socket and loads the busybox
// image; ociBinary is Options.OCIBinary ("" for runc).
func newFloor(socket, dir, ociBinary string) (*floor, error) {
	ctx := context.Background()
	r, err := ctrd.New(ctx, ctrd.Options{Socket: socket, Namespace: "warren-floor", OCIBinary: ociBinary,
		FIFODir: filepath.Join(dir, "floor-fifo")})
	if err != nil {
		return nil, err
	}
	var img bytes.Buffer
	if err := testimage.Build(&img, testimage.Options{Name: "localhost/busybox:latest"}); err != nil {
		r.Close()
		return nil, err
	}
	if _, err := r.ImportImage(ctx, &img); err != nil {
		r.Close()
		return nil, err
	}
	return &floor{r: r}, nil
}

// start creates and starts n containers named prefix-I, par at a time, in
// groups shims (0: each in a shim of its own), and says how long it took.
// They run until close.
func (f *floor) start(prefix string, n, par, groups int) (time.Duration, error) {
	ctx := context.Background()
	specs := make([]runtime.ContainerSpec, n)
	for i := range specs {
		specs[i] = runtime.ContainerSpec{ID: fmt.Sprintf("%s-%d", prefix, i), Image: "localhost/busybox:latest", Command: sleeper}
		if groups > 0 {
			specs[i].Group = fmt.Sprintf("%s-%d", prefix, i%groups)
		}
		f.ids = append(f.ids, specs[i].ID)
	}
	return timedEach(len(specs), par, func(i int) error {
		if err := f.r.Create(ctx, specs[i]); err != nil {
			return err
		}
		return f.r.Start(ctx, specs[i].ID)
	})
}

// removeAll stops (SIGTERM, as the agent does) and deletes every
// container of the floor at once, as the agent removes a node's tasks,
// and says how long it took.
func (f *floor) removeAll() (time.Duration, error) {
	ctx := context.Background()
	el, err := timedEach(len(f.ids), len(f.ids), func(i int) error {
		if _, err := f.r.Stop(ctx, f.ids[i], 10*time.Second); err != nil {
			return err
		}
		return f.r.Delete(ctx, f.ids[i])
	})
	if err == nil {
		f.ids = nil
	}
	return el, err
}

// timedEach runs fn(0) … fn(n-1), par at a time, and says how long they
// took together and one of their errors.
func timedEach(n, par int, fn func(i int) error) (time.Duration, error) {
	sem := make(chan struct{}, max(par, 1))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	began := time.Now()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(i); err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return time.Since(began), firstErr
}

// close removes the floor's containers.
func (f *floor) close() {
	ctx := context.Background()
	for _, id := range f.ids {
		f.r.Stop(ctx, id, time.Millisecond)
		f.r.Delete(ctx, id)
	}
	f.r.Close()
}

// ociRuntime is an OCI runtime by name, with its Options.OCIBinary.
type ociRuntime struct{ name, bin string }

// floorRuntimes are the OCI runtimes this machine can run a floor with:
// runc always, crun where it is installed and the cgroups allow it.
func floorRuntimes() []ociRuntime {
	out := []ociRuntime{{name: ctrd.OCIRuntimeRunc}}
	if bin, _, err := ctrd.ChooseOCIBinary(ctrd.OCIRuntimeCrun, ""); err == nil {
		out = append(out, ociRuntime{ctrd.OCIRuntimeCrun, bin})
	}
	return out
}

// agentOCI is the OCI runtime the bench's agent runs containers with (its
// --oci-runtime=auto): the binary for Options.OCIBinary and its name.
func agentOCI() (bin, name string) {
	bin, why, _ := ctrd.ChooseOCIBinary(ctrd.OCIRuntimeAuto, "")
	if bin == "" {
		fmt.Fprintf(os.Stderr, "  (the agent runs containers with %s)\n", why)
		return "", ctrd.OCIRuntimeRunc
	}
	return bin, ctrd.OCIRuntimeCrun
}
