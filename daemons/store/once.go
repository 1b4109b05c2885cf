package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

// Exactly-once writes. A write whose request carries an ID (every client
// write of warrenctl and the agent, and every write a manager passes on to
// the leader) is proposed wrapped in a Once: the FSM remembers the request
// and its result, and a request applied again (a forwarded write re-sent
// to a new leader after the old one stopped answering, a client retrying
// after a timeout) answers the first result and changes nothing.
//
// Requests are remembered for OnceWindow after the newest one and at most
// onceMax of them, so a retry must come within that window.

// Once wraps a command with the ID of the request that made it.
type Once struct {
	RequestID string
	At        time.Time
	// Command is the wrapped entry: its type byte and payload (Encode).
	Command []byte
}

// EncodeOnce makes the log entry of a wrapped command: CmdOnce, the
// request ID's length (one byte) and the ID, the time (8 bytes, Unix
// nanoseconds, big-endian), then the wrapped entry as it is. Binary, not
// JSON: wrapping adds a few dozen bytes and no second encoding of the
// command (every write pays it, on every manager).
func EncodeOnce(o Once) ([]byte, error) {
	if o.RequestID == "" || len(o.RequestID) > MaxRequestID || len(o.Command) == 0 || CommandType(o.Command[0]) == CmdOnce {
		return nil, fmt.Errorf("store: encode once: request %q wrapping %d bytes", o.RequestID, len(o.Command))
	}
	b := make([]byte, 0, 2+len(o.RequestID)+8+len(o.Command))
	b = append(b, byte(CmdOnce), byte(len(o.RequestID)))
	b = append(b, o.RequestID...)
	b = binary.BigEndian.AppendUint64(b, uint64(o.At.UnixNano()))
	return append(b, o.Command...), nil
}

// decodeOnce reads what EncodeOnce wrote after its type byte.
func decodeOnce(p []byte) (Once, bool) {
	if len(p) < 1 {
		return Once{}, false
	}
	n := int(p[0])
	if n == 0 || n > MaxRequestID || len(p) < 1+n+8+1 {
		return Once{}, false
	}
	at := int64(binary.BigEndian.Uint64(p[1+n : 1+n+8]))
	return Once{RequestID: string(p[1 : 1+n]), At: time.Unix(0, at).UTC(), Command: p[1+n+8:]}, true
}

// applyOnceEntry is CmdOnce's apply function.
func applyOnceEntry(w *wtx, payload []byte) any {
	o, ok := decodeOnce(payload)
	if !ok {
		panic(fmt.Sprintf("store: entry %d: a malformed once command", w.index))
	}
	return applyOnce(w, &o)
}

// OnceWindow is how long a request is remembered.
const OnceWindow = 2 * time.Minute

// onceMax bounds how many requests are remembered.
const onceMax = 16384

// MaxRequestID bounds a request ID's length.
const MaxRequestID = 64

// Replayed is the result of a request that was applied before, as it was
// then: the JSON of the result value.
type Replayed []byte

// MarshalJSON is the stored JSON.
func (r Replayed) MarshalJSON() ([]byte, error) { return r, nil }

// onceRecord is what is remembered of a request: its error, or its
// result. A result that is a stored object (a service, a node) is kept as
// its kind and ID only, and answered again as the object is now (the
// write is in it); others are small and kept whole.
type onceRecord struct {
	Result json.RawMessage `json:"r,omitempty"`
	Kind   string          `json:"k,omitempty"`
	ID     string          `json:"i,omitempty"`
	Err    *api.Error      `json:"e,omitempty"`
}

// OnceApplied says whether the request with this ID was applied (and is
// still remembered).
func (v *View) OnceApplied(id string) bool { return v.tx.Bucket(bRequests).Get([]byte(id)) != nil }

func applyOnce(w *wtx, c *Once) any {
	if c.RequestID == "" || len(c.RequestID) > MaxRequestID || len(c.Command) == 0 || CommandType(c.Command[0]) == CmdOnce {
		panic(fmt.Sprintf("store: entry %d: a malformed once command", w.index))
	}
	b := w.tx.Bucket(bRequests)
	if raw := b.Get([]byte(c.RequestID)); raw != nil {
		var rec onceRecord
		mustDecode(raw, &rec)
		switch {
		case rec.Err != nil:
			return rec.Err
		case rec.Kind == api.KindService:
			if raw := w.tx.Bucket(bServices).Get([]byte(rec.ID)); raw != nil {
				return Replayed(clone(raw))
			}
		case rec.Kind == api.KindNode:
			if raw := w.tx.Bucket(bNodes).Get([]byte(rec.ID)); raw != nil {
				return Replayed(clone(raw))
			}
		default:
			return Replayed(rec.Result)
		}
		// The object is gone since: answer what identifies it.
		return Replayed(fmt.Appendf(nil, `{"id":%q}`, rec.ID))
	}
	fn, ok := appliers[CommandType(c.Command[0])]
	if !ok {
		panic(fmt.Sprintf("store: entry %d wraps unknown command type %d: this warren is older than the cluster's; upgrade it", w.index, c.Command[0]))
	}
	res := fn(w, c.Command[1:])
	var rec onceRecord
	var ae *api.Error
	switch r := res.(type) {
	case error:
		if !errors.As(r, &ae) {
			ae = api.Errorf(api.CodeInternal, "%v", r)
		}
		rec.Err = ae
	case *api.Service:
		rec.Kind, rec.ID = api.KindService, r.ID
	case *api.Node:
		rec.Kind, rec.ID = api.KindNode, r.ID
	default:
		rec.Result, _ = json.Marshal(res)
	}
	raw, _ := json.Marshal(rec)
	w.must(b.Put([]byte(c.RequestID), raw))
	w.must(w.tx.Bucket(bRequestsByAt).Put(onceKey(c.At, c.RequestID), nil))
	w.forgetRequests(c.At, w.countRequests(1))
	return res
}

func onceKey(at time.Time, id string) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))
	return append(k, id...)
}

// countRequests adds delta to the number of remembered requests and
// returns the new number.
func (w *wtx) countRequests(delta int) int {
	m := w.tx.Bucket(bMeta)
	n := 0
	if b := m.Get(kRequests); len(b) == 8 {
		n = int(binary.BigEndian.Uint64(b))
	}
	n = max(n+delta, 0)
	w.must(m.Put(kRequests, binary.BigEndian.AppendUint64(nil, uint64(n))))
	return n
}

// forgetRequests drops the requests older than OnceWindow before now, and
// the oldest while there are more than onceMax.
func (w *wtx) forgetRequests(now time.Time, n int) {
	byAt, reqs := w.tx.Bucket(bRequestsByAt), w.tx.Bucket(bRequests)
	cutoff := string(onceKey(now.Add(-OnceWindow), ""))
	c := byAt.Cursor()
	dropped := 0
	for k, _ := c.First(); k != nil; k, _ = c.First() {
		if n-dropped <= onceMax && string(k) >= cutoff {
			break
		}
		w.must(reqs.Delete(k[8:]))
		w.must(c.Delete())
		dropped++
	}
	if dropped > 0 {
		w.countRequests(-dropped)
	}
}
