package nft

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
)

// listJSON returns "nft -j list table FAMILY NAME" in ns in a canonical form
// that does not depend on handles or on the order the kernel lists map
// elements in: one line per map, chain and chain's rule list, sorted.
func listJSON(t *testing.T, ns *nstest.NS, family, name string) string {
	t.Helper()
	out, err := ns.Run("nft", "-j", "list", "table", family, name)
	if err != nil {
		t.Fatalf("nft -j list table %s %s: %v", family, name, err)
	}
	var doc struct {
		Nftables []map[string]map[string]any `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("parse nft -j output: %v\n%s", err, out)
	}
	var lines []string
	rules := map[string][]string{}
	for _, obj := range doc.Nftables {
		for kind, body := range obj {
			if kind == "metainfo" {
				continue
			}
			canon := canonical(body)
			if kind == "rule" {
				chain := fmt.Sprint(body["chain"])
				rules[chain] = append(rules[chain], jsonString(t, canon))
				continue
			}
			lines = append(lines, kind+" "+jsonString(t, canon))
		}
	}
	for chain, rs := range rules {
		lines = append(lines, "rules of "+chain+": "+strings.Join(rs, " ; "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// canonical drops handles and sorts the elements of sets and maps.
func canonical(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if k == "handle" {
				continue
			}
			x = canonical(x)
			if (k == "elem" || k == "set") && isList(x) {
				x = sortedList(x.([]any))
			}
			out[k] = x
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = canonical(x)
		}
		return out
	}
	return v
}

func isList(v any) bool { _, ok := v.([]any); return ok }

func sortedList(l []any) []any {
	type kv struct {
		key string
		v   any
	}
	s := make([]kv, len(l))
	for i, x := range l {
		b, _ := json.Marshal(x)
		s[i] = kv{string(b), x}
	}
	slices.SortFunc(s, func(a, b kv) int { return strings.Compare(a.key, b.key) })
	out := make([]any, len(l))
	for i := range s {
		out[i] = s[i].v
	}
	return out
}

func jsonString(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tableExists reports whether ns has table family name, by netlink through
// nft.
func tableNames(t *testing.T, ns *nstest.NS) []string {
	t.Helper()
	out, err := ns.Run("nft", "list", "tables")
	if err != nil {
		t.Fatalf("nft list tables: %v", err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			names = append(names, strings.TrimPrefix(l, "table "))
		}
	}
	slices.Sort(names)
	return names
}
