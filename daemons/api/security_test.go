package api_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestNormalizeCapability(t *testing.T) {
	cases := []struct{ in, want string }{
		{"NET_ADMIN", "CAP_NET_ADMIN"},
		{"net_admin", "CAP_NET_ADMIN"},
		{"CAP_NET_ADMIN", "CAP_NET_ADMIN"},
		{"cap_sys_time", "CAP_SYS_TIME"},
		{"Cap_Chown", "CAP_CHOWN"},
		{"syslog", "CAP_SYSLOG"},
		{"checkpoint_restore", "CAP_CHECKPOINT_RESTORE"},
		{"ALL", "ALL"},
		{"all", "ALL"},
		{"", ""},
		{"CAP_", ""},
		{"CAP_ALL", ""},
		{"NET-ADMIN", ""},
		{"NET_ADMIN ", ""},
		{"SYS_FOO", ""},
		{"CAP_CAP_CHOWN", ""},
	}
	for _, c := range cases {
		got, err := api.NormalizeCapability(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("NormalizeCapability(%q) = %q, nil; want an error", c.in, got)
				continue
			}
			for _, must := range []string{fmt.Sprintf("%q", c.in), "ALL", "NET_ADMIN", "WAKE_ALARM", "with or without CAP_"} {
				if !strings.Contains(err.Error(), must) {
					t.Errorf("NormalizeCapability(%q) = %q, want it to list what is allowed (%s missing)", c.in, err, must)
				}
			}
			checkMessage(t, fmt.Sprintf("NormalizeCapability(%q)", c.in), "error", err.Error())
			continue
		}
		if got != c.want || err != nil {
			t.Errorf("NormalizeCapability(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	// Every default capability is one the validator knows.
	for _, c := range api.DefaultCapabilities {
		if got, err := api.NormalizeCapability(c); got != c || err != nil {
			t.Errorf("NormalizeCapability(default %q) = %q, %v", c, got, err)
		}
	}
}

func TestValidateServiceSpecSecurity(t *testing.T) {
	caps := func(add, drop []string) func(*api.ServiceSpec) {
		return func(s *api.ServiceSpec) { s.CapAdd, s.CapDrop = add, drop }
	}
	many := slices.Repeat([]string{"NET_ADMIN"}, api.MaxCapabilities+1)
	runSpecCases(t, []specCase{
		{"cap add", caps([]string{"NET_ADMIN", "cap_sys_time"}, nil), nil},
		{"cap drop all", caps(nil, []string{"ALL"}), nil},
		{"cap drop all add one", caps([]string{"NET_BIND_SERVICE"}, []string{"all"}), nil},
		{"same cap in both", caps([]string{"NET_RAW"}, []string{"NET_RAW"}), nil},
		{"unknown cap add", caps([]string{"NET_ADMIN", "SYS_FOO"}, nil), []string{"capAdd[1]"}},
		{"unknown cap drop", caps(nil, []string{"chown", "nope"}), []string{"capDrop[1]"}},
		{"empty cap name", caps([]string{""}, nil), []string{"capAdd[0]"}},
		{"too many caps", caps(many, nil), []string{"capAdd"}},
		{"seccomp default", func(s *api.ServiceSpec) { s.Seccomp = api.SeccompDefault }, nil},
		{"seccomp unconfined", func(s *api.ServiceSpec) { s.Seccomp = api.SeccompUnconfined }, nil},
		{"seccomp profile path", func(s *api.ServiceSpec) { s.Seccomp = "/etc/profile.json" }, []string{"seccomp"}},
		{"seccomp in capitals", func(s *api.ServiceSpec) { s.Seccomp = "Unconfined" }, []string{"seccomp"}},
		{"new privileges", func(s *api.ServiceSpec) { s.AllowNewPrivileges = true }, nil},
		{"pids limit", func(s *api.ServiceSpec) { s.PidsLimit = 100 }, nil},
		{"pids unlimited", func(s *api.ServiceSpec) { s.PidsLimit = api.PidsUnlimited }, nil},
		{"pids at the kernel's limit", func(s *api.ServiceSpec) { s.PidsLimit = api.MaxPidsLimit }, nil},
		{"pids over the kernel's limit", func(s *api.ServiceSpec) { s.PidsLimit = api.MaxPidsLimit + 1 }, []string{"pidsLimit"}},
		{"pids -2", func(s *api.ServiceSpec) { s.PidsLimit = -2 }, []string{"pidsLimit"}},
	})
}

func TestEffectiveCapabilities(t *testing.T) {
	def := api.DefaultCapabilities
	without := func(from []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(from), func(c string) bool { return slices.Contains(drop, c) })
	}
	sorted := func(cs ...string) []string { slices.Sort(cs); return cs }
	all := api.ServiceSpec{CapAdd: []string{"ALL"}}
	allCaps := all.EffectiveCapabilities()
	cases := []struct {
		name      string
		add, drop []string
		want      []string
	}{
		{"nothing", nil, nil, sorted(def...)},
		{"add one", []string{"net_admin"}, nil, sorted(append(slices.Clone(def), "CAP_NET_ADMIN")...)},
		{"add a default one", []string{"CHOWN"}, nil, sorted(def...)},
		{"drop one", nil, []string{"NET_RAW"}, sorted(without(def, "CAP_NET_RAW")...)},
		{"drop one not in the default", nil, []string{"SYS_ADMIN"}, sorted(def...)},
		{"drop all", nil, []string{"ALL"}, []string{}},
		{"drop all add one", []string{"NET_BIND_SERVICE"}, []string{"all"}, []string{"CAP_NET_BIND_SERVICE"}},
		{"in both lists: add wins", []string{"NET_RAW"}, []string{"NET_RAW"}, sorted(def...)},
		{"add all drop one", []string{"ALL"}, []string{"SYS_ADMIN"}, without(allCaps, "CAP_SYS_ADMIN")},
		{"add all drop all", []string{"ALL"}, []string{"ALL"}, allCaps},
		{"unknown names skipped", []string{"SYS_FOO"}, []string{"BAR"}, sorted(def...)},
	}
	for _, c := range cases {
		s := api.ServiceSpec{CapAdd: c.add, CapDrop: c.drop}
		got := s.EffectiveCapabilities()
		if got == nil || !slices.Equal(got, c.want) {
			t.Errorf("EffectiveCapabilities(%s: add %q, drop %q) = %q, want %q", c.name, c.add, c.drop, got, c.want)
		}
	}
	if len(allCaps) != 41 || !slices.Contains(allCaps, "CAP_SYS_ADMIN") || !slices.IsSorted(allCaps) {
		t.Errorf("EffectiveCapabilities(add ALL) = %d capabilities %q, want all 41, sorted", len(allCaps), allCaps)
	}
	// Every capability is one the validator finds (its list must stay sorted).
	for _, c := range allCaps {
		if got, err := api.NormalizeCapability(c); got != c || err != nil {
			t.Errorf("NormalizeCapability(%q) = %q, %v; want it back", c, got, err)
		}
	}
	// The spec itself is left alone.
	s := api.ServiceSpec{CapAdd: []string{"net_admin"}, CapDrop: []string{"chown"}}
	s.EffectiveCapabilities()
	if s.CapAdd[0] != "net_admin" || s.CapDrop[0] != "chown" || len(def) != 14 || def[0] != "CAP_AUDIT_WRITE" {
		t.Errorf("EffectiveCapabilities changed its input: spec %+v, defaults %q", s, def)
	}
}

func TestEffectivePidsLimitAndSeccomp(t *testing.T) {
	for _, c := range []struct{ in, want int64 }{{0, api.DefaultPidsLimit}, {-1, -1}, {1, 1}, {100, 100}} {
		s := api.ServiceSpec{PidsLimit: c.in}
		if got := s.EffectivePidsLimit(); got != c.want {
			t.Errorf("EffectivePidsLimit(pidsLimit %d) = %d, want %d", c.in, got, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{{"", "default"}, {"default", "default"}, {"unconfined", "unconfined"}} {
		s := api.ServiceSpec{Seccomp: c.in}
		if got := s.EffectiveSeccomp(); got != c.want {
			t.Errorf("EffectiveSeccomp(seccomp %q) = %q, want %q", c.in, got, c.want)
		}
	}
}
