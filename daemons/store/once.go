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
	RequestID string    `json:"requestID"`
	At        time.Time `json:"at"`
	// Command is the wrapped entry: its type byte and payload (Encode).
	Command []byte `json:"command"`
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

// onceRecord is what is remembered of a request.
type onceRecord struct {
	Index  uint64          `json:"index"`
	At     time.Time       `json:"at"`
	Result json.RawMessage `json:"result,omitempty"`
	Err    *api.Error      `json:"err,omitempty"`
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
		if rec.Err != nil {
			return rec.Err
		}
		return Replayed(rec.Result)
	}
	fn, ok := appliers[CommandType(c.Command[0])]
	if !ok {
		panic(fmt.Sprintf("store: entry %d wraps unknown command type %d: this warren is older than the cluster's; upgrade it", w.index, c.Command[0]))
	}
	res := fn(w, c.Command[1:])
	rec := onceRecord{Index: w.index, At: c.At}
	var ae *api.Error
	if err, isErr := res.(error); isErr {
		if !errors.As(err, &ae) {
			ae = api.Errorf(api.CodeInternal, "%v", err)
		}
		rec.Err = ae
	} else {
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
