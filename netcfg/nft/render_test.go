package nft

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func TestRenderGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Build(tc.cfg)
			if err != nil {
				t.Fatalf("Build(%s): %v", tc.name, err)
			}
			got := rs.String()
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./netcfg/nft -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Build(%s).String() differs from %s (run go test ./netcfg/nft -update and review the diff):\n%s", tc.name, path, lineDiff(string(want), got))
			}
		})
	}
}

// TestRenderNoBraceAfterRule guards the nft 1.0.6 quirk: a rule followed by
// "}" on the same line is a syntax error.
func TestRenderNoBraceAfterRule(t *testing.T) {
	for _, tc := range goldenCases() {
		rs, err := Build(tc.cfg)
		if err != nil {
			t.Fatalf("Build(%s): %v", tc.name, err)
		}
		for i, line := range strings.Split(rs.String(), "\n") {
			trimmed := strings.TrimSpace(line)
			if strings.HasSuffix(trimmed, "}") && trimmed != "}" {
				t.Errorf("%s line %d: %q ends with a brace after other text", tc.name, i+1, line)
			}
		}
	}
}

// lineDiff shows the first lines where want and got differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl == gl {
			continue
		}
		fmt.Fprintf(&b, "line %d:\n  want: %s\n  got:  %s\n", i+1, wl, gl)
		if shown++; shown == 10 {
			b.WriteString("...\n")
			break
		}
	}
	return b.String()
}
