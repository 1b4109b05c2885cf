package api

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFramesRoundTrip(t *testing.T) {
	var b bytes.Buffer
	frames := []struct {
		kind    byte
		payload []byte
	}{{FrameStdin, []byte("ls\n")}, {FrameStdinEOF, nil}, {FrameResize, EncodeSize(TermSize{Width: 132, Height: 43})}, {FrameExit, []byte(`{"code":3}`)}}
	for _, f := range frames {
		if err := WriteFrame(&b, f.kind, f.payload); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range frames {
		kind, p, err := ReadFrame(&b)
		if err != nil || kind != f.kind || !bytes.Equal(p, f.payload) {
			t.Errorf("ReadFrame = %c %q %v; want %c %q", kind, p, err, f.kind, f.payload)
		}
	}
	if _, _, err := ReadFrame(&b); err != io.EOF {
		t.Errorf("ReadFrame at the end = %v, want io.EOF", err)
	}
	if sz, err := DecodeSize(EncodeSize(TermSize{Width: 132, Height: 43})); err != nil || sz != (TermSize{132, 43}) {
		t.Errorf("DecodeSize(EncodeSize(132x43)) = %v, %v", sz, err)
	}
	// A frame cut short is an error, not the end; one too large is refused.
	WriteFrame(&b, FrameStdout, []byte("hello"))
	cut := bytes.NewReader(b.Bytes()[:7])
	if _, _, err := ReadFrame(cut); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("ReadFrame of a cut frame = %v, want an unexpected EOF", err)
	}
	if _, _, err := ReadFrame(bytes.NewReader([]byte{FrameStdout, 0xff, 0xff, 0xff, 0xff})); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("ReadFrame of a 4 GiB frame = %v, want ErrFrameTooLarge", err)
	}
}

func TestExecRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		req  ExecRequest
		want string
	}{
		{ExecRequest{Cmd: []string{"sh"}}, ""},
		{ExecRequest{}, "no command"},
		{ExecRequest{Cmd: []string{""}}, "no command"},
		{ExecRequest{Cmd: []string{"a\x00"}}, "NUL"},
		{ExecRequest{Cmd: make([]string, MaxArgs+1)}, "no command"},
		{ExecRequest{Cmd: append([]string{"sh"}, make([]string, MaxArgs)...)}, "arguments"},
	} {
		err := tc.req.Validate()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%d args) = %v, want %q", len(tc.req.Cmd), err, tc.want)
		}
	}
}

func TestLogNoticeLines(t *testing.T) {
	n := LogNotice{Node: "n1abcdefghijklmnop", Hostname: "w2", Task: "web.2.abc", Message: "cannot be reached"}
	line := n.Line()
	if !bytes.HasPrefix(line, []byte(LogNoticePrefix)) || line[len(line)-1] != '\n' {
		t.Fatalf("Line() = %q", line)
	}
	got, ok := ParseLogNotice(bytes.TrimSuffix(line, []byte("\n")))
	if !ok || got != n {
		t.Errorf("ParseLogNotice(Line()) = %+v, %v; want %+v", got, ok, n)
	}
	if s := n.String(); !strings.Contains(s, "w2 (n1abcdefghij)") || !strings.Contains(s, "cannot be reached") {
		t.Errorf("String() = %q; want the hostname, the short ID and the message", s)
	}
	task := &Task{Meta: Meta{ID: "abcdefghijklmnopqrstuvwxy"}, ServiceName: "web", Slot: 2}
	for _, l := range []string{task.LogPrefix() + `! {"node":"forged"}`, "! not json", "!" + `{"node":"x","message":"m"}`} {
		if _, ok := ParseLogNotice([]byte(l)); ok {
			t.Errorf("ParseLogNotice(%q) took a task's line for a notice", l)
		}
	}
	if p := task.LogPrefix(); p != "web.2.abcdefghijkl | " {
		t.Errorf("LogPrefix() = %q", p)
	}
}
