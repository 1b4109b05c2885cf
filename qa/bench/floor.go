package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	ctrd "github.com/warren-edge/warren/daemons/agent/containerd"
	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/qa/testimage"
)

// startFloor is what containerd and an OCI runtime alone take to create
// and start n containers of the busybox image, par at a time, in groups
// shims (as the agent puts a service's tasks in a few shims): the floor
// under Warren's scale-up figure. It runs them in a containerd namespace
// of its own on the node's containerd, with no network namespace (the
// agent's veth and namespace are Warren's own cost), then removes them.
func startFloor(socket, dir, ociBinary string, n, par, groups int) (time.Duration, error) {
	ctx := context.Background()
	r, err := ctrd.New(ctx, ctrd.Options{Socket: socket, Namespace: "warren-floor", OCIBinary: ociBinary,
		FIFODir: filepath.Join(dir, "floor-fifo")})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var img bytes.Buffer
	if err := testimage.Build(&img, testimage.Options{Name: "localhost/busybox:latest"}); err != nil {
		return 0, err
	}
	if _, err := r.ImportImage(ctx, &img); err != nil {
		return 0, err
	}
	specs := make([]runtime.ContainerSpec, n)
	for i := range specs {
		specs[i] = runtime.ContainerSpec{ID: fmt.Sprintf("floor-%d", i), Image: "localhost/busybox:latest",
			Command: sleeper, Group: fmt.Sprintf("floor-%d", i%groups)}
	}
	defer func() {
		for _, s := range specs {
			r.Stop(ctx, s.ID, time.Millisecond)
			r.Delete(ctx, s.ID)
		}
	}()
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for _, s := range specs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := r.Create(ctx, s)
			if err == nil {
				err = r.Start(ctx, s.ID)
			}
			if err != nil {
				mu.Lock()
				firstErr = err
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// floorRuntimes are the OCI runtimes this machine can run a floor with:
// runc always, crun where it is installed and the cgroups allow it.
func floorRuntimes() []string {
	out := []string{ctrd.OCIRuntimeRunc}
	if _, _, err := ctrd.ChooseOCIBinary(ctrd.OCIRuntimeCrun, ""); err == nil {
		out = append(out, ctrd.OCIRuntimeCrun)
	}
	return out
}
