package nspawn

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These run in `make test` (no root, no image): warren-config, the script
// that turns /etc/warren/warren.conf into the daemons' flags, on good and
// bad files, and on the example seed in image/cloud-init.

func runWarrenConfig(t *testing.T, conf string) (env string, stderr string, err error) {
	t.Helper()
	repo, rerr := RepoRoot()
	if rerr != nil {
		t.Fatal(rerr)
	}
	dir := t.TempDir()
	confPath := filepath.Join(dir, "warren.conf")
	if conf != "<none>" {
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "run", "config.env")
	cmd := exec.Command("/bin/sh", filepath.Join(repo, "image/extra/usr/lib/warren/warren-config"), confPath, out)
	var se strings.Builder
	cmd.Stderr = &se
	err = cmd.Run()
	b, _ := os.ReadFile(out)
	return string(b), se.String(), err
}

func TestWarrenConfig(t *testing.T) {
	cases := []struct {
		name, conf string
		wantEnv    []string // lines that must be in config.env
		wantErr    string   // part of the error; "" = must succeed
	}{
		{"no file: first manager with defaults", "<none>",
			[]string{"WARREN_ROLE=manager", "WARREN_CLUSTER=init", `WARREN_MANAGER_FLAGS="--listen-addr=0.0.0.0:4242"`}, ""},
		{"first manager", "# c\nrole = manager\n\nhostname = edge-1\nlabels = zone=a,rack=3\ncluster_cidr=10.240.0.0/12\nsubnet_bits = 26\nlog_level = debug\n",
			[]string{`WARREN_MANAGER_FLAGS="--listen-addr=0.0.0.0:4242 --hostname=edge-1 --label=zone=a --label=rack=3 --cluster-cidr=10.240.0.0/12 --subnet-bits=26 --log-level=debug"`,
				`WARREN_AGENT_FLAGS="--log-level=debug"`}, ""},
		{"no final newline", "role=manager\nhostname=h", []string{`WARREN_MANAGER_FLAGS="--listen-addr=0.0.0.0:4242 --hostname=h"`}, ""},
		{"join fields exported", "role=manager\nmanagers=10.0.0.1:4242\nadvertise_addr=10.0.0.2:4242\n",
			[]string{"WARREN_MANAGERS=10.0.0.1:4242", "WARREN_ADVERTISE_ADDR=10.0.0.2:4242",
				`WARREN_MANAGER_FLAGS="--listen-addr=0.0.0.0:4242 --advertise-addr=10.0.0.2:4242"`}, ""},
		{"worker joins", "role=worker\njoin_token=WRN-1-w-abc\nmanagers=10.0.0.1:4242,10.0.0.3:4242\n",
			[]string{`WARREN_MANAGER_FLAGS="--listen-addr=0.0.0.0:4242 --join=10.0.0.1:4242 --token=WRN-1-w-abc"`}, ""},
		{"manager joins", "role=manager\ncluster=join\njoin_token=WRN-1-m-abc\nmanagers=10.0.0.1:4242\n",
			[]string{`WARREN_MANAGER_FLAGS="--listen-addr=0.0.0.0:4242 --join=10.0.0.1:4242 --token=WRN-1-m-abc"`}, ""},
		{"unknown key", "rolle=manager\n", nil, `unknown key "rolle"`},
		{"bad role", "role=boss\n", nil, "role must be manager or worker"},
		{"not key=value", "role manager\n", nil, "is not key = value"},
		{"value with a blank", "hostname=a b\n", nil, "has a blank"},
		{"shell in a value", "hostname=$(reboot)\n", nil, "has a blank, a quote"},
		{"bad label", "labels=zone\n", nil, `label "zone" is not KEY=VALUE`},
		{"bad cidr", "cluster_cidr=ten\n", nil, "is not an IPv4 prefix"},
		{"worker needs a token", "role=worker\n", nil, "needs join_token"},
		{"worker needs managers", "role=worker\njoin_token=t\n", nil, "needs managers"},
		{"not a token", "role=worker\njoin_token=t\nmanagers=m:1\n", nil, "does not look like a Warren join token"},
		{"token of the other kind", "role=worker\njoin_token=WRN-1-m-abc\nmanagers=m:1\n", nil, "is a manager token but role = worker"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env, stderr, err := runWarrenConfig(t, tc.conf)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(stderr, tc.wantErr) {
					t.Errorf("warren-config on %q: err %v, stderr %q; want a failure saying %q", tc.conf, err, stderr, tc.wantErr)
				}
				if env != "" {
					t.Errorf("warren-config on %q failed but wrote config.env:\n%s", tc.conf, env)
				}
				return
			}
			if err != nil {
				t.Fatalf("warren-config on %q: %v: %s", tc.conf, err, stderr)
			}
			for _, w := range tc.wantEnv {
				if !strings.Contains(env, w+"\n") {
					t.Errorf("warren-config on %q wrote\n%s\nwant the line %s", tc.conf, env, w)
				}
			}
		})
	}
}

// TestExampleSeedConfig: the warren.conf inside image/cloud-init/user-data
// is one warren-config accepts.
func TestExampleSeedConfig(t *testing.T) {
	repo, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ud, err := os.ReadFile(filepath.Join(repo, "image/cloud-init/user-data"))
	if err != nil {
		t.Fatal(err)
	}
	// The content block under "path: /etc/warren/warren.conf", indented.
	_, after, ok := strings.Cut(string(ud), "path: /etc/warren/warren.conf")
	if !ok {
		t.Fatal("user-data writes no /etc/warren/warren.conf")
	}
	_, block, ok := strings.Cut(after, "content: |\n")
	if !ok {
		t.Fatal("no content block for warren.conf in user-data")
	}
	var conf strings.Builder
	for _, l := range strings.Split(block, "\n") {
		if l != "" && !strings.HasPrefix(l, "      ") {
			break
		}
		conf.WriteString(strings.TrimPrefix(l, "      ") + "\n")
	}
	env, stderr, err := runWarrenConfig(t, conf.String())
	if err != nil {
		t.Fatalf("the example warren.conf\n%s\ndoes not parse: %v: %s", conf.String(), err, stderr)
	}
	if !strings.Contains(env, "--hostname=edge-1") || !strings.Contains(env, "--label=zone=lab") {
		t.Errorf("the example warren.conf gave\n%s\nwant --hostname=edge-1 and --label=zone=lab", env)
	}
}
