package api

// The defaults of a service spec, in one place: the manager applies them
// before it stores a spec, and warrenctl (flags and manifests) before it
// compares a spec with the stored one, so that "nothing to change" means
// the same on both sides.

// NormalizeSpec fills in what an empty field means, so that stored specs
// and comparisons are explicit: mode replicated, and each port's defaults
// (PortConfig.Normalized).
func NormalizeSpec(s *ServiceSpec) {
	if s.Mode == "" {
		s.Mode = ModeReplicated
	}
	for i := range s.Ports {
		s.Ports[i] = s.Ports[i].Normalized()
	}
}

// Normalized is p with what an empty field means filled in: protocol tcp,
// the published port equal to the target.
func (p PortConfig) Normalized() PortConfig {
	if p.Protocol == "" {
		p.Protocol = ProtoTCP
	}
	if p.Published == 0 {
		p.Published = p.Target
	}
	return p
}

// DefaultReplicas gives a replicated service whose spec did not say how
// many replicas it wants one, as docker service create does; given says
// whether the input (a JSON body, a manifest, a flag) named the field, so
// an explicit 0 stays 0. A global service has no replica count.
func DefaultReplicas(s *ServiceSpec, given bool) {
	if !given && s.Mode != ModeGlobal {
		s.Replicas = 1
	}
}
