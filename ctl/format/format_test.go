package format

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// golden compares got with testdata/NAME.golden, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", name, path, got, want)
	}
}

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return now.Add(-d) }

func fixture() ([]api.Service, []api.Task, []api.Node) {
	one := uint64(2)
	services := []api.Service{
		{Meta: api.Meta{ID: "kq7wn1p5hsd3xv0o1f2z9ab4c", CreatedAt: ago(time.Hour), UpdatedAt: ago(5 * time.Minute)},
			Spec: api.ServiceSpec{Name: "web", Image: "localhost/web:1.2", Mode: "replicated", Replicas: 3,
				Labels: map[string]string{"tier": "front", "app": "shop"},
				Args:   []string{"serve", "--root", "/srv/my site"}, Env: []string{"A=1", "LOG=debug"},
				Placement:     api.Placement{Constraints: []string{"node.role!=manager", "node.labels.zone==east"}},
				RestartPolicy: api.RestartPolicy{Condition: "on-failure", MaxAttempts: 3},
				UpdateConfig:  api.UpdateConfig{Parallelism: &one, Delay: api.Duration(10 * time.Second), Order: "start-first"},
				Resources: api.Resources{Limits: api.ResourceAmounts{NanoCPUs: 5e8, MemoryBytes: 64 << 20},
					Reservations: api.ResourceAmounts{MemoryBytes: 32 << 20}},
				Ports: []api.PortConfig{{Target: 80, Published: 8080, Protocol: "tcp"}, {Target: 53, Published: 53, Protocol: "udp", HostAddr: "::1"}}},
			UpdateStatus: &api.UpdateStatus{State: "updating", StartedAt: "2025-06-01T11:55:00Z"}},
		{Meta: api.Meta{ID: "a1b2c3d4e5f6g7h8i9j0k1l2m", CreatedAt: ago(48 * time.Hour), UpdatedAt: ago(48 * time.Hour)},
			Spec: api.ServiceSpec{Name: "agent", Image: "docker.io/library/busybox:latest@sha256:0123456789abcdef", Mode: "global"}},
	}
	t := func(id, svc, name string, slot uint64, node string, desired, state api.TaskState, created time.Duration, at time.Duration, err string) api.Task {
		spec := services[0].Spec
		if svc == services[1].ID {
			spec = services[1].Spec
		}
		msg := ""
		if state == api.TaskPending {
			msg = "waiting for a node"
		}
		return api.Task{Meta: api.Meta{ID: id, CreatedAt: ago(created)}, ServiceID: svc, ServiceName: name, Slot: slot, NodeID: node,
			Spec: spec, DesiredState: desired, Status: api.TaskStatus{State: state, Timestamp: ago(at), Err: err, Message: msg}}
	}
	web, agent := services[0].ID, services[1].ID
	tasks := []api.Task{
		t("t3pending00000000000000000", web, "web", 3, "", api.TaskRunning, api.TaskPending, time.Minute, time.Minute,
			"no suitable node: 2 nodes do not satisfy node.labels.zone==east, 1 node is drained, and that is a long reason"),
		t("t1old000000000000000000000", web, "web", 1, "n2aaaaaaaaaaaaaaaaaaaaaaa", api.TaskShutdown, api.TaskFailed, time.Hour, 50*time.Minute, "task: non-zero exit (1)"),
		t("t1new000000000000000000000", web, "web", 1, "n2aaaaaaaaaaaaaaaaaaaaaaa", api.TaskRunning, api.TaskRunning, 50*time.Minute, 49*time.Minute, ""),
		t("t2000000000000000000000000", web, "web", 2, "n1aaaaaaaaaaaaaaaaaaaaaaa", api.TaskRunning, api.TaskStarting, 2*time.Second, time.Second, ""),
		t("tg1000000000000000000000000", agent, "agent", 0, "n1aaaaaaaaaaaaaaaaaaaaaaa", api.TaskRunning, api.TaskRunning, 48*time.Hour, 47*time.Hour, ""),
		t("tg2000000000000000000000000", agent, "agent", 0, "n3gone0000000000000000000", api.TaskRunning, api.TaskAssigned, 90*time.Second, 90*time.Second, ""),
	}
	// A task its node restarted in place twice while cut off, then took
	// back on reconnect.
	code := 137
	tasks[2].Status.Offline = &api.OfflineRun{Restarts: 2, LastExitCode: &code, Readopted: true}
	nodes := []api.Node{
		{Meta: api.Meta{ID: "n2aaaaaaaaaaaaaaaaaaaaaaa", CreatedAt: ago(72 * time.Hour)},
			Spec: api.NodeSpec{Role: "worker", Availability: "drain", Labels: map[string]string{"zone": "east"}},
			Description: api.NodeDescription{Hostname: "pi-2", OS: "linux", Arch: "arm64", NanoCPUs: 4e9, MemoryBytes: 4 << 30, EngineVersion: "containerd 2.1",
				Certificate: &api.NodeCertificate{NotAfter: ago(40 * 24 * time.Hour)},
				Disk:        &api.NodeDisk{Path: "/var/lib/warren/agent", TotalBytes: 16 << 30, FreeBytes: 200 << 20}},
			Status: api.NodeStatus{State: "down", Message: "no heartbeat for 30s", Timestamp: ago(40 * time.Second)}},
		{Meta: api.Meta{ID: "n1aaaaaaaaaaaaaaaaaaaaaaa", CreatedAt: ago(96 * time.Hour)},
			Spec: api.NodeSpec{Role: "manager", Availability: "active"},
			Description: api.NodeDescription{Hostname: "pi-1", OS: "linux", Arch: "arm64", NanoCPUs: 4e9, MemoryBytes: 8 << 30, Addr: "10.0.0.1:4242", EngineVersion: "containerd 2.1",
				Disk: &api.NodeDisk{Path: "/var/lib/warren/agent", TotalBytes: 32 << 30, FreeBytes: 12 << 30},
				Mesh: &api.NodeMesh{PublicKey: "mXz1hQ9bT0pGZk0ZzXwVb5yA9k0VQkq3pVJr1gqH8Ck=", Port: 51820, Mode: api.MeshUserspace, MTU: 1440}},
			Status:  api.NodeStatus{State: "ready", Timestamp: ago(time.Second)},
			Subnet:  "10.88.1.0/24",
			Manager: &api.ManagerStatus{Leader: true, Reachability: "reachable", Addr: "10.0.0.1:4242"}},
		{Meta: api.Meta{ID: "n3aaaaaaaaaaaaaaaaaaaaaaa", CreatedAt: ago(96 * time.Hour)},
			Spec: api.NodeSpec{Role: "manager", Availability: "active"},
			Description: api.NodeDescription{Hostname: "pi-3", OS: "linux", Arch: "arm64", NanoCPUs: 4e9, MemoryBytes: 8 << 30, Addr: "10.0.0.3:4242", EngineVersion: "containerd 2.1",
				Disk: &api.NodeDisk{Path: "/var/lib/warren/agent", TotalBytes: 32 << 30, FreeBytes: 0}},
			Status:  api.NodeStatus{State: "ready", Timestamp: ago(time.Second)},
			Subnet:  "10.88.3.0/24",
			Manager: &api.ManagerStatus{Reachability: "reachable", Addr: "10.0.0.3:4242", DiskFull: true}},
	}
	return services, tasks, nodes
}

func TestTables(t *testing.T) {
	services, tasks, nodes := fixture()
	hostnames := map[string]string{}
	for _, n := range nodes {
		hostnames[n.ID] = n.Description.Hostname
	}
	var b bytes.Buffer
	if err := ServiceTable(&b, services, tasks); err != nil {
		t.Fatal(err)
	}
	golden(t, "service_ls", b.Bytes())

	b.Reset()
	if err := TaskTable(&b, tasks, hostnames, now, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "service_ps", b.Bytes())

	b.Reset()
	if err := TaskTable(&b, tasks, hostnames, now, true); err != nil {
		t.Fatal(err)
	}
	golden(t, "service_ps_notrunc", b.Bytes())

	b.Reset()
	if err := NodeTable(&b, nodes, "n1aaaaaaaaaaaaaaaaaaaaaaa", now, 30*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	golden(t, "node_ls", b.Bytes())
}

func TestPretty(t *testing.T) {
	services, _, nodes := fixture()
	var b bytes.Buffer
	if err := PrettyService(&b, &services[0], now); err != nil {
		t.Fatal(err)
	}
	golden(t, "service_pretty", b.Bytes())
	b.Reset()
	if err := PrettyNode(&b, &nodes[1], now); err != nil {
		t.Fatal(err)
	}
	golden(t, "node_pretty", b.Bytes())
	b.Reset()
	if err := PrettyNode(&b, &nodes[2], now); err != nil {
		t.Fatal(err)
	}
	golden(t, "node_pretty_disk_full", b.Bytes())
}

func TestSpecDiff(t *testing.T) {
	services, _, _ := fixture()
	a := services[0].Spec
	b := a
	b.Image = "localhost/web:1.3"
	b.Env = []string{"A=1", "LOG=info", "NEW=x"}
	golden(t, "spec_diff", []byte(SpecDiff(&a, &b)))
	if d := SpecDiff(&a, &a); d != "" {
		t.Errorf("SpecDiff(a, a) = %q, want \"\"", d)
	}
}

func TestAgo(t *testing.T) {
	tests := []struct {
		at   time.Time
		want string
	}{
		{time.Time{}, ""},
		{ago(0), "less than a second ago"},
		{ago(5 * time.Second), "5 seconds ago"},
		{ago(70 * time.Second), "about a minute ago"},
		{ago(5 * time.Minute), "5 minutes ago"},
		{ago(3 * time.Hour), "3 hours ago"},
		{ago(72 * time.Hour), "3 days ago"},
		{now.Add(time.Minute), "less than a second ago"}, // a clock ahead of ours
	}
	for _, tt := range tests {
		if got := Ago(now, tt.at); got != tt.want {
			t.Errorf("Ago(now, now-%v) = %q, want %q", now.Sub(tt.at), got, tt.want)
		}
	}
	if got := StateAgo("running", ago(5*time.Minute), now); got != "Running 5 minutes ago" {
		t.Errorf("StateAgo(running, 5m) = %q, want %q", got, "Running 5 minutes ago")
	}
}

func TestUntil(t *testing.T) {
	tests := []struct {
		at   time.Time
		want string
	}{
		{time.Time{}, "never"},
		{now.Add(2 * time.Hour), "in 2 hours"},
		{now.Add(90 * 24 * time.Hour), "in 3 months"},
		{ago(10 * 24 * time.Hour), "expired 10 days ago"},
		{now, "expired less than a second ago"},
	}
	for _, tt := range tests {
		if got := Until(now, tt.at); got != tt.want {
			t.Errorf("Until(now, now%+v) = %q, want %q", tt.at.Sub(now), got, tt.want)
		}
	}
}

func TestPorts(t *testing.T) {
	ps := []api.PortConfig{{Target: 80, Published: 8080}, {Target: 53, Protocol: "udp", HostAddr: "127.0.0.1"}, {Target: 443, Published: 443, HostAddr: "::1"},
		{Target: 80, Published: 9090, Mode: api.PortModeHost}, {Target: 81, Published: 9091, Mode: api.PortModeIngress}}
	want := "*:8080->80/tcp, 127.0.0.1:53->53/udp (host), [::1]:443->443/tcp (host), *:9090->80/tcp (host), *:9091->81/tcp"
	if got := Ports(ps); got != want {
		t.Errorf("Ports(%v) = %q, want %q", ps, got, want)
	}
}

func TestEncode(t *testing.T) {
	v := map[string]any{"a": 1}
	var b bytes.Buffer
	if err := Encode(&b, JSON, v); err != nil || b.String() != "{\n    \"a\": 1\n}\n" {
		t.Errorf("Encode(json) = %q, %v", b.String(), err)
	}
	b.Reset()
	if err := Encode(&b, YAML, v); err != nil || b.String() != "a: 1\n" {
		t.Errorf("Encode(yaml) = %q, %v", b.String(), err)
	}
	if err := Encode(&b, "xml", v); err == nil {
		t.Errorf("Encode(xml) gave no error")
	}
}

// node ls tells a worker cut off past its certificate's expiry from one
// that must join again, by the managers' grace.
func TestCertMessage(t *testing.T) {
	day := 24 * time.Hour
	worker := func(expired time.Duration) *api.Node {
		return &api.Node{Spec: api.NodeSpec{Role: api.RoleWorker},
			Description: api.NodeDescription{Certificate: &api.NodeCertificate{NotAfter: now.Add(-expired)}}}
	}
	manager := worker(40 * day)
	manager.Spec.Role = api.RoleManager
	cases := []struct {
		name  string
		n     *api.Node
		grace time.Duration
		want  string
	}{
		{"valid", worker(-day), 30 * day, ""},
		{"no certificate recorded", &api.Node{Spec: api.NodeSpec{Role: api.RoleWorker}}, 30 * day, ""},
		{"a manager (it signs its own)", manager, 30 * day, ""},
		{"expired, within the grace", worker(10 * day), 30 * day, "certificate expired on 2025-05-22: it renews once the node is back, until 2025-06-21"},
		{"expired, beyond the grace", worker(40 * day), 30 * day, "certificate expired on 2025-04-22, beyond the 30-day grace: re-join with a token (warren rejoin on the node)"},
		{"expired, a grace of hours", worker(day), 12 * time.Hour, "certificate expired on 2025-05-31, beyond the 12h0m0s grace: re-join with a token (warren rejoin on the node)"},
		{"expired, no grace", worker(time.Minute), 0, "certificate expired on 2025-06-01: re-join with a token (warren rejoin on the node)"},
		{"expired, grace not known", worker(40 * day), -1, "certificate expired on 2025-04-22"},
	}
	for _, c := range cases {
		if got := CertMessage(c.n, now, c.grace); got != c.want {
			t.Errorf("CertMessage(%s, grace %v) = %q, want %q", c.name, c.grace, got, c.want)
		}
	}
}
