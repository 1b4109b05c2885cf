package dns

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/warren-edge/warren/daemons/api"
)

func service(id, name, mode string, ports ...api.PortConfig) *api.Service {
	return &api.Service{Meta: api.Meta{ID: id}, Spec: api.ServiceSpec{Name: name, Mode: mode, Ports: ports}}
}

// runningTask is a task running at addr with the given health.
func runningTask(id string, s *api.Service, slot uint64, node, addr, health string) *api.Task {
	return &api.Task{Meta: api.Meta{ID: id}, ServiceID: s.ID, ServiceName: s.Spec.Name, Slot: slot, NodeID: node,
		DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskRunning, Addr: addr, Health: health}}
}

// rdata renders records as "TYPE DATA" without owner and TTL, sorted.
func rdata(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		f := strings.Fields(rr.String())
		out = append(out, strings.Join(f[3:], " "))
	}
	slices.Sort(out)
	return out
}

// testCluster is web (3 replicas: slot 1 healthy, slot 2 with no health
// check, slot 3 unhealthy; port 8080→80/tcp and 53/udp), a global service
// agent on two nodes (one starting), db with one task in IPv6 and one that
// stopped, and empty (no tasks).
func testCluster() ([]*api.Service, []*api.Task) {
	web := service("s-web", "web", "", api.PortConfig{Target: 80, Published: 8080}, api.PortConfig{Target: 53, Published: 5353, Protocol: "udp"})
	glob := service("s-agent", "mon", api.ModeGlobal)
	db := service("s-db", "db", "")
	empty := service("s-empty", "empty", "")
	stopped := runningTask("t-db2", db, 2, "n1", "10.0.1.9", "")
	stopped.Status.State = api.TaskFailed
	draining := runningTask("t-web4", web, 4, "n1", "10.0.1.4", "healthy")
	draining.DesiredState = api.TaskShutdown
	noaddr := runningTask("t-web5", web, 5, "n1", "", "")
	tasks := []*api.Task{
		runningTask("t-web1", web, 1, "n1", "10.0.1.1", "healthy"),
		runningTask("t-web2", web, 2, "n2", "10.0.2.2", ""),
		runningTask("t-web3", web, 3, "n2", "10.0.2.3", "unhealthy"),
		draining, noaddr,
		runningTask("t-mon1", glob, 0, "n1", "10.0.1.7", "healthy"),
		runningTask("t-mon2", glob, 0, "n2", "10.0.2.7", "starting"),
		runningTask("t-db1", db, 1, "n2", "fd00::5", ""),
		stopped,
	}
	return []*api.Service{web, glob, db, empty}, tasks
}

func TestLookup(t *testing.T) {
	services, tasks := testCluster()
	tb := BuildTable(TableOptions{Domain: "warren.internal", TTL: 5 * time.Second, Index: 42}, services, tasks)
	const nx, ok = dns.RcodeNameError, dns.RcodeSuccess
	for _, c := range []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
		extra []string
	}{
		// A service answers its healthy tasks: health "" and "healthy";
		// not unhealthy, starting, stopping, stopped or address-less ones.
		{"web.warren.internal.", dns.TypeA, ok, []string{"A 10.0.1.1", "A 10.0.2.2"}, nil},
		{"web.warren.internal.", dns.TypeAAAA, ok, nil, nil},
		{"web.warren.internal.", dns.TypeMX, ok, nil, nil},
		{"web.warren.internal.", 65280, ok, nil, nil},
		{"WEB.Warren.Internal.", dns.TypeA, ok, []string{"A 10.0.1.1", "A 10.0.2.2"}, nil},
		{"db.warren.internal.", dns.TypeAAAA, ok, []string{"AAAA fd00::5"}, nil},
		{"db.warren.internal.", dns.TypeA, ok, nil, nil},
		{"empty.warren.internal.", dns.TypeA, ok, nil, nil},
		{"mon.warren.internal.", dns.TypeA, ok, []string{"A 10.0.1.7"}, nil},
		// SERVICE.SLOT, and SERVICE.NODE for a global service.
		{"web.1.warren.internal.", dns.TypeA, ok, []string{"A 10.0.1.1"}, nil},
		{"web.2.warren.internal.", dns.TypeA, ok, []string{"A 10.0.2.2"}, nil},
		{"web.3.warren.internal.", dns.TypeA, ok, nil, nil},
		{"web.9.warren.internal.", dns.TypeA, nx, nil, nil},
		{"mon.n1.warren.internal.", dns.TypeA, ok, []string{"A 10.0.1.7"}, nil},
		{"mon.n2.warren.internal.", dns.TypeA, ok, nil, nil},
		// The task name answers the task while it runs, healthy or not.
		{"web.3.t-web3.warren.internal.", dns.TypeA, ok, []string{"A 10.0.2.3"}, nil},
		{"web.4.t-web4.warren.internal.", dns.TypeA, ok, []string{"A 10.0.1.4"}, nil},
		{"mon.n2.t-mon2.warren.internal.", dns.TypeA, ok, []string{"A 10.0.2.7"}, nil},
		{"db.2.t-db2.warren.internal.", dns.TypeA, nx, nil, nil},
		{"web.5.t-web5.warren.internal.", dns.TypeA, nx, nil, nil},
		// Empty non-terminals exist (RFC 8020): NODATA, not NXDOMAIN.
		{"2.warren.internal.", dns.TypeA, ok, nil, nil},
		{"t-web3.warren.internal.", dns.TypeA, ok, nil, nil},
		// SRV: _PUBLISHED._PROTO.SERVICE and _PROTO.SERVICE, port = target,
		// the task names as targets with their addresses as extra.
		{"_8080._tcp.web.warren.internal.", dns.TypeSRV, ok,
			[]string{"SRV 0 1 80 web.1.t-web1.warren.internal.", "SRV 0 1 80 web.2.t-web2.warren.internal."},
			[]string{"A 10.0.1.1", "A 10.0.2.2"}},
		{"_tcp.web.warren.internal.", dns.TypeSRV, ok,
			[]string{"SRV 0 1 80 web.1.t-web1.warren.internal.", "SRV 0 1 80 web.2.t-web2.warren.internal."},
			[]string{"A 10.0.1.1", "A 10.0.2.2"}},
		{"_5353._udp.web.warren.internal.", dns.TypeSRV, ok,
			[]string{"SRV 0 1 53 web.1.t-web1.warren.internal.", "SRV 0 1 53 web.2.t-web2.warren.internal."},
			[]string{"A 10.0.1.1", "A 10.0.2.2"}},
		{"_80._tcp.web.warren.internal.", dns.TypeSRV, nx, nil, nil},
		{"_udp.db.warren.internal.", dns.TypeSRV, nx, nil, nil},
		{"_8080._tcp.web.warren.internal.", dns.TypeA, ok, nil, nil},
		// The apex has the SOA.
		{"warren.internal.", dns.TypeSOA, ok, []string{"SOA warren.internal. hostmaster.warren.internal. 42 3600 600 86400 5"}, nil},
		{"warren.internal.", dns.TypeA, ok, nil, nil},
		{"warren.internal.", dns.TypeNS, ok, nil, nil},
		// Unknown names under the domain.
		{"nope.warren.internal.", dns.TypeA, nx, nil, nil},
		{"a.web.warren.internal.", dns.TypeA, nx, nil, nil},
		// PTR of task addresses: the task name.
		{"3.2.0.10.in-addr.arpa.", dns.TypePTR, ok, []string{"PTR web.3.t-web3.warren.internal."}, nil},
		{"5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", dns.TypePTR, ok, []string{"PTR db.1.t-db1.warren.internal."}, nil},
	} {
		ans, found := tb.Lookup(dns.Question{Name: c.name, Qtype: c.qtype, Qclass: dns.ClassINET})
		what := fmt.Sprintf("Lookup(%s %s)", c.name, dns.TypeToString[c.qtype])
		if !found {
			t.Errorf("%s: not the table's to answer; want rcode %s", what, dns.RcodeToString[c.rcode])
			continue
		}
		if ans.Rcode != c.rcode {
			t.Errorf("%s: rcode %s, want %s", what, dns.RcodeToString[ans.Rcode], dns.RcodeToString[c.rcode])
		}
		if got := rdata(ans.Records); !slices.Equal(got, c.want) {
			t.Errorf("%s: records %q, want %q", what, got, c.want)
		}
		if got := rdata(ans.Extra); !slices.Equal(got, c.extra) {
			t.Errorf("%s: extra %q, want %q", what, got, c.extra)
		}
		for _, rr := range ans.Records {
			if rr.Header().Name != c.name {
				t.Errorf("%s: record %v has owner %q, want the name as asked", what, rr, rr.Header().Name)
			}
			if rr.Header().Ttl != 5 {
				t.Errorf("%s: record %v has TTL %d, want 5", what, rr, rr.Header().Ttl)
			}
		}
	}
	for _, name := range []string{"example.com.", "warren.internal.example.", "xwarren.internal.", "1.1.168.192.in-addr.arpa.", "."} {
		if _, found := tb.Lookup(dns.Question{Name: name, Qtype: dns.TypeA, Qclass: dns.ClassINET}); found {
			t.Errorf("Lookup(%s A) answered from the table; want it passed on", name)
		}
	}
	if _, found := tb.Lookup(dns.Question{Name: "3.2.0.10.in-addr.arpa.", Qtype: dns.TypeA, Qclass: dns.ClassINET}); found {
		t.Errorf("Lookup(3.2.0.10.in-addr.arpa. A) answered from the table; only PTR is")
	}
	if s, n, h := tb.Counts(); s != 4 || n != 7 || h != 4 {
		t.Errorf("Counts() = %d services, %d tasks, %d healthy; want 4, 7, 4", s, n, h)
	}
}

func TestLookupRotates(t *testing.T) {
	s := service("s1", "web", "")
	var tasks []*api.Task
	for i := range 3 {
		tasks = append(tasks, runningTask(fmt.Sprint("t", i), s, uint64(i+1), "n1", fmt.Sprint("10.0.0.", i+1), ""))
	}
	tb := BuildTable(TableOptions{}, []*api.Service{s}, tasks)
	q := dns.Question{Name: "web.warren.internal.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	firsts := map[string]int{}
	var orders []string
	for range 6 {
		ans, _ := tb.Lookup(q)
		var order []string
		for _, rr := range ans.Records {
			order = append(order, rr.(*dns.A).A.String())
		}
		orders = append(orders, strings.Join(order, ","))
		firsts[order[0]]++
	}
	want := []string{"10.0.0.1,10.0.0.2,10.0.0.3", "10.0.0.2,10.0.0.3,10.0.0.1", "10.0.0.3,10.0.0.1,10.0.0.2"}
	if !slices.Equal(orders[:3], want) || !slices.Equal(orders[3:], want) {
		t.Errorf("six queries for web answered in orders %q; want each address first in turn: %q twice", orders, want)
	}
	if len(firsts) != 3 {
		t.Errorf("first addresses %v; want each of the 3 first twice", firsts)
	}
}

func TestBuildTableDeterministic(t *testing.T) {
	services, tasks := testCluster()
	a := BuildTable(TableOptions{}, services, tasks)
	slices.Reverse(tasks)
	slices.Reverse(services)
	b := BuildTable(TableOptions{}, services, tasks)
	q := dns.Question{Name: "web.warren.internal.", Qtype: dns.TypeA, Qclass: dns.ClassINET}
	x, _ := a.Lookup(q)
	y, _ := b.Lookup(q)
	if fmt.Sprint(x.Records) != fmt.Sprint(y.Records) {
		t.Errorf("tables from the same tasks in another order answer %v and %v; want the same order", x.Records, y.Records)
	}
}

func TestHealthy(t *testing.T) {
	s := service("s1", "web", "")
	for _, c := range []struct {
		health, state, desired, addr string
		want                         bool
	}{
		{"", "running", "running", "10.0.0.1", true},
		{"healthy", "running", "running", "10.0.0.1", true},
		{"starting", "running", "running", "10.0.0.1", false},
		{"unhealthy", "running", "running", "10.0.0.1", false},
		{"", "starting", "running", "10.0.0.1", false},
		{"", "running", "shutdown", "10.0.0.1", false},
		{"", "running", "running", "", false},
		{"", "running", "running", "not-an-ip", false},
		{"", "running", "running", "10.0.0.1/24", true},
	} {
		tk := runningTask("t1", s, 1, "n1", c.addr, c.health)
		tk.Status.State, tk.DesiredState = api.TaskState(c.state), api.TaskState(c.desired)
		if got := Healthy(tk); got != c.want {
			t.Errorf("Healthy(state %s desired %s health %q addr %q) = %v, want %v", c.state, c.desired, c.health, c.addr, got, c.want)
		}
	}
}

// manyTasks makes services × replicas healthy running tasks.
func manyTasks(services, replicas int) ([]*api.Service, []*api.Task) {
	var ss []*api.Service
	var ts []*api.Task
	for i := range services {
		s := service(fmt.Sprintf("s%03d", i), fmt.Sprintf("svc-%03d", i), "", api.PortConfig{Target: 80, Published: uint16(10000 + i)})
		ss = append(ss, s)
		for j := range replicas {
			n := i*replicas + j
			ts = append(ts, runningTask(fmt.Sprintf("t%05dxxxxxxxxxxxxxxxxxxx", n), s, uint64(j+1), "n1", fmt.Sprintf("10.%d.%d.%d", 240+n/65536, n/256%256, n%256), ""))
		}
	}
	return ss, ts
}

// TestUnreachableNodesLeftOut: tasks on a node this node's mesh does not
// reach are not answered under their service or slot name, so a client
// fails fast; they come back when the node does.
func TestUnreachableNodesLeftOut(t *testing.T) {
	services, tasks := testCluster()
	q := func(tb *Table, name string) []string {
		ans, _ := tb.Lookup(dns.Question{Name: name, Qtype: dns.TypeA, Qclass: dns.ClassINET})
		return rdata(ans.Records)
	}
	all := BuildTable(TableOptions{}, services, tasks)
	cut := BuildTable(TableOptions{Unreachable: map[string]bool{"n2": true}}, services, tasks)
	if got := q(all, "web.warren.internal."); !slices.Equal(got, []string{"A 10.0.1.1", "A 10.0.2.2"}) {
		t.Fatalf("web with every node reachable: %v", got)
	}
	if got := q(cut, "web.warren.internal."); !slices.Equal(got, []string{"A 10.0.1.1"}) {
		t.Errorf("web with n2 out of reach: %v, want only n1's task", got)
	}
	if got := q(cut, "web.2.warren.internal."); len(got) != 0 {
		t.Errorf("slot 2 (on n2) with n2 out of reach: %v, want no answer", got)
	}
	if got := q(cut, "mon.n2.warren.internal."); len(got) != 0 {
		t.Errorf("the global task on n2 with n2 out of reach: %v", got)
	}
}
