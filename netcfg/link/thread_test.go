package link_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
	"github.com/warren-edge/warren/netcfg/link"
)

func netipToIP(s string) net.IP { return net.ParseIP(s).To4() }

// threadNamespaces returns the network namespace of every thread of the
// process.
func threadNamespaces(t *testing.T) map[string]string {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, p := range tasks {
		if target, err := os.Readlink(p); err == nil {
			m[p] = target
		}
	}
	return m
}

func TestDoNeverLeavesAThreadInTheNamespace(t *testing.T) {
	ns := nstest.New(t)
	orig, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	inside := ""
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := link.Do(ns.Handle, func() error {
				h, err := netns.Get()
				if err != nil {
					return err
				}
				defer h.Close()
				mu.Lock()
				inside = h.UniqueId()
				mu.Unlock()
				if i%2 == 0 {
					return fmt.Errorf("failure %d", i)
				}
				return nil
			})
			if i%2 == 0 && err == nil {
				t.Errorf("Do with a failing fn returned nil")
			}
			if i%2 == 1 && err != nil {
				t.Errorf("Do: %v", err)
			}
		}()
	}
	wg.Wait()
	if inside == "" || inside == nsUniqueID(t, "/proc/self/ns/net") {
		t.Errorf("fn did not run in the test namespace")
	}
	for task, target := range threadNamespaces(t) {
		if target != orig {
			t.Errorf("after Do, thread %s is in %s, want %s", task, target, orig)
		}
	}

	// A namespace handle that is not one: an error, and no thread moved.
	if err := link.Do(netns.NsHandle(999999), func() error { return nil }); err == nil {
		t.Errorf("Do with a bad handle succeeded")
	}
	bad := errors.New("boom")
	if err := link.Do(ns.Handle, func() error { return bad }); !errors.Is(err, bad) {
		t.Errorf("Do returned %v, want fn's error", err)
	}
	for task, target := range threadNamespaces(t) {
		if target != orig {
			t.Errorf("after Do, thread %s is in %s, want %s", task, target, orig)
		}
	}
}

func nsUniqueID(t *testing.T, path string) string {
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	return h.UniqueId()
}
