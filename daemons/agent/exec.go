package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
)

// maxExecRequest bounds an exec request's body.
const maxExecRequest = 1 << 20

// exec runs an exec session (api.ExecProtocol) in a task's running
// container: it checks the request, takes the connection over once it has
// answered 101, and runs the process with the session's frames as its
// streams until it exits; a client that goes away has it killed.
func (a *Agent) exec(w http.ResponseWriter, r *http.Request, id string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxExecRequest))
	if err != nil {
		writeErr(w, api.Errorf(api.CodeInvalid, "exec request: %v", err))
		return
	}
	var req api.ExecRequest
	if err := api.UnmarshalStrict(body, &req); err != nil {
		writeErr(w, api.Errorf(api.CodeInvalid, "exec request: %v", err))
		return
	}
	if err := req.Validate(); err != nil {
		writeErr(w, err)
		return
	}
	a.mu.Lock()
	c, ok := a.containers[id]
	a.mu.Unlock()
	switch {
	case !ok:
		writeErr(w, api.Errorf(api.CodeNotFound, "task %s has no container on this node", id))
		return
	case c.State != rt.StateRunning:
		writeErr(w, api.Errorf(api.CodeConflict, "the container of task %s is not running (%s): exec needs a running container", id, c.State))
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), api.ExecProtocol) {
		writeErr(w, api.Errorf(api.CodeInvalid, "exec is a session: ask for it with Connection: Upgrade and Upgrade: %s", api.ExecProtocol))
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		writeErr(w, api.Errorf(api.CodeInternal, "exec: take the connection over: %v", err))
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+api.ExecProtocol+"\r\n\r\n"); err != nil {
		return
	}
	code, err := a.execSession(conn, brw.Reader, id, req)
	a.log.Debug("exec session ended", "task", id, "cmd", req.Cmd, "code", code, "err", err)
}

// execSession runs req in container id with conn's frames as its streams,
// and ends with the FrameExit that says how it ended.
func (a *Agent) execSession(conn net.Conn, in *bufio.Reader, id string, req api.ExecRequest) (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wmu sync.Mutex
	send := func(kind byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return api.WriteFrame(conn, kind, p)
	}
	stdinR, stdinW := io.Pipe()
	defer stdinR.Close()
	resize := make(chan rt.TermSize, 1)
	feed := req.Stdin
	go func() {
		// The client's frames, until it closes: then the process goes.
		defer cancel()
		for {
			kind, p, err := api.ReadFrame(in)
			if err != nil {
				stdinW.CloseWithError(io.ErrUnexpectedEOF)
				return
			}
			switch kind {
			case api.FrameStdin:
				if feed {
					if _, err := stdinW.Write(p); err != nil {
						feed = false // the process is done with its input
					}
				}
			case api.FrameStdinEOF:
				stdinW.Close()
			case api.FrameResize:
				sz, err := api.DecodeSize(p)
				if err != nil {
					continue
				}
				select { // the latest size wins
				case <-resize:
				default:
				}
				resize <- rt.TermSize{Width: sz.Width, Height: sz.Height}
			}
		}
	}()
	x := rt.ExecIO{Args: req.Cmd, TTY: req.TTY, Size: rt.TermSize{Width: req.Width, Height: req.Height},
		Stdout: frameWriter{api.FrameStdout, send}, Stderr: frameWriter{api.FrameStderr, send}}
	if req.TTY {
		x.Resize = resize
	}
	if req.Stdin {
		x.Stdin = stdinR
	}
	code, err := a.rt.ExecStream(ctx, id, x)
	exit := api.ExecExit{Code: code}
	if err != nil {
		exit.Code = -1
		exit.NotFound = errors.Is(err, rt.ErrCommandNotFound)
		switch {
		case exit.NotFound:
			exit.Error = fmt.Sprintf("%q: command not found in the container", req.Cmd[0])
		case errors.Is(err, rt.ErrNotRunning):
			exit.Error = "the container is not running: exec needs a running container"
		default:
			exit.Error = err.Error()
		}
	}
	b, _ := json.Marshal(exit)
	send(api.FrameExit, b)
	return exit.Code, err
}

// frameWriter writes what it is given as frames of one kind.
type frameWriter struct {
	kind byte
	send func(kind byte, p []byte) error
}

func (f frameWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += 32 << 10 {
		end := min(off+32<<10, len(p))
		if err := f.send(f.kind, p[off:end]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}
