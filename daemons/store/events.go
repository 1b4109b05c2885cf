package store

// Events (warrenctl events, GET /v1/events) are derived here, in one
// place, from the state's own changes: the put helpers (putTask,
// putService, putNode, putFileObject) hand this file the record before
// and after the change, and it appends what happened to bEvents in the
// same bolt transaction. No Raft entry carries them (but CmdEvent, for
// what changes no state: an exec), so every manager derives the same
// events from the same entries, with the same times: an event's Time is
// the time of the command that caused it (its At), never the clock of the
// manager that applies it.
//
//	bEvents: seq (8 bytes, big endian) → api.ClusterEvent (JSON)
//	bMeta kEventSeq: the last seq given (8 bytes)
//
// Seq is a counter kept in the state (so it has no gaps and survives a
// snapshot, which copies the whole database). Retention drops the oldest
// events in the same transaction: at most EventOptions.Max of them, none
// older than MaxAge by the applying command's time. Events are contiguous
// from the oldest kept to the last, so the count is last - oldest + 1.

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

var (
	bEvents   = []byte("events")
	kEventSeq = []byte("event_seq")
)

// EventOptions bound the events a state keeps. Every manager of a cluster
// should run with the same ones (they do: they are not configurable from
// outside the store yet), or their oldest events differ.
type EventOptions struct {
	// Max is how many events are kept (DefaultEventMax if 0).
	Max int
	// MaxAge drops events older than this, by the time of the command
	// being applied (DefaultEventMaxAge if 0).
	MaxAge time.Duration
	// Off derives no events at all (benchmarks compare the cost).
	Off bool
}

// Defaults of EventOptions.
const (
	DefaultEventMax    = 10000
	DefaultEventMaxAge = 7 * 24 * time.Hour
)

func (o EventOptions) withDefaults() EventOptions {
	if o.Max <= 0 {
		o.Max = DefaultEventMax
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultEventMaxAge
	}
	return o
}

// EventRecord is CmdEvent's payload: an event that no change of state
// stands for (an exec, EventExecRun only), proposed by a manager's
// control API. Seq is given by the FSM; Event.Time is At.
type EventRecord struct {
	Event api.ClusterEvent `json:"event"`
	At    time.Time        `json:"at"`
}

// Bounds of a recorded event's fields.
const (
	maxEventMessage = 512
	maxEventField   = 256
)

// Validate checks a recorded event before it is proposed (and again when
// it is applied: a bad one is refused, not stored).
func (c *EventRecord) Validate() error {
	e := &c.Event
	switch {
	case e.Type != api.EventExecRun:
		return api.Errorf(api.CodeInvalid, "event type %q cannot be recorded: only %s is (the others come from the state's changes)", e.Type, api.EventExecRun)
	case c.At.IsZero():
		return api.Errorf(api.CodeInvalid, "a recorded event needs a time")
	case e.TaskID == "":
		return api.Errorf(api.CodeInvalid, "an %s event names its task", e.Type)
	case len(e.Message) > maxEventMessage:
		return api.Errorf(api.CodeInvalid, "event message is %d bytes, at most %d", len(e.Message), maxEventMessage)
	case e.Seq != 0 || e.ExitCode != nil:
		return api.Errorf(api.CodeInvalid, "a recorded event has no seq or exit code of its own")
	}
	for _, f := range []string{e.ServiceID, e.Service, e.NodeID, e.Node, e.TaskID} {
		if len(f) > maxEventField {
			return api.Errorf(api.CodeInvalid, "event field %.20q… is %d bytes, at most %d", f, len(f), maxEventField)
		}
	}
	return nil
}

func applyEvent(w *wtx, c *EventRecord) any {
	if err := c.Validate(); err != nil {
		return err
	}
	ev := c.Event
	w.emit(ev)
	return nil
}

// commandAt returns a function that reads the At field (a time.Time) of
// a command of type T, or nil when T has none: the time the events an
// entry causes are stamped with.
func commandAt[T any]() func(c *T) time.Time {
	f, ok := reflect.TypeFor[T]().FieldByName("At")
	if !ok || f.Type != reflect.TypeFor[time.Time]() || len(f.Index) != 1 {
		return nil
	}
	i := f.Index[0]
	return func(c *T) time.Time { return reflect.ValueOf(c).Elem().Field(i).Interface().(time.Time) }
}

// eventTime is when the change being applied happened: the command's At,
// or fallback (a record's own timestamp) for commands without one.
func (w *wtx) eventTime(fallback time.Time) time.Time {
	if !w.at.IsZero() {
		return w.at.UTC()
	}
	return fallback.UTC()
}

// taskEvents derives a task's events: it failed, or it is a replacement
// the orchestrator made under the restart policy.
func (w *wtx) taskEvents(prev, t *api.Task) {
	if w.opts.Off {
		return
	}
	failed := t.Status.State == api.TaskFailed && (prev == nil || prev.Status.State != api.TaskFailed)
	restarted := prev == nil && t.Attempt > 0
	if !failed && !restarted {
		return
	}
	ev := api.ClusterEvent{Time: w.eventTime(t.UpdatedAt), ServiceID: t.ServiceID, Service: t.ServiceName,
		NodeID: t.NodeID, Node: w.hostname(t.NodeID), TaskID: t.ID}
	if restarted {
		ev.Type, ev.Message = api.EventTaskRestarted, t.Status.Message
		w.emit(ev)
	}
	if failed {
		ev.Type, ev.ExitCode, ev.Message = api.EventTaskFailed, t.Status.ExitCode, t.Status.Err
		if ev.Message == "" {
			ev.Message = t.Status.Message
		}
		w.emit(ev)
	}
}

// updateEventTypes maps the states of a rolling update to the event of
// entering them.
var updateEventTypes = map[string]string{
	api.UpdateUpdating:    api.EventUpdateStarted,
	api.UpdatePaused:      api.EventUpdatePaused,
	api.UpdateRollingBack: api.EventRollbackStart,
	api.UpdateRolledBack:  api.EventRolledBack,
	api.UpdateCompleted:   api.EventUpdateComplete,
}

// serviceEvents derives a service's events from its rolling update's
// state: entering a state, or a new update replacing one in the same
// state (another SpecVersion). prevRaw is its stored JSON before the
// change (nil when new).
func (w *wtx) serviceEvents(prevRaw []byte, s *api.Service) {
	if w.opts.Off || s.UpdateStatus == nil {
		return
	}
	var prev struct {
		UpdateStatus *api.UpdateStatus `json:"updateStatus"`
	}
	if prevRaw != nil {
		mustDecode(prevRaw, &prev)
	}
	st, old := s.UpdateStatus, prev.UpdateStatus
	if st.Promoted && st.Canaries > 0 && old != nil && !old.Promoted && old.SpecVersion == st.SpecVersion {
		w.emit(api.ClusterEvent{Type: api.EventCanaryPromoted, Time: w.eventTime(s.UpdatedAt), ServiceID: s.ID, Service: s.Spec.Name,
			Message: fmt.Sprintf("%d canaries promoted", st.Canaries)})
	}
	if old != nil && old.State == st.State && (old.SpecVersion == st.SpecVersion || old.SpecVersion == 0 || st.SpecVersion == 0) {
		return
	}
	typ, ok := updateEventTypes[st.State]
	if !ok {
		return
	}
	msg := st.Message
	if st.State == api.UpdateRollingBack {
		who := "by an operator"
		if st.Automatic {
			who = "automatically"
		}
		if msg == "" {
			msg = "rollback started " + who
		} else {
			msg = fmt.Sprintf("%s (%s)", msg, who)
		}
	}
	w.emit(api.ClusterEvent{Type: typ, Time: w.eventTime(s.UpdatedAt), ServiceID: s.ID, Service: s.Spec.Name, Message: msg})
}

// nodeEvents derives node.down and node.up from a node's status. prevRaw
// is its stored JSON before the change (nil when new).
func (w *wtx) nodeEvents(prevRaw []byte, n *api.Node) {
	delete(w.hosts, n.ID) // its hostname may change
	if w.opts.Off {
		return
	}
	var prev struct {
		Status api.NodeStatus `json:"status"`
	}
	if prevRaw != nil {
		mustDecode(prevRaw, &prev)
	}
	if prev.Status.State == n.Status.State {
		return
	}
	var typ string
	switch n.Status.State {
	case api.NodeDown:
		typ = api.EventNodeDown
	case api.NodeReady:
		typ = api.EventNodeUp
	default:
		return
	}
	w.emit(api.ClusterEvent{Type: typ, Time: w.eventTime(n.Status.Timestamp), NodeID: n.ID,
		Node: n.Description.Hostname, Message: n.Status.Message})
}

// secretEvents derives secret.rotated: a secret that existed got a new
// latest version. prevRaw is its stored JSON before the change.
func (w *wtx) secretEvents(prevRaw []byte, s *api.Secret) {
	if w.opts.Off || prevRaw == nil {
		return
	}
	var prev struct {
		Versions []struct {
			Version uint64 `json:"version"`
		} `json:"versions"`
	}
	mustDecode(prevRaw, &prev)
	if len(prev.Versions) == 0 || s.Latest().Version <= prev.Versions[len(prev.Versions)-1].Version {
		return
	}
	w.emit(api.ClusterEvent{Type: api.EventSecretRotated, Time: w.eventTime(s.UpdatedAt),
		Message: fmt.Sprintf("secret %s (%s) has version %d", s.Spec.Name, s.ID, s.Latest().Version)})
}

// hostname is node id's hostname, or "" if it is not known.
func (w *wtx) hostname(id string) string {
	if id == "" {
		return ""
	}
	if h, ok := w.hosts[id]; ok {
		return h
	}
	var n struct {
		Description struct {
			Hostname string `json:"hostname"`
		} `json:"description"`
	}
	if raw := w.tx.Bucket(bNodes).Get([]byte(id)); raw != nil {
		mustDecode(raw, &n)
	}
	if w.hosts == nil {
		w.hosts = map[string]string{}
	}
	w.hosts[id] = n.Description.Hostname
	return n.Description.Hostname
}

// emit stores ev with the next seq and drops what retention no longer
// keeps.
func (w *wtx) emit(ev api.ClusterEvent) {
	if w.held != nil {
		*w.held = append(*w.held, ev)
		return
	}
	meta, b := w.tx.Bucket(bMeta), w.tx.Bucket(bEvents)
	var seq uint64
	if v := meta.Get(kEventSeq); len(v) == 8 {
		seq = binary.BigEndian.Uint64(v)
	}
	seq++
	ev.Seq = seq
	key := binary.BigEndian.AppendUint64(nil, seq)
	w.must(meta.Put(kEventSeq, key))
	raw, err := json.Marshal(&ev)
	if err != nil {
		panic(fmt.Sprintf("store: encode event: %v", err))
	}
	w.must(b.Put(key, raw))
	w.events = append(w.events, ev.Type)
	w.pruneEvents(seq, ev.Time)
}

// pruneEvents drops the oldest events beyond Max, and those older than
// MaxAge before now.
func (w *wtx) pruneEvents(last uint64, now time.Time) {
	b := w.tx.Bucket(bEvents)
	c := b.Cursor()
	cutoff := now.Add(-w.opts.MaxAge)
	for k, v := c.First(); k != nil; k, v = c.First() {
		seq := binary.BigEndian.Uint64(k)
		if last-seq+1 <= uint64(w.opts.Max) {
			var ev struct {
				Time time.Time `json:"time"`
			}
			mustDecode(v, &ev)
			if now.IsZero() || !ev.Time.Before(cutoff) {
				return
			}
		}
		w.must(c.Delete())
	}
}

// EventFilter selects events. Empty fields match every event.
type EventFilter struct {
	// Types, if set, are the types wanted.
	Types map[string]bool
	// Service matches the service's ID or name; Node the node's ID or
	// hostname.
	Service, Node string
	// From, if set, leaves out the events before it; Until, if set, ends
	// the list before the first event after it.
	From, Until time.Time
	// Max bounds how many are returned (0: all).
	Max int
}

// Match says whether ev passes the filter (Until and Max aside: they end
// a list).
func (f *EventFilter) Match(ev *api.ClusterEvent) bool {
	if !f.From.IsZero() && ev.Time.Before(f.From) {
		return false
	}
	if len(f.Types) > 0 && !f.Types[ev.Type] {
		return false
	}
	if f.Service != "" && f.Service != ev.ServiceID && f.Service != ev.Service {
		return false
	}
	if f.Node != "" && f.Node != ev.NodeID && f.Node != ev.Node {
		return false
	}
	return true
}

// Events returns the kept events after seq since (exclusive), oldest
// first, that pass f.
func (v *View) Events(since uint64, f EventFilter) []api.ClusterEvent {
	var out []api.ClusterEvent
	v.EachEvent(since, f, func(ev *api.ClusterEvent, _ []byte) { out = append(out, *ev) })
	return out
}

// EachEvent calls fn with each kept event after seq since that passes f,
// oldest first, and its stored JSON (valid during the call only). It
// says whether it stopped at an event after f.Until (none later can
// match).
func (v *View) EachEvent(since uint64, f EventFilter, fn func(ev *api.ClusterEvent, raw []byte)) (pastUntil bool) {
	n := 0
	c := v.tx.Bucket(bEvents).Cursor()
	for k, raw := c.Seek(binary.BigEndian.AppendUint64(nil, since+1)); k != nil; k, raw = c.Next() {
		var ev api.ClusterEvent
		mustDecode(raw, &ev)
		if !f.Until.IsZero() && ev.Time.After(f.Until) {
			return true
		}
		if !f.Match(&ev) {
			continue
		}
		fn(&ev, raw)
		if n++; f.Max > 0 && n >= f.Max {
			return false
		}
	}
	return false
}

// LastEventSeq is the seq of the newest event (0 before the first).
func (v *View) LastEventSeq() uint64 {
	if b := v.tx.Bucket(bMeta).Get(kEventSeq); len(b) == 8 {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}
