package format

import (
	"io"
	"unicode/utf8"
)

// Text that came from a node or a container (hostnames, task errors and
// messages, health-check output, container logs) may hold what a terminal
// acts on instead of showing: ESC [ 2J clears the screen, ESC ] 52 writes
// the clipboard, BEL rings, a CR moves back over what was printed so that
// the rest of the line hides it, and a C1 control (0x9b is CSI) starts a
// sequence on terminals that read them. Sanitize is the one place warrenctl
// decides what is safe to print; tables, --pretty views and Writer (every
// stream warrenctl writes to) use it.

// Sanitize returns s with every character a terminal would act on made
// visible as an escape: the C0 controls, DEL and the C1 controls (U+0080
// to U+009F), as \t, \n and \r or \u00XX, and each byte of invalid UTF-8
// as \xXX. With multiline, tabs and newlines are kept as they are (a
// field that may span lines); without, they are escaped too (a table
// cell, a one-line value). The escapes are JSON's and Go's, so JSON
// output stays JSON that reads back as the same text. A backslash is left
// as it is.
func Sanitize(s string, multiline bool) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			out, _ := appendSanitized(make([]byte, 0, len(s)+16), []byte(s), multiline, true)
			return string(out)
		}
	}
	return s // the common case: printable ASCII
}

// appendSanitized appends src to dst as Sanitize writes it. Unless final,
// it stops before an incomplete UTF-8 sequence at the end of src (the
// next write may complete it) and says how many bytes it used.
func appendSanitized(dst, src []byte, multiline, final bool) (out []byte, used int) {
	const hex = "0123456789abcdef"
	for i := 0; i < len(src); {
		c := src[i]
		if c >= 0x20 && c < 0x7f {
			dst = append(dst, c)
			i++
			continue
		}
		r, n := rune(c), 1
		if c >= utf8.RuneSelf {
			if !final && !utf8.FullRune(src[i:]) {
				return dst, i
			}
			r, n = utf8.DecodeRune(src[i:])
		}
		switch {
		case r == utf8.RuneError && n == 1:
			dst = append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
		case (r == '\t' || r == '\n') && multiline:
			dst = append(dst, byte(r))
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			dst = append(dst, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			dst = append(dst, src[i:i+n]...)
		}
		i += n
	}
	return dst, len(src)
}

// Writer passes what is written to it on, sanitized as multi-line text
// (tabs and newlines kept). A UTF-8 sequence split between two writes is
// held back until it is complete; Flush writes what is held back.
type Writer struct {
	w    io.Writer
	held []byte
	buf  []byte
}

// NewWriter returns a Writer that writes to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sanitizes p and writes it on. It reports all of p written when the
// underlying writer takes everything it is given.
func (sw *Writer) Write(p []byte) (int, error) {
	src := p
	if len(sw.held) > 0 {
		src = append(sw.held, p...)
	}
	out, used := appendSanitized(sw.buf[:0], src, true, false)
	sw.buf = out
	sw.held = append(sw.held[:0:0], src[used:]...)
	if _, err := sw.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what an incomplete UTF-8 sequence at the end of the last
// write held back, escaped as the invalid bytes it now is.
func (sw *Writer) Flush() error {
	if len(sw.held) == 0 {
		return nil
	}
	out, _ := appendSanitized(nil, sw.held, true, true)
	sw.held = nil
	_, err := sw.w.Write(out)
	return err
}
