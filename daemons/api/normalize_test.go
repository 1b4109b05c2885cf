package api

import "testing"

func TestNormalizeSpec(t *testing.T) {
	s := ServiceSpec{Name: "web", Ports: []PortConfig{{Target: 80}, {Target: 53, Published: 5353, Protocol: "udp"}}}
	NormalizeSpec(&s)
	want := ServiceSpec{Name: "web", Mode: ModeReplicated, Ports: []PortConfig{
		{Target: 80, Published: 80, Protocol: "tcp"}, {Target: 53, Published: 5353, Protocol: "udp"}}}
	if !SpecEqual(&s, &want) {
		t.Errorf("NormalizeSpec gave %+v, want %+v", s, want)
	}
}

func TestDefaultReplicas(t *testing.T) {
	for _, c := range []struct {
		mode  string
		given bool
		in    uint64
		want  uint64
	}{
		{ModeReplicated, false, 0, 1},
		{"", false, 0, 1},
		{ModeReplicated, true, 0, 0},
		{ModeReplicated, true, 5, 5},
		{ModeGlobal, false, 0, 0},
	} {
		s := ServiceSpec{Mode: c.mode, Replicas: c.in}
		DefaultReplicas(&s, c.given)
		if s.Replicas != c.want {
			t.Errorf("DefaultReplicas(mode %q, replicas %d, given %v) left %d replicas, want %d", c.mode, c.in, c.given, s.Replicas, c.want)
		}
	}
}
