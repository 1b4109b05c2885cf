package api

import (
	"fmt"
	"strings"
	"testing"
)

// ev makes an event; id names a changed object (empty for control lines).
func ev(index uint64, op, id string) Event {
	e := Event{Index: index, Op: op, ID: id}
	if id != "" {
		e.Kind = KindTask
	}
	return e
}

// batchString prints a batch as "reset@5[a b]" or "@6[x y]".
func batchString(b WatchBatch, ok bool) string {
	if !ok {
		return "none"
	}
	var ids []string
	for _, e := range b.Events {
		ids = append(ids, fmt.Sprintf("%s%d", e.ID, e.Index))
	}
	s := fmt.Sprintf("@%d[%s]", b.Index, strings.Join(ids, " "))
	if b.Reset {
		s = "reset" + s
	}
	return s
}

func TestWatchBatcher(t *testing.T) {
	// A step adds events, then checks Full and what Take returns, until
	// it returns none.
	type step struct {
		add  []Event
		full bool
		take []string
	}
	cases := []struct {
		name  string
		max   int
		steps []step
	}{
		{"a resend comes out whole at synced", 0, []step{
			{add: []Event{ev(5, OpReset, ""), ev(5, OpCreate, "a"), ev(5, OpCreate, "b")}, take: nil},
			{add: []Event{ev(5, OpSynced, "")}, full: true, take: []string{"reset@5[a5 b5]"}},
		}},
		{"an empty resend is still a batch", 0, []step{
			{add: []Event{ev(3, OpReset, ""), ev(3, OpSynced, "")}, full: true, take: []string{"reset@3[]"}},
		}},
		{"changes wait until a ping says their index is whole", 0, []step{
			{add: []Event{ev(6, OpUpdate, "x"), ev(6, OpDelete, "y")}, take: nil},
			{add: []Event{ev(6, OpPing, "")}, take: []string{"@6[x6 y6]"}},
		}},
		{"an event of a later index closes the earlier one", 0, []step{
			{add: []Event{ev(6, OpUpdate, "x"), ev(7, OpUpdate, "y")}, take: []string{"@6[x6]"}},
			{add: []Event{ev(7, OpPing, "")}, take: []string{"@7[y7]"}},
		}},
		{"whole indexes read together merge into one batch", 0, []step{
			{add: []Event{ev(6, OpUpdate, "x"), ev(6, OpPing, ""), ev(7, OpCreate, "y"), ev(8, OpDelete, "z"), ev(9, OpPing, "")},
				take: []string{"@9[x6 y7 z8]"}},
		}},
		{"a ping without changes moves the index on once", 0, []step{
			{add: []Event{ev(9, OpPing, "")}, take: []string{"@9[]"}},
			{add: []Event{ev(9, OpPing, "")}, take: nil},
		}},
		{"a resend drops what it supersedes", 0, []step{
			{add: []Event{ev(6, OpUpdate, "x"), ev(6, OpPing, ""), ev(7, OpUpdate, "y"),
				ev(10, OpReset, ""), ev(10, OpCreate, "a"), ev(10, OpSynced, "")}, full: true, take: []string{"reset@10[a10]"}},
		}},
		{"changes after synced follow the resend", 0, []step{
			{add: []Event{ev(5, OpReset, ""), ev(5, OpCreate, "a"), ev(5, OpSynced, ""), ev(6, OpUpdate, "a"), ev(6, OpPing, "")},
				full: true, take: []string{"reset@5[a5]", "@6[a6]"}},
		}},
		{"a ping inside a resend does not cut it", 0, []step{
			{add: []Event{ev(5, OpReset, ""), ev(5, OpCreate, "a"), ev(5, OpPing, "")}, take: nil},
			{add: []Event{ev(5, OpCreate, "b"), ev(5, OpSynced, "")}, full: true, take: []string{"reset@5[a5 b5]"}},
		}},
		{"full at MaxEvents whole changes, not before", 2, []step{
			{add: []Event{ev(6, OpUpdate, "x"), ev(7, OpUpdate, "y")}, full: false, take: []string{"@6[x6]"}},
			{add: []Event{ev(7, OpUpdate, "z"), ev(8, OpUpdate, "w")}, full: true, take: []string{"@7[y7 z7]"}},
			{add: []Event{ev(8, OpPing, "")}, full: false, take: []string{"@8[w8]"}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := WatchBatcher{MaxEvents: c.max}
			var added []string
			for _, s := range c.steps {
				for _, e := range s.add {
					if err := b.Add(e); err != nil {
						t.Fatalf("Add(%+v): %v", e, err)
					}
					added = append(added, fmt.Sprintf("%s%s@%d", e.Op, e.ID, e.Index))
				}
				if got := b.Full(); got != s.full {
					t.Errorf("after %v: Full() = %v, want %v", added, got, s.full)
				}
				var got []string
				for {
					bt, ok := b.Take()
					if !ok {
						break
					}
					got = append(got, batchString(bt, ok))
				}
				if strings.Join(got, " ") != strings.Join(s.take, " ") {
					t.Errorf("after %v: Take() gave %v, want %v", added, got, s.take)
				}
			}
		})
	}
}

func TestWatchBatcherUnknownOp(t *testing.T) {
	var b WatchBatcher
	b.Add(ev(6, OpUpdate, "x"))
	if err := b.Add(Event{Index: 6, Op: "teleport"}); err == nil || !strings.Contains(err.Error(), `"teleport"`) {
		t.Errorf(`Add(op "teleport") = %v; want an error naming the op`, err)
	}
	b.Add(ev(6, OpPing, ""))
	if got := batchString(b.Take()); got != "@6[x6]" {
		t.Errorf("after an unknown op, Take() = %s; want the stream to go on: @6[x6]", got)
	}
}
