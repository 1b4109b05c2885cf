package worker

import (
	"slices"
	"testing"
	"time"
)

func TestRelayOrderTriesFailedManagersLast(t *testing.T) {
	w := &Worker{cfg: Config{Managers: func(first string) []string {
		ids := []string{"m1", "m2", "m3"}
		if i := slices.Index(ids, first); i > 0 {
			ids = append([]string{first}, slices.Delete(ids, i, i+1)...)
		}
		return ids
	}}}
	now := time.Now()
	for _, c := range []struct {
		up     string
		failed map[string]time.Time
		want   []string
	}{
		{"m2", nil, []string{"m2", "m1", "m3"}},
		{"m2", map[string]time.Time{"m2": now}, []string{"m1", "m3", "m2"}},
		{"m2", map[string]time.Time{"m2": now.Add(-time.Minute)}, []string{"m2", "m1", "m3"}},
		{"", map[string]time.Time{"m1": now, "m3": now}, []string{"m2", "m1", "m3"}},
	} {
		w.failed = c.failed
		if got := w.relayOrder(c.up); !slices.Equal(got, c.want) {
			t.Errorf("relayOrder(upstream %q, failed %v) = %v, want %v", c.up, c.failed, got, c.want)
		}
	}
}
