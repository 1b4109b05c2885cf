package format

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/warren-edge/warren/daemons/api"
)

func TestSanitize(t *testing.T) {
	cases := []struct {
		name        string
		in          string
		line, lines string // Sanitize(in, false) and Sanitize(in, true)
	}{
		{"plain", "web.1 running", "web.1 running", "web.1 running"},
		{"unicode", "héllo ☃ 日本 �", "héllo ☃ 日本 �", "héllo ☃ 日本 �"},
		{"backslash kept", `C:\x1b`, `C:\x1b`, `C:\x1b`},
		{"clear screen", "\x1b[2J\x1b[Hpwned", `\u001b[2J\u001b[Hpwned`, `\u001b[2J\u001b[Hpwned`},
		{"OSC 52 clipboard write", "\x1b]52;c;Y3VybCBldmlsLnNofHNo\x07", `\u001b]52;c;Y3VybCBldmlsLnNofHNo\u0007`, `\u001b]52;c;Y3VybCBldmlsLnNofHNo\u0007`},
		{"OSC 52 ended by ST", "\x1b]52;c;eA==\x1b\\", `\u001b]52;c;eA==\u001b\`, `\u001b]52;c;eA==\u001b\`},
		{"BEL", "ding\a", `ding\u0007`, `ding\u0007`},
		{"CR overwrite", "rm -rf / failed\rall good      ", `rm -rf / failed\rall good      `, `rm -rf / failed\rall good      `},
		{"CR LF", "line\r\n", `line\r\n`, "line\\r\n"},
		{"backspace overwrite", "bad\b\b\bok!", `bad\u0008\u0008\u0008ok!`, `bad\u0008\u0008\u0008ok!`},
		{"C1 CSI as UTF-8", "\u009b2J", `\u009b2J`, `\u009b2J`},
		{"C1 CSI as a raw byte", "\x9b2J", `\x9b2J`, `\x9b2J`},
		{"C1 NEL and OSC", "a\u0085b\u009dc", `a\u0085b\u009dc`, `a\u0085b\u009dc`},
		{"DEL", "x\x7fy", `x\u007fy`, `x\u007fy`},
		{"NUL", "a\x00b", `a\u0000b`, `a\u0000b`},
		{"invalid UTF-8", "ok\xff\xfe\xc3", `ok\xff\xfe\xc3`, `ok\xff\xfe\xc3`},
		{"overlong slash", "\xc0\xaf", `\xc0\xaf`, `\xc0\xaf`},
		{"tab and newline", "a\tb\nc", `a\tb\nc`, "a\tb\nc"},
		{"first character above C1", "\u00a0\u00ff", "\u00a0\u00ff", "\u00a0\u00ff"},
	}
	for _, c := range cases {
		if got := Sanitize(c.in, false); got != c.line {
			t.Errorf("Sanitize(%s %q, false) = %q, want %q", c.name, c.in, got, c.line)
		}
		if got := Sanitize(c.in, true); got != c.lines {
			t.Errorf("Sanitize(%s %q, true) = %q, want %q", c.name, c.in, got, c.lines)
		}
		for _, multi := range []bool{false, true} {
			out := Sanitize(c.in, multi)
			if bad := unsafeRune(out, multi); bad >= 0 {
				t.Errorf("Sanitize(%s %q, %v) = %q still holds %U", c.name, c.in, multi, out, bad)
			}
			if again := Sanitize(out, multi); again != out {
				t.Errorf("Sanitize of its own output %q changed it to %q", out, again)
			}
		}
	}
}

// unsafeRune returns the first rune of s a terminal would act on, or -1.
func unsafeRune(s string, multiline bool) rune {
	if !utf8.ValidString(s) {
		return utf8.RuneError
	}
	for _, r := range s {
		if multiline && (r == '\t' || r == '\n') {
			continue
		}
		if r < 0x20 || r >= 0x7f && r <= 0x9f {
			return r
		}
	}
	return -1
}

func TestWriter(t *testing.T) {
	// Written in pieces that split an escape sequence and UTF-8
	// characters (é is c3 a9, U+009B is c2 9b).
	pieces := []string{"web.1 | caf\xc3", "\xa9 \x1b", "[2J\xc2", "\x9b", "1m\ttab\r\n", "ok\n", "end\xe2\x98"}
	var b bytes.Buffer
	w := NewWriter(&b)
	for _, p := range pieces {
		if n, err := w.Write([]byte(p)); n != len(p) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", p, n, err, len(p))
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "web.1 | café \\u001b[2J\\u009b1m\ttab\\r\nok\nend\\xe2\\x98"
	if b.String() != want {
		t.Errorf("Writer given %q wrote %q, want %q", pieces, b.String(), want)
	}
	if err := NewWriter(&b).Flush(); err != nil {
		t.Errorf("Flush with nothing held = %v", err)
	}
}

// TestEncodedOutputThroughWriter checks what -o json and -o yaml print:
// the encoders escape what they escape, the Writer the rest (DEL and the
// C1 controls in JSON), and the text reads back unchanged.
func TestEncodedOutputThroughWriter(t *testing.T) {
	hostile := "\x1b[2J\x1b]52;c;eA==\a\rok\u009b\x7f\u0085 done"
	task := api.Task{Meta: api.Meta{ID: "t1"}, Status: api.TaskStatus{Err: hostile}}
	for _, f := range []string{JSON, YAML} {
		var b bytes.Buffer
		w := NewWriter(&b)
		if err := Encode(w, f, task); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		if bad := unsafeRune(b.String(), true); bad >= 0 {
			t.Errorf("-o %s of a task whose error is %q printed %U:\n%s", f, hostile, bad, b.String())
		}
		var back api.Task
		var err error
		if f == JSON {
			err = json.Unmarshal(b.Bytes(), &back)
		} else {
			err = yaml.Unmarshal(b.Bytes(), &back)
		}
		if err != nil || back.Status.Err != hostile {
			t.Errorf("-o %s output read back as %q, %v; want %q:\n%s", f, back.Status.Err, err, hostile, b.String())
		}
	}
}

// hostileFixture is the fixture with what a container or a node could put
// in the fields warrenctl shows.
func hostileFixture() ([]api.Service, []api.Task, []api.Node) {
	services, tasks, nodes := fixture()
	nodes[0].Description.Hostname = "pi-2\x1b[2J\x1b[H"
	nodes[0].Description.EngineVersion = "containerd\u009b31m 2.1"
	nodes[0].Status.Message = "down\rall good, nothing to see here"
	nodes[0].Description.Disk.Path = "/var/lib/warren\x1b[2J/agent"
	nodes[1].Description.OS = "linux\x1b]52;c;Y3VybCBldmlsLnNo\a"
	tasks[1].Status.Err = "exit 1\x1b]0;owned\a\nwarrenctl: fake line\x7f"
	tasks[0].Status.Err = "waiting\x9b\xff"
	services[0].UpdateStatus.Message = "task web.1 failed: \x1b[31mred\x1b[0m\r"
	return services, tasks, nodes
}

func TestHostileOutput(t *testing.T) {
	services, tasks, nodes := hostileFixture()
	hostnames := map[string]string{}
	for _, n := range nodes {
		hostnames[n.ID] = n.Description.Hostname
	}
	outputs := map[string]func(*bytes.Buffer) error{
		"hostile_service_ps":     func(b *bytes.Buffer) error { return TaskTable(b, tasks, hostnames, now, true) },
		"hostile_node_ls":        func(b *bytes.Buffer) error { return NodeTable(b, nodes, "", now, -1) },
		"hostile_node_pretty":    func(b *bytes.Buffer) error { return PrettyNode(b, &nodes[0], now) },
		"hostile_service_pretty": func(b *bytes.Buffer) error { return PrettyService(b, &services[0], now) },
		"hostile_os_pretty":      func(b *bytes.Buffer) error { return PrettyNode(b, &nodes[1], now) },
	}
	for name, write := range outputs {
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		if bad := unsafeRune(b.String(), true); bad >= 0 {
			t.Errorf("%s printed %U:\n%q", name, bad, b.String())
		}
		golden(t, name, b.Bytes())
	}
	// A row per task: the newline in an error does not make a fake row.
	var b bytes.Buffer
	TaskTable(&b, tasks, hostnames, now, true)
	if rows := strings.Count(b.String(), "\n"); rows != len(tasks)+1 {
		t.Errorf("service ps of %d tasks printed %d lines, want %d:\n%s", len(tasks), rows, len(tasks)+1, b.String())
	}
}
