package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Break-glass: an operator on site, at a node cut off from every manager,
// acts on the node's tasks through its agent's socket (warrenctl --local):
// stop, start or restart one, or pin an override. Every action goes into
// the node's journal, append-only and hash-chained, which reaches the
// managers on reconnect. On reconnect an override is reverted to the
// managers' desired state, unless it is sticky: then the managers record
// it with the task (TaskStatus.Offline.Override) and service ps shows it.

// LocalUserHeader carries the name an operator's warrenctl --local says
// it acts for (SUDO_USER, or the SSH user): the agent records it beside
// the socket peer's uid, never in its place.
const LocalUserHeader = "X-Warren-User"

// TaskOverride is a break-glass change to one task on its node.
type TaskOverride struct {
	// Env sets (or replaces) variables of the task's environment.
	Env []string `json:"env,omitempty" yaml:"env,omitempty"`
	// Image runs a local image in place of the task's.
	Image string `json:"image,omitempty" yaml:"image,omitempty"`
	// Stopped holds the task stopped.
	Stopped bool `json:"stopped,omitempty" yaml:"stopped,omitempty"`
	// Sticky keeps the override after reconnect (recorded by the
	// managers); otherwise the managers' desired state comes back.
	Sticky bool `json:"sticky,omitempty" yaml:"sticky,omitempty"`
	// By and At: who made it (the local user) and when. Set by the node.
	By string    `json:"by,omitempty" yaml:"by,omitempty"`
	At time.Time `json:"at,omitzero" yaml:"at,omitempty"`
}

// ValidateOverride checks an override as an operator gives it.
func ValidateOverride(o *TaskOverride) error {
	var fe fieldErrs
	validateEnv(&fe, "env", o.Env)
	if o.Image != "" {
		if err := ValidateImage(o.Image); err != nil {
			fe.add("image", "%v", err)
		}
	}
	if len(o.Env) == 0 && o.Image == "" && !o.Stopped {
		fe.add("override", "changes nothing: give --env KEY=VALUE or --image IMAGE")
	}
	return fe.err("override")
}

// String is a one-line summary.
func (o *TaskOverride) String() string {
	if o == nil {
		return ""
	}
	var parts []string
	if o.Stopped {
		parts = append(parts, "held stopped")
	}
	if o.Image != "" {
		parts = append(parts, "image "+o.Image)
	}
	if len(o.Env) > 0 {
		parts = append(parts, "env "+strings.Join(o.Env, " "))
	}
	if o.Sticky {
		parts = append(parts, "sticky")
	}
	if o.By != "" {
		parts = append(parts, "by "+o.By)
	}
	return "override: " + strings.Join(parts, ", ")
}

// Apply returns spec with the override's image and environment.
func (o *TaskOverride) Apply(spec ServiceSpec) ServiceSpec {
	if o == nil {
		return spec
	}
	if o.Image != "" {
		spec.Image = o.Image
	}
	if len(o.Env) > 0 {
		env := make([]string, 0, len(spec.Env)+len(o.Env))
		set := map[string]bool{}
		for _, e := range o.Env {
			k, _, _ := strings.Cut(e, "=")
			set[k] = true
		}
		for _, e := range spec.Env {
			if k, _, _ := strings.Cut(e, "="); !set[k] {
				env = append(env, e)
			}
		}
		spec.Env = append(env, o.Env...)
	}
	return spec
}

// Break-glass actions (JournalEntry.Action).
const (
	LocalStop          = "stop"
	LocalStart         = "start"
	LocalRestart       = "restart"
	LocalOverride      = "override"
	LocalClearOverride = "clear-override"
	LocalRevert        = "revert" // the node, on reconnect
)

// JournalEntry is one line of a node's break-glass journal. Hash is the
// SHA-256 of the entry with Hash empty, which holds Prev, the hash of the
// entry before: changing or dropping an entry breaks every hash after it.
type JournalEntry struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Node   string    `json:"node"`
	User   string    `json:"user"` // the local user, by the socket's peer credentials
	UID    int       `json:"uid"`
	Action string    `json:"action"`
	Task   string    `json:"task,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Result string    `json:"result"` // "ok" or what went wrong
	Prev   string    `json:"prev"`
	Hash   string    `json:"hash"`
}

// ComputeHash is the entry's hash (over every field but Hash).
func (e JournalEntry) ComputeHash() string {
	e.Hash = ""
	b, _ := json.Marshal(e)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// VerifyJournal checks that entries follow each other (seq, prev) and
// that each hash is right, starting after prev (the hash of the entry
// before the first; "" from the start) and seq.
func VerifyJournal(entries []JournalEntry, prevSeq uint64, prev string) error {
	for _, e := range entries {
		switch {
		case e.Seq != prevSeq+1:
			return fmt.Errorf("journal entry %d follows entry %d: entries are missing", e.Seq, prevSeq)
		case e.Prev != prev:
			return fmt.Errorf("journal entry %d does not follow on from entry %d (its prev hash differs): the journal was altered", e.Seq, prevSeq)
		case e.ComputeHash() != e.Hash:
			return fmt.Errorf("journal entry %d does not match its hash: it was altered", e.Seq)
		}
		prevSeq, prev = e.Seq, e.Hash
	}
	return nil
}

// MaxJournalUpload bounds the entries of one upload.
const MaxJournalUpload = 500

// JournalUpload is a node's unsent journal entries, sent on reconnect.
type JournalUpload struct {
	Entries []JournalEntry `json:"entries"`
}

// LocalTask is one task as its node's agent sees it (warrenctl --local ps).
type LocalTask struct {
	ID          string        `json:"id"`
	Name        string        `json:"name"`
	Image       string        `json:"image"`
	Desired     TaskState     `json:"desired"`
	State       TaskState     `json:"state"`     // as the managers last said
	Container   string        `json:"container"` // the runtime's: running, stopped, created, or none
	PID         int           `json:"pid,omitempty"`
	Restarts    uint64        `json:"restarts,omitempty"` // in place, while cut off
	Override    *TaskOverride `json:"override,omitempty"`
	ContainerID string        `json:"containerID,omitempty"`
}

// LocalStatus is the agent's answer to warrenctl --local ps.
type LocalStatus struct {
	NodeID      string      `json:"nodeID"`
	CutOff      bool        `json:"cutOff"`
	LastContact time.Time   `json:"lastContact,omitzero"`
	Tasks       []LocalTask `json:"tasks"`
}
