package agent

import (
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
	if a, b := groupOf(&api.Task{ServiceID: "a", Slot: 1}, 1), groupOf(&api.Task{ServiceID: "b", Slot: 1}, 1); a == b {
		t.Errorf("two services share shim %s", a)
	}
	if g := groupOf(&api.Task{ServiceID: "g", Slot: 0}, 1); g != "warren-g-0" {
		t.Errorf("a global task's group is %q", g)
	}
}
