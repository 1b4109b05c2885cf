// Package format renders API objects for people and for scripts: aligned
// tables (text/tabwriter, docker's layout), relative times ("5 minutes
// ago"), sizes (api.FormatBytes), the --pretty views of inspect, spec
// diffs for --dry-run, and JSON or YAML for -o.
//
// Every function here is pure: objects and a "now" in, text out, so the
// outputs are covered by golden files (testdata/*.golden, -update).
package format

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	units "github.com/docker/go-units"
	"gopkg.in/yaml.v3"
)

// Output formats of -o.
const (
	Table = "table"
	JSON  = "json"
	YAML  = "yaml"
)

// Tabwriter returns a writer that aligns tab-separated columns the way
// docker's tables are aligned; Flush it when done.
func Tabwriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
}

// WriteTable writes rows under a header, columns aligned, with no
// trailing blanks where the last cells are empty. Each cell is sanitized
// as one line: a control character from a node or a container is shown
// escaped, and a tab or newline in a cell cannot break the table.
func WriteTable(w io.Writer, header []string, rows [][]string) error {
	var b strings.Builder
	tw := Tabwriter(&b)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	cells := make([]string, 0, len(header))
	for _, r := range rows {
		cells = cells[:0]
		for _, c := range r {
			cells = append(cells, Sanitize(c, false))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \n")
		if strings.HasSuffix(l, "\n") {
			lines[i] += "\n"
		}
	}
	_, err := io.WriteString(w, strings.Join(lines, ""))
	return err
}

// WriteJSON writes v as indented JSON, as docker inspect does.
func WriteJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteYAML writes v as YAML.
func WriteYAML(w io.Writer, v any) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}

// Encode writes v as JSON or YAML, by format.
func Encode(w io.Writer, format string, v any) error {
	switch format {
	case JSON:
		return WriteJSON(w, v)
	case YAML:
		return WriteYAML(w, v)
	}
	return fmt.Errorf("output format %q: use table, json or yaml", format)
}

// Since says how long ago t was, in docker's words: "5 minutes",
// "about a minute", "less than a second".
func Since(now, t time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		d = 0
	}
	return strings.ToLower(units.HumanDuration(d))
}

// Ago is Since with " ago"; the zero time gives "".
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return Since(now, t) + " ago"
}

// Title makes the first letter upper-case: "running" becomes "Running".
func Title(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// ShortID is the first 12 characters of an ID, as docker shows them.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Truncate shortens s to n characters, ending it with "…" if cut.
func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// StateAgo is docker's CURRENT STATE: "Running 5 minutes ago".
func StateAgo(state string, at, now time.Time) string {
	if at.IsZero() {
		return Title(state)
	}
	return Title(state) + " " + Ago(now, at)
}
