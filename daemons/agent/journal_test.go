package agent

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// The journal chains each entry to the one before; an edit to the file
// shows when it is opened again, and appending goes on after the last line.
func TestJournalChainShowsAnEdit(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := j.append(api.JournalEntry{At: time.Now(), Node: "n1", User: u, Action: api.LocalStop, Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if j2, err := openJournal(dir); err != nil || j2.broken != "" || j2.lastSeq() != 2 {
		t.Fatalf("reopened: %v, broken %q, last %d; want whole, at 2", err, j2.broken, j2.lastSeq())
	}
	path := filepath.Join(dir, journalFile)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte(`"alice"`), []byte(`"carol"`), 1), 0o600)
	j3, err := openJournal(dir)
	if err != nil || j3.broken == "" {
		t.Fatalf("an edited journal opened as whole (%v)", err)
	}
	if e, err := j3.append(api.JournalEntry{Node: "n1", User: "dave", Action: api.LocalStart, Result: "ok"}); err != nil || e.Seq != 3 {
		t.Errorf("append after an edit: seq %d, %v; want 3", e.Seq, err)
	}
}
