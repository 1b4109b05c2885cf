package manifest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

func TestReadDocuments(t *testing.T) {
	const in = `# two services and an empty document
kind: service
name: web
image: localhost/web:1.2
replicas: 3
ports:
  - target: 80
    published: 8080
restartPolicy:
  delay: 2s
resources:
  limits: {memory: 64M, cpus: 0.5}
---
# nothing here
---
name: agent
image: localhost/agent
mode: global
---
kind: Service
name: one
image: busybox
`
	docs, err := Read("stack.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Read(stack.yaml) failed: %v", err)
	}
	if len(docs) != 3 {
		t.Fatalf("Read(stack.yaml) gave %d documents, want 3 (the empty one skipped)", len(docs))
	}
	web := docs[0].Spec
	if web.Name != "web" || web.Replicas != 3 || web.Image != "localhost/web:1.2" || len(web.Ports) != 1 ||
		web.Ports[0] != (api.PortConfig{Target: 80, Published: 8080}) || web.RestartPolicy.Delay.D() != 2*time.Second ||
		web.Resources.Limits.MemoryBytes != 64<<20 || web.Resources.Limits.NanoCPUs != 5e8 {
		t.Errorf("document 1 read as %+v", web)
	}
	if docs[1].Spec.Replicas != 0 || docs[1].Spec.Mode != api.ModeGlobal {
		t.Errorf("global document read with replicas %d mode %q; want 0, global", docs[1].Spec.Replicas, docs[1].Spec.Mode)
	}
	if docs[2].Spec.Replicas != 1 {
		t.Errorf("document without replicas: got %d replicas, want the default of 1", docs[2].Spec.Replicas)
	}
	for i, want := range []string{"stack.yaml:2", "stack.yaml:16", "stack.yaml:20"} {
		if got := docs[i].Where(); got != want {
			t.Errorf("document %d: Where() = %s, want %s", i+1, got, want)
		}
	}
}

func TestReadProblems(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // the problems, in order
	}{
		{
			name: "unknown field",
			in:   "name: web\nimage: busybox\nreplicaz: 3\n",
			want: []string{`web.yaml:3: unknown field "replicaz" (did you mean "replicas"?)`},
		},
		{
			name: "unknown field in a later document and a nested one",
			in:   "name: a\nimage: busybox\n---\nname: b\nimage: busybox\nports:\n  - target: 80\n    publshed: 8080\n",
			want: []string{`web.yaml:8: unknown field "publshed" (did you mean "published"?)`},
		},
		{
			name: "unknown field far from any",
			in:   "name: a\nimage: busybox\ncolour: blue\n",
			want: []string{`web.yaml:3: unknown field "colour"`},
		},
		{
			name: "other kind",
			in:   "name: a\nimage: busybox\n---\nkind: Deployment\nmetadata: {name: x}\n",
			want: []string{`web.yaml:4: kind "Deployment" is not something apply knows: it reads services (kind: service, or no kind line)`},
		},
		{
			name: "wrong types",
			in:   "name: a\nimage: busybox\nreplicas: three\nenv: A=1\n",
			want: []string{`web.yaml:3: replicas: "three" is not a whole number`, `web.yaml:4: env: "A=1" is not a list`},
		},
		{
			name: "bad duration",
			in:   "name: a\nimage: busybox\nrestartPolicy:\n  delay: 5x\n",
			want: []string{`web.yaml:4: restartPolicy.delay: invalid duration "5x": use a number with a unit, like 500ms, 10s or 5m`},
		},
		{
			name: "not a mapping",
			in:   "- name: a\n",
			want: []string{`web.yaml:1: a document must be a service spec: fields such as name: and image:, not a list`},
		},
		{
			name: "syntax",
			in:   "name: a\n  image: b\n",
			want: []string{"web.yaml:2: not valid YAML: mapping values are not allowed in this context"},
		},
		{
			name: "duplicate key",
			in:   "name: a\nimage: b\nname: c\n",
			want: []string{`web.yaml:3: name: mapping key "name" already defined at line 1`},
		},
	}
	for _, tt := range tests {
		docs, err := Read("web.yaml", []byte(tt.in))
		var ps Problems
		if !errors.As(err, &ps) {
			t.Errorf("%s: Read gave %d documents and error %v; want problems %q", tt.name, len(docs), err, tt.want)
			continue
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.String())
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s: Read problems:\n%s\nwant:\n%s", tt.name, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

func TestReadKeepsGoodDocuments(t *testing.T) {
	docs, err := Read("web.yaml", []byte("name: a\nimage: busybox\n---\nname: b\nreplicaz: 1\n---\nname: c\nimage: busybox\n"))
	if err == nil || len(docs) != 2 || docs[0].Spec.Name != "a" || docs[1].Spec.Name != "c" {
		t.Errorf("Read of three documents, the second bad, gave %d documents and %v; want a and c and a problem", len(docs), err)
	}
}

func TestValidateNamesLines(t *testing.T) {
	const in = `name: web
image: "Not An Image"
replicas: 2
ports:
  - target: 80
  - target: 0
    published: 81
labels:
  com.example.tier: "a\nb"
`
	docs, err := Read("web.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	err = docs[0].Validate()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Validate() = %v, want Problems", err)
	}
	want := map[string]int{"image": 2, "ports[1].target": 6, "labels.com.example.tier": 9}
	for _, p := range ps {
		field, _, _ := strings.Cut(p.Msg, ":")
		line, ok := want[field]
		if !ok {
			t.Errorf("Validate() reported %s, which is not among the expected fields", p)
			continue
		}
		if p.Line != line {
			t.Errorf("Validate() put %s at line %d, want %d", field, p.Line, line)
		}
		delete(want, field)
	}
	for f := range want {
		t.Errorf("Validate() did not report %s; problems: %v", f, ps)
	}
}

func TestCheckSet(t *testing.T) {
	a, _ := Read("a.yaml", []byte("name: web\nimage: busybox\nports:\n  - target: 80\n"))
	b, _ := Read("b.yaml", []byte("name: api\nimage: busybox\nports:\n  - target: 8080\n  - {target: 81, published: 80}\n---\nname: web\nimage: busybox\n"))
	err := CheckSet(append(a, b...))
	want := `b.yaml:5: ports[1]: 80/tcp is also published by service "web" at a.yaml:4; two services can share a port only in mode host
b.yaml:7: service "web" is also defined at a.yaml:1: give each service one document`
	if err == nil || err.Error() != want {
		t.Errorf("CheckSet(a.yaml, b.yaml) = %v\nwant:\n%s", err, want)
	}
	c, _ := Read("c.yaml", []byte("name: dns\nimage: busybox\nports:\n  - {target: 53, protocol: udp}\n"))
	if err := CheckSet(append(a, c...)); err != nil {
		t.Errorf("CheckSet(a.yaml, c.yaml) = %v, want nil", err)
	}
	// Host-mode ports of two services: the scheduler keeps them apart.
	h1, _ := Read("h1.yaml", []byte("name: h1\nimage: busybox\nports:\n  - {target: 80, mode: host}\n"))
	h2, _ := Read("h2.yaml", []byte("name: h2\nimage: busybox\nports:\n  - {target: 80, mode: host}\n"))
	if err := CheckSet(append(h1, h2...)); err != nil {
		t.Errorf("CheckSet(h1.yaml, h2.yaml), both host mode = %v, want nil", err)
	}
	if err := CheckSet(append(a, h2...)); err == nil {
		t.Errorf("CheckSet(a.yaml, h2.yaml), ingress and host on port 80 = nil, want a conflict")
	}
}

func TestConfinementFields(t *testing.T) {
	const in = `name: ntp
image: localhost/ntpd
user: "65534:65534"
capDrop: [ALL]
capAdd:
  - sys_time
  - SYS_FOO
seccomp: unconfined
allowNewPrivileges: true
pidsLimit: -1
---
name: bad
image: busybox
seccomp: /etc/profile.json
pidsLimit: -7
`
	docs, err := Read("ntp.yaml", []byte(in))
	if err != nil || len(docs) != 2 {
		t.Fatalf("Read(ntp.yaml) = %d documents, %v; want 2", len(docs), err)
	}
	s := docs[0].Spec
	if s.User != "65534:65534" || len(s.CapDrop) != 1 || s.CapDrop[0] != "ALL" || len(s.CapAdd) != 2 || s.CapAdd[0] != "sys_time" ||
		s.Seccomp != api.SeccompUnconfined || !s.AllowNewPrivileges || s.PidsLimit != -1 {
		t.Errorf("ntp.yaml document 1 read as %+v", s)
	}
	want := [][]string{
		{`ntp.yaml:7: capAdd[1]: "SYS_FOO" is not a Linux capability: use ALL or one of AUDIT_CONTROL`},
		{`ntp.yaml:14: seccomp: "/etc/profile.json" is not a seccomp mode`, `ntp.yaml:15: pidsLimit: -7 is not a pids limit`},
	}
	for i, d := range docs {
		got := d.Validate()
		var ps Problems
		if !errors.As(got, &ps) || len(ps) != len(want[i]) {
			t.Errorf("document %d: Validate() = %v, want %d problems", i+1, got, len(want[i]))
			continue
		}
		for j, p := range ps {
			if !strings.HasPrefix(p.String(), want[i][j]) {
				t.Errorf("document %d: problem %q, want it to start with %q", i+1, p, want[i][j])
			}
		}
	}
}

func TestReadIngress(t *testing.T) {
	const in = `name: shop
image: localhost/shop:1
ingress:
  - host: shop.example.com
    port: 8080
  - host: shop.example.com
    path: /api/
    port: 9000
    stripPrefix: true
    tls: {source: secret, secret: shop-cert}
    allow: [10.0.0.0/8, 192.168.1.7]
    rateLimit: {rate: 10, burst: 20}
    basicAuth: {secret: shop-users, realm: Shop}
    requestHeaders:
      set: {X-Prefix: /api}
      remove: [Cookie]
    proxyProtocol: v2
---
name: other
image: localhost/other:1
ingress:
  - host: Shop.Example.com
    path: /api
    port: 80
  - host: bad_host.example.com
    port: 80
`
	docs, err := Read("shop.yaml", []byte(in))
	if err != nil {
		t.Fatalf("Read(shop.yaml) = %v", err)
	}
	shop := docs[0].Spec
	api.NormalizeSpec(&shop)
	if len(shop.Ingress) != 2 {
		t.Fatalf("shop read with %d routes, want 2: %+v", len(shop.Ingress), shop.Ingress)
	}
	r := shop.Ingress[1]
	if r.Path != "/api" || !r.StripPrefix || r.TLS == nil || r.TLS.Secret != "shop-cert" || strings.Join(r.Allow, " ") != "10.0.0.0/8 192.168.1.7/32" ||
		r.RateLimit == nil || r.RateLimit.Burst != 20 || r.BasicAuth == nil || r.BasicAuth.Realm != "Shop" ||
		r.RequestHeaders == nil || r.RequestHeaders.Set["X-Prefix"] != "/api" || r.ProxyProtocol != "v2" {
		t.Errorf("shop's second route read (and normalized) as %+v", r)
	}
	if err := docs[0].Validate(); err != nil {
		t.Errorf("shop.Validate() = %v", err)
	}
	err = docs[1].Validate()
	if err == nil || !strings.Contains(err.Error(), "shop.yaml:25: ingress[1].host:") || !strings.Contains(err.Error(), "holds '_'") {
		t.Errorf("other.Validate() = %v, want the bad host named at shop.yaml:25", err)
	}
	err = CheckSet(docs)
	if want := `shop.yaml:22: ingress[0]: route host=shop.example.com path=/api is also claimed by service "shop" at shop.yaml:6`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CheckSet = %v, want %q", err, want)
	}
}
