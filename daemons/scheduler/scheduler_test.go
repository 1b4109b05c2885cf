package scheduler

import (
	"reflect"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestSchedule(t *testing.T) {
	invalid := "zone=east"
	_, parseErr := api.ParseConstraint(invalid)
	if parseErr == nil {
		t.Fatalf("api.ParseConstraint(%q) = nil error; the test needs an invalid constraint", invalid)
	}

	tests := []struct {
		name         string
		nodes        []*api.Node
		placed       []*api.Task
		pending      []*api.Task
		wantAssigned []Assignment
		wantUnplaced []Unplaced
	}{
		{
			name:         "no nodes",
			pending:      []*api.Task{mkTask("t1", "web")},
			wantUnplaced: []Unplaced{{"t1", "no nodes in the cluster"}},
		},
		{
			name:    "nothing pending",
			nodes:   []*api.Node{mkNode("a")},
			placed:  []*api.Task{mkTask("x", "web", on("a"))},
			pending: nil,
		},
		{
			name: "drained, down and short of memory",
			nodes: []*api.Node{
				mkNode("a", availability(api.AvailabilityDrain)),
				mkNode("b", state(api.NodeDown)),
				mkNode("c", capacity(4*cpu, 612*mib)),
			},
			placed:       []*api.Task{mkTask("x", "db", on("c"), reserve(0, 512*mib))},
			pending:      []*api.Task{mkTask("t1", "web", reserve(0, 512*mib))},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (3 nodes: 1 drained, 1 down, 1 lacks memory: needs 512MiB, 100MiB free)"}},
		},
		{
			name: "paused, not active and not ready",
			nodes: []*api.Node{
				mkNode("a", availability(api.AvailabilityPause)),
				mkNode("b", availability("")),
				mkNode("c", state(api.NodeUnknown)),
			},
			pending:      []*api.Task{mkTask("t1", "web")},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (3 nodes: 1 paused, 1 not active, 1 not ready)"}},
		},
		{
			name:         "no node matches the constraint",
			nodes:        []*api.Node{mkNode("a", label("zone", "west")), mkNode("b")},
			pending:      []*api.Task{mkTask("t1", "web", constraints("node.labels.zone==east"))},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (2 nodes: 2 do not match node.labels.zone==east)"}},
		},
		{
			name: "each node fails a different constraint",
			nodes: []*api.Node{
				mkNode("a", label("zone", "west")),
				mkNode("b", label("zone", "east"), role(api.RoleManager)),
				mkNode("c"),
			},
			pending:      []*api.Task{mkTask("t1", "web", constraints("node.labels.zone==east", "node.role!=manager"))},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (3 nodes: 2 do not match node.labels.zone==east, 1 does not match node.role!=manager)"}},
		},
		{
			name:         "the one matching node takes every replica",
			nodes:        []*api.Node{mkNode("a"), mkNode("b", label("zone", "east")), mkNode("c", label("zone", "west"))},
			pending:      replicas("web", 2, constraints("node.labels.zone==east")),
			wantAssigned: []Assignment{{"web.1", "b"}, {"web.2", "b"}},
		},
		{
			name:         "hostname constraint",
			nodes:        []*api.Node{mkNode("a"), mkNode("b")},
			pending:      []*api.Task{mkTask("t1", "web", constraints("node.hostname==pi-b"))},
			wantAssigned: []Assignment{{"t1", "b"}},
		},
		{
			name:         "invalid constraint",
			nodes:        []*api.Node{mkNode("a")},
			pending:      []*api.Task{mkTask("t1", "web", constraints(invalid)), mkTask("t2", "web", on("a"), constraints(invalid))},
			wantUnplaced: []Unplaced{{"t1", "unplaceable: invalid constraint: " + parseErr.Error()}, {"t2", "unplaceable: invalid constraint: " + parseErr.Error()}},
		},
		{
			name:         "invalid constraint with no nodes",
			pending:      []*api.Task{mkTask("t1", "web", constraints(invalid))},
			wantUnplaced: []Unplaced{{"t1", "unplaceable: invalid constraint: " + parseErr.Error()}},
		},
		{
			name:         "unknown memory capacity refuses memory reservations only",
			nodes:        []*api.Node{mkNode("a", capacity(4*cpu, 0))},
			pending:      []*api.Task{mkTask("t1", "web", reserve(0, 64*mib)), mkTask("t2", "web", reserve(cpu, 0)), mkTask("t3", "web")},
			wantAssigned: []Assignment{{"t2", "a"}, {"t3", "a"}},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (1 node: 1 did not report memory capacity)"}},
		},
		{
			name:         "unknown CPU capacity",
			nodes:        []*api.Node{mkNode("a", capacity(0, 0)), mkNode("b", capacity(0, gib))},
			pending:      []*api.Task{mkTask("t1", "web", reserve(cpu/2, 64*mib))},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (2 nodes: 2 did not report CPU capacity)"}},
		},
		{
			name:         "replicas fill the node's memory",
			nodes:        []*api.Node{mkNode("a", capacity(4*cpu, gib))},
			pending:      replicas("web", 3, reserve(0, 400*mib)),
			wantAssigned: []Assignment{{"web.1", "a"}, {"web.2", "a"}},
			wantUnplaced: []Unplaced{{"web.3", "no suitable node (1 node: 1 lacks memory: needs 400MiB, 224MiB free)"}},
		},
		{
			name:         "reservations may fill a node exactly",
			nodes:        []*api.Node{mkNode("a", capacity(cpu, gib))},
			pending:      replicas("web", 3, reserve(cpu/2, 512*mib)),
			wantAssigned: []Assignment{{"web.1", "a"}, {"web.2", "a"}},
			wantUnplaced: []Unplaced{{"web.3", "no suitable node (1 node: 1 lacks CPU: needs 0.5 CPUs, 0 CPUs free)"}},
		},
		{
			name:  "a full node drops out, the others take the rest",
			nodes: []*api.Node{mkNode("a", capacity(4*cpu, gib)), mkNode("b", capacity(4*cpu, 4*gib))},
			// a holds 3 × 300MiB; spread would pick it for web.7, but it is full.
			pending: replicas("web", 8, reserve(0, 300*mib)),
			wantAssigned: []Assignment{
				{"web.1", "a"}, {"web.2", "b"}, {"web.3", "a"}, {"web.4", "b"},
				{"web.5", "a"}, {"web.6", "b"}, {"web.7", "b"}, {"web.8", "b"},
			},
		},
		{
			name:         "two nodes short of CPU",
			nodes:        []*api.Node{mkNode("a", capacity(cpu, gib)), mkNode("b", capacity(cpu/2, gib))},
			pending:      []*api.Task{mkTask("t1", "web", reserve(2*cpu, 0))},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (2 nodes: 2 lack CPU: needs 2 CPUs, at most 1 CPU free)"}},
		},
		{
			name:         "replicas fill the node's subnet",
			nodes:        []*api.Node{mkNode("a", subnet("10.240.0.0/29"))},
			placed:       []*api.Task{mkTask("x1", "db", on("a")), mkTask("x2", "db", on("a"))},
			pending:      replicas("web", 4),
			wantAssigned: []Assignment{{"web.1", "a"}, {"web.2", "a"}, {"web.3", "a"}},
			wantUnplaced: []Unplaced{{"web.4", "no suitable node (1 node: 1 lacks container addresses: its subnet holds 5 tasks)"}},
		},
		{
			name:  "a full subnet drops out, the others take the rest",
			nodes: []*api.Node{mkNode("a", subnet("10.240.0.0/30")), mkNode("b", subnet("10.240.0.8/29"))},
			// spread would pick a for web.3, but its one address is taken.
			pending:      replicas("web", 4),
			wantAssigned: []Assignment{{"web.1", "a"}, {"web.2", "b"}, {"web.3", "b"}, {"web.4", "b"}},
		},
		{
			name:         "two nodes out of addresses",
			nodes:        []*api.Node{mkNode("a", subnet("10.240.0.0/30")), mkNode("b", subnet("10.240.0.8/29"))},
			placed:       append(replicas("db", 5, on("b")), mkTask("x", "db", on("a"))),
			pending:      []*api.Task{mkTask("t1", "web")},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (2 nodes: 2 lack container addresses: their subnets hold at most 5 tasks)"}},
		},
		{
			name:         "addresses come after memory",
			nodes:        []*api.Node{mkNode("a", subnet("10.240.0.0/30")), mkNode("b", subnet("10.240.0.4/30"), capacity(cpu, 100*mib))},
			placed:       []*api.Task{mkTask("x", "db", on("a"))},
			pending:      []*api.Task{mkTask("t1", "web", reserve(0, 200*mib))},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (2 nodes: 1 lacks memory: needs 200MiB, 100MiB free, 1 lacks container addresses: its subnet holds 1 task)"}},
		},
		{
			name:         "a subnet that does not parse holds no task",
			nodes:        []*api.Node{mkNode("a", subnet("10.240.0.0/33"))},
			pending:      []*api.Task{mkTask("t1", "web")},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (1 node: 1 lacks container addresses: its subnet holds 0 tasks)"}},
		},
		{
			name:         "pinned tasks take addresses before the others",
			nodes:        []*api.Node{mkNode("a", subnet("10.240.0.0/30"))},
			pending:      []*api.Task{mkTask("t1", "web"), mkTask("t2", "mon", on("a"))},
			wantAssigned: []Assignment{{"t2", "a"}},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (1 node: 1 lacks container addresses: its subnet holds 1 task)"}},
		},
		{
			name:         "placed tasks already overcommit the node",
			nodes:        []*api.Node{mkNode("a", capacity(cpu, gib))},
			placed:       []*api.Task{mkTask("x", "db", on("a"), reserve(2*cpu, 2*gib))},
			pending:      []*api.Task{mkTask("t1", "web", reserve(0, 100*mib)), mkTask("t2", "web")},
			wantAssigned: []Assignment{{"t2", "a"}},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (1 node: 1 lacks memory: needs 100MiB, 0B free)"}},
		},
		{
			name:         "placed tasks count for spread",
			nodes:        []*api.Node{mkNode("a"), mkNode("b"), mkNode("c")},
			placed:       []*api.Task{mkTask("x1", "web", on("a")), mkTask("x2", "web", on("a")), mkTask("x3", "web", on("b"))},
			pending:      replicas("web", 3),
			wantAssigned: []Assignment{{"web.1", "c"}, {"web.2", "b"}, {"web.3", "c"}},
		},
		{
			name:         "placed tasks on unknown nodes are ignored",
			nodes:        []*api.Node{mkNode("a"), mkNode("b")},
			placed:       []*api.Task{mkTask("x1", "web", on("gone")), mkTask("x2", "web")},
			pending:      replicas("web", 2),
			wantAssigned: []Assignment{{"web.1", "a"}, {"web.2", "b"}},
		},
		{
			name:         "fewest tasks in all breaks a tie of the service",
			nodes:        []*api.Node{mkNode("a"), mkNode("b"), mkNode("c")},
			placed:       []*api.Task{mkTask("x1", "db", on("a")), mkTask("x2", "db", on("c"))},
			pending:      []*api.Task{mkTask("t1", "web")},
			wantAssigned: []Assignment{{"t1", "b"}},
		},
		{
			name:         "the service's tasks outweigh the total",
			nodes:        []*api.Node{mkNode("a"), mkNode("b")},
			placed:       []*api.Task{mkTask("x1", "db", on("a")), mkTask("x2", "db", on("a")), mkTask("x3", "web", on("b"))},
			pending:      []*api.Task{mkTask("t1", "web")},
			wantAssigned: []Assignment{{"t1", "a"}},
		},
		{
			name:         "reserved resources steer replicas off a full node",
			nodes:        []*api.Node{mkNode("a", capacity(4*cpu, gib)), mkNode("b", capacity(4*cpu, gib))},
			placed:       []*api.Task{mkTask("x", "db", on("a"), reserve(0, 900*mib))},
			pending:      replicas("web", 2, reserve(0, 200*mib)),
			wantAssigned: []Assignment{{"web.1", "b"}, {"web.2", "b"}},
		},
		{
			name:         "a pinned task goes to its node only",
			nodes:        []*api.Node{mkNode("a"), mkNode("b")},
			placed:       []*api.Task{mkTask("x", "mon", on("a"))},
			pending:      []*api.Task{mkTask("t1", "mon", on("a"))},
			wantAssigned: []Assignment{{"t1", "a"}},
		},
		{
			name:    "pinned tasks go first, results keep pending order",
			nodes:   []*api.Node{mkNode("a"), mkNode("b")},
			pending: []*api.Task{mkTask("t1", "web"), mkTask("t2", "web", on("a"))},
			// t2 is on a first, so spread sends t1 to b.
			wantAssigned: []Assignment{{"t1", "b"}, {"t2", "a"}},
		},
		{
			name: "pinned tasks on nodes that cannot take them",
			nodes: []*api.Node{
				mkNode("a", availability(api.AvailabilityDrain)),
				mkNode("b", state(api.NodeDown)),
				mkNode("c", label("zone", "west")),
				mkNode("d", capacity(cpu, 300*mib)),
				mkNode("e", capacity(0, gib)),
				mkNode("f0123456789abcdef"),
				mkNode("g", subnet("10.240.0.4/30")),
			},
			placed: []*api.Task{mkTask("x", "db", on("g"))},
			pending: []*api.Task{
				mkTask("t1", "mon", on("a")),
				mkTask("t2", "mon", on("b")),
				mkTask("t3", "mon", on("c"), constraints("node.labels.zone==east")),
				mkTask("t4", "mon", on("d"), reserve(0, 512*mib)),
				mkTask("t5", "mon", on("d"), reserve(2*cpu, 0)),
				mkTask("t6", "mon", on("e"), reserve(cpu, 0)),
				mkTask("t7", "mon", on("gone")),
				mkTask("t8", "mon", on("f0123456789abcdef"), constraints("node.role==manager")),
				mkTask("t9", "mon", on("g")),
			},
			wantUnplaced: []Unplaced{
				{"t1", "node pi-a (a) is drained"},
				{"t2", "node pi-b (b) is down"},
				{"t3", "node pi-c (c) does not match node.labels.zone==east"},
				{"t4", "node pi-d (d) lacks memory: needs 512MiB, 300MiB free"},
				{"t5", "node pi-d (d) lacks CPU: needs 2 CPUs, 1 CPU free"},
				{"t6", "node pi-e (e) did not report CPU capacity"},
				{"t7", "node gone is not in the cluster"},
				{"t8", "node pi-f0123456789abcdef (f0123456789a) does not match node.role==manager"},
				{"t9", "node pi-g (g) lacks container addresses: its subnet 10.240.0.4/30 holds 1 task"},
			},
		},
		{
			name:         "pinned tasks use up resources before the others",
			nodes:        []*api.Node{mkNode("a", capacity(cpu, gib))},
			pending:      []*api.Task{mkTask("t1", "web", reserve(0, 600*mib)), mkTask("t2", "mon", on("a"), reserve(0, 600*mib))},
			wantAssigned: []Assignment{{"t2", "a"}},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (1 node: 1 lacks memory: needs 600MiB, 424MiB free)"}},
		},
		{
			name:         "a pinned task with no nodes",
			pending:      []*api.Task{mkTask("t1", "mon", on("a"))},
			wantUnplaced: []Unplaced{{"t1", "no nodes in the cluster"}},
		},
		{
			name:  "services are placed in the order they first appear",
			nodes: []*api.Node{mkNode("a", capacity(cpu, gib)), mkNode("b", capacity(cpu, gib))},
			pending: []*api.Task{
				mkTask("db.1", "db", reserve(0, 600*mib)),
				mkTask("web.1", "web", reserve(0, 600*mib)),
				mkTask("db.2", "db", reserve(0, 600*mib)),
			},
			wantAssigned: []Assignment{{"db.1", "a"}, {"db.2", "b"}},
			wantUnplaced: []Unplaced{{"web.1", "no suitable node (2 nodes: 2 lack memory: needs 600MiB, at most 424MiB free)"}},
		},
		{
			name:  "two specs of one service spread together",
			nodes: []*api.Node{mkNode("a"), mkNode("b")},
			pending: []*api.Task{
				mkTask("old.1", "web", reserve(0, 100*mib)),
				mkTask("new.1", "web", reserve(0, 200*mib)),
			},
			wantAssigned: []Assignment{{"old.1", "a"}, {"new.1", "b"}},
		},
		{
			// A node balances a published port over its tasks of the service.
			name:         "replicas of one service share their published port",
			nodes:        []*api.Node{mkNode("a"), mkNode("b")},
			pending:      replicas("web", 3, publish(api.PortConfig{Target: 80, Published: 8080, Mode: api.PortModeHost})),
			wantAssigned: []Assignment{{"web.1", "a"}, {"web.2", "b"}, {"web.3", "a"}},
		},
		{
			name:         "another service's port is taken",
			nodes:        []*api.Node{mkNode("a"), mkNode("b")},
			placed:       []*api.Task{mkTask("x1", "web", on("a"), publish(api.PortConfig{Target: 80, Published: 8080, Mode: api.PortModeHost}))},
			pending:      []*api.Task{mkTask("t1", "api", publish(api.PortConfig{Target: 81, Published: 8080, Mode: api.PortModeHost}))},
			wantAssigned: []Assignment{{"t1", "b"}},
		},
		{
			name:  "ports clash by protocol and address",
			nodes: []*api.Node{mkNode("a"), mkNode("b")},
			placed: []*api.Task{
				mkTask("x1", "dns", on("a"), publish(api.PortConfig{Target: 53, Protocol: api.ProtoUDP, HostAddr: "10.0.0.1", Mode: api.PortModeHost})),
				mkTask("x2", "web", on("b"), publish(api.PortConfig{Target: 8080, Mode: api.PortModeHost})),
			},
			pending: []*api.Task{
				mkTask("t1", "dns2", constraints("node.id==a"), publish(api.PortConfig{Target: 53, Protocol: api.ProtoUDP, HostAddr: "10.0.0.2", Mode: api.PortModeHost})),
				mkTask("t2", "dns3", constraints("node.id==a"), publish(api.PortConfig{Target: 53, Protocol: api.ProtoUDP, Mode: api.PortModeHost})),
				mkTask("t3", "alt", constraints("node.id==b"), publish(api.PortConfig{Target: 8080, Protocol: api.ProtoUDP, Mode: api.PortModeHost}, api.PortConfig{Target: 80, Published: 8080, Mode: api.PortModeHost})),
			},
			wantAssigned: []Assignment{{"t1", "a"}},
			wantUnplaced: []Unplaced{
				{"t2", "no suitable node (2 nodes: 1 does not match node.id==a, 1 has port 53/udp in use)"},
				{"t3", "no suitable node (2 nodes: 1 does not match node.id==b, 1 has port 8080/tcp in use)"},
			},
		},
		{
			// An ingress port is on every node: the store keeps two
			// services from publishing it, and placement ignores it.
			name:  "ingress ports do not constrain placement",
			nodes: []*api.Node{mkNode("a")},
			placed: []*api.Task{
				mkTask("x1", "web", on("a"), publish(api.PortConfig{Target: 80, Published: 8080})),
				mkTask("x2", "dns", on("a"), publish(api.PortConfig{Target: 53, Protocol: api.ProtoUDP, Mode: api.PortModeHost})),
			},
			pending: []*api.Task{
				mkTask("t1", "api", publish(api.PortConfig{Target: 81, Published: 8080, Mode: api.PortModeHost})),
				mkTask("t2", "dns2", publish(api.PortConfig{Target: 53, Protocol: api.ProtoUDP, Mode: api.PortModeIngress})),
			},
			wantAssigned: []Assignment{{"t1", "a"}, {"t2", "a"}},
		},
		{
			name:  "two specs of one service with different constraints",
			nodes: []*api.Node{mkNode("a", label("zone", "east")), mkNode("b", label("zone", "west"))},
			pending: []*api.Task{
				mkTask("old.1", "web", constraints("node.labels.zone==east")),
				mkTask("new.1", "web", constraints("node.labels.zone==west")),
			},
			wantAssigned: []Assignment{{"old.1", "a"}, {"new.1", "b"}},
		},
		{
			name:  "two specs of one service, one publishing a port",
			nodes: []*api.Node{mkNode("a")},
			pending: []*api.Task{
				mkTask("old.1", "web"),
				mkTask("new.1", "web", publish(api.PortConfig{Target: 80, Mode: api.PortModeHost})),
				mkTask("new.2", "web", publish(api.PortConfig{Target: 80, Mode: api.PortModeHost})),
			},
			wantAssigned: []Assignment{{"old.1", "a"}, {"new.1", "a"}, {"new.2", "a"}},
		},
		{
			name:         "a pinned task whose port is taken",
			nodes:        []*api.Node{mkNode("a")},
			placed:       []*api.Task{mkTask("x", "web", on("a"), publish(api.PortConfig{Target: 80, Mode: api.PortModeHost}))},
			pending:      []*api.Task{mkTask("t1", "mon", on("a"), publish(api.PortConfig{Target: 80, Mode: api.PortModeHost}))},
			wantUnplaced: []Unplaced{{"t1", "node pi-a (a) has port 80/tcp in use"}},
		},
		{
			name:         "nil entries are skipped",
			nodes:        []*api.Node{nil, mkNode("a")},
			placed:       []*api.Task{nil},
			pending:      []*api.Task{nil, mkTask("t1", "web")},
			wantAssigned: []Assignment{{"t1", "a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Schedule(tt.nodes, tt.placed, tt.pending, nil)
			c := call(tt.nodes, tt.placed, tt.pending)
			if !reflect.DeepEqual(got.Assigned, tt.wantAssigned) {
				t.Errorf("Schedule(%s) assigned %v, want %v", c, got.Assigned, tt.wantAssigned)
			}
			if !reflect.DeepEqual(got.Unplaced, tt.wantUnplaced) {
				t.Errorf("Schedule(%s) left unplaced %q, want %q", c, got.Unplaced, tt.wantUnplaced)
			}
		})
	}
}

// TestScheduleSubnetFull is issue 10's scene: 300 replicas asked of one
// node whose /24 subnet holds 253 tasks. Before the scheduler counted
// addresses, the 47 beyond it were placed anyway and failed at start
// ("subnet is full") again and again.
func TestScheduleSubnetFull(t *testing.T) {
	nodes := []*api.Node{mkNode("a", subnet("10.240.1.0/24"))}
	pending := replicas("web", 300)
	r := Schedule(nodes, nil, pending, nil)
	c := call(nodes, nil, pending[:3]) + "…"
	if len(r.Assigned) != 253 || len(r.Unplaced) != 47 {
		t.Fatalf("Schedule(%s) assigned %d and left %d unplaced, want 253 and 47", c, len(r.Assigned), len(r.Unplaced))
	}
	want := "no suitable node (1 node: 1 lacks container addresses: its subnet holds 253 tasks)"
	for _, u := range r.Unplaced {
		if u.Reason != want {
			t.Fatalf("Schedule(%s) left %s unplaced with %q, want %q", c, u.TaskID, u.Reason, want)
		}
	}

	// The next round: the 253 hold their addresses; the rest wait.
	var placed []*api.Task
	for _, a := range r.Assigned {
		placed = append(placed, mkTask(a.TaskID, "web", on(a.NodeID)))
	}
	rest := pending[253:]
	if r2 := Schedule(nodes, placed, rest, nil); len(r2.Assigned) != 0 {
		t.Errorf("Schedule(%s with 253 placed) assigned %d more to a full /24, want 0", c, len(r2.Assigned))
	}

	// A second node takes the rest.
	nodes = append(nodes, mkNode("b", subnet("10.240.2.0/24")))
	if r3 := Schedule(nodes, placed, rest, nil); len(r3.Assigned) != 47 || perNode(r3)["b"] != 47 {
		t.Errorf("Schedule(%s with 253 placed on a, and b) placed %v per node, want b: 47", c, perNode(r3))
	}
}

// TestScheduleNoSubnetNoLimit: a node registered before the cluster had a
// range has no subnet; its agent runs no container network, so its tasks
// take no address and nothing limits how many it runs.
func TestScheduleNoSubnetNoLimit(t *testing.T) {
	nodes := []*api.Node{mkNode("a")}
	pending := replicas("web", 300)
	if r := Schedule(nodes, nil, pending, nil); len(r.Assigned) != 300 {
		t.Errorf("Schedule(node a without a subnet, 300 replicas) assigned %d, want 300; unplaced: %v", len(r.Assigned), r.Unplaced[:1])
	}
}

func TestScheduleSpread(t *testing.T) {
	tests := []struct {
		nodes    int
		replicas int
		want     map[string]int
	}{
		{3, 10, map[string]int{"n0": 4, "n1": 3, "n2": 3}},
		{3, 2, map[string]int{"n0": 1, "n1": 1}},
		{4, 4, map[string]int{"n0": 1, "n1": 1, "n2": 1, "n3": 1}},
		{1, 5, map[string]int{"n0": 5}},
	}
	for _, tt := range tests {
		var nodes []*api.Node
		// Given in reverse ID order: the input order must not matter.
		for i := tt.nodes - 1; i >= 0; i-- {
			nodes = append(nodes, mkNode("n"+string(rune('0'+i))))
		}
		pending := replicas("web", tt.replicas)
		got := Schedule(nodes, nil, pending, nil)
		if n := perNode(got); !reflect.DeepEqual(n, tt.want) {
			t.Errorf("Schedule(%d equal nodes, %d replicas) placed %v per node, want %v", tt.nodes, tt.replicas, n, tt.want)
		}
	}
}

// TestScheduleSpreadTwoServices checks that a second service fills the
// nodes the first one left emptier.
func TestScheduleSpreadTwoServices(t *testing.T) {
	nodes := []*api.Node{mkNode("a"), mkNode("b"), mkNode("c")}
	pending := append(replicas("web", 4), replicas("db", 2)...)
	got := Schedule(nodes, nil, pending, nil)
	want := map[string]int{"a": 2, "b": 2, "c": 2}
	if n := perNode(got); !reflect.DeepEqual(n, want) {
		t.Errorf("Schedule(%s) placed %v per node, want %v", call(nodes, nil, pending), n, want)
	}
}

func TestConstraintsKeyUnambiguous(t *testing.T) {
	lists := [][]string{
		nil,
		{"a"},
		{"a", "b"},
		{"ab"},
		{"1:a"},
		{"a1:b"},
		{"a", "1:b"},
		{"node.role==worker"},
		{"node.role==worker", "node.role==worker"},
	}
	seen := map[string][]string{}
	for _, l := range lists {
		k := constraintsKey(l)
		if prev, ok := seen[k]; ok {
			t.Errorf("constraintsKey(%q) = constraintsKey(%q) = %q", l, prev, k)
		}
		seen[k] = l
	}
}

// TestScheduleLowDisk: no new task goes to a node whose Warren data
// partition is low on space (under 256MiB or 5% free); the tasks on it
// stay where they are, it still counts for spread, and a node that did
// not report its disk is not limited.
func TestScheduleLowDisk(t *testing.T) {
	low := disk(2*gib, 100*mib)       // under 256MiB
	lowPct := disk(100*gib, 1536*mib) // 1.5%: under 5%
	tests := []struct {
		name         string
		nodes        []*api.Node
		placed       []*api.Task
		pending      []*api.Task
		wantAssigned []Assignment
		wantUnplaced []Unplaced
	}{
		{
			name:         "the one node is low",
			nodes:        []*api.Node{mkNode("a", low)},
			pending:      []*api.Task{mkTask("t1", "web")},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (1 node: 1 low on disk: 100MiB free, under the 256MiB it keeps free)"}},
		},
		{
			name:         "low by its share of the partition",
			nodes:        []*api.Node{mkNode("a", lowPct), mkNode("b", state(api.NodeDown))},
			pending:      []*api.Task{mkTask("t1", "web")},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (2 nodes: 1 down, 1 low on disk: 1.5GiB free, under the 5GiB it keeps free)"}},
		},
		{
			name:         "several low",
			nodes:        []*api.Node{mkNode("a", low), mkNode("b", lowPct), mkNode("c", availability(api.AvailabilityDrain), low)},
			pending:      []*api.Task{mkTask("t1", "web")},
			wantUnplaced: []Unplaced{{"t1", "no suitable node (3 nodes: 1 drained, 2 low on disk: at most 1.5GiB free, under the 256MiB or 5% each keeps free)"}},
		},
		{
			name: "new tasks go to the nodes with room, placed ones stay",
			nodes: []*api.Node{
				mkNode("a", low),
				mkNode("b", disk(2*gib, 256*mib)), // exactly what it keeps: not low
				mkNode("c"),                       // did not report: not limited
			},
			placed:       []*api.Task{mkTask("x1", "web", on("a")), mkTask("x2", "web", on("a"))},
			pending:      replicas("web", 2),
			wantAssigned: []Assignment{{"web.1", "b"}, {"web.2", "c"}},
		},
		{
			name:         "pinned to a low node",
			nodes:        []*api.Node{mkNode("a", low), mkNode("b")},
			pending:      []*api.Task{mkTask("g1", "agent", on("a")), mkTask("g2", "agent", on("b"))},
			wantAssigned: []Assignment{{"g2", "b"}},
			wantUnplaced: []Unplaced{{"g1", "node pi-a (a) is low on disk: 100MiB free of 2GiB on /var/lib/warren/agent, under the 256MiB it keeps free"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Schedule(tt.nodes, tt.placed, tt.pending, nil)
			if !reflect.DeepEqual(r.Assigned, tt.wantAssigned) || !reflect.DeepEqual(r.Unplaced, tt.wantUnplaced) {
				t.Errorf("Schedule(%s)\n got assigned %v, unplaced %v\nwant assigned %v, unplaced %v",
					call(tt.nodes, tt.placed, tt.pending), r.Assigned, r.Unplaced, tt.wantAssigned, tt.wantUnplaced)
			}
		})
	}
}
