package opts

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestParsePort(t *testing.T) {
	tests := []struct {
		in      string
		want    api.PortConfig
		wantErr string // a part of the error; "" means no error
	}{
		{in: "80", want: api.PortConfig{Target: 80}},
		{in: "8080:80", want: api.PortConfig{Published: 8080, Target: 80}},
		{in: "8080:80/tcp", want: api.PortConfig{Published: 8080, Target: 80, Protocol: "tcp"}},
		{in: "53/UDP", want: api.PortConfig{Target: 53, Protocol: "udp"}},
		{in: "127.0.0.1:8080:80/udp", want: api.PortConfig{HostAddr: "127.0.0.1", Published: 8080, Target: 80, Protocol: "udp"}},
		{in: "127.0.0.1::80", want: api.PortConfig{HostAddr: "127.0.0.1", Target: 80}},
		{in: "[::1]:8080:80", want: api.PortConfig{HostAddr: "::1", Published: 8080, Target: 80}},
		{in: "[fd00::1]:53:53/udp", want: api.PortConfig{HostAddr: "fd00::1", Published: 53, Target: 53, Protocol: "udp"}},
		{in: "published=8080,target=80,protocol=udp,hostaddr=10.0.0.1", want: api.PortConfig{HostAddr: "10.0.0.1", Published: 8080, Target: 80, Protocol: "udp"}},
		{in: "target=80,mode=host", want: api.PortConfig{Target: 80, Mode: "host"}},
		{in: "mode=host,published=8080,target=80", want: api.PortConfig{Published: 8080, Target: 80, Mode: "host"}},
		{in: "target=80,mode=ingress", want: api.PortConfig{Target: 80, Mode: "ingress"}},
		{in: "target=80,mode=HOST", want: api.PortConfig{Target: 80, Mode: "host"}},
		{in: "mode=host,hostaddr=10.0.0.1,published=8080,target=80", want: api.PortConfig{HostAddr: "10.0.0.1", Published: 8080, Target: 80, Mode: "host"}},
		{in: "mode=ingress,hostaddr=0.0.0.0,target=80", want: api.PortConfig{HostAddr: "0.0.0.0", Target: 80, Mode: "ingress"}},

		{in: "", wantErr: "empty port"},
		{in: "http", wantErr: `target port "http" is not a number from 1 to 65535`},
		{in: "70000:80", wantErr: `published port "70000" is not a number`},
		{in: "8080:0", wantErr: `target port "0" is not a number`},
		{in: "8080:", wantErr: "the target port is missing"},
		{in: "8080:80/sctp", wantErr: `protocol "sctp" is not tcp or udp`},
		{in: "::1:8080:80", wantErr: "put an IPv6 host address in brackets"},
		{in: "[::1:8080:80", wantErr: "[ADDR]:PUBLISHED:TARGET"},
		{in: "[::1]:80", wantErr: "after the host address give PUBLISHED:TARGET"},
		{in: "localhost:8080:80", wantErr: `host address "localhost" is not an IP address`},
		{in: "1.2.3:8080:80", wantErr: `host address "1.2.3" is not an IP address`},
		{in: "8000-8010:80", wantErr: "port ranges are not supported"},
		{in: "target=80,mode=vip", wantErr: `mode "vip" is not ingress (every node answers the port) or host`},
		{in: "mode=ingress,hostaddr=10.0.0.1,target=80", wantErr: "cannot be bound to 10.0.0.1: use mode=host"},
		{in: "target=80,color=blue", wantErr: `unknown key "color"`},
		{in: "published=8080", wantErr: "the target port is missing"},
	}
	for _, tt := range tests {
		got, err := ParsePort(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePort(%q) = %+v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePort(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestRemovePorts(t *testing.T) {
	ports := []api.PortConfig{
		{Target: 80, Published: 8080, Protocol: "tcp"},
		{Target: 53, Published: 53, Protocol: "udp"},
		{Target: 53, Published: 53, Protocol: "tcp"},
		{Target: 443},
	}
	tests := []struct {
		rm   []string
		want []uint16 // targets kept, in order
	}{
		{rm: []string{"80"}, want: []uint16{53, 53, 443}},
		{rm: []string{"53/udp"}, want: []uint16{80, 53, 443}},
		{rm: []string{"53"}, want: []uint16{80, 443}},
		{rm: []string{"9090:80"}, want: []uint16{80, 53, 53, 443}},
		{rm: []string{"8080:80"}, want: []uint16{53, 53, 443}},
		{rm: []string{"443:443"}, want: []uint16{80, 53, 53}},
	}
	for _, tt := range tests {
		got, err := RemovePorts(ports, tt.rm)
		var targets []uint16
		for _, p := range got {
			targets = append(targets, p.Target)
		}
		if err != nil || !slices.Equal(targets, tt.want) {
			t.Errorf("RemovePorts(%v) kept targets %v, %v; want %v", tt.rm, targets, err, tt.want)
		}
	}
	if _, err := RemovePorts(ports, []string{"x"}); err == nil {
		t.Errorf("RemovePorts([x]) gave no error")
	}
}

func TestParseEnv(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "HOME" {
			return "/root", true
		}
		return "", false
	}
	tests := []struct {
		in      string
		want    string
		wantOK  bool
		wantErr string
	}{
		{in: "A=1", want: "A=1", wantOK: true},
		{in: "A=", want: "A=", wantOK: true},
		{in: "A=b=c", want: "A=b=c", wantOK: true},
		{in: "log.level=debug", want: "log.level=debug", wantOK: true},
		{in: "HOME", want: "HOME=/root", wantOK: true},
		{in: "UNSET", wantOK: false},
		{in: "=1", wantErr: `"" is not a variable name`},
		{in: "1A=x", wantErr: `"1A" is not a variable name`},
		{in: "MY VAR=x", wantErr: "is not a variable name"},
	}
	for _, tt := range tests {
		got, ok, err := ParseEnv(tt.in, lookup)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseEnv(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseEnv(%q) = %q, %v, %v; want %q, %v", tt.in, got, ok, err, tt.want, tt.wantOK)
		}
	}
}

func TestSetAndRemoveEnv(t *testing.T) {
	env := []string{"A=1", "B=2"}
	if got, want := SetEnv(env, "B=3", "C=4"), []string{"A=1", "B=3", "C=4"}; !slices.Equal(got, want) {
		t.Errorf("SetEnv(%v, B=3, C=4) = %v, want %v", env, got, want)
	}
	if !slices.Equal(env, []string{"A=1", "B=2"}) {
		t.Errorf("SetEnv changed its input: %v", env)
	}
	if got, want := RemoveEnv(env, "A", "Z=9"), []string{"B=2"}; !slices.Equal(got, want) {
		t.Errorf("RemoveEnv(%v, A, Z=9) = %v, want %v", env, got, want)
	}
}

func TestParseLabel(t *testing.T) {
	tests := []struct{ in, key, val, wantErr string }{
		{in: "tier=web", key: "tier", val: "web"},
		{in: "canary", key: "canary", val: ""},
		{in: "a=b=c", key: "a", val: "b=c"},
		{in: "=x", wantErr: "has no key"},
	}
	for _, tt := range tests {
		k, v, err := ParseLabel(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseLabel(%q) = %q, %q, %v; want an error containing %q", tt.in, k, v, err, tt.wantErr)
			}
			continue
		}
		if err != nil || k != tt.key || v != tt.val {
			t.Errorf("ParseLabel(%q) = %q, %q, %v; want %q, %q", tt.in, k, v, err, tt.key, tt.val)
		}
	}
}

func TestParseConstraint(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: "node.labels.zone==east", want: "node.labels.zone==east"},
		{in: "node.labels.zone == east", want: "node.labels.zone==east"},
		{in: "node.role!=manager", want: "node.role!=manager"},
		{in: "node.hostname==pi-7", want: "node.hostname==pi-7"},
		{in: "node.labels.zone=east", wantErr: "has no == or !="},
		{in: "node.role==boss", wantErr: "node.role is manager or worker"},
		{in: "node.color==red", wantErr: `unknown attribute "node.color"`},
		{in: "node.labels.zone==", wantErr: "has no value"},
	}
	for _, tt := range tests {
		got, err := ParseConstraint(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseConstraint(%q) = %q, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseConstraint(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in      string
		want    api.Bytes
		wantErr string
	}{
		{in: "64M", want: 64 << 20},
		{in: "64m", want: 64 << 20},
		{in: "512k", want: 512 << 10},
		{in: "1G", want: 1 << 30},
		{in: "1.5G", want: 3 << 29},
		{in: "1048576", want: 1 << 20},
		{in: "0", want: 0},
		{in: "", want: 0},
		{in: "lots", wantErr: `invalid size "lots"`},
		{in: "64Q", wantErr: `invalid size "64Q"`},
		{in: "-1", wantErr: "cannot be negative"},
	}
	for _, tt := range tests {
		got, err := ParseMemory(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseMemory(%q) = %d, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	tests := []struct {
		in      string
		want    api.CPUs
		wantErr bool
	}{
		{in: "0.5", want: 5e8},
		{in: "2", want: 2e9},
		{in: "0.001", want: 1e6},
		{in: "half", wantErr: true},
		{in: "-1", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseCPUs(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseCPUs(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseScale(t *testing.T) {
	tests := []struct {
		in      string
		svc     string
		n       uint64
		wantErr string
	}{
		{in: "web=3", svc: "web", n: 3},
		{in: "web=0", svc: "web", n: 0},
		{in: "web", wantErr: "is not SERVICE=REPLICAS"},
		{in: "=3", wantErr: "is not SERVICE=REPLICAS"},
		{in: "web=x", wantErr: `"x" is not a number of replicas`},
		{in: "web=-1", wantErr: "is not a number of replicas"},
		{in: "web=100000", wantErr: "more than the limit"},
	}
	for _, tt := range tests {
		svc, n, err := ParseScale(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseScale(%q) = %q, %d, %v; want an error containing %q", tt.in, svc, n, err, tt.wantErr)
			}
			continue
		}
		if err != nil || svc != tt.svc || n != tt.n {
			t.Errorf("ParseScale(%q) = %q, %d, %v; want %q, %d", tt.in, svc, n, err, tt.svc, tt.n)
		}
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "sleep 100", want: []string{"sleep", "100"}},
		{in: "  sh   -c  'echo hi; sleep 1' ", want: []string{"sh", "-c", "echo hi; sleep 1"}},
		{in: `echo "a \"b\" c" d\ e`, want: []string{"echo", `a "b" c`, "d e"}},
		{in: `''`, want: []string{""}},
		{in: `'open`, wantErr: true},
		{in: `"open`, wantErr: true},
		{in: `x\`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := SplitWords(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("SplitWords(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseSecurityOpt(t *testing.T) {
	yes, no := true, false
	cases := []struct {
		in      string
		seccomp string
		allow   *bool // NewPrivileges
		err     string
	}{
		{"seccomp=unconfined", "unconfined", nil, ""},
		{"seccomp:unconfined", "unconfined", nil, ""},
		{"seccomp=default", "default", nil, ""},
		{"no-new-privileges", "", &no, ""},
		{"no-new-privileges=true", "", &no, ""},
		{"no-new-privileges:true", "", &no, ""},
		{"no-new-privileges=false", "", &yes, ""},
		{"seccomp=/etc/docker/seccomp.json", "", nil, "custom profiles are not supported"},
		{"seccomp=", "", nil, "give a mode"},
		{"seccomp", "", nil, "give a mode"},
		{"no-new-privileges=maybe", "", nil, "no-new-privileges=false"},
		{"apparmor=unconfined", "", nil, "is not supported"},
		{"label=disable", "", nil, "is not supported"},
		{"", "", nil, "is not supported"},
	}
	for _, c := range cases {
		got, err := ParseSecurityOpt(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), fmt.Sprintf("%q", c.in)) {
				t.Errorf("ParseSecurityOpt(%q) = %+v, %v; want an error naming it and saying %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got.Seccomp != c.seccomp || (got.NewPrivileges == nil) != (c.allow == nil) ||
			got.NewPrivileges != nil && *got.NewPrivileges != *c.allow {
			t.Errorf("ParseSecurityOpt(%q) = %+v (new privileges %v), %v; want seccomp %q, new privileges %v", c.in, got, got.NewPrivileges, err, c.seccomp, c.allow)
		}
	}
}

func TestCapabilities(t *testing.T) {
	l := func(s ...string) []string { return s }
	cases := []struct {
		name                         string
		add, drop                    []string // the spec's
		fAdd, fDrop, fAddRm, fDropRm []string
		wantAdd, wantDrop            []string
		err                          string
	}{
		{"nothing", nil, nil, nil, nil, nil, nil, nil, nil, ""},
		{"create", nil, nil, l("net_admin", "CAP_SYS_TIME"), l("ALL"), nil, nil, l("CAP_NET_ADMIN", "CAP_SYS_TIME"), l("ALL"), ""},
		{"duplicates", nil, nil, l("net_admin", "NET_ADMIN"), nil, nil, nil, l("CAP_NET_ADMIN"), nil, ""},
		{"add and drop the same: add wins", nil, nil, l("NET_RAW"), l("net_raw"), nil, nil, l("CAP_NET_RAW"), nil, ""},
		{"keeps the spec's", l("NET_ADMIN"), l("chown"), l("SYS_TIME"), nil, nil, nil, l("CAP_NET_ADMIN", "CAP_SYS_TIME"), l("CAP_CHOWN"), ""},
		{"add leaves the drop list", nil, l("CAP_NET_RAW", "CAP_CHOWN"), l("NET_RAW"), nil, nil, nil, l("CAP_NET_RAW"), l("CAP_CHOWN"), ""},
		{"drop leaves the add list", l("CAP_NET_ADMIN"), nil, nil, l("net_admin"), nil, nil, nil, l("CAP_NET_ADMIN"), ""},
		{"add-rm forgets", l("CAP_NET_ADMIN", "CAP_SYS_TIME"), nil, nil, nil, l("sys_time"), nil, l("CAP_NET_ADMIN"), nil, ""},
		{"drop-rm forgets", nil, l("ALL"), nil, nil, nil, l("all"), nil, nil, ""},
		{"unknown add", nil, nil, l("SYS_FOO"), nil, nil, nil, nil, nil, "--cap-add: \"SYS_FOO\" is not a Linux capability"},
		{"unknown drop-rm", nil, nil, nil, nil, nil, l("nope"), nil, nil, "--cap-drop-rm: \"nope\""},
	}
	for _, c := range cases {
		add, drop := slices.Clone(c.add), slices.Clone(c.drop)
		gotAdd, gotDrop, err := Capabilities(add, drop, c.fAdd, c.fDrop, c.fAddRm, c.fDropRm)
		call := fmt.Sprintf("Capabilities(%s: spec %q %q, --cap-add %q --cap-drop %q --cap-add-rm %q --cap-drop-rm %q)",
			c.name, c.add, c.drop, c.fAdd, c.fDrop, c.fAddRm, c.fDropRm)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s = %v; want an error saying %q", call, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(gotAdd, c.wantAdd) || !slices.Equal(gotDrop, c.wantDrop) ||
			(gotAdd == nil) != (c.wantAdd == nil) || (gotDrop == nil) != (c.wantDrop == nil) {
			t.Errorf("%s = %q, %q, %v; want %q, %q", call, gotAdd, gotDrop, err, c.wantAdd, c.wantDrop)
		}
		if !slices.Equal(add, c.add) || !slices.Equal(drop, c.drop) {
			t.Errorf("%s changed the spec's lists to %q, %q", call, add, drop)
		}
	}
}
