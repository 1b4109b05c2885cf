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

// configRun is what one run of warren-config left.
type configRun struct {
	env       string      // config.env ("" if not written)
	token     *string     // the token file's content (nil: not written)
	tokenMode os.FileMode // its permission bits
	stderr    string
	err       error
}

func runWarrenConfig(t *testing.T, conf string, mode os.FileMode) configRun {
	t.Helper()
	repo, rerr := RepoRoot()
	if rerr != nil {
		t.Fatal(rerr)
	}
	dir := t.TempDir()
	confPath := filepath.Join(dir, "warren.conf")
	if conf != "<none>" {
		if err := os.WriteFile(confPath, []byte(conf), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(confPath, mode); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "run", "config.env")
	cmd := exec.Command("/bin/sh", filepath.Join(repo, "image/extra/usr/lib/warren/warren-config"), confPath, out)
	var se strings.Builder
	cmd.Stderr = &se
	r := configRun{err: cmd.Run(), stderr: se.String()}
	b, _ := os.ReadFile(out)
	r.env = string(b)
	tokenPath := filepath.Join(dir, "run", "join-token")
	if b, err := os.ReadFile(tokenPath); err == nil {
		s := string(b)
		r.token = &s
		if fi, err := os.Stat(tokenPath); err == nil {
			r.tokenMode = fi.Mode().Perm()
		}
	}
	return r
}

func TestWarrenConfig(t *testing.T) {
	const flags = "WARREN_MANAGER_FLAGS="
	cases := []struct {
		name, conf string
		wantEnv    []string // lines that must be in config.env
		wantToken  string   // the token file's content (always written, 0600)
		wantErr    string   // part of the error; "" = must succeed
	}{
		{"no file: first manager with defaults", "<none>",
			[]string{"WARREN_ROLE=manager", "WARREN_CLUSTER=init", flags + `"--listen-addr=0.0.0.0:4242"`}, "", ""},
		{"first manager", "# c\nrole = manager\n\nhostname = edge-1\nlabels = zone=a,rack=3\ncluster_cidr=10.240.0.0/12\nsubnet_bits = 26\nlog_level = debug\n",
			[]string{flags + `"--listen-addr=0.0.0.0:4242 --hostname=edge-1 --label=zone=a --label=rack=3 --cluster-cidr=10.240.0.0/12 --subnet-bits=26 --log-level=debug"`,
				`WARREN_AGENT_FLAGS="--log-level=debug"`}, "", ""},
		{"no final newline", "role=manager\nhostname=h", []string{flags + `"--listen-addr=0.0.0.0:4242 --hostname=h"`}, "", ""},
		{"join fields exported", "role=manager\nmanagers=10.0.0.1:4242\nadvertise_addr=10.0.0.2:4242\n",
			[]string{"WARREN_MANAGERS=10.0.0.1:4242", "WARREN_ADVERTISE_ADDR=10.0.0.2:4242",
				flags + `"--listen-addr=0.0.0.0:4242 --advertise-addr=10.0.0.2:4242"`}, "", ""},
		{"worker joins: the token in the token file only", "role=worker\njoin_token=WRN-1-w-abc\nmanagers=10.0.0.1:4242,10.0.0.3:4242\n",
			[]string{flags + `"--listen-addr=0.0.0.0:4242 --join=10.0.0.1:4242"`}, "WRN-1-w-abc", ""},
		{"manager joins: the token in the token file only", "role=manager\ncluster=join\njoin_token=WRN-1-m-abc\nmanagers=10.0.0.1:4242\n",
			[]string{flags + `"--listen-addr=0.0.0.0:4242 --join=10.0.0.1:4242"`}, "WRN-1-m-abc", ""},
		{"a first manager does not pass on a token it does not use", "role=manager\ncluster=init\njoin_token=WRN-1-m-abc\n",
			[]string{flags + `"--listen-addr=0.0.0.0:4242"`}, "", ""},
		{"bind mounts allowed", "allow_bind = /srv/www,/data\nlog_level = warn\n",
			[]string{`WARREN_AGENT_FLAGS="--allow-bind=/srv/www --allow-bind=/data --log-level=warn"`}, "", ""},
		{"relative allow_bind", "allow_bind = srv\n", nil, "", `allow_bind "srv" is not an absolute path`},
		{"OCI runtime", "oci_runtime = runc\n", []string{`WARREN_AGENT_FLAGS="--oci-runtime=runc"`}, "", ""},
		{"bad OCI runtime", "oci_runtime = youki\n", nil, "", "oci_runtime must be auto, runc or crun"},
		{"allow_bind with ..", "allow_bind = /srv/../etc\n", nil, "", `allow_bind "/srv/../etc" holds ..`},
		{"unknown key", "rolle=manager\n", nil, "", `unknown key "rolle"`},
		{"bad role", "role=boss\n", nil, "", "role must be manager or worker"},
		{"not key=value", "role manager\n", nil, "", "is not key = value"},
		{"value with a blank", "hostname=a b\n", nil, "", "has a blank"},
		{"shell in a value", "hostname=$(reboot)\n", nil, "", "has a blank, a quote"},
		{"bad label", "labels=zone\n", nil, "", `label "zone" is not KEY=VALUE`},
		{"bad cidr", "cluster_cidr=ten\n", nil, "", "is not an IPv4 prefix"},
		{"worker needs a token", "role=worker\n", nil, "", "needs join_token"},
		{"worker needs managers", "role=worker\njoin_token=t\n", nil, "", "needs managers"},
		{"not a token", "role=worker\njoin_token=t\nmanagers=m:1\n", nil, "", "does not look like a Warren join token"},
		{"token of the other kind", "role=worker\njoin_token=WRN-1-m-abc\nmanagers=m:1\n", nil, "", "is a manager token but role = worker"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runWarrenConfig(t, tc.conf, 0o600)
			if tc.wantErr != "" {
				if r.err == nil || !strings.Contains(r.stderr, tc.wantErr) {
					t.Errorf("warren-config on %q: err %v, stderr %q; want a failure saying %q", tc.conf, r.err, r.stderr, tc.wantErr)
				}
				if r.env != "" || r.token != nil {
					t.Errorf("warren-config on %q failed but wrote config.env %q and a token file (%v)", tc.conf, r.env, r.token != nil)
				}
				return
			}
			if r.err != nil {
				t.Fatalf("warren-config on %q: %v: %s", tc.conf, r.err, r.stderr)
			}
			for _, w := range tc.wantEnv {
				if !strings.Contains(r.env, w+"\n") {
					t.Errorf("warren-config on %q wrote\n%s\nwant the line %s", tc.conf, r.env, w)
				}
			}
			if strings.Contains(r.env, "WRN-") || strings.Contains(r.env, "--token") {
				t.Errorf("warren-config on %q put a token into config.env (the manager's command line):\n%s", tc.conf, r.env)
			}
			switch {
			case r.token == nil:
				t.Errorf("warren-config on %q wrote no token file; want one (%q), since LoadCredential= fails a unit on a missing file", tc.conf, tc.wantToken)
			case *r.token != tc.wantToken || r.tokenMode != 0o600:
				t.Errorf("warren-config on %q wrote the token file %q mode %o, want %q mode 600", tc.conf, *r.token, r.tokenMode, tc.wantToken)
			}
			if r.stderr != "" {
				t.Errorf("warren-config on %q (mode 600) warned: %s", tc.conf, r.stderr)
			}
		})
	}
}

// TestWarrenConfigWarnsOnReadableToken: a warren.conf with a join token
// that others can read still works, with a warning saying what to do.
func TestWarrenConfigWarnsOnReadableToken(t *testing.T) {
	conf := "role=worker\njoin_token=WRN-1-w-abc\nmanagers=10.0.0.1:4242\n"
	r := runWarrenConfig(t, conf, 0o644)
	if r.err != nil {
		t.Fatalf("warren-config on a 0644 warren.conf: %v: %s", r.err, r.stderr)
	}
	if !strings.Contains(r.stderr, "readable by users other than root (mode 644): chmod 600") {
		t.Errorf("warren-config on a 0644 warren.conf with a token: stderr %q, want a warning to chmod 600", r.stderr)
	}
	if strings.Contains(r.stderr, "WRN-") {
		t.Errorf("warren-config's warning shows the token: %s", r.stderr)
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
	r := runWarrenConfig(t, conf.String(), 0o600)
	if r.err != nil {
		t.Fatalf("the example warren.conf\n%s\ndoes not parse: %v: %s", conf.String(), r.err, r.stderr)
	}
	if !strings.Contains(r.env, "--hostname=edge-1") || !strings.Contains(r.env, "--label=zone=lab") {
		t.Errorf("the example warren.conf gave\n%s\nwant --hostname=edge-1 and --label=zone=lab", r.env)
	}
	if !strings.Contains(string(ud), `permissions: "0600"`) {
		t.Errorf("image/cloud-init/user-data writes warren.conf without permissions: \"0600\" (it holds the join token on a joining device)")
	}
}
