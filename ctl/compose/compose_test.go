package compose

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// Compose files of well-known projects (and one of Warren's own): each
// converts, or fails naming what it uses that Warren cannot run; either
// way the keys Warren ignores are named exactly.
func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		name        string
		files       []string
		env         []string
		unsupported []string
		err         string // "": converts
	}{
		{
			name:  "voting-app",
			files: []string{"voting-app/docker-stack.yml"},
			unsupported: []string{"networks", "services.db.networks", "services.redis.networks", "services.result.depends_on", "services.result.networks",
				"services.vote.depends_on", "services.vote.networks", "services.worker.depends_on", "services.worker.networks"},
		},
		{
			name:        "nginx-golang-mysql",
			files:       []string{"nginx-golang-mysql/compose.yaml"},
			unsupported: []string{"services.backend.build", "services.backend.depends_on", "services.db.expose", "services.db.restart", "services.proxy.depends_on"},
			err:         "nginx-golang-mysql/compose.yaml: services.backend: invalid service spec: image:",
		},
		{
			name:        "prometheus-grafana",
			files:       []string{"prometheus-grafana/compose.yaml"},
			unsupported: []string{"services.grafana.container_name", "services.grafana.restart", "services.prometheus.container_name", "services.prometheus.restart"},
		},
		{
			name:        "wordpress-mysql",
			files:       []string{"wordpress-mysql/compose.yaml"},
			unsupported: []string{"services.db.expose", "services.db.restart", "services.wordpress.restart"},
		},
		{
			name:  "full",
			files: []string{"full/compose.yml"},
			env:   []string{"LOG_LEVEL=info"}, // the environment wins over .env, as in Compose
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var files []string
			for _, f := range tc.files {
				files = append(files, filepath.Join("testdata", f))
			}
			env := tc.env
			if env == nil {
				env = []string{}
			}
			st, err := Load(context.Background(), files, "shop", Options{Environ: env})
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("Load(%v) = %v; want an error containing %q", tc.files, err, tc.err)
			case tc.err != "":
				return
			case err != nil:
				t.Fatalf("Load(%v) = %v", tc.files, err)
			}
			if !slices.Equal(st.Unsupported, tc.unsupported) {
				t.Errorf("Load(%v) unsupported keys:\n  %v\nwant\n  %v", tc.files, st.Unsupported, tc.unsupported)
			}
			golden(t, filepath.Join("testdata", tc.name+".golden.json"), st)
		})
	}
}

// golden compares st, as JSON with the test data's folder written $DIR,
// with a golden file (go test -update rewrites it).
func golden(t *testing.T, path string, st *Stack) {
	t.Helper()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs("testdata")
	got := strings.ReplaceAll(string(b), abs, "$DIR") + "\n"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("the conversion differs from %s (go test -update rewrites it):\n%s", path, got)
	}
}

func find(st *Stack, name string) *api.ServiceSpec {
	for i := range st.Services {
		if st.Services[i].Name == name {
			return &st.Services[i]
		}
	}
	return nil
}

// The golden files hold the whole conversion; this says in words what
// matters most in the full one.
func TestFullConversion(t *testing.T) {
	st, err := Load(context.Background(), []string{"testdata/full/compose.yml"}, "shop", Options{Environ: []string{"LOG_LEVEL=info"}})
	if err != nil {
		t.Fatal(err)
	}
	web := find(st, "shop-web")
	if web == nil {
		t.Fatalf("no service shop-web in %+v", st.Services)
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"image (WEB_TAG from .env)", web.Image, "localhost/web:2.1"},
		{"env (LOG_LEVEL from the environment, env_file read)", web.Env, []string{"FROM_FILE=yes", "LOG_LEVEL=info", "REGION=eu"}},
		{"entrypoint → command", web.Command, []string{"/bin/web"}},
		{"command → args", web.Args, []string{"--listen", ":8080"}},
		{"labels (services and deploy, and the stack's)", web.Labels, map[string]string{"team": "edge", "tier": "front", api.LabelStack: "shop"}},
		{"replicas", web.Replicas, uint64(3)},
		{"port bound to 127.0.0.1: host mode", web.Ports[1].Mode, api.PortModeHost},
		{"udp port", web.Ports[2].Protocol, api.ProtoUDP},
		{"health check", web.HealthCheck.Command, []string{"/bin/web", "-check"}},
		{"limits", web.Resources.Limits, api.ResourceAmounts{NanoCPUs: 5e8, MemoryBytes: 128 << 20}},
		{"pids limit", web.PidsLimit, int64(500)},
		{"update failure action", web.UpdateConfig.FailureAction, api.FailureRollback},
		{"max failure ratio", web.UpdateConfig.MaxFailureRatio, 0.1},
		{"rollback parallelism 0 (all at once)", *web.RollbackConfig.Parallelism, uint64(0)},
		{"secret: the stack's, at its target", web.Secrets[0].Name + " " + web.Secrets[0].Target, "shop-tls-key /run/secrets/web.key"},
		{"external secret: its own name", web.Secrets[1].Name, "api-token"},
		{"config", web.Configs[0].Name + " " + web.Configs[0].Target, "shop-web-conf /etc/web.conf"},
		{"named volume", web.Mounts[0].Source, "shop-cache"},
		{"tmpfs mode", web.Mounts[2].Mode, "1777"},
		{"global mode", find(st, "shop-agent").Mode, api.ModeGlobal},
		{"disabled health check", find(st, "shop-agent").HealthCheck == nil, true},
		{"volumes to make", st.Volumes, []Volume{{Name: "shop-cache"}, {Name: "node-logs", External: true}}},
	}
	for _, c := range checks {
		gb, _ := json.Marshal(c.got)
		wb, _ := json.Marshal(c.want)
		if string(gb) != string(wb) {
			t.Errorf("%s: got %s, want %s", c.what, gb, wb)
		}
	}
	if len(st.Secrets) != 2 || st.Secrets[1].Name != "shop-tls-key" || !strings.HasSuffix(st.Secrets[1].File, "testdata/full/tls.key") || !st.Secrets[0].External {
		t.Errorf("secrets %+v; want api-token external and shop-tls-key from full/tls.key", st.Secrets)
	}
}

func TestOverrideFile(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "compose.yml")
	os.WriteFile(base, []byte("services:\n  web:\n    image: localhost/web:1\n    deploy: {replicas: 2}\n"), 0o644)
	over := filepath.Join(dir, "prod.yml")
	os.WriteFile(over, []byte("services:\n  web:\n    image: localhost/web:2\n    build: .\n"), 0o644)
	st, err := Load(context.Background(), []string{base, over}, "shop", Options{Environ: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	if web := find(st, "shop-web"); web == nil || web.Image != "localhost/web:2" || web.Replicas != 2 {
		t.Errorf("compose.yml + prod.yml: web %+v; want image web:2 from the override, 2 replicas from the base", web)
	}
	if !slices.Equal(st.Unsupported, []string{"services.web.build"}) {
		t.Errorf("unsupported %v; want the override's build", st.Unsupported)
	}
}

func TestProblemsAreNamed(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"services:\n  web:\n    image: a\n    ports: [\"8000-8010:80\"]\n", "services.web: ports: published \"8000-8010\": only one port"},
		{"services:\n  web:\n    image: a\n    volumes: [/data]\n", "services.web: volumes: /data: an anonymous volume is not supported"},
		{"services:\n  web:\n    image: a\n    deploy: {mode: replicated-job}\n", "services.web: deploy.mode: \"replicated-job\" is not supported"},
		{"services:\n  web:\n    image: a\n    deploy: {resources: {limits: {memory: 1M}}}\n", "services.web: invalid service spec: resources.limits.memory"},
		{"services:\n  web:\n    image: a\n  Web:\n    image: b\n", "is also service"},
		{"services:\n  web:\n    image: a\n    secrets: [s]\nsecrets:\n  s:\n    environment: S\n", "secrets.s: only a secret with file: or external: true"},
	} {
		dir := t.TempDir()
		f := filepath.Join(dir, "compose.yml")
		os.WriteFile(f, []byte(tc.file), 0o644)
		_, err := Load(context.Background(), []string{f}, "shop", Options{Environ: []string{}})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), f+": ") {
			t.Errorf("Load(%q) = %v; want an error naming %s and holding %q", tc.file, err, f, tc.want)
		}
	}
}

// A variable the file requires comes from the environment; one that is
// not set is a note, in the loader's words.
func TestVariables(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "compose.yml")
	os.WriteFile(f, []byte("services:\n  web:\n    image: localhost/web:${TAG:?set TAG}\n    environment:\n      - MODE=${MODE}\n"), 0o644)
	st, err := Load(context.Background(), []string{f}, "shop", Options{Environ: []string{"TAG=3"}})
	if err != nil {
		t.Fatalf("Load with TAG=3: %v", err)
	}
	if web := find(st, "shop-web"); web.Image != "localhost/web:3" || len(st.Notes) != 1 || !strings.Contains(st.Notes[0], `"MODE" variable is not set`) {
		t.Errorf("Load with TAG=3: image %s, notes %q; want web:3 and a note that MODE is not set", web.Image, st.Notes)
	}
	if _, err := Load(context.Background(), []string{f}, "shop", Options{Environ: []string{}}); err == nil || !strings.Contains(err.Error(), "set TAG") {
		t.Errorf("Load without TAG = %v; want the file's message, set TAG", err)
	}
}

// x-warren-ingress on a service gives its routes, in a manifest's shape.
func TestIngressExtension(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "compose.yml")
	os.WriteFile(f, []byte(`services:
  web:
    image: localhost/web:1
    x-warren-ingress:
      - host: shop.example.com
        port: 8080
      - host: shop.example.com
        path: /api/
        port: ${API_PORT}
        stripPrefix: true
        tls: {source: secret, secret: shop-cert}
        rateLimit: {rate: 10, burst: 20}
`), 0o644)
	st, err := Load(context.Background(), []string{f}, "shop", Options{Environ: []string{"API_PORT=9000"}})
	if err != nil {
		t.Fatalf("Load(a service with x-warren-ingress) = %v", err)
	}
	web := find(st, "shop-web")
	if len(web.Ingress) != 2 || web.Ingress[1].Path != "/api" || web.Ingress[1].Port != 9000 || !web.Ingress[1].StripPrefix ||
		web.Ingress[1].TLS == nil || web.Ingress[1].TLS.Secret != "shop-cert" || web.Ingress[1].RateLimit == nil || web.Ingress[1].RateLimit.Burst != 20 {
		t.Errorf("x-warren-ingress read as %+v", web.Ingress)
	}
	if slices.Contains(st.Unsupported, "services.web.x-warren-ingress") {
		t.Errorf("x-warren-ingress is named unsupported: %v", st.Unsupported)
	}
	for _, tc := range []struct{ ext, want string }{
		{"x-warren-ingress:\n      - host: a.example.com\n        prot: 80\n", `field prot not found`},
		{"x-warren-ingress: {host: a.example.com}\n", "not a list of routes"},
		{"x-warren-ingress:\n      - host: a_b.example.com\n        port: 80\n", "ingress[0].host"},
	} {
		os.WriteFile(f, []byte("services:\n  web:\n    image: a\n    "+tc.ext), 0o644)
		_, err := Load(context.Background(), []string{f}, "shop", Options{Environ: []string{}})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "services.web: ") {
			t.Errorf("Load(%q) = %v; want an error on services.web holding %q", tc.ext, err, tc.want)
		}
	}
}
