package link

import (
	"strings"
	"testing"
)

func TestVethName(t *testing.T) {
	ids := []string{"a", "b", "web.1", strings.Repeat("f", 64), strings.Repeat("f", 63) + "e"}
	seen := map[string]string{}
	for _, id := range ids {
		n := VethName(id)
		if len(n) > 15 {
			t.Errorf("VethName(%q) = %q, longer than 15 bytes", id, n)
		}
		if err := CheckIfname(n); err != nil {
			t.Errorf("VethName(%q) = %q: %v", id, n, err)
		}
		if again := VethName(id); again != n {
			t.Errorf("VethName(%q) = %q then %q, want the same name", id, n, again)
		}
		if other, dup := seen[n]; dup {
			t.Errorf("VethName(%q) = VethName(%q) = %q", id, other, n)
		}
		seen[n] = id
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"a", "web.1", "0123abc", "task_7-x", strings.Repeat("a", 128)} {
		if err := checkID(id); err != nil {
			t.Errorf("checkID(%q) = %v, want nil", id, err)
		}
	}
	for _, id := range []string{"", ".", "..", ".hidden", "-x", "a/b", "a b", strings.Repeat("a", 129), "é"} {
		if err := checkID(id); err == nil {
			t.Errorf("checkID(%q) = nil, want an error", id)
		}
	}
}
