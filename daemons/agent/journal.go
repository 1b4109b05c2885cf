package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/warren-edge/warren/daemons/api"
)

// journalFile is the break-glass journal in the agent's data dir: one JSON
// entry per line, appended and synced, each chained to the one before by
// its hash (api.JournalEntry).
const journalFile = "journal.log"

// journal is the node's break-glass journal.
type journal struct {
	mu   sync.Mutex
	path string
	last api.JournalEntry // the last entry written (zero: none)
	// broken says why the file does not verify ("" when it does): the
	// agent goes on appending, and the managers refuse what no longer
	// follows on from what they hold.
	broken string
}

// openJournal reads and verifies the journal in dir.
func openJournal(dir string) (*journal, error) {
	j := &journal{path: filepath.Join(dir, journalFile)}
	entries, err := j.read()
	if err != nil {
		return nil, err
	}
	if err := api.VerifyJournal(entries, 0, ""); err != nil {
		j.broken = err.Error()
	}
	if n := len(entries); n > 0 {
		j.last = entries[n-1]
	}
	return j, nil
}

// read returns every entry in the file.
func (j *journal) read() ([]api.JournalEntry, error) {
	f, err := os.Open(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: journal: %w", err)
	}
	defer f.Close()
	var out []api.JournalEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		var e api.JournalEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// A line torn by a crash mid-append is the last one; anything
			// else is damage the chain check reports.
			continue
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// append chains e to the journal, writes it and syncs it.
func (j *journal) append(e api.JournalEntry) (api.JournalEntry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	e.Seq, e.Prev = j.last.Seq+1, j.last.Hash
	e.Hash = e.ComputeHash()
	b, err := json.Marshal(e)
	if err != nil {
		return e, err
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return e, fmt.Errorf("agent: journal: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return e, fmt.Errorf("agent: journal: %w", err)
	}
	j.last = e
	return e, nil
}

// since returns the entries after seq.
func (j *journal) since(seq uint64) ([]api.JournalEntry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	all, err := j.read()
	if err != nil {
		return nil, err
	}
	var out []api.JournalEntry
	for _, e := range all {
		if e.Seq > seq {
			out = append(out, e)
		}
	}
	return out, nil
}

func (j *journal) lastSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.last.Seq
}
