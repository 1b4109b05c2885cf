package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

// NodeJournal is a node's break-glass journal entries, sent by the node on
// reconnect (api/breakglass.go).
type NodeJournal struct {
	NodeID  string             `json:"nodeID"`
	Entries []api.JournalEntry `json:"entries"`
}

// MaxJournalKept is how many journal entries the managers keep per node;
// older ones go.
const MaxJournalKept = 1000

func journalPrefix(node string) []byte { return append([]byte(node), 0) }

func journalKey(node string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(journalPrefix(node), seq)
}

// applyNodeJournal appends a node's entries after those it holds: an entry
// it holds already is skipped (a resend), the rest must follow on from the
// last one held, by seq and hash, or the whole batch is refused: an
// altered journal is not taken in part.
func applyNodeJournal(w *wtx, c *NodeJournal) any {
	if w.node(c.NodeID) == nil {
		return api.Errorf(api.CodeNotFound, "no node %q", c.NodeID)
	}
	b := w.tx.Bucket(bJournal)
	prefix := journalPrefix(c.NodeID)
	var last api.JournalEntry
	var held int
	cur := b.Cursor()
	for k, v := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		held++
		last = api.JournalEntry{}
		mustDecode(v, &last)
	}
	var fresh []api.JournalEntry
	for _, e := range c.Entries {
		if e.Seq > last.Seq {
			fresh = append(fresh, e)
		}
	}
	for _, e := range fresh {
		if e.Node != c.NodeID {
			return api.Errorf(api.CodeInvalid, "journal entry %d is node %q's, not %s's", e.Seq, e.Node, c.NodeID)
		}
	}
	if err := api.VerifyJournal(fresh, last.Seq, last.Hash); err != nil {
		return api.Errorf(api.CodeInvalid, "node %s's journal: %v (the managers hold it up to entry %d)", c.NodeID, err, last.Seq)
	}
	for _, e := range fresh {
		raw, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("store: journal: %w", err)
		}
		if err := b.Put(journalKey(c.NodeID, e.Seq), raw); err != nil {
			panic(fmt.Sprintf("store: put journal %s/%d: %v", c.NodeID, e.Seq, err))
		}
		held++
	}
	// Keep the newest MaxJournalKept.
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && held > MaxJournalKept; k, _ = cur.Seek(prefix) {
		if err := b.Delete(k); err != nil {
			panic(fmt.Sprintf("store: trim journal %s: %v", c.NodeID, err))
		}
		held--
	}
	return &api.TaskStatusResult{Applied: len(fresh)}
}

// Journal is the break-glass journal the managers hold for a node, oldest
// first.
func (v *View) Journal(node string) []api.JournalEntry {
	out := []api.JournalEntry{}
	prefix := journalPrefix(node)
	cur := v.tx.Bucket(bJournal).Cursor()
	for k, val := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, val = cur.Next() {
		var e api.JournalEntry
		if json.Unmarshal(val, &e) == nil {
			out = append(out, e)
		}
	}
	return out
}
