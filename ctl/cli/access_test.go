package cli_test

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/ctl/format"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/pki"
)

func TestOperatorAdd(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantReq api.OperatorRequest // without the CSR
	}{
		{"an admin", []string{"alice", "--role", "admin"}, api.OperatorRequest{Name: "alice", Role: "admin"}},
		{"an operator", []string{"ci", "--role", "operator", "--ttl", "720h"}, api.OperatorRequest{Name: "ci", Role: "operator", TTL: api.Duration(720 * time.Hour)}},
		{"a viewer", []string{"dashboard", "--role=viewer"}, api.OperatorRequest{Name: "dashboard", Role: "viewer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, url := newAccessFake(t)
			dir := filepath.Join(t.TempDir(), "creds", tt.wantReq.Name)
			args := append([]string{"operator", "add", "--out", dir}, tt.args...)
			r := f.run(url, args...)
			if r.code != 0 {
				t.Fatalf("warrenctl %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
			}
			if calls := f.takeCalls(); !slices.Equal(calls, []string{"POST /v1/operators"}) {
				t.Fatalf("warrenctl %s called %q, want one POST /v1/operators", strings.Join(args, " "), calls)
			}
			got := f.opReqs[0]
			csr, err := x509.ParseCertificateRequest(got.CSR)
			if err != nil || csr.CheckSignature() != nil {
				t.Fatalf("warrenctl %s sent a CSR that does not parse or verify: %v", strings.Join(args, " "), err)
			}
			if csr.Subject.CommonName != tt.wantReq.Name {
				t.Errorf("the CSR names %q, want %q", csr.Subject.CommonName, tt.wantReq.Name)
			}
			got.CSR = nil
			if !reflect.DeepEqual(got, tt.wantReq) {
				t.Errorf("warrenctl %s asked for %+v, want %+v", strings.Join(args, " "), got, tt.wantReq)
			}

			// The files: the key made here for the CSR sent, 0600, in a 0700 dir.
			checkMode(t, dir, 0o700|os.ModeDir)
			checkMode(t, filepath.Join(dir, "operator.key"), 0o600)
			keyPEM, _ := os.ReadFile(filepath.Join(dir, "operator.key"))
			key, err := pki.ParseKey(keyPEM)
			if err != nil {
				t.Fatalf("operator.key: %v", err)
			}
			if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(csr.PublicKey) {
				t.Errorf("operator.key is not the key the CSR was made for")
			}
			for name, want := range map[string]string{"operator.crt": "CERT OF " + tt.wantReq.Name + "\n", "ca.crt": "THE CLUSTER'S CA\n"} {
				if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
					t.Errorf("%s holds %q (%v), want the manager's answer %q", name, b, err, want)
				}
			}
			wantUse := "    WARREN_HOST=https://10.0.0.1:4242 WARREN_TLS_DIR=" + dir + " warrenctl node ls\n"
			if !strings.Contains(r.stdout, wantUse) || !strings.Contains(r.stdout, "10.0.0.1:4242, 10.0.0.2:4242") {
				t.Errorf("operator add printed:\n%s\nwant the line %q and the managers' node ports", r.stdout, wantUse)
			}
			if !strings.Contains(r.stdout, "Operator "+tt.wantReq.Name+" ("+tt.wantReq.Role+") added; the certificate expires "+format.Time(accessNow.Add(90*24*time.Hour))+" (in 3 months)") {
				t.Errorf("operator add does not say who was added and when the certificate expires:\n%s", r.stdout)
			}

			// Again into the same dir: refused before anything is asked.
			r = f.run(url, args...)
			if r.code != 1 || !strings.Contains(r.stderr, filepath.Join(dir, "operator.key")+" exists already: choose another --out, or give --force") {
				t.Errorf("a second operator add into %s: exit %d, stderr %q; want 1 and a refusal to overwrite", dir, r.code, r.stderr)
			}
			if calls := f.takeCalls(); len(calls) != 0 {
				t.Errorf("a refused operator add still called %q", calls)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "operator.key")); string(b) != string(keyPEM) {
				t.Errorf("a refused operator add changed operator.key")
			}
			// --force replaces the files, with a new key.
			r = f.run(url, append(args, "--force")...)
			if r.code != 0 {
				t.Fatalf("operator add --force: exit %d, stderr %q", r.code, r.stderr)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "operator.key")); string(b) == string(keyPEM) {
				t.Errorf("operator add --force kept the old operator.key")
			}
			checkMode(t, filepath.Join(dir, "operator.key"), 0o600)
		})
	}
}

func TestOperatorAddRefused(t *testing.T) {
	f, url := newAccessFake(t)
	dir := filepath.Join(t.TempDir(), "taken")
	r := f.run(url, "operator", "add", "taken", "--role", "viewer", "--out", dir)
	if r.code != 1 || r.stderr != "warrenctl: operator \"taken\" was removed and stays revoked until its old certificates expire: choose another name\n" {
		t.Errorf("operator add refused by the manager: exit %d, stderr %q; want 1 and the manager's reason", r.code, r.stderr)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("operator add refused by the manager left the directory %s it made", dir)
	}
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("%s has mode %v, want %v", path, fi.Mode(), want)
	}
}

func TestOperatorLsAndRm(t *testing.T) {
	f, url := newAccessFake(t)
	r := f.run(url, "operator", "ls")
	if r.code != 0 {
		t.Fatalf("operator ls: exit %d, stderr %q", r.code, r.stderr)
	}
	golden(t, "operator_ls", r.stdout)
	if r := f.run(url, "operator", "ls", "-q"); r.stdout != "dashboard\nalice\nci\n" {
		t.Errorf("operator ls -q printed %q, want the names", r.stdout)
	}
	var ops []api.Operator
	if r := f.run(url, "operator", "ls", "-o", "json"); json.Unmarshal([]byte(r.stdout), &ops) != nil || len(ops) != 3 || ops[1].Role != "admin" {
		t.Errorf("operator ls -o json printed %q, want the three operators", r.stdout)
	}
	f.takeCalls()

	r = f.run(url, "operator", "rm", "alice", "ghost", "ci")
	want := []string{"DELETE /v1/operators/alice", "DELETE /v1/operators/ghost", "DELETE /v1/operators/ci"}
	if calls := f.takeCalls(); !slices.Equal(calls, want) {
		t.Errorf("operator rm alice ghost ci called %q, want %q", calls, want)
	}
	if r.code != 1 || r.stdout != "alice\nci\n" || r.stderr != "warrenctl: no operator \"ghost\": list them with warrenctl operator ls\n" {
		t.Errorf("operator rm alice ghost ci: exit %d, stdout %q, stderr %q; want 1, the two removed, the missing one's error", r.code, r.stdout, r.stderr)
	}
}

func TestJoinToken(t *testing.T) {
	tests := []struct {
		args     []string
		wantCall string
		golden   string   // "" for -q
		want     []string // in stdout
	}{
		{[]string{"worker"}, "POST /v1/join-tokens/worker", "join_token_worker", []string{"The token does not expire"}},
		{[]string{"manager", "--rotate", "--ttl", "2h"}, "POST /v1/join-tokens/manager?rotate=1&ttl=2h0m0s", "join_token_manager",
			[]string{"cluster = join", "The other manager tokens are revoked", "(in 2 hours)"}},
		{[]string{"manager"}, "POST /v1/join-tokens/manager", "", []string{"(in 24 hours)"}},
		{[]string{"worker", "-q"}, "POST /v1/join-tokens/worker", "", nil},
	}
	for _, tt := range tests {
		f, url := newAccessFake(t)
		args := append([]string{"join-token"}, tt.args...)
		r := f.run(url, args...)
		if r.code != 0 {
			t.Errorf("warrenctl %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
			continue
		}
		if calls := f.takeCalls(); !slices.Equal(calls, []string{tt.wantCall}) {
			t.Errorf("warrenctl %s called %q, want %q", strings.Join(args, " "), calls, tt.wantCall)
		}
		token := "WRN-1-" + tt.args[0][:1] + "-cadigest-n3wt0k3n-s3cr3t"
		if slices.Contains(tt.args, "-q") {
			if r.stdout != token+"\n" {
				t.Errorf("warrenctl %s printed %q, want only the token", strings.Join(args, " "), r.stdout)
			}
			continue
		}
		for _, l := range strings.Split(r.stdout, "\n") {
			if strings.Contains(l, "warren manager") && strings.Contains(l, token) {
				t.Errorf("warrenctl %s puts the token on a command line: %q", strings.Join(args, " "), l)
			}
		}
		for _, w := range append(tt.want, "shown only now", "\n    "+token+"\n", "--token-file", "join_token = "+token, "managers = 10.0.0.1:4242,10.0.0.2:4242") {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("warrenctl %s printed:\n%s\nwant %q in it", strings.Join(args, " "), r.stdout, w)
			}
		}
		if tt.golden != "" {
			golden(t, tt.golden, strings.ReplaceAll(r.stdout, format.Time(accessNow.Add(2*time.Hour)), "DATE"))
		}
	}
}

func TestJoinTokenLsAndRm(t *testing.T) {
	f, url := newAccessFake(t)
	r := f.run(url, "join-token", "ls")
	if r.code != 0 {
		t.Fatalf("join-token ls: exit %d, stderr %q", r.code, r.stderr)
	}
	golden(t, "join_token_ls", r.stdout)
	if strings.Contains(r.stdout, "WRN-") {
		t.Errorf("join-token ls shows a token:\n%s", r.stdout)
	}
	if r := f.run(url, "join-token", "ls", "-q"); r.stdout != "m2aaaaaa\nw1aaaaaa\nw2aaaaaa\n" {
		t.Errorf("join-token ls -q printed %q, want the IDs", r.stdout)
	}
	var tokens []api.JoinTokenInfo
	if r := f.run(url, "join-token", "ls", "-o", "json"); json.Unmarshal([]byte(r.stdout), &tokens) != nil || len(tokens) != 3 {
		t.Errorf("join-token ls -o json printed %q, want the three tokens", r.stdout)
	}
	if calls := f.takeCalls(); !slices.Equal(calls, []string{"GET /v1/join-tokens", "GET /v1/join-tokens", "GET /v1/join-tokens"}) {
		t.Errorf("join-token ls called %q, want GET /v1/join-tokens each time", calls)
	}

	r = f.run(url, "join-token", "rm", "w1aaaaaa", "nope", "m2aaaaaa")
	want := []string{"DELETE /v1/join-tokens/w1aaaaaa", "DELETE /v1/join-tokens/nope", "DELETE /v1/join-tokens/m2aaaaaa"}
	if calls := f.takeCalls(); !slices.Equal(calls, want) {
		t.Errorf("join-token rm w1aaaaaa nope m2aaaaaa called %q, want %q", calls, want)
	}
	if r.code != 1 || r.stdout != "w1aaaaaa\nm2aaaaaa\n" || !strings.Contains(r.stderr, `no live join token "nope"`) {
		t.Errorf("join-token rm w1aaaaaa nope m2aaaaaa: exit %d, stdout %q, stderr %q; want 1, the two revoked, the missing one's error", r.code, r.stdout, r.stderr)
	}
}
