package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Logs. GET /v1/tasks/{ref}/logs is one task's output as its container
// wrote it (text/plain), served by the node that runs the task: a node
// that cannot be reached is an error before the stream starts, and a
// stream that breaks is cut off without its end (the reader sees an
// unexpected EOF), never ended as if complete.
//
// GET /v1/services/{ref}/logs merges the logs of the service's tasks on
// every node, each line prefixed with its task (Task.LogPrefix). A line
// that starts with LogNoticePrefix is not a task's: it is a LogNotice, the
// manager's word that some lines are missing (a node that could not be
// reached, a stream that broke). No task's line can start so, since every
// task's line starts with its service's name.
//
// Both take ?since=T (ParseLogSince): only the lines written at or after
// T, to within about a second (the lines carry no time: the agent keeps,
// next to each log file, the file's length second by second). With
// ?tail=N too, the last N of those lines. A manager turns a duration into
// a time once and passes that time on, so every node cuts at one instant.

// LogNoticePrefix starts a notice line of a service's log stream; the
// JSON of a LogNotice follows.
const LogNoticePrefix = "! "

// LogNotice says that a node's lines are missing from a service's logs.
type LogNotice struct {
	// Node and Hostname name the node whose lines are missing.
	Node     string `json:"node"`
	Hostname string `json:"hostname,omitempty"`
	// Task names the task (its LogPrefix without the bar).
	Task    string `json:"task,omitempty"`
	Message string `json:"message"`
}

// String is the notice for a person.
func (n LogNotice) String() string {
	node := n.Node
	if n.Hostname != "" {
		node = fmt.Sprintf("%s (%s)", n.Hostname, shortID(n.Node))
	}
	if n.Task != "" {
		return fmt.Sprintf("node %s, task %s: %s", node, n.Task, n.Message)
	}
	return fmt.Sprintf("node %s: %s", node, n.Message)
}

// Line is the notice as a log stream carries it.
func (n LogNotice) Line() []byte {
	b, _ := json.Marshal(n)
	return append(append([]byte(LogNoticePrefix), b...), '\n')
}

// ParseLogNotice reads a notice line (without its newline); ok is false
// for a task's line.
func ParseLogNotice(line []byte) (n LogNotice, ok bool) {
	rest, found := bytes.CutPrefix(line, []byte(LogNoticePrefix))
	if !found || json.Unmarshal(rest, &n) != nil {
		return LogNotice{}, false
	}
	return n, true
}

// LogName is how a service's logs name the task: NAME.SHORTID.
func (t *Task) LogName() string { return t.Name() + "." + shortID(t.ID) }

// LogPrefix starts each of the task's lines in a service's logs.
func (t *Task) LogPrefix() string { return t.LogName() + " | " }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ParseLogSince reads a log request's since: a duration ago ("10m",
// "2h", counted back from now) or a time in RFC 3339
// ("2026-12-05T10:00:00Z"). A time in the future is not an error: no
// line is that new.
func ParseLogSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, Errorf(CodeInvalid, "since %q: give a duration ago (10m, 2h) or a time in RFC 3339 (2026-12-05T10:00:00Z)", s)
}

// FormatLogSince is how a since time travels in a request: RFC 3339 in
// UTC, to the nanosecond.
func FormatLogSince(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
