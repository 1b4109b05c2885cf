package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

// ExecStreams are an exec session's streams on the caller's side.
type ExecStreams struct {
	// Stdin is read when the request asks for stdin; its end (io.EOF)
	// closes the process's stdin.
	Stdin io.Reader
	// Stdout and Stderr receive the process's output (nil: discarded);
	// with a TTY it all comes on Stdout.
	Stdout, Stderr io.Writer
	// Resize carries the terminal's new sizes (TTY only).
	Resize <-chan api.TermSize
}

// ExecError says the command could not run in the container.
type ExecError struct {
	Message string
	// NotFound: the command does not exist in the container.
	NotFound bool
}

func (e *ExecError) Error() string { return e.Message }

// ErrExecBroken means the session ended without the process's exit: the
// connection to a node on the way broke, or a daemon on it stopped.
var ErrExecBroken = errors.New("client: the exec session broke before the process ended (a node or its link went down?): whether the command ran to its end is unknown")

// Exec runs req in the container of a task (by ID or ID prefix), on
// whichever node runs it, with s as its streams, and returns the process's
// exit code when it ends. The session is refused with the API's error
// (no such task, not running, not allowed, node unreachable); a command
// that cannot run gives an *ExecError; a session that breaks,
// ErrExecBroken. When ctx ends, the session is closed and the process
// killed.
func (c *Client) Exec(ctx context.Context, ref string, req api.ExecRequest, s ExecStreams) (int, error) {
	raw, err := json.Marshal(req)
	if err != nil {
		return -1, fmt.Errorf("client: encode exec request: %w", err)
	}
	hdr := http.Header{"Connection": {"Upgrade"}, "Upgrade": {api.ExecProtocol}}
	// A session lasts as long as its process: an HTTP client's Timeout
	// would end it (and hide the connection behind its timer).
	sc, hc := *c, *c.hc
	hc.Timeout = 0
	sc.hc = &hc
	resp, err := sc.send(ctx, http.MethodPost, "/v1/tasks/"+esc(ref)+"/exec", raw, hdr)
	if err != nil {
		return -1, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
		return -1, fmt.Errorf("client: exec: %s answered %s instead of starting a session: is it older than this client?", c.host, resp.Status)
	}
	conn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return -1, fmt.Errorf("client: exec: the HTTP client of %s cannot switch protocols (its transport gives no writable connection)", c.host)
	}
	done := make(chan struct{})
	defer close(done)
	var closeOnce sync.Once
	closeConn := func() { closeOnce.Do(func() { conn.Close() }) }
	defer closeConn()
	go func() {
		select {
		case <-ctx.Done():
			closeConn()
		case <-done:
		}
	}()
	var wmu sync.Mutex
	send := func(kind byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return api.WriteFrame(conn, kind, p)
	}
	if req.Stdin {
		go func() {
			if s.Stdin != nil {
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Stdin.Read(buf)
					if n > 0 && send(api.FrameStdin, buf[:n]) != nil {
						return
					}
					if err != nil {
						break
					}
				}
			}
			send(api.FrameStdinEOF, nil)
		}()
	}
	if req.TTY && s.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-s.Resize:
					if !ok || send(api.FrameResize, api.EncodeSize(sz)) != nil {
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	for {
		kind, p, err := api.ReadFrame(conn)
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			return -1, ErrExecBroken
		}
		var w io.Writer
		switch kind {
		case api.FrameStdout:
			w = s.Stdout
		case api.FrameStderr:
			w = s.Stderr
		case api.FrameExit:
			var x api.ExecExit
			if err := json.Unmarshal(p, &x); err != nil {
				return -1, fmt.Errorf("client: exec: the exit frame does not decode: %w", err)
			}
			if x.Error != "" {
				return -1, &ExecError{Message: x.Error, NotFound: x.NotFound}
			}
			return x.Code, nil
		}
		if w != nil {
			if _, err := w.Write(p); err != nil {
				return -1, fmt.Errorf("client: exec: write the output: %w", err)
			}
		}
	}
}
