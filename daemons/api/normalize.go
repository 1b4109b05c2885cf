package api

// The defaults of a service spec, in one place: the manager applies them
// before it stores a spec, and warrenctl (flags and manifests) before it
// compares a spec with the stored one, so that "nothing to change" means
// the same on both sides.

// NormalizeSpec fills in what an empty field means, so that stored specs
// and comparisons are explicit: mode replicated, each port's defaults
// (PortConfig.Normalized), and each ingress route's host, path and CIDRs
// in their canonical form (IngressRoute.Normalized).
func NormalizeSpec(s *ServiceSpec) {
	if s.Mode == "" {
		s.Mode = ModeReplicated
	}
	for i := range s.Ports {
		s.Ports[i] = s.Ports[i].Normalized()
	}
	for i := range s.Secrets {
		normalizeFileRef(KindSecret, &s.Secrets[i])
	}
	for i := range s.Configs {
		normalizeFileRef(KindConfig, &s.Configs[i])
	}
	for i := range s.Mounts {
		s.Mounts[i] = s.Mounts[i].Normalized()
	}
	for i := range s.Ingress {
		s.Ingress[i] = s.Ingress[i].Normalized()
	}
}

// Normalized is p with what an empty field means filled in: protocol tcp,
// the published port equal to the target, and mode ingress, as in Docker
// Swarm, except for a port bound to one host address, which only host mode
// can publish: its mode is host. (So -p 127.0.0.1:8080:80 and the specs
// stored before ports had a mode mean what they meant.)
func (p PortConfig) Normalized() PortConfig {
	if p.Protocol == "" {
		p.Protocol = ProtoTCP
	}
	if p.Published == 0 {
		p.Published = p.Target
	}
	if p.Mode == "" {
		p.Mode = PortModeIngress
		if p.boundAddr().IsValid() {
			p.Mode = PortModeHost
		}
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
