package api_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	"pgregory.net/rapid"

	"github.com/warren-edge/warren/daemons/api"
)

// decodeJSON decodes a spec the way the API does: unknown fields refused.
func decodeJSON(b []byte) (api.ServiceSpec, error) {
	var s api.ServiceSpec
	err := api.UnmarshalStrict(b, &s)
	return s, err
}

func TestBytesJSON(t *testing.T) {
	const mi = 1 << 20
	good := []struct {
		in   string
		want api.Bytes
	}{
		{`"64M"`, 64 * mi},
		{`"64m"`, 64 * mi},
		{`"64MiB"`, 64 * mi},
		{`"64mb"`, 64 * mi},
		{`"512k"`, 512 << 10},
		{`"1.5G"`, 3 << 29},
		{`"1g"`, 1 << 30},
		{`"2T"`, 2 << 40},
		{`"100"`, 100},
		{`"100b"`, 100},
		{`" 64M "`, 64 * mi},
		{`""`, 0},
		{`1048576`, mi},
		{`0`, 0},
		{`null`, 0},
	}
	for _, c := range good {
		var b api.Bytes
		if err := json.Unmarshal([]byte(c.in), &b); err != nil || b != c.want {
			t.Errorf("json.Unmarshal(%s) into Bytes = %d, %v, want %d", c.in, b, err, c.want)
		}
	}
	for _, in := range []string{`"64X"`, `"M"`, `"-5M"`, `"lots"`, `true`, `1.5`, `"64 MiBs"`, `{}`, `[]`} {
		var b api.Bytes
		if err := json.Unmarshal([]byte(in), &b); err == nil {
			t.Errorf("json.Unmarshal(%s) into Bytes = %d, nil error, want an error", in, b)
		} else {
			checkMessage(t, "json.Unmarshal("+in+") into Bytes", "error", err.Error())
		}
	}
	// Bytes are written as a number, which reads back.
	out, err := json.Marshal(api.Bytes(64 * mi))
	if err != nil || string(out) != "67108864" {
		t.Errorf("json.Marshal(Bytes(64MiB)) = %s, %v, want 67108864", out, err)
	}
}

func TestParseAndFormatBytes(t *testing.T) {
	for _, n := range []int64{0, 1, 1000, 1 << 10, 6 << 20, 64 << 20, 1536 << 20, 1 << 30, 3 << 40} {
		s := api.FormatBytes(n)
		back, err := api.ParseBytes(s)
		if err != nil || back != n {
			t.Errorf("ParseBytes(FormatBytes(%d) = %q) = %d, %v, want %d", n, s, back, err, n)
		}
	}
	if got := api.FormatBytes(64 << 20); got != "64MiB" {
		t.Errorf("FormatBytes(64MiB) = %q, want 64MiB", got)
	}
	if _, err := api.ParseBytes("64Q"); err == nil || !strings.Contains(err.Error(), "64M") {
		t.Errorf("ParseBytes(64Q) = %v, want an error that shows e.g. 64M", err)
	}
}

func TestCPUsJSON(t *testing.T) {
	good := []struct {
		in   string
		want api.CPUs
	}{
		{`0.5`, 5e8},
		{`"0.5"`, 5e8},
		{`2`, 2e9},
		{`"2"`, 2e9},
		{`0.001`, 1e6},
		{`1.000000001`, 1e9 + 1},
		{`0`, 0},
		{`""`, 0},
		{`1e3`, 1e12},
		{`1000000`, 1e15},
	}
	for _, c := range good {
		var v api.CPUs
		if err := json.Unmarshal([]byte(c.in), &v); err != nil || v != c.want {
			t.Errorf("json.Unmarshal(%s) into CPUs = %d, %v, want %d", c.in, v, err, c.want)
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Errorf("json.Marshal(CPUs(%d)) = %v", v, err)
			continue
		}
		var back api.CPUs
		if err := json.Unmarshal(out, &back); err != nil || back != v {
			t.Errorf("CPUs %d written as %s reads back as %d, %v", v, out, back, err)
		}
	}
	for _, in := range []string{`-1`, `"-0.5"`, `"half"`, `1000001`, `"1e7"`, `true`, `{}`, `"Inf"`} {
		var v api.CPUs
		if err := json.Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("json.Unmarshal(%s) into CPUs = %d, nil error, want an error", in, v)
		} else {
			checkMessage(t, "json.Unmarshal("+in+") into CPUs", "error", err.Error())
		}
	}
	if out, _ := json.Marshal(api.CPUs(5e8)); string(out) != "0.5" {
		t.Errorf("json.Marshal(CPUs(0.5)) = %s, want 0.5", out)
	}
}

func TestDurationJSON(t *testing.T) {
	good := []struct {
		in   string
		want time.Duration
	}{
		{`"10s"`, 10 * time.Second},
		{`"500ms"`, 500 * time.Millisecond},
		{`"1h30m"`, 90 * time.Minute},
		{`"0"`, 0},
		{`""`, 0},
		{`10000000000`, 10 * time.Second},
		{`0`, 0},
		{`null`, 0},
		{`"-5s"`, -5 * time.Second},
	}
	for _, c := range good {
		var d api.Duration
		if err := json.Unmarshal([]byte(c.in), &d); err != nil || d.D() != c.want {
			t.Errorf("json.Unmarshal(%s) into Duration = %v, %v, want %v", c.in, d, err, c.want)
			continue
		}
		out, err := json.Marshal(d)
		var back api.Duration
		if err == nil {
			err = json.Unmarshal(out, &back)
		}
		if err != nil || back != d {
			t.Errorf("Duration %v written as %s reads back as %v, %v", d, out, back, err)
		}
	}
	for _, in := range []string{`"10"`, `"ten seconds"`, `"10x"`, `1.5`, `true`, `{}`, `99999999999999999999`} {
		var d api.Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("json.Unmarshal(%s) into Duration = %v, nil error, want an error", in, d)
		} else {
			checkMessage(t, "json.Unmarshal("+in+") into Duration", "error", err.Error())
		}
	}
	if out, _ := json.Marshal(api.Duration(10 * time.Second)); string(out) != `"10s"` {
		t.Errorf(`json.Marshal(Duration(10s)) = %s, want "10s"`, out)
	}
}

// fullSpec sets every field, with units that need parsing.
const fullSpecJSON = `{
  "name": "web",
  "labels": {"team": "edge"},
  "image": "localhost/busybox:1.36",
  "command": ["httpd"],
  "args": ["-f", "-p", "80"],
  "env": ["A=1"],
  "workingDir": "/srv",
  "user": "1000:1000",
  "readOnly": true,
  "capAdd": ["NET_ADMIN"],
  "capDrop": ["net_raw"],
  "seccomp": "unconfined",
  "allowNewPrivileges": true,
  "pidsLimit": 512,
  "mode": "replicated",
  "replicas": 3,
  "placement": {"constraints": ["node.labels.zone==east"]},
  "restartPolicy": {"condition": "on-failure", "delay": "10s", "maxAttempts": 3, "window": "2m"},
  "resources": {"limits": {"cpus": 0.5, "memory": "64M"}, "reservations": {"cpus": "0.25", "memory": 33554432}},
  "ports": [{"target": 80, "published": 8080, "protocol": "tcp", "hostAddr": "10.0.0.1"}],
  "ingress": [{"host": "shop.example.com", "path": "/api", "port": 80, "rewrite": "/v2", "tls": {"source": "acme", "challenge": "tls-alpn-01"},
    "httpsRedirect": true, "allow": ["10.0.0.0/8"], "deny": ["10.1.0.0/16"], "rateLimit": {"rate": 10, "burst": 20},
    "basicAuth": {"secret": "users", "realm": "shop"}, "requestHeaders": {"set": {"X-A": "1"}, "remove": ["Cookie"]},
    "responseHeaders": {"add": {"X-B": "2"}}, "proxyProtocol": "v2"}],
  "updateConfig": {"parallelism": 2, "delay": "5s", "failureAction": "rollback", "monitor": "30s", "maxFailureRatio": 0.25, "order": "start-first"},
  "stopGracePeriod": "30s",
  "healthCheck": {"type": "http", "port": 80, "path": "/healthz", "status": "200-299", "interval": "5s", "timeout": "2s", "retries": 5, "startPeriod": "1m"}
}`

const fullSpecYAML = `
name: web
labels: {team: edge}
image: localhost/busybox:1.36
command: [httpd]
args: ["-f", "-p", "80"]
env: [A=1]
workingDir: /srv
user: "1000:1000"
readOnly: true
capAdd: [NET_ADMIN]
capDrop: [net_raw]
seccomp: unconfined
allowNewPrivileges: true
pidsLimit: 512
mode: replicated
replicas: 3
placement:
  constraints: [node.labels.zone==east]
restartPolicy: {condition: on-failure, delay: 10s, maxAttempts: 3, window: 2m}
resources:
  limits: {cpus: 0.5, memory: 64M}
  reservations: {cpus: "0.25", memory: 33554432}
ports:
  - {target: 80, published: 8080, protocol: tcp, hostAddr: 10.0.0.1}
ingress:
  - host: shop.example.com
    path: /api
    port: 80
    rewrite: /v2
    tls: {source: acme, challenge: tls-alpn-01}
    httpsRedirect: true
    allow: [10.0.0.0/8]
    deny: [10.1.0.0/16]
    rateLimit: {rate: 10, burst: 20}
    basicAuth: {secret: users, realm: shop}
    requestHeaders: {set: {X-A: "1"}, remove: [Cookie]}
    responseHeaders: {add: {X-B: "2"}}
    proxyProtocol: v2
updateConfig: {parallelism: 2, delay: 5s, failureAction: rollback, monitor: 30s, maxFailureRatio: 0.25, order: start-first}
stopGracePeriod: 30s
healthCheck: {type: http, port: 80, path: /healthz, status: 200-299, interval: 5s, timeout: 2s, retries: 5, startPeriod: 1m}
`

func checkFullSpec(t *testing.T, how string, s *api.ServiceSpec) {
	t.Helper()
	r := s.Resources
	if r.Limits.NanoCPUs != 5e8 || r.Limits.MemoryBytes != 64<<20 || r.Reservations.NanoCPUs != 25e7 || r.Reservations.MemoryBytes != 32<<20 {
		t.Errorf("%s: resources %+v, want limits 0.5 CPU 64MiB, reservations 0.25 CPU 32MiB", how, r)
	}
	if s.RestartPolicy.Delay.D() != 10*time.Second || s.RestartPolicy.Window.D() != 2*time.Minute {
		t.Errorf("%s: restart policy %+v, want delay 10s, window 2m", how, s.RestartPolicy)
	}
	if s.StopGracePeriod.D() != 30*time.Second || s.HealthCheck == nil || s.HealthCheck.StartPeriod.D() != time.Minute {
		t.Errorf("%s: stop grace %v, health check %+v, want 30s and a start period of 1m", how, s.StopGracePeriod, s.HealthCheck)
	}
	if !slices.Equal(s.CapAdd, []string{"NET_ADMIN"}) || !slices.Equal(s.CapDrop, []string{"net_raw"}) ||
		s.Seccomp != api.SeccompUnconfined || !s.AllowNewPrivileges || s.PidsLimit != 512 {
		t.Errorf("%s: capAdd %q capDrop %q seccomp %q allowNewPrivileges %v pidsLimit %d, want [NET_ADMIN] [net_raw] unconfined true 512",
			how, s.CapAdd, s.CapDrop, s.Seccomp, s.AllowNewPrivileges, s.PidsLimit)
	}
	if len(s.Ingress) != 1 || s.Ingress[0].RateLimit == nil || s.Ingress[0].RateLimit.Burst != 20 || s.Ingress[0].HTTPSRedirect == nil ||
		s.Ingress[0].RequestHeaders == nil || s.Ingress[0].RequestHeaders.Set["X-A"] != "1" {
		t.Errorf("%s: ingress %+v, want one route with a rate limit of burst 20, a redirect and a header X-A set", how, s.Ingress)
	}
	if p := s.UpdateConfig.Parallelism; p == nil || *p != 2 {
		t.Errorf("%s: update parallelism %v, want 2", how, p)
	}
	if err := api.ValidateServiceSpec(s); err != nil {
		t.Errorf("%s: ValidateServiceSpec = %v", how, err)
	}
}

func TestSpecJSONRoundTrip(t *testing.T) {
	s, err := decodeJSON([]byte(fullSpecJSON))
	if err != nil {
		t.Fatalf("decode full spec: %v", err)
	}
	checkFullSpec(t, "JSON", &s)
	out, err := json.Marshal(&s)
	if err != nil {
		t.Fatalf("json.Marshal(full spec) = %v", err)
	}
	back, err := decodeJSON(out)
	if err != nil {
		t.Fatalf("decode re-encoded full spec %s: %v", out, err)
	}
	if !api.SpecEqual(&s, &back) {
		t.Errorf("full spec changed in a JSON round trip:\n%s\n%+v", out, back)
	}
	for _, want := range []string{`"memory":67108864`, `"cpus":0.5`, `"delay":"10s"`, `"window":"2m0s"`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("json.Marshal(full spec) = %s, want it to hold %s", out, want)
		}
	}
}

func TestSpecYAMLRoundTrip(t *testing.T) {
	var s api.ServiceSpec
	if err := yaml.Unmarshal([]byte(fullSpecYAML), &s); err != nil {
		t.Fatalf("yaml.Unmarshal(full spec) = %v", err)
	}
	checkFullSpec(t, "YAML", &s)
	js, err := decodeJSON([]byte(fullSpecJSON))
	if err != nil {
		t.Fatal(err)
	}
	if !api.SpecEqual(&s, &js) {
		t.Errorf("the YAML spec differs from the same JSON spec:\n%+v\n%+v", s, js)
	}
	out, err := yaml.Marshal(&s)
	if err != nil {
		t.Fatalf("yaml.Marshal(full spec) = %v", err)
	}
	var back api.ServiceSpec
	if err := yaml.Unmarshal(out, &back); err != nil {
		t.Fatalf("yaml.Unmarshal(re-encoded full spec) = %v\n%s", err, out)
	}
	if !api.SpecEqual(&s, &back) {
		t.Errorf("full spec changed in a YAML round trip:\n%s", out)
	}
	for _, want := range []string{"cpus: 0.5", "delay: 10s"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("yaml.Marshal(full spec) = %s, want it to hold %q", out, want)
		}
	}
}

func TestYAMLUnitErrorsNameTheLine(t *testing.T) {
	cases := []struct{ doc, says string }{
		{"name: web\nimage: busybox\nstopGracePeriod: soon\n", "line 3"},
		{"name: web\nresources:\n  limits:\n    memory: lots\n", "line 4"},
		{"name: web\nresources:\n  limits:\n    cpus: many\n", "line 4"},
		{"name: web\nresources:\n  limits:\n    cpus: [1]\n", "line 4"},
		{"name: web\nrestartPolicy:\n  delay: {a: 1}\n", "line 3"},
		{"name: web\nrestartPolicy:\n  delay: 10\n", "line 3"},
	}
	for _, c := range cases {
		var s api.ServiceSpec
		err := yaml.Unmarshal([]byte(c.doc), &s)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("yaml.Unmarshal(%q) = %v, want an error at %s", c.doc, err, c.says)
		}
	}
}

func TestDecodeRefusesUnknownFields(t *testing.T) {
	for _, doc := range []string{
		`{"name":"web","image":"busybox","replica":3}`,
		`{"name":"web","image":"busybox","resources":{"limits":{"mem":"64M"}}}`,
		`{"name":"web","image":"busybox","ports":[{"target":80,"host":"10.0.0.1"}]}`,
	} {
		_, err := decodeJSON([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), "unknown field") {
			t.Errorf("decode(%s) = %v, want an unknown field error", doc, err)
		}
	}
}

// TestPropertyUnitsRoundTrip: every CPU count a spec can hold, every size and
// every duration reads back as written, in JSON and in YAML.
func TestPropertyUnitsRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := api.ResourceAmounts{
			NanoCPUs:    api.CPUs(rapid.Int64Range(0, 1e15).Draw(t, "nanoCPUs")),
			MemoryBytes: api.Bytes(rapid.Int64().Draw(t, "bytes")),
		}
		d := api.Duration(rapid.Int64().Draw(t, "duration"))
		v := struct {
			R api.ResourceAmounts `json:"r" yaml:"r"`
			D api.Duration        `json:"d" yaml:"d"`
		}{r, d}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal(%+v) = %v", v, err)
		}
		back := v
		back.R, back.D = api.ResourceAmounts{}, 0
		if err := json.Unmarshal(js, &back); err != nil || back != v {
			t.Fatalf("%+v written as %s reads back as %+v, %v", v, js, back, err)
		}
		y, err := yaml.Marshal(v)
		if err != nil {
			t.Fatalf("yaml.Marshal(%+v) = %v", v, err)
		}
		back.R, back.D = api.ResourceAmounts{}, 0
		if err := yaml.Unmarshal(y, &back); err != nil || back != v {
			t.Fatalf("%+v written as YAML %q reads back as %+v, %v", v, y, back, err)
		}
	})
}
