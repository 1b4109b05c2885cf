package api_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/warren-edge/warren/daemons/api"
)

// goodSpec is a small valid spec that each case breaks in one place.
func goodSpec() api.ServiceSpec {
	return api.ServiceSpec{Name: "web", Image: "localhost/busybox:1.36", Replicas: 1}
}

func u64(n uint64) *uint64 { return &n }

// fieldsOf returns the sorted, distinct fields an error from the validators
// names, after checking that it is a well-formed invalid-request error.
func fieldsOf(t *testing.T, call string, err error, what string) []string {
	t.Helper()
	var e *api.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s = %T %v, want an *api.Error", call, err, err)
	}
	if e.Code != api.CodeInvalid || e.HTTPStatus() != 400 {
		t.Errorf("%s: code %q (HTTP %d), want %q (400)", call, e.Code, e.HTTPStatus(), api.CodeInvalid)
	}
	if len(e.Fields) == 0 {
		t.Fatalf("%s = %q names no field", call, e.Message)
	}
	prefix := "invalid " + what + ": "
	if !strings.HasPrefix(e.Message, prefix) {
		t.Errorf("%s: message %q does not start with %q", call, e.Message, prefix)
	}
	if len(e.Fields) == 1 {
		if want := prefix + e.Fields[0].Field + ": " + e.Fields[0].Message; e.Message != want {
			t.Errorf("%s: message %q, want %q", call, e.Message, want)
		}
	} else if want := fmt.Sprintf("%s%d problems", prefix, len(e.Fields)); e.Message != want {
		t.Errorf("%s: message %q, want %q", call, e.Message, want)
	}
	var fields []string
	for _, f := range e.Fields {
		checkMessage(t, call, f.Field+": "+f.Message, f.Message)
		// Error() lists every field on its own line.
		if !strings.Contains(err.Error(), "\n  "+f.Field+": "+f.Message) {
			t.Errorf("%s: Error() = %q does not list %s", call, err.Error(), f.Field)
		}
		fields = append(fields, f.Field)
	}
	slices.Sort(fields)
	return slices.Compact(fields)
}

// checkMessage checks the CONVENTIONS style of an error message: one line,
// lower-case start, no final period.
func checkMessage(t *testing.T, call, what, msg string) {
	t.Helper()
	switch {
	case msg == "":
		t.Errorf("%s: %s: empty message", call, what)
	case strings.ContainsAny(msg, "\n"):
		t.Errorf("%s: %s: message %q spans lines", call, what, msg)
	case unicode.IsUpper([]rune(msg)[0]):
		t.Errorf("%s: %s: message %q starts with a capital", call, what, msg)
	case strings.HasSuffix(msg, "."):
		t.Errorf("%s: %s: message %q ends with a period", call, what, msg)
	}
}

type specCase struct {
	name   string
	edit   func(s *api.ServiceSpec)
	fields []string // the fields the error names; none: the spec is valid
}

func runSpecCases(t *testing.T, cases []specCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := goodSpec()
			c.edit(&s)
			call := fmt.Sprintf("ValidateServiceSpec(%s)", c.name)
			err := api.ValidateServiceSpec(&s)
			if len(c.fields) == 0 {
				if err != nil {
					t.Fatalf("%s = %v, want nil", call, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("%s = nil, want an error naming %v", call, c.fields)
			}
			want := slices.Clone(c.fields)
			slices.Sort(want)
			if got := fieldsOf(t, call, err, "service spec"); !slices.Equal(got, want) {
				t.Errorf("%s named fields %v, want %v\n%v", call, got, want, err)
			}
		})
	}
}

func TestValidateServiceSpecName(t *testing.T) {
	name := func(n string) func(*api.ServiceSpec) { return func(s *api.ServiceSpec) { s.Name = n } }
	runSpecCases(t, []specCase{
		{"one letter", name("a"), nil},
		{"letters digits dashes", name("web-1"), nil},
		{"double dash", name("a--b"), nil},
		{"63 characters", name("a" + strings.Repeat("b", 62)), nil},
		{"empty", name(""), []string{"name"}},
		{"64 characters", name("a" + strings.Repeat("b", 63)), []string{"name"}},
		{"upper case", name("Web"), []string{"name"}},
		{"all upper case", name("WEB"), []string{"name"}},
		{"starts with a digit", name("1web"), []string{"name"}},
		{"starts with a dash", name("-web"), []string{"name"}},
		{"ends with a dash", name("web-"), []string{"name"}},
		{"underscore", name("we_b"), []string{"name"}},
		{"dot", name("web.1"), []string{"name"}},
		{"space", name("my web"), []string{"name"}},
		{"unicode letter", name("wéb"), []string{"name"}},
		{"unicode digit", name("web٣"), []string{"name"}},
		{"NUL", name("web\x00"), []string{"name"}},
	})
}

func TestValidateServiceSpecImage(t *testing.T) {
	image := func(i string) func(*api.ServiceSpec) { return func(s *api.ServiceSpec) { s.Image = i } }
	digest := "sha256:" + strings.Repeat("ab", 32)
	runSpecCases(t, []specCase{
		{"short name", image("busybox"), nil},
		{"tag", image("busybox:1.36"), nil},
		{"localhost", image("localhost/busybox"), nil},
		{"registry with port", image("registry:5000/team/app:v2"), nil},
		{"digest", image("registry:5000/team/app@" + digest), nil},
		{"tag and digest", image("ghcr.io/org/app:1@" + digest), nil},
		{"empty", image(""), []string{"image"}},
		{"upper case", image("BusyBox"), []string{"image"}},
		{"empty tag", image("busybox:"), []string{"image"}},
		{"tag only", image(":latest"), []string{"image"}},
		{"space in tag", image("busybox:1 2"), []string{"image"}},
		{"short digest", image("busybox@sha256:abc"), []string{"image"}},
		{"URL", image("https://registry/app"), []string{"image"}},
		{"trailing slash", image("localhost/"), []string{"image"}},
		{"too long", image("localhost/" + strings.Repeat("a", 300)), []string{"image"}},
	})
}

func TestValidateServiceSpecModeAndReplicas(t *testing.T) {
	runSpecCases(t, []specCase{
		{"zero replicas", func(s *api.ServiceSpec) { s.Replicas = 0 }, nil},
		{"the limit", func(s *api.ServiceSpec) { s.Replicas = api.MaxReplicas }, nil},
		{"replicated named", func(s *api.ServiceSpec) { s.Mode = api.ModeReplicated; s.Replicas = 3 }, nil},
		{"over the limit", func(s *api.ServiceSpec) { s.Replicas = api.MaxReplicas + 1 }, []string{"replicas"}},
		{"huge", func(s *api.ServiceSpec) { s.Replicas = 1<<64 - 1 }, []string{"replicas"}},
		{"global", func(s *api.ServiceSpec) { s.Mode = api.ModeGlobal; s.Replicas = 0 }, nil},
		{"global with replicas", func(s *api.ServiceSpec) { s.Mode = api.ModeGlobal; s.Replicas = 2 }, []string{"replicas"}},
		{"unknown mode", func(s *api.ServiceSpec) { s.Mode = "daemonset" }, []string{"mode"}},
		{"mode in capitals", func(s *api.ServiceSpec) { s.Mode = "Global"; s.Replicas = 0 }, []string{"mode"}},
	})
}

func TestValidateServiceSpecEnvUserDir(t *testing.T) {
	env := func(e ...string) func(*api.ServiceSpec) { return func(s *api.ServiceSpec) { s.Env = e } }
	user := func(u string) func(*api.ServiceSpec) { return func(s *api.ServiceSpec) { s.User = u } }
	dir := func(d string) func(*api.ServiceSpec) { return func(s *api.ServiceSpec) { s.WorkingDir = d } }
	many := make([]string, api.MaxEnv+1)
	for i := range many {
		many[i] = fmt.Sprintf("V%d=1", i)
	}
	runSpecCases(t, []specCase{
		{"env", env("A=1", "B_2=x=y", "_C=", "d.e=1"), nil},
		{"env value with spaces", env("GREETING=hello world"), nil},
		{"env without =", env("A"), []string{"env[0]"}},
		{"env without key", env("=1"), []string{"env[0]"}},
		{"env key starts with digit", env("1A=x"), []string{"env[0]"}},
		{"env key with space", env("A B=x"), []string{"env[0]"}},
		{"env key with dash", env("A-B=x"), []string{"env[0]"}},
		{"env NUL in value", env("A=x\x00y"), []string{"env[0]"}},
		{"env second bad", env("A=1", "oops"), []string{"env[1]"}},
		{"env two bad", env("x", "A=1", "y"), []string{"env[0]", "env[2]"}},
		{"env at the limit", env(many[:api.MaxEnv]...), nil},
		{"env over the limit", env(many...), []string{"env"}},

		{"user name", user("nobody"), nil},
		{"user with dash", user("www-data"), nil},
		{"machine account", user("host$"), nil},
		{"uid", user("1000"), nil},
		{"uid:gid", user("1000:1000"), nil},
		{"user:group", user("app:staff"), nil},
		{"user:gid", user("app:50"), nil},
		{"user in capitals", user("Root"), []string{"user"}},
		{"uid and empty gid", user("1000:"), []string{"user"}},
		{"empty uid", user(":1000"), []string{"user"}},
		{"three parts", user("root:1:2"), []string{"user"}},
		{"space", user("a b"), []string{"user"}},
		{"negative uid", user("-1"), []string{"user"}},

		{"absolute dir", dir("/srv/app"), nil},
		{"root dir", dir("/"), nil},
		{"relative dir", dir("srv/app"), []string{"workingDir"}},
		{"dot dir", dir("./app"), []string{"workingDir"}},
		{"NUL in dir", dir("/srv\x00"), []string{"workingDir"}},
	})
}

func TestValidateServiceSpecCommandArgs(t *testing.T) {
	many := make([]string, api.MaxArgs+1)
	for i := range many {
		many[i] = "x"
	}
	runSpecCases(t, []specCase{
		{"command and args", func(s *api.ServiceSpec) { s.Command = []string{"sh", "-c"}; s.Args = []string{"echo hi"} }, nil},
		{"empty arg", func(s *api.ServiceSpec) { s.Args = []string{""} }, nil},
		{"args at the limit", func(s *api.ServiceSpec) { s.Args = many[:api.MaxArgs] }, nil},
		{"args over the limit", func(s *api.ServiceSpec) { s.Args = many }, []string{"args"}},
		{"command over the limit", func(s *api.ServiceSpec) { s.Command = many }, []string{"command"}},
		{"NUL in arg", func(s *api.ServiceSpec) { s.Args = []string{"ok", "a\x00b"} }, []string{"args[1]"}},
		{"arg too long", func(s *api.ServiceSpec) { s.Command = []string{strings.Repeat("a", api.MaxArgLen+1)} }, []string{"command[0]"}},
		{"arg at the length limit", func(s *api.ServiceSpec) { s.Command = []string{strings.Repeat("a", api.MaxArgLen)} }, nil},
	})
}

func TestValidateServiceSpecConstraints(t *testing.T) {
	cons := func(c ...string) func(*api.ServiceSpec) {
		return func(s *api.ServiceSpec) { s.Placement.Constraints = c }
	}
	many := make([]string, api.MaxConstraints+1)
	for i := range many {
		many[i] = fmt.Sprintf("node.labels.k%d==v", i)
	}
	runSpecCases(t, []specCase{
		{"label", cons("node.labels.zone==east"), nil},
		{"every attribute", cons("node.id==abc", "node.hostname!=pi-7", "node.role==worker",
			"node.platform.os==linux", "node.platform.arch!=arm64", "node.labels.com.example/tier==edge"), nil},
		{"spaces", cons(" node.role != manager "), nil},
		{"no operator", cons("node.labels.zone=east"), []string{"placement.constraints[0]"}},
		{"no value", cons("node.labels.zone=="), []string{"placement.constraints[0]"}},
		{"unknown attribute", cons("node.ip==10.0.0.1"), []string{"placement.constraints[0]"}},
		{"unknown role", cons("node.role==boss"), []string{"placement.constraints[0]"}},
		{"empty label key", cons("node.labels.==x"), []string{"placement.constraints[0]"}},
		{"second bad", cons("node.role==worker", "zone==east"), []string{"placement.constraints[1]"}},
		{"at the limit", cons(many[:api.MaxConstraints]...), nil},
		{"over the limit", cons(many...), []string{"placement.constraints"}},
	})
}

func TestParseConstraint(t *testing.T) {
	good := []struct {
		expr string
		want api.Constraint
	}{
		{"node.labels.zone==east", api.Constraint{Key: "node.labels.zone", Equal: true, Value: "east"}},
		{"node.labels.zone!=east", api.Constraint{Key: "node.labels.zone", Equal: false, Value: "east"}},
		{"node.role==manager", api.Constraint{Key: "node.role", Equal: true, Value: "manager"}},
		{"node.role!=worker", api.Constraint{Key: "node.role", Value: "worker"}},
		{"node.hostname==pi-7", api.Constraint{Key: "node.hostname", Equal: true, Value: "pi-7"}},
		{"node.id==abc123", api.Constraint{Key: "node.id", Equal: true, Value: "abc123"}},
		{"node.platform.os==linux", api.Constraint{Key: "node.platform.os", Equal: true, Value: "linux"}},
		{"node.platform.arch==arm64", api.Constraint{Key: "node.platform.arch", Equal: true, Value: "arm64"}},
		{"  node.labels.zone  ==  east  ", api.Constraint{Key: "node.labels.zone", Equal: true, Value: "east"}},
		{"node.labels.com.example/tier==edge", api.Constraint{Key: "node.labels.com.example/tier", Equal: true, Value: "edge"}},
	}
	for _, c := range good {
		got, err := api.ParseConstraint(c.expr)
		if err != nil || got != c.want {
			t.Errorf("ParseConstraint(%q) = %+v, %v, want %+v", c.expr, got, err, c.want)
			continue
		}
		// String gives an expression that parses to the same constraint.
		again, err := api.ParseConstraint(got.String())
		if err != nil || again != got {
			t.Errorf("ParseConstraint(%q) = %+v, %v: does not read back its String() %q", c.expr, again, err, got.String())
		}
	}
	bad := []struct{ expr, says string }{
		{"", "no == or !="},
		{"node.labels.zone=east", "no == or !="},
		{"node.labels.zone", "no == or !="},
		{"node.labels.zone==", "no value"},
		{"node.labels.zone==   ", "no value"},
		{"node.labels.==east", "invalid label key"},
		{"node.labels.-zone==east", "invalid label key"},
		{"node.labels.zone x==east", "invalid label key"},
		{"node.ip==10.0.0.1", "unknown attribute"},
		{"==east", "unknown attribute"},
		{"labels.zone==east", "unknown attribute"},
		{"node.role==boss", "manager or worker"},
		{"node.role!=Manager", "manager or worker"},
	}
	for _, c := range bad {
		_, err := api.ParseConstraint(c.expr)
		if err == nil {
			t.Errorf("ParseConstraint(%q) = nil error, want one saying %q", c.expr, c.says)
			continue
		}
		if !strings.Contains(err.Error(), c.says) {
			t.Errorf("ParseConstraint(%q) = %q, want it to say %q", c.expr, err, c.says)
		}
		checkMessage(t, fmt.Sprintf("ParseConstraint(%q)", c.expr), "error", err.Error())
	}
}

func TestConstraintMatches(t *testing.T) {
	n := &api.Node{Meta: api.Meta{ID: "n1"},
		Spec:        api.NodeSpec{Role: api.RoleWorker, Labels: map[string]string{"zone": "east", "empty": ""}},
		Description: api.NodeDescription{Hostname: "pi-7", OS: "linux", Arch: "arm64"}}
	cases := []struct {
		expr string
		want bool
	}{
		{"node.id==n1", true}, {"node.id!=n1", false},
		{"node.hostname==pi-7", true}, {"node.hostname==pi-8", false},
		{"node.role==worker", true}, {"node.role==manager", false}, {"node.role!=manager", true},
		{"node.platform.os==linux", true}, {"node.platform.arch==amd64", false},
		{"node.labels.zone==east", true}, {"node.labels.zone==west", false},
		{"node.labels.zone!=west", true},
		// A label the node lacks never equals, and always differs.
		{"node.labels.rack==r1", false}, {"node.labels.rack!=r1", true},
	}
	for _, c := range cases {
		con, err := api.ParseConstraint(c.expr)
		if err != nil {
			t.Fatalf("ParseConstraint(%q) = %v", c.expr, err)
		}
		if got := con.Matches(n); got != c.want {
			t.Errorf("ParseConstraint(%q).Matches(%s with labels %v) = %v, want %v", c.expr, n.Description.Hostname, n.Spec.Labels, got, c.want)
		}
	}
}

func TestValidateServiceSpecRestartPolicy(t *testing.T) {
	rp := func(p api.RestartPolicy) func(*api.ServiceSpec) {
		return func(s *api.ServiceSpec) { s.RestartPolicy = p }
	}
	runSpecCases(t, []specCase{
		{"any", rp(api.RestartPolicy{Condition: api.RestartAny, Delay: sec(5), MaxAttempts: 3, Window: sec(60)}), nil},
		{"on-failure", rp(api.RestartPolicy{Condition: api.RestartOnFailure}), nil},
		{"none", rp(api.RestartPolicy{Condition: api.RestartNone}), nil},
		{"longest delay", rp(api.RestartPolicy{Delay: api.MaxDurationSpec}), nil},
		{"unknown condition", rp(api.RestartPolicy{Condition: "always"}), []string{"restartPolicy.condition"}},
		{"condition in capitals", rp(api.RestartPolicy{Condition: "Any"}), []string{"restartPolicy.condition"}},
		{"negative delay", rp(api.RestartPolicy{Delay: -1}), []string{"restartPolicy.delay"}},
		{"delay over a day", rp(api.RestartPolicy{Delay: api.MaxDurationSpec + 1}), []string{"restartPolicy.delay"}},
		{"negative window", rp(api.RestartPolicy{Window: sec(-1)}), []string{"restartPolicy.window"}},
		{"max attempts at the limit", rp(api.RestartPolicy{MaxAttempts: 1000000}), nil},
		{"max attempts over the limit", rp(api.RestartPolicy{MaxAttempts: 1000001}), []string{"restartPolicy.maxAttempts"}},
	})
}

func sec(n float64) api.Duration { return api.Duration(n * 1e9) }

func TestValidateServiceSpecResources(t *testing.T) {
	res := func(lc float64, lm int64, rc float64, rm int64) func(*api.ServiceSpec) {
		return func(s *api.ServiceSpec) {
			s.Resources = api.Resources{
				Limits:       api.ResourceAmounts{NanoCPUs: api.CPUs(lc * 1e9), MemoryBytes: api.Bytes(lm)},
				Reservations: api.ResourceAmounts{NanoCPUs: api.CPUs(rc * 1e9), MemoryBytes: api.Bytes(rm)},
			}
		}
	}
	const mi = 1 << 20
	runSpecCases(t, []specCase{
		{"limits and reservations", res(1, 64*mi, 0.5, 32*mi), nil},
		{"reservations only", res(0, 0, 2, 1<<30), nil},
		{"limits only", res(0.25, 16*mi, 0, 0), nil},
		{"reservation equals limit", res(1, 64*mi, 1, 64*mi), nil},
		{"memory limit at the minimum", res(0, api.MinMemoryLimit, 0, 0), nil},
		{"memory limit below the minimum", res(0, api.MinMemoryLimit-1, 0, 0), []string{"resources.limits.memory"}},
		{"memory limit of 4MiB", res(0, 4*mi, 0, 0), []string{"resources.limits.memory"}},
		{"memory limit of one byte", res(0, 1, 0, 0), []string{"resources.limits.memory"}},
		{"negative cpu limit", res(-1, 0, 0, 0), []string{"resources.limits.cpus"}},
		{"negative memory limit", res(0, -1, 0, 0), []string{"resources.limits.memory"}},
		{"negative cpu reservation", res(0, 0, -0.5, 0), []string{"resources.reservations.cpus"}},
		{"negative memory reservation", res(0, 0, 0, -mi), []string{"resources.reservations.memory"}},
		{"memory reservation over limit", res(0, 64*mi, 0, 65*mi), []string{"resources.reservations.memory"}},
		{"cpu reservation over limit", res(0.5, 0, 1, 0), []string{"resources.reservations.cpus"}},
		{"both over", res(0.5, 64*mi, 1, 128*mi), []string{"resources.reservations.cpus", "resources.reservations.memory"}},
	})
}

func TestValidateServiceSpecResourceMessages(t *testing.T) {
	s := goodSpec()
	s.Resources.Limits.MemoryBytes = 4 << 20
	err := api.ValidateServiceSpec(&s)
	if err == nil || !strings.Contains(err.Error(), "4MiB") || !strings.Contains(err.Error(), "6MiB") {
		t.Errorf("ValidateServiceSpec(memory limit 4MiB) = %v, want it to name 4MiB and the 6MiB minimum", err)
	}
	s = goodSpec()
	s.Resources.Limits.MemoryBytes = 64 << 20
	s.Resources.Reservations.MemoryBytes = 128 << 20
	err = api.ValidateServiceSpec(&s)
	if err == nil || !strings.Contains(err.Error(), "128MiB") || !strings.Contains(err.Error(), "64MiB") {
		t.Errorf("ValidateServiceSpec(reserve 128MiB, limit 64MiB) = %v, want it to name both", err)
	}
}

func TestValidateServiceSpecPorts(t *testing.T) {
	ports := func(p ...api.PortConfig) func(*api.ServiceSpec) { return func(s *api.ServiceSpec) { s.Ports = p } }
	tcp := func(target, published uint16, addr string) api.PortConfig {
		return api.PortConfig{Target: target, Published: published, HostAddr: addr}
	}
	udp := func(target, published uint16, addr string) api.PortConfig {
		return api.PortConfig{Target: target, Published: published, Protocol: api.ProtoUDP, HostAddr: addr}
	}
	many := make([]api.PortConfig, api.MaxPorts+1)
	for i := range many {
		many[i] = tcp(80, uint16(10000+i), "")
	}
	runSpecCases(t, []specCase{
		{"published", ports(tcp(80, 8080, "")), nil},
		{"published left out", ports(api.PortConfig{Target: 80}), nil},
		{"udp", ports(udp(53, 53, "")), nil},
		{"explicit tcp", ports(api.PortConfig{Target: 80, Published: 80, Protocol: "tcp"}), nil},
		{"host address", ports(tcp(80, 8080, "192.168.1.10")), nil},
		{"IPv6 host address", ports(tcp(80, 8080, "fd00::1")), nil},
		{"highest port", ports(tcp(65535, 65535, "")), nil},
		{"target 0", ports(tcp(0, 8080, "")), []string{"ports[0].target"}},
		{"unknown protocol", ports(api.PortConfig{Target: 80, Protocol: "sctp"}), []string{"ports[0].protocol"}},
		{"protocol in capitals", ports(api.PortConfig{Target: 80, Protocol: "TCP"}), []string{"ports[0].protocol"}},
		{"host name", ports(tcp(80, 8080, "localhost")), []string{"ports[0].hostAddr"}},
		{"host address with port", ports(tcp(80, 8080, "10.0.0.1:80")), []string{"ports[0].hostAddr"}},
		{"host CIDR", ports(tcp(80, 8080, "10.0.0.0/8")), []string{"ports[0].hostAddr"}},
		{"second port bad", ports(tcp(80, 8080, ""), tcp(0, 8081, "")), []string{"ports[1].target"}},

		{"same published port", ports(tcp(80, 8080, ""), tcp(81, 8080, "")), []string{"ports[1]"}},
		{"published equals another's target", ports(tcp(8080, 0, ""), tcp(80, 8080, "")), []string{"ports[1]"}},
		{"same target, no published", ports(api.PortConfig{Target: 80}, api.PortConfig{Target: 80}), []string{"ports[1]"}},
		{"all addresses and one address", ports(tcp(80, 8080, ""), tcp(81, 8080, "10.0.0.1")), []string{"ports[1]"}},
		{"0.0.0.0 and one address", ports(tcp(80, 8080, "0.0.0.0"), tcp(81, 8080, "10.0.0.1")), []string{"ports[1]"}},
		{"one address and ::", ports(tcp(80, 8080, "10.0.0.1"), tcp(81, 8080, "::")), []string{"ports[1]"}},
		{"same address", ports(tcp(80, 8080, "10.0.0.1"), tcp(81, 8080, "10.0.0.1")), []string{"ports[1]"}},
		{"same address, v4-mapped", ports(tcp(80, 8080, "10.0.0.1"), tcp(81, 8080, "::ffff:10.0.0.1")), []string{"ports[1]"}},
		{"third clashes with first", ports(tcp(80, 8080, ""), tcp(81, 8081, ""), tcp(82, 8080, "")), []string{"ports[2]"}},
		{"different addresses", ports(tcp(80, 8080, "10.0.0.1"), tcp(81, 8080, "10.0.0.2")), nil},
		{"different protocols", ports(tcp(53, 53, ""), udp(53, 53, "")), nil},
		{"udp on all, tcp on one", ports(udp(53, 53, ""), tcp(53, 53, "10.0.0.1")), nil},
		{"different ports", ports(tcp(80, 8080, ""), tcp(80, 8081, "")), nil},
		{"mode host", ports(api.PortConfig{Target: 80, Mode: api.PortModeHost}), nil},
		{"mode ingress", ports(api.PortConfig{Target: 80, Mode: api.PortModeIngress}), nil},
		{"unknown mode", ports(api.PortConfig{Target: 80, Mode: "vip"}), []string{"ports[0].mode"}},
		{"mode in capitals", ports(api.PortConfig{Target: 80, Mode: "HOST"}), []string{"ports[0].mode"}},
		{"host mode, one address", ports(api.PortConfig{Target: 80, HostAddr: "10.0.0.1", Mode: api.PortModeHost}), nil},
		{"ingress mode, one address", ports(api.PortConfig{Target: 80, HostAddr: "10.0.0.1", Mode: api.PortModeIngress}), []string{"ports[0].hostAddr"}},
		{"ingress mode, 0.0.0.0", ports(api.PortConfig{Target: 80, HostAddr: "0.0.0.0", Mode: api.PortModeIngress}), nil},
		{"ingress and host on the same port", ports(api.PortConfig{Target: 80, Published: 8080}, api.PortConfig{Target: 81, Published: 8080, Mode: api.PortModeHost}), []string{"ports[1]"}},
		{"at the limit", ports(many[:api.MaxPorts]...), nil},
		{"over the limit", ports(many...), []string{"ports"}},
	})
}

func TestValidateIngressWithHostAddrSaysWhatToDo(t *testing.T) {
	s := api.ServiceSpec{Name: "web", Image: "busybox", Ports: []api.PortConfig{{Target: 80, HostAddr: "10.0.0.1", Mode: api.PortModeIngress}}}
	err := api.ValidateServiceSpec(&s)
	if err == nil || !strings.Contains(err.Error(), "mode host") || !strings.Contains(err.Error(), "10.0.0.1") {
		t.Errorf("ValidateServiceSpec(ingress port on 10.0.0.1) = %v; want an error naming the address and mode host", err)
	}
}

func TestPortConflictsWith(t *testing.T) {
	ingress := func(pub uint16, addr string) api.PortConfig {
		return api.PortConfig{Target: 80, Published: pub, HostAddr: addr, Mode: api.PortModeIngress}
	}
	host := func(pub uint16, addr string) api.PortConfig {
		return api.PortConfig{Target: 80, Published: pub, HostAddr: addr, Mode: api.PortModeHost}
	}
	cases := []struct {
		name string
		a, b api.PortConfig
		want bool
	}{
		{"ingress, ingress", ingress(8080, ""), ingress(8080, ""), true},
		{"ingress, host", ingress(8080, ""), host(8080, ""), true},
		{"host, ingress", host(8080, ""), ingress(8080, ""), true},
		{"ingress, host on one address", ingress(8080, ""), host(8080, "10.0.0.1"), true},
		{"host, host: the scheduler keeps them apart", host(8080, ""), host(8080, ""), false},
		{"ingress by default, ingress", api.PortConfig{Target: 8080}, ingress(8080, ""), true},
		{"host by its address, host", api.PortConfig{Target: 8080, HostAddr: "10.0.0.1"}, host(8080, ""), false},
		{"ingress, other port", ingress(8080, ""), ingress(8081, ""), false},
		{"ingress, other protocol", ingress(8080, ""), api.PortConfig{Target: 80, Published: 8080, Protocol: api.ProtoUDP}, false},
	}
	for _, c := range cases {
		if got := c.a.ConflictsWith(c.b); got != c.want {
			t.Errorf("%s: %+v.ConflictsWith(%+v) = %v, want %v", c.name, c.a, c.b, got, c.want)
		}
	}
}

func TestPortKeyClashes(t *testing.T) {
	key := func(p api.PortConfig) api.PortKey { return p.Key() }
	all := key(api.PortConfig{Target: 80, Published: 8080})
	zero := key(api.PortConfig{Target: 80, Published: 8080, HostAddr: "0.0.0.0"})
	if all != zero {
		t.Errorf("PortConfig{HostAddr: 0.0.0.0}.Key() = %v, want %v (every address)", zero, all)
	}
	one := key(api.PortConfig{Target: 80, Published: 8080, HostAddr: "10.0.0.1"})
	other := key(api.PortConfig{Target: 80, Published: 8080, HostAddr: "10.0.0.2"})
	u := key(api.PortConfig{Target: 80, Published: 8080, Protocol: api.ProtoUDP})
	cases := []struct {
		a, b api.PortKey
		want bool
	}{
		{all, all, true}, {all, one, true}, {one, all, true}, {one, one, true},
		{one, other, false}, {all, u, false}, {u, one, false},
	}
	for _, c := range cases {
		if got := c.a.Clashes(c.b); got != c.want {
			t.Errorf("%v.Clashes(%v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
	if got, want := one.String(), "10.0.0.1:8080/tcp"; got != want {
		t.Errorf("PortKey.String() = %q, want %q", got, want)
	}
	if got, want := u.String(), "8080/udp"; got != want {
		t.Errorf("PortKey.String() = %q, want %q", got, want)
	}
}

func TestValidateServiceSpecUpdateConfig(t *testing.T) {
	uc := func(u api.UpdateConfig) func(*api.ServiceSpec) {
		return func(s *api.ServiceSpec) { s.UpdateConfig = u }
	}
	runSpecCases(t, []specCase{
		{"everything", uc(api.UpdateConfig{Parallelism: u64(2), Delay: sec(10), FailureAction: api.FailureRollback,
			Monitor: sec(30), MaxFailureRatio: 0.2, Order: api.OrderStartFirst}), nil},
		{"all at once", uc(api.UpdateConfig{Parallelism: u64(0)}), nil},
		{"continue, stop-first", uc(api.UpdateConfig{FailureAction: api.FailureContinue, Order: api.OrderStopFirst}), nil},
		{"pause", uc(api.UpdateConfig{FailureAction: api.FailurePause}), nil},
		{"ratio 1", uc(api.UpdateConfig{MaxFailureRatio: 1}), nil},
		{"unknown action", uc(api.UpdateConfig{FailureAction: "stop"}), []string{"updateConfig.failureAction"}},
		{"unknown order", uc(api.UpdateConfig{Order: "random"}), []string{"updateConfig.order"}},
		{"blue-green", uc(api.UpdateConfig{Order: api.OrderBlueGreen, KeepOld: sec(600), FailureAction: api.FailureRollback}), nil},
		{"keepOld without blue-green", uc(api.UpdateConfig{Order: api.OrderStartFirst, KeepOld: sec(60)}), []string{"updateConfig.keepOld"}},
		{"negative keepOld", uc(api.UpdateConfig{Order: api.OrderBlueGreen, KeepOld: -1}), []string{"updateConfig.keepOld"}},
		{"blue-green canary", uc(api.UpdateConfig{Order: api.OrderBlueGreen, Canary: "1"}), []string{"updateConfig.order"}},
		{"negative delay", uc(api.UpdateConfig{Delay: -1}), []string{"updateConfig.delay"}},
		{"monitor over a day", uc(api.UpdateConfig{Monitor: api.MaxDurationSpec + 1}), []string{"updateConfig.monitor"}},
		{"ratio above 1", uc(api.UpdateConfig{MaxFailureRatio: 1.5}), []string{"updateConfig.maxFailureRatio"}},
		{"negative ratio", uc(api.UpdateConfig{MaxFailureRatio: -0.1}), []string{"updateConfig.maxFailureRatio"}},
	})
}

func TestValidateServiceSpecDurations(t *testing.T) {
	runSpecCases(t, []specCase{
		{"grace period", func(s *api.ServiceSpec) { s.StopGracePeriod = sec(30) }, nil},
		{"grace period of a day", func(s *api.ServiceSpec) { s.StopGracePeriod = api.MaxDurationSpec }, nil},
		{"negative grace period", func(s *api.ServiceSpec) { s.StopGracePeriod = -1 }, []string{"stopGracePeriod"}},
		{"grace period over a day", func(s *api.ServiceSpec) { s.StopGracePeriod = api.MaxDurationSpec + 1 }, []string{"stopGracePeriod"}},
		{"stop drain", func(s *api.ServiceSpec) { s.StopDrain = sec(5) }, nil},
		{"stop drain at its limit", func(s *api.ServiceSpec) { s.StopDrain = api.MaxStopDrain }, nil},
		{"negative stop drain", func(s *api.ServiceSpec) { s.StopDrain = -1 }, []string{"stopDrain"}},
		{"stop drain over its limit", func(s *api.ServiceSpec) { s.StopDrain = api.MaxStopDrain + 1 }, []string{"stopDrain"}},
	})
}

func TestValidateServiceSpecHealthCheck(t *testing.T) {
	hc := func(h api.HealthCheck) func(*api.ServiceSpec) { return func(s *api.ServiceSpec) { s.HealthCheck = &h } }
	exec := []string{"sh", "-c", "test -f /tmp/ready"}
	runSpecCases(t, []specCase{
		{"http", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 80}), nil},
		{"http in full", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 8080, Path: "/healthz", Status: "200-299",
			Interval: sec(5), Timeout: sec(2), Retries: 100, StartPeriod: sec(30)}), nil},
		{"http one status", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 80, Status: "204"}), nil},
		{"http status with spaces", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 80, Status: "200 - 399"}), nil},
		{"http status bounds", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 80, Status: "100-599"}), nil},
		{"tcp", hc(api.HealthCheck{Type: api.HealthTCP, Port: 5432}), nil},
		{"exec", hc(api.HealthCheck{Type: api.HealthExec, Command: exec}), nil},
		{"shortest interval", hc(api.HealthCheck{Type: api.HealthTCP, Port: 1, Interval: sec(0.1)}), nil},

		{"no type", hc(api.HealthCheck{Port: 80}), []string{"healthCheck.type"}},
		{"unknown type", hc(api.HealthCheck{Type: "grpc", Port: 80}), []string{"healthCheck.type"}},
		{"type in capitals", hc(api.HealthCheck{Type: "HTTP", Port: 80}), []string{"healthCheck.type"}},
		{"http without port", hc(api.HealthCheck{Type: api.HealthHTTP}), []string{"healthCheck.port"}},
		{"tcp without port", hc(api.HealthCheck{Type: api.HealthTCP}), []string{"healthCheck.port"}},
		{"http with command", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 80, Command: exec}), []string{"healthCheck.command"}},
		{"tcp with command", hc(api.HealthCheck{Type: api.HealthTCP, Port: 80, Command: exec}), []string{"healthCheck.command"}},
		{"exec without command", hc(api.HealthCheck{Type: api.HealthExec}), []string{"healthCheck.command"}},
		{"exec with NUL", hc(api.HealthCheck{Type: api.HealthExec, Command: []string{"a\x00"}}), []string{"healthCheck.command[0]"}},
		{"relative path", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 80, Path: "healthz"}), []string{"healthCheck.path"}},
		{"status not a number", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 80, Status: "ok"}), []string{"healthCheck.status"}},
		{"status below 100", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 80, Status: "99"}), []string{"healthCheck.status"}},
		{"status above 599", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 80, Status: "200-600"}), []string{"healthCheck.status"}},
		{"status range reversed", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 80, Status: "399-200"}), []string{"healthCheck.status"}},
		{"status range open", hc(api.HealthCheck{Type: api.HealthHTTP, Port: 80, Status: "200-"}), []string{"healthCheck.status"}},
		{"tcp with path", hc(api.HealthCheck{Type: api.HealthTCP, Port: 80, Path: "/"}), []string{"healthCheck"}},
		{"tcp with status", hc(api.HealthCheck{Type: api.HealthTCP, Port: 80, Status: "200"}), []string{"healthCheck"}},
		{"exec with path", hc(api.HealthCheck{Type: api.HealthExec, Command: exec, Path: "/"}), []string{"healthCheck"}},
		{"interval below 100ms", hc(api.HealthCheck{Type: api.HealthTCP, Port: 80, Interval: sec(0.05)}), []string{"healthCheck.interval"}},
		{"negative interval", hc(api.HealthCheck{Type: api.HealthTCP, Port: 80, Interval: -1}), []string{"healthCheck.interval"}},
		{"interval over a day", hc(api.HealthCheck{Type: api.HealthTCP, Port: 80, Interval: api.MaxDurationSpec + 1}), []string{"healthCheck.interval"}},
		{"negative timeout", hc(api.HealthCheck{Type: api.HealthTCP, Port: 80, Timeout: -1}), []string{"healthCheck.timeout"}},
		{"timeout over a day", hc(api.HealthCheck{Type: api.HealthTCP, Port: 80, Timeout: api.MaxDurationSpec + 1}), []string{"healthCheck.timeout"}},
		{"negative start period", hc(api.HealthCheck{Type: api.HealthTCP, Port: 80, StartPeriod: -1}), []string{"healthCheck.startPeriod"}},
		{"retries over the limit", hc(api.HealthCheck{Type: api.HealthTCP, Port: 80, Retries: 101}), []string{"healthCheck.retries"}},
	})
}

func TestHealthCheckEffective(t *testing.T) {
	h := api.HealthCheck{Type: api.HealthHTTP, Port: 80}.Effective()
	if h.Interval != sec(10) || h.Timeout != sec(5) || h.Retries != 3 || h.Path != "/" || h.Status != "200-399" {
		t.Errorf("HealthCheck{http}.Effective() = %+v, want interval 10s, timeout 5s, 3 retries, path /, status 200-399", h)
	}
	if lo, hi, err := h.StatusRange(); lo != 200 || hi != 399 || err != nil {
		t.Errorf("StatusRange() = %d, %d, %v, want 200, 399", lo, hi, err)
	}
	e := api.HealthCheck{Type: api.HealthExec, Command: []string{"true"}, Interval: sec(1)}.Effective()
	if e.Interval != sec(1) || e.Path != "" || e.Status != "" {
		t.Errorf("HealthCheck{exec, 1s}.Effective() = %+v: kept interval 1s, no path or status", e)
	}
}

func TestValidateServiceSpecLabels(t *testing.T) {
	labels := func(kv ...string) func(*api.ServiceSpec) {
		return func(s *api.ServiceSpec) {
			s.Labels = map[string]string{}
			for i := 0; i < len(kv); i += 2 {
				s.Labels[kv[i]] = kv[i+1]
			}
		}
	}
	many := make([]string, 0, 2*(api.MaxLabels+1))
	for i := range api.MaxLabels + 1 {
		many = append(many, fmt.Sprintf("k%d", i), "v")
	}
	long := strings.Repeat("k", api.MaxLabelKeyLen+1)
	runSpecCases(t, []specCase{
		{"plain", labels("team", "edge", "com.example/tier", "front_end-1"), nil},
		{"empty value", labels("canary", ""), nil},
		{"unicode value", labels("owner", "José"), nil},
		{"one character key", labels("a", "b"), nil},
		{"key at the limit", labels(long[1:], "v"), nil},
		{"value at the limit", labels("k", strings.Repeat("v", api.MaxLabelValLen)), nil},
		{"empty key", labels("", "v"), []string{"labels."}},
		{"key starts with dash", labels("-k", "v"), []string{"labels.-k"}},
		{"key ends with dot", labels("k.", "v"), []string{"labels.k."}},
		{"key with space", labels("a b", "v"), []string{"labels.a b"}},
		{"key with =", labels("a=b", "v"), []string{"labels.a=b"}},
		{"unicode key", labels("zoné", "v"), []string{"labels.zoné"}},
		{"key too long", labels(long, "v"), []string{"labels." + long}},
		{"value with newline", labels("k", "a\nb"), []string{"labels.k"}},
		{"value with NUL", labels("k", "a\x00b"), []string{"labels.k"}},
		{"value too long", labels("k", strings.Repeat("v", api.MaxLabelValLen+1)), []string{"labels.k"}},
		{"at the limit", labels(many[:2*api.MaxLabels]...), nil},
		{"over the limit", labels(many...), []string{"labels"}},
	})
}

func TestValidateServiceSpecManyProblems(t *testing.T) {
	s := api.ServiceSpec{Name: "Bad_Name", Image: "UPPER", Replicas: api.MaxReplicas + 1,
		Env: []string{"nokey"}, Ports: []api.PortConfig{{Target: 0}}}
	err := api.ValidateServiceSpec(&s)
	want := []string{"env[0]", "image", "name", "ports[0].target", "replicas"}
	if got := fieldsOf(t, "ValidateServiceSpec(five problems)", err, "service spec"); !slices.Equal(got, want) {
		t.Errorf("ValidateServiceSpec(five problems) named %v, want %v", got, want)
	}
	if !strings.Contains(err.Error(), "5 problems") {
		t.Errorf("ValidateServiceSpec(five problems) = %q, want it to count 5 problems", err.Error())
	}
}

func TestValidateServiceSpecDoesNotChangeSpec(t *testing.T) {
	s := goodSpec()
	s.Ports = []api.PortConfig{{Target: 80}}
	s.HealthCheck = &api.HealthCheck{Type: api.HealthHTTP, Port: 80}
	before := s
	before.Ports = slices.Clone(s.Ports)
	hc := *s.HealthCheck
	before.HealthCheck = &hc
	if err := api.ValidateServiceSpec(&s); err != nil {
		t.Fatalf("ValidateServiceSpec(good) = %v", err)
	}
	if !api.SpecEqual(&s, &before) {
		t.Errorf("ValidateServiceSpec changed the spec: %+v, was %+v", s, before)
	}
}

func TestValidateNodeSpec(t *testing.T) {
	cases := []struct {
		name   string
		spec   api.NodeSpec
		fields []string
	}{
		{"worker", api.NodeSpec{Role: api.RoleWorker, Availability: api.AvailabilityActive}, nil},
		{"manager paused", api.NodeSpec{Role: api.RoleManager, Availability: api.AvailabilityPause}, nil},
		{"drained with labels", api.NodeSpec{Role: api.RoleWorker, Availability: api.AvailabilityDrain,
			Labels: map[string]string{"zone": "east", "com.example/rack": "r1"}}, nil},
		{"no role", api.NodeSpec{Availability: api.AvailabilityActive}, []string{"role"}},
		{"unknown role", api.NodeSpec{Role: "leader", Availability: api.AvailabilityActive}, []string{"role"}},
		{"role in capitals", api.NodeSpec{Role: "Worker", Availability: api.AvailabilityActive}, []string{"role"}},
		{"no availability", api.NodeSpec{Role: api.RoleWorker}, []string{"availability"}},
		{"paused, not pause", api.NodeSpec{Role: api.RoleWorker, Availability: "paused"}, []string{"availability"}},
		{"bad label key", api.NodeSpec{Role: api.RoleWorker, Availability: api.AvailabilityActive,
			Labels: map[string]string{"bad key": "v"}}, []string{"labels.bad key"}},
		{"bad label value", api.NodeSpec{Role: api.RoleWorker, Availability: api.AvailabilityActive,
			Labels: map[string]string{"k": "line\nbreak"}}, []string{"labels.k"}},
		{"everything wrong", api.NodeSpec{Role: "x", Availability: "y", Labels: map[string]string{"": ""}},
			[]string{"availability", "labels.", "role"}},
	}
	for _, c := range cases {
		call := fmt.Sprintf("ValidateNodeSpec(%s)", c.name)
		spec := c.spec
		err := api.ValidateNodeSpec(&spec)
		if len(c.fields) == 0 {
			if err != nil {
				t.Errorf("%s = %v, want nil", call, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s = nil, want an error naming %v", call, c.fields)
			continue
		}
		if got := fieldsOf(t, call, err, "node spec"); !slices.Equal(got, c.fields) {
			t.Errorf("%s named fields %v, want %v", call, got, c.fields)
		}
	}
}

func TestValidateNameAndImage(t *testing.T) {
	if err := api.ValidateName("web"); err != nil {
		t.Errorf("ValidateName(web) = %v", err)
	}
	for _, n := range []string{"", "Web", strings.Repeat("a", 64)} {
		if err := api.ValidateName(n); err == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", n)
		} else {
			checkMessage(t, fmt.Sprintf("ValidateName(%q)", n), "error", err.Error())
		}
	}
	if err := api.ValidateImage("BAD"); err == nil || !strings.Contains(err.Error(), "NAME[:TAG]") {
		t.Errorf("ValidateImage(BAD) = %v, want it to show the NAME[:TAG] form", err)
	}
	norm := []struct{ in, want string }{
		{"busybox", "docker.io/library/busybox:latest"},
		{"localhost/busybox", "localhost/busybox:latest"},
		{"registry:5000/app:1", "registry:5000/app:1"},
	}
	for _, c := range norm {
		if got, err := api.NormalizeImage(c.in); got != c.want || err != nil {
			t.Errorf("NormalizeImage(%q) = %q, %v, want %q", c.in, got, err, c.want)
		}
	}
	if _, err := api.NormalizeImage("UPPER"); err == nil {
		t.Errorf("NormalizeImage(UPPER) = nil error, want one")
	}
}
