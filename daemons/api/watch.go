package api

import (
	"fmt"
	"time"
)

// WatchPing is how often a manager's idle watch stream says it is still
// whole up to the newest index: a follower that hears nothing for several
// of them knows the stream is dead.
const WatchPing = 10 * time.Second

// WatchBatch is what a watch follower hands its consumer: whole indexes
// only, never part of one, so a consumer never holds a state that no
// manager ever had.
//
// With Reset, Events are the whole watched state as of Index (a full
// resend, reset … synced gathered into one batch): they replace
// everything the consumer held. Otherwise Events are the changes of one or
// more whole indexes, in stream order, and after applying them the
// consumer's state is whole at Index; a watch resumed after Index misses
// nothing.
type WatchBatch struct {
	Reset  bool
	Index  uint64
	Events []Event
}

// WatchBatcher cuts a watch stream into WatchBatches. It is the one home
// of the stream's rules (DESIGN.md §3, the manager's api_watch.go):
//
//   - reset … synced is a full resend: its events are gathered apart and
//     come out as one Reset batch at synced; what was held before the
//     reset is dropped (the resend supersedes it).
//   - the changes of an index are whole once the stream says so: a ping
//     or synced line, or an event of a later index. Until then they are
//     held back.
//   - a ping also says the stream is whole up to its index when nothing
//     changed, so the resume index moves on without events.
//
// Add the events as they are read; Take returns the next batch once there
// is one. A WatchBatcher is not safe for concurrent use.
type WatchBatcher struct {
	// MaxEvents makes Full report a batch of changes worth handing out
	// without waiting for more (0: only a finished resend is Full). A
	// batch holds at least one whole index, so it may be larger.
	MaxEvents int

	resetting bool
	gathered  []Event     // the resend being read
	reset     *WatchBatch // a finished resend, not taken yet
	open      []Event     // changes of the index not known whole yet
	whole     []Event     // changes of whole indexes, not taken yet
	index     uint64      // the stream is whole up to here
	taken     uint64      // the Index of the last batch taken
}

// Add takes the next event of the stream. An event with an op it does not
// know is left out and reported as an error (the stream goes on).
func (b *WatchBatcher) Add(ev Event) error {
	switch ev.Op {
	case OpReset:
		b.resetting, b.gathered, b.reset = true, nil, nil
		b.open, b.whole = nil, nil
	case OpSynced:
		if !b.resetting {
			b.closeAt(ev.Index)
			return nil
		}
		b.reset = &WatchBatch{Reset: true, Index: ev.Index, Events: b.gathered}
		b.resetting, b.gathered = false, nil
		b.index = ev.Index
	case OpPing:
		if !b.resetting {
			b.closeAt(ev.Index)
		}
	case OpCreate, OpUpdate, OpDelete:
		if b.resetting {
			b.gathered = append(b.gathered, ev)
			return nil
		}
		if len(b.open) > 0 && ev.Index != b.open[0].Index {
			b.closeAt(b.open[0].Index)
		}
		b.open = append(b.open, ev)
	default:
		return fmt.Errorf("api: watch: unknown op %q at index %d: left out", ev.Op, ev.Index)
	}
	return nil
}

// closeAt records that the stream is whole up to index.
func (b *WatchBatcher) closeAt(index uint64) {
	if len(b.open) > 0 && b.open[0].Index <= index {
		b.whole = append(b.whole, b.open...)
		b.open = nil
	}
	b.index = max(b.index, index)
}

// Full says a batch is ready that should be handed out before reading
// more: a finished resend, or at least MaxEvents whole changes.
func (b *WatchBatcher) Full() bool {
	return b.reset != nil || (b.MaxEvents > 0 && len(b.whole) >= b.MaxEvents)
}

// Take returns the next batch, if the stream has made one: a finished
// resend first, then the whole changes held (merged into one batch). A
// batch without events and without Reset only moves the index on: the
// stream said it was whole further up without a change to report.
func (b *WatchBatcher) Take() (WatchBatch, bool) {
	if r := b.reset; r != nil {
		b.reset, b.taken = nil, r.Index
		return *r, true
	}
	if len(b.whole) == 0 && b.index <= b.taken {
		return WatchBatch{}, false
	}
	out := WatchBatch{Index: b.index, Events: b.whole}
	b.whole, b.taken = nil, b.index
	return out, true
}
