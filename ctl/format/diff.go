package format

import (
	"strings"

	"github.com/warren-edge/warren/daemons/api"
)

// SpecDiff shows how spec b differs from spec a as their YAML forms, line
// by line: "- " for a line only a has, "+ " for one only b has, and up to
// two unchanged lines of context around each change ("  "); "" when they
// are the same.
func SpecDiff(a, b *api.ServiceSpec) string {
	var ya, yb strings.Builder
	WriteYAML(&ya, a)
	WriteYAML(&yb, b)
	return Diff(ya.String(), yb.String(), 2)
}

// Diff is a line diff of a and b with context lines of context; skipped
// runs of unchanged lines are shown as "  ...".
func Diff(a, b string, context int) string {
	la := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	lb := strings.Split(strings.TrimSuffix(b, "\n"), "\n")
	// lcs[i][j] is the longest common subsequence of la[i:] and lb[j:].
	lcs := make([][]int, len(la)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(lb)+1)
	}
	for i := len(la) - 1; i >= 0; i-- {
		for j := len(lb) - 1; j >= 0; j-- {
			if la[i] == lb[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		mark byte // ' ', '-', '+'
		line string
	}
	var ops []op
	i, j := 0, 0
	for i < len(la) || j < len(lb) {
		switch {
		case i < len(la) && j < len(lb) && la[i] == lb[j]:
			ops = append(ops, op{' ', la[i]})
			i, j = i+1, j+1
		case i < len(la) && (j == len(lb) || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', la[i]})
			i++
		default:
			ops = append(ops, op{'+', lb[j]})
			j++
		}
	}
	show := make([]bool, len(ops))
	changed := false
	for k, o := range ops {
		if o.mark == ' ' {
			continue
		}
		changed = true
		for c := max(0, k-context); c <= min(len(ops)-1, k+context); c++ {
			show[c] = true
		}
	}
	if !changed {
		return ""
	}
	var sb strings.Builder
	skipped := false
	for k, o := range ops {
		if !show[k] {
			skipped = true
			continue
		}
		if skipped {
			sb.WriteString("  ...\n")
		}
		skipped = false
		sb.WriteByte(o.mark)
		sb.WriteByte(' ')
		sb.WriteString(o.line)
		sb.WriteByte('\n')
	}
	if skipped {
		sb.WriteString("  ...\n")
	}
	return sb.String()
}
