package api

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Exec: running a process in a task's container (warrenctl service exec).
//
// POST /v1/tasks/{ref}/exec takes an ExecRequest and, when the caller asks
// for it (Connection: Upgrade, Upgrade: ExecProtocol), answers 101
// Switching Protocols: from then on the connection carries frames both
// ways, end to end from the client to the node's agent; the managers and
// the agent socket between them pass bytes on and read none of them.
//
//	client ──frames──▶ manager ──(node port)──▶ task's node manager ──▶ agent ─▶ containerd
//	       ◀─────────────────────── frames ──────────────────────────────┘
//
// A frame is a kind byte, the payload's length (4 bytes, big endian) and
// the payload. The client sends FrameStdin, FrameStdinEOF and FrameResize;
// the agent sends FrameStdout, FrameStderr (never with a TTY: the terminal
// merges them) and, last, one FrameExit. A connection that ends without a
// FrameExit is a session that broke; the agent kills the process of a
// session whose client went away.
//
// Why frames and not the raw connection (as docker attach with a TTY):
// stdout and stderr stay apart without a TTY, a resize and the end of
// stdin need no second request, half-closing is not needed through TLS
// hops, and the exit code comes on the same connection.

// ExecProtocol is the Upgrade token of an exec session.
const ExecProtocol = "warren-exec/1"

// ExecRequest is what runs: a command, with or without a TTY and stdin.
type ExecRequest struct {
	Cmd []string `json:"cmd"`
	// TTY gives the process a terminal of Width × Height.
	TTY    bool   `json:"tty,omitempty"`
	Width  uint16 `json:"width,omitempty"`
	Height uint16 `json:"height,omitempty"`
	// Stdin passes the client's FrameStdin to the process; without it the
	// process's stdin is empty.
	Stdin bool `json:"stdin,omitempty"`
}

// Validate checks an exec request.
func (r *ExecRequest) Validate() error {
	if len(r.Cmd) == 0 || r.Cmd[0] == "" {
		return Errorf(CodeInvalid, "exec: no command given: say what to run, e.g. warrenctl service exec TASK -- sh")
	}
	if len(r.Cmd) > MaxArgs {
		return Errorf(CodeInvalid, "exec: %d arguments, at most %d", len(r.Cmd), MaxArgs)
	}
	for i, a := range r.Cmd {
		if len(a) > MaxArgLen {
			return Errorf(CodeInvalid, "exec: argument %d is %d bytes long, at most %d", i, len(a), MaxArgLen)
		}
		if strings.IndexByte(a, 0) >= 0 {
			return Errorf(CodeInvalid, "exec: argument %d holds a NUL byte", i)
		}
	}
	return nil
}

// ExecExit ends a session: the process's exit code, or why it could not
// run (Error set, Code -1).
type ExecExit struct {
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
	// NotFound says the command does not exist in the container (a shell
	// would exit 127).
	NotFound bool `json:"notFound,omitempty"`
}

// TermSize is a terminal's size in characters.
type TermSize struct {
	Width  uint16 `json:"width"`
	Height uint16 `json:"height"`
}

// Frame kinds.
const (
	FrameStdin    byte = 'i'
	FrameStdinEOF byte = 'c' // no payload: stdin is closed
	FrameResize   byte = 'r' // payload: 2 bytes width, 2 bytes height
	FrameStdout   byte = 'o'
	FrameStderr   byte = 'e'
	FrameExit     byte = 'x' // payload: ExecExit as JSON
)

// MaxFrame bounds a frame's payload.
const MaxFrame = 1 << 20

// ErrFrameTooLarge is returned by ReadFrame for a payload over MaxFrame.
var ErrFrameTooLarge = errors.New("api: exec frame larger than 1 MiB")

// WriteFrame writes one frame. Writers that share w serialize their calls.
func WriteFrame(w io.Writer, kind byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return ErrFrameTooLarge
	}
	b := make([]byte, 5+len(payload))
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:5], uint32(len(payload)))
	copy(b[5:], payload)
	_, err := w.Write(b)
	return err
}

// ReadFrame reads one frame; io.EOF only when the stream ends between
// frames.
func ReadFrame(r io.Reader) (kind byte, payload []byte, err error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return 0, nil, fmt.Errorf("api: exec frame header: %w", err)
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[1:5])
	if n > MaxFrame {
		return 0, nil, ErrFrameTooLarge
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("api: exec frame of %d bytes: %w", n, err)
	}
	return h[0], payload, nil
}

// EncodeSize is a FrameResize payload.
func EncodeSize(s TermSize) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b[0:2], s.Width)
	binary.BigEndian.PutUint16(b[2:4], s.Height)
	return b
}

// DecodeSize reads a FrameResize payload.
func DecodeSize(b []byte) (TermSize, error) {
	if len(b) != 4 {
		return TermSize{}, fmt.Errorf("api: a resize frame holds 4 bytes, not %d", len(b))
	}
	return TermSize{Width: binary.BigEndian.Uint16(b[0:2]), Height: binary.BigEndian.Uint16(b[2:4])}, nil
}
