package agent

import (
	"fmt"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestGroupOf(t *testing.T) {
	groups := func(n int) map[string]int {
		got := map[string]int{}
		for slot := 1; slot <= n; slot++ {
			got[groupOf(&api.Task{ServiceID: "s", Slot: uint64(slot)}, n)]++
		}
		return got
	}
	for _, c := range []struct{ tasks, shims int }{{1, 1}, {12, 1}, {13, 2}, {40, 4}, {100, 8}, {1000, 8}} {
		g := groups(c.tasks)
		if len(g) != c.shims {
			t.Errorf("%d tasks: %d shims %v; want %d", c.tasks, len(g), g, c.shims)
		}
		for name, k := range g {
			if k > (c.tasks+c.shims-1)/c.shims {
				t.Errorf("%d tasks: shim %s serves %d of them, uneven: %v", c.tasks, name, k, g)
			}
		}
	}
	// Small services share the node's few shared shims; a service's tasks
	// stay in one.
	shared := map[string]int{}
	for i := range 150 {
		svc := fmt.Sprintf("svc%d", i)
		g := groupOf(&api.Task{ServiceID: svc, Slot: 1}, 1)
		for slot := uint64(2); slot <= tasksPerShim; slot++ {
			if o := groupOf(&api.Task{ServiceID: svc, Slot: slot}, tasksPerShim); o != g {
				t.Fatalf("service %s of %d tasks is in shims %s and %s", svc, tasksPerShim, g, o)
			}
		}
		shared[g]++
	}
	if len(shared) != maxShims {
		t.Errorf("150 one-task services are in %d shims %v; want %d", len(shared), shared, maxShims)
	}
	for name, k := range shared {
		if k > 2*150/maxShims {
			t.Errorf("shared shim %s serves %d of 150 services, uneven: %v", name, k, shared)
		}
	}
	if g := groupOf(&api.Task{ServiceID: "g", Slot: 0}, 1); !strings.HasPrefix(g, "warren-shared-") {
		t.Errorf("a global task's group is %q; want a shared shim", g)
	}
	if g := groupOf(&api.Task{ServiceID: "big", Slot: 3}, 13); g != "warren-big-1" {
		t.Errorf("a task of a 13-task service is in %q; want warren-big-1", g)
	}
}
