package store

import (
	"context"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

func ch(index uint64, kind, id, node string) Change {
	return Change{Index: index, Kind: kind, ID: id, NodeID: node, Line: encodeChange(index, api.OpUpdate, kind, id, []byte(`{}`))}
}

func TestHubReadFiltersAndBoundaries(t *testing.T) {
	h := NewHub(100, 1<<20, 0)
	h.publish([]Change{ch(1, "task", "a", "n1"), ch(1, "task", "b", "n2")}, 1)
	h.publish([]Change{ch(2, "service", "s", "")}, 2)
	h.publish(nil, 3) // an entry that changed nothing
	h.publish([]Change{ch(4, "task", "c", "n1"), ch(4, "task", "d", "n1"), ch(5, "task", "e", "n1")}, 5)

	cases := []struct {
		after uint64
		f     Filter
		max   int
		ids   string
		upTo  uint64
	}{
		{0, Filter{}, 100, "abscde", 5},
		{1, Filter{}, 100, "scde", 5},
		{0, Filter{NodeID: "n1"}, 100, "ascde", 5}, // the node filter narrows tasks only
		{0, Filter{Kinds: map[string]bool{"service": true}}, 100, "s", 5},
		{2, Filter{Kinds: map[string]bool{"service": true}}, 100, "", 5},
		// max stops on an index boundary and never splits index 4.
		{1, Filter{}, 2, "scd", 4},
		{0, Filter{}, 1, "ab", 1},
	}
	for _, c := range cases {
		got, upTo, err := h.Read(c.after, &c.f, c.max, nil)
		if err != nil {
			t.Fatalf("Read(%d, %+v, %d): %v", c.after, c.f, c.max, err)
		}
		ids := ""
		for _, g := range got {
			ids += g.ID
		}
		if ids != c.ids || upTo != c.upTo {
			t.Errorf("Read(%d, %+v, max %d) = %q up to %d; want %q up to %d", c.after, c.f, c.max, ids, upTo, c.ids, c.upTo)
		}
	}
}

func TestHubBoundedAndTooOld(t *testing.T) {
	h := NewHub(4, 1<<20, 10)
	if _, _, err := h.Read(9, &Filter{}, 10, nil); err != ErrTooOld {
		t.Errorf("Read(9) on a hub starting at 10 = %v, want ErrTooOld", err)
	}
	for i := uint64(11); i <= 20; i++ {
		h.publish([]Change{ch(i, "task", "x", "")}, i)
	}
	if h.n != 4 {
		t.Errorf("ring holds %d changes, want the bound of 4", h.n)
	}
	if _, _, err := h.Read(15, &Filter{}, 10, nil); err != ErrTooOld {
		t.Errorf("Read(15) after eviction = %v, want ErrTooOld", err)
	}
	got, upTo, err := h.Read(16, &Filter{}, 10, nil)
	if err != nil || len(got) != 4 || upTo != 20 {
		t.Errorf("Read(16) = %d changes up to %d, %v; want 4 up to 20", len(got), upTo, err)
	}
	// Byte bound: a hub of 3 lines' worth keeps at most that many bytes.
	line := len(ch(1, "task", "x", "").Line)
	hb := NewHub(100, 3*line, 0)
	for i := uint64(1); i <= 10; i++ {
		hb.publish([]Change{ch(i, "task", "x", "")}, i)
	}
	if hb.bytes > 3*line+2 {
		t.Errorf("byte-bounded hub holds %d bytes, budget %d", hb.bytes, 3*line)
	}
}

func TestHubWaitFor(t *testing.T) {
	h := NewHub(10, 1<<20, 0)
	done := make(chan error, 1)
	go func() { done <- h.WaitFor(context.Background(), 2) }()
	h.publish(nil, 1)
	select {
	case <-done:
		t.Fatal("WaitFor(2) returned at index 1")
	case <-time.After(20 * time.Millisecond):
	}
	h.publish(nil, 2)
	if err := <-done; err != nil {
		t.Errorf("WaitFor(2) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.WaitFor(ctx, 99); err == nil {
		t.Error("WaitFor with a cancelled context returned nil")
	}
}
