// Package manifest reads the YAML files of warrenctl apply: one or more
// documents, each a service spec in its YAML form (the yaml tags of
// api.ServiceSpec) with an optional "kind: service" line.
//
// Reading is strict and every problem names its place as FILE:LINE, the
// way compilers do: unknown fields (yaml.v3 with KnownFields), values of
// the wrong type, other kinds, duplicate service names, ports two
// documents both publish, and everything api.ValidateServiceSpec refuses.
// warrenctl sends nothing unless every document of every file is good.
//
// Specs read here get the defaults the manager applies before it stores
// one (api.NormalizeSpec, api.DefaultReplicas), so that warrenctl can tell
// "unchanged" from "configured" without a round trip.
package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/warren-edge/warren/daemons/api"
)

// KindService is the only kind apply reads; it may be left out.
const KindService = "service"

// Stdin is the file name apply uses for "-f -".
const Stdin = "<stdin>"

// Document is one service spec read from a file.
type Document struct {
	File string
	Line int // where the document's first field is
	Spec api.ServiceSpec
	root *yaml.Node
}

// Where is FILE:LINE of the document.
func (d *Document) Where() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// Problem is one thing wrong in a file, at a line (0 if unknown).
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) String() string {
	if p.Line == 0 {
		return p.File + ": " + p.Msg
	}
	return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
}

// Problems is every problem found, in file and line order; it is the error
// Read, Validate and CheckSet return.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

func (ps Problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// document is the shape of one YAML document: a service spec and a kind.
type document struct {
	Kind            string `yaml:"kind,omitempty"`
	api.ServiceSpec `yaml:",inline"`
}

// Read reads every document of a YAML stream. Empty documents are skipped.
// A document that does not say "replicas:" and is not global gets one
// replica, as service create gives. When anything is wrong it returns
// Problems, with the documents it could read (so that a caller can check
// those too and report every problem at once).
func Read(file string, data []byte) ([]Document, error) {
	// Pass 1: the node trees, for kinds, lines and empty documents.
	var roots []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, Problems{syntaxProblem(file, err)}
		}
		var root *yaml.Node
		if len(n.Content) > 0 {
			root = n.Content[0]
		}
		roots = append(roots, root)
	}
	// Pass 2: the specs, strictly.
	var ps Problems
	var docs []Document
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	for _, root := range roots {
		var d document
		err := dec.Decode(&d)
		if root == nil || root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		if root.Kind != yaml.MappingNode {
			ps = append(ps, Problem{file, root.Line, "a document must be a service spec: fields such as name: and image:, not a " + nodeKind(root)})
			continue
		}
		doc := Document{File: file, Line: root.Line, Spec: d.ServiceSpec, root: root}
		if k := valueOf(root, "kind"); k != nil && !strings.EqualFold(k.Value, KindService) {
			ps = append(ps, Problem{file, k.Line, fmt.Sprintf("kind %q is not something apply knows: it reads services (kind: service, or no kind line)", k.Value)})
			continue
		}
		if err != nil {
			ps = append(ps, decodeProblems(file, root, err)...)
			continue
		}
		api.DefaultReplicas(&doc.Spec, valueOf(root, "replicas") != nil)
		docs = append(docs, doc)
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return docs, ps.err()
}

func nodeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return fmt.Sprintf("single value (%q)", n.Value)
	default:
		return "YAML alias or other node"
	}
}

var lineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

func syntaxProblem(file string, err error) Problem {
	if m := lineRe.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return Problem{file, n, "not valid YAML: " + m[2]}
	}
	return Problem{file, 0, "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
}

var (
	unknownRe  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	unmarshRe  = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
	unmarshRe2 = regexp.MustCompile(`^cannot unmarshal !!(\w+) into (\S+)$`)
)

// decodeProblems turns yaml.v3's errors into FILE:LINE problems that name
// the field.
func decodeProblems(file string, root *yaml.Node, err error) []Problem {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var ps []Problem
	for _, msg := range msgs {
		m := lineRe.FindStringSubmatch(msg)
		if m == nil {
			ps = append(ps, Problem{file, root.Line, msg})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		text := m[2]
		path := pathAt(root, line)
		switch {
		case unknownRe.MatchString(text):
			name := unknownRe.FindStringSubmatch(text)[1]
			text = fmt.Sprintf("unknown field %q", name)
			if s := suggest(name); s != "" {
				text += fmt.Sprintf(" (did you mean %q?)", s)
			}
		case unmarshRe.MatchString(text):
			sm := unmarshRe.FindStringSubmatch(text)
			text = fmt.Sprintf("%q is not %s", sm[2], typeWords(sm[3]))
			if path != "" {
				text = path + ": " + text
			}
		case unmarshRe2.MatchString(text):
			sm := unmarshRe2.FindStringSubmatch(text)
			text = fmt.Sprintf("found a %s where %s belongs", yamlWords(sm[1]), typeWords(sm[2]))
			if path != "" {
				text = path + ": " + text
			}
		default:
			if path != "" {
				text = path + ": " + text
			}
		}
		ps = append(ps, Problem{file, line, text})
	}
	return ps
}

func typeWords(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping of names to values"
	case strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "int"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "*"):
		return typeWords(goType[1:])
	default:
		return "a mapping of fields"
	}
}

func yamlWords(tag string) string {
	switch tag {
	case "seq":
		return "list"
	case "map":
		return "mapping"
	default:
		return tag
	}
}

// valueOf returns the value node of key in a mapping node, or nil.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// pathAt names the field whose key or value starts at line, e.g.
// "ports[1].target"; "" if none does.
func pathAt(n *yaml.Node, line int) string {
	var walk func(n *yaml.Node, prefix string) (string, bool)
	walk = func(n *yaml.Node, prefix string) (string, bool) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if prefix != "" {
					p = prefix + "." + k.Value
				}
				if r, ok := walk(v, p); ok {
					return r, true
				}
				if k.Line == line {
					return p, true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", prefix, i)
				if r, ok := walk(c, p); ok {
					return r, true
				}
				if c.Line == line {
					return p, true
				}
			}
		}
		return "", false
	}
	p, _ := walk(n, "")
	return p
}

// LineOf finds the line of a field named the way api.FieldError names it:
// "image", "ports[0].target", "env[2]", "labels.com.example.tier". A field
// the document does not hold gives the line of its closest parent.
func (d *Document) LineOf(field string) int {
	n := d.root
	if n == nil {
		return d.Line
	}
	line := d.Line
	parts := strings.Split(field, ".")
	for i := 0; i < len(parts); i++ {
		part := parts[i]
		idx := -1
		if j := strings.IndexByte(part, '['); j >= 0 && strings.HasSuffix(part, "]") {
			idx, _ = strconv.Atoi(part[j+1 : len(part)-1])
			part = part[:j]
		}
		if n.Kind == yaml.MappingNode && valueOf(n, part) == nil && i+1 < len(parts) {
			// A map key may hold dots (labels.com.example.tier).
			part = strings.Join(parts[i:], ".")
			i = len(parts)
		}
		if n.Kind != yaml.MappingNode {
			return line
		}
		found := false
		for k := 0; k+1 < len(n.Content); k += 2 {
			if n.Content[k].Value == part {
				line, n, found = n.Content[k].Line, n.Content[k+1], true
				break
			}
		}
		if !found {
			return line
		}
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

// fieldNames is every yaml field name of a service spec, for suggestions.
var fieldNames = func() []string {
	seen := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				seen[name] = true
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeFor[document]())
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}()

// suggest returns the known field name closest to name, if it is close.
func suggest(name string) string {
	best, bestD := "", 3
	for _, f := range fieldNames {
		if d := distance(strings.ToLower(name), strings.ToLower(f)); d < bestD {
			best, bestD = f, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
