package api

import "testing"

func TestNormalizeSpec(t *testing.T) {
	s := ServiceSpec{Name: "web", Ports: []PortConfig{{Target: 80}, {Target: 53, Published: 5353, Protocol: "udp"}}}
	NormalizeSpec(&s)
	want := ServiceSpec{Name: "web", Mode: ModeReplicated, Ports: []PortConfig{
		{Target: 80, Published: 80, Protocol: "tcp", Mode: PortModeIngress}, {Target: 53, Published: 5353, Protocol: "udp", Mode: PortModeIngress}}}
	if !SpecEqual(&s, &want) {
		t.Errorf("NormalizeSpec gave %+v, want %+v", s, want)
	}
}

func TestPortNormalizedMode(t *testing.T) {
	for _, c := range []struct {
		in   PortConfig
		want string
	}{
		{PortConfig{Target: 80}, PortModeIngress},
		{PortConfig{Target: 80, Mode: PortModeHost}, PortModeHost},
		{PortConfig{Target: 80, Mode: PortModeIngress}, PortModeIngress},
		// Only host mode can bind one address: that is the default then.
		{PortConfig{Target: 80, HostAddr: "192.0.2.1"}, PortModeHost},
		{PortConfig{Target: 80, HostAddr: "::1"}, PortModeHost},
		// 0.0.0.0 and :: are every address, as with no address.
		{PortConfig{Target: 80, HostAddr: "0.0.0.0"}, PortModeIngress},
		{PortConfig{Target: 80, HostAddr: "::"}, PortModeIngress},
		// An explicit mode stays, even a wrong one: validation refuses it.
		{PortConfig{Target: 80, HostAddr: "192.0.2.1", Mode: PortModeIngress}, PortModeIngress},
	} {
		got := c.in.Normalized()
		if got.Mode != c.want {
			t.Errorf("%+v.Normalized().Mode = %q, want %q", c.in, got.Mode, c.want)
		}
		if ingress := c.in.Ingress(); ingress != (c.want == PortModeIngress) {
			t.Errorf("%+v.Ingress() = %v, want %v", c.in, ingress, c.want == PortModeIngress)
		}
		if again := got.Normalized(); again != got {
			t.Errorf("Normalized is not idempotent: %+v, then %+v", got, again)
		}
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
