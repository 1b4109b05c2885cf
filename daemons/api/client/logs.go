package client

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// LogOptions select what a log stream holds.
type LogOptions struct {
	Follow bool
	// Tail is the number of lines from the end to start with; negative
	// means all.
	Tail int
	// Task keeps one task of the service (ServiceLogs only).
	Task string
	// Since, when set, keeps the lines written at or after it, to within
	// about a second (api.ParseLogSince); with Tail, the last of those.
	Since time.Time
}

func (o LogOptions) query() string {
	v := url.Values{}
	if o.Follow {
		v.Set("follow", "1")
	}
	if o.Tail >= 0 {
		v.Set("tail", strconv.Itoa(o.Tail))
	}
	if o.Task != "" {
		v.Set("task", o.Task)
	}
	if !o.Since.IsZero() {
		v.Set("since", api.FormatLogSince(o.Since))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// ServiceLogs streams the logs of a service's tasks on every node, each
// line prefixed with its task's name, and notice lines where a node's
// lines are missing (api.LogNotice): read it with CopyLogs. Close the
// reader when done.
func (c *Client) ServiceLogs(ctx context.Context, ref string, o LogOptions) (io.ReadCloser, error) {
	resp, err := c.request(ctx, http.MethodGet, "/v1/services/"+esc(ref)+"/logs"+o.query(), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// TaskLogs streams one task's log as its container wrote it, from the
// node that runs it. A read error (io.ErrUnexpectedEOF) means the stream
// broke. Close the reader when done.
func (c *Client) TaskLogs(ctx context.Context, ref string, o LogOptions) (io.ReadCloser, error) {
	o.Task = ""
	resp, err := c.request(ctx, http.MethodGet, "/v1/tasks/"+esc(ref)+"/logs"+o.query(), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// IncompleteLogsError says which nodes' lines a service's logs lack.
type IncompleteLogsError struct {
	Notices []api.LogNotice
}

func (e *IncompleteLogsError) Error() string {
	var nodes []string
	seen := map[string]bool{}
	for _, n := range e.Notices {
		name := n.Node
		if n.Hostname != "" {
			name = n.Hostname
		}
		if !seen[name] {
			seen[name] = true
			nodes = append(nodes, name)
		}
	}
	return fmt.Sprintf("the logs are incomplete: lines of node %s are missing (see the warnings above)", strings.Join(nodes, ", "))
}

// CopyLogs copies a service's log stream (ServiceLogs) to out, line by
// line, and passes each notice line to notice (if not nil) instead. It
// returns nil when the stream ended and no lines were missing, an
// *IncompleteLogsError when some were, or the error that broke the
// stream.
func CopyLogs(out io.Writer, r io.Reader, notice func(api.LogNotice)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var missing []api.LogNotice
	atStart := true
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if n, ok := api.ParseLogNotice(bytes.TrimSuffix(line, []byte("\n"))); ok && atStart && err == nil {
				missing = append(missing, n)
				if notice != nil {
					notice(n)
				}
			} else if _, werr := out.Write(line); werr != nil {
				return werr
			}
			atStart = line[len(line)-1] == '\n'
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
		case err == io.EOF:
			if len(missing) > 0 {
				return &IncompleteLogsError{Notices: missing}
			}
			return nil
		default:
			return fmt.Errorf("client: the log stream broke: %w", unwrapNet(err))
		}
	}
}
