package api

// What a worker may know of other nodes' objects. A worker's manager keeps
// a node-scoped replica (DESIGN.md §3): its own tasks in full, and of the
// rest only what service discovery and ingress need, so a stolen device
// holds only what it runs. These projections are that "rest".

// PublicService keeps a service's name, mode, ports and health check: no
// image arguments, environment or user, which may carry secrets.
func PublicService(s *Service) *Service {
	p := &Service{Meta: s.Meta, SpecVersion: s.SpecVersion}
	p.Spec = publicSpec(&s.Spec)
	// The HTTP routes: every node's warren-ingress routes by them.
	p.Spec.Ingress = s.Spec.Ingress
	return p
}

func publicSpec(s *ServiceSpec) ServiceSpec {
	return ServiceSpec{Name: s.Name, Image: s.Image, Mode: s.Mode, Replicas: s.Replicas,
		Ports: s.Ports, HealthCheck: s.HealthCheck}
}

// PublicTask keeps what DNS answers from and ingress ports balance over
// (Serving): the task's identity, node, address, state, health and
// standby.
func PublicTask(t *Task) *Task {
	return &Task{Meta: t.Meta, ServiceID: t.ServiceID, ServiceName: t.ServiceName, Slot: t.Slot,
		NodeID: t.NodeID, Spec: publicSpec(&t.Spec), SpecVersion: t.SpecVersion, DesiredState: t.DesiredState, Standby: t.Standby,
		Status: TaskStatus{State: t.Status.State, Timestamp: t.Status.Timestamp, Addr: t.Status.Addr, Health: t.Status.Health}}
}

// PublicNode keeps a node's name, role, address, state, mesh end (its
// public key and port: every node needs them to reach it), the images
// it holds (where a node fetches an image from) and, of its labels, only
// LabelIngress (a worker's warren-ingress asks whether its node is one).
func PublicNode(n *Node) *Node {
	var labels map[string]string
	if v, ok := n.Spec.Labels[LabelIngress]; ok {
		labels = map[string]string{LabelIngress: v}
	}
	return &Node{Meta: n.Meta, Spec: NodeSpec{Role: n.Spec.Role, Availability: n.Spec.Availability, Labels: labels},
		Description: NodeDescription{Hostname: n.Description.Hostname, Addr: n.Description.Addr, Mesh: n.Description.Mesh,
			Images: n.Description.Images},
		Status: n.Status, Subnet: n.Subnet}
}
