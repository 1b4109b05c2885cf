package api

import (
	"strings"
	"testing"
)

func TestFileRefDefaultsAndChecks(t *testing.T) {
	s := ServiceSpec{Name: "web", Image: "localhost/busybox", Replicas: 1,
		Secrets: []FileRef{{Name: "db"}, {Name: "tls", Target: "certs/tls.pem"}, {Name: "abs", Target: "/etc/x/../y"}},
		Configs: []FileRef{{Name: "nginx.conf"}, {Name: "c2", Target: "/etc/nginx/conf.d/a.conf", Mode: 0o640}}}
	NormalizeSpec(&s)
	want := []string{"/run/secrets/db", "/run/secrets/certs/tls.pem", "/etc/y", "/nginx.conf", "/etc/nginx/conf.d/a.conf"}
	var got []string
	for _, r := range append(s.Secrets, s.Configs...) {
		got = append(got, r.Target)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("NormalizeSpec targets = %v, want %v", got, want)
	}
	if s.Secrets[0].Mode != DefaultFileMode || s.Configs[1].Mode != 0o640 {
		t.Errorf("modes %v %v, want the default and 0640 kept", s.Secrets[0].Mode, s.Configs[1].Mode)
	}
	if err := ValidateServiceSpec(&s); err != nil {
		t.Errorf("ValidateServiceSpec: %v", err)
	}

	bad := []struct {
		name string
		edit func(s *ServiceSpec)
		want string
	}{
		{"two files at one target", func(s *ServiceSpec) {
			s.Configs = append(s.Configs, FileRef{Name: "dup", Target: "/run/secrets/db", Mode: 0o444})
		}, "also the target of secret db"},
		{"a config with a relative target", func(s *ServiceSpec) { s.Configs[0].Target = "rel" }, "must be an absolute path"},
		{"a bad name", func(s *ServiceSpec) { s.Secrets[0].Name = "a b" }, "is not valid"},
		{"a mode beyond 0777", func(s *ServiceSpec) { s.Secrets[0].Mode = 0o4755 }, "not a file mode"},
		{"a forged ID", func(s *ServiceSpec) { s.Secrets[0].ID = "../../etc" }, "not a Warren ID"},
	}
	for _, c := range bad {
		sp := s
		sp.Secrets = append([]FileRef(nil), s.Secrets...)
		sp.Configs = append([]FileRef(nil), s.Configs...)
		c.edit(&sp)
		if err := ValidateServiceSpec(&sp); err == nil || !strings.Contains(errText(err), c.want) {
			t.Errorf("%s: ValidateServiceSpec = %v, want %q", c.name, err, c.want)
		}
	}
}

func errText(err error) string {
	if e, ok := err.(*Error); ok {
		var b strings.Builder
		b.WriteString(e.Message)
		for _, f := range e.Fields {
			b.WriteString(" " + f.Message)
		}
		return b.String()
	}
	return err.Error()
}

func TestSecretSizeAndNames(t *testing.T) {
	if err := ValidateSecretData(KindSecret, MaxSecretSize+1); err == nil || !strings.Contains(err.Error(), "500 KiB") {
		t.Errorf("a value of 500 KiB + 1: %v, want the limit named", err)
	}
	if err := ValidateSecretData(KindSecret, 0); err == nil {
		t.Errorf("an empty value is accepted")
	}
	for _, n := range []string{"db", "db.password", "TLS_cert-1"} {
		if err := ValidateSecretName(KindSecret, n); err != nil {
			t.Errorf("ValidateSecretName(%q) = %v", n, err)
		}
	}
	for _, n := range []string{"", ".hidden", "a/b", "a b", "x-"} {
		if err := ValidateSecretName(KindSecret, n); err == nil {
			t.Errorf("ValidateSecretName(%q) accepted", n)
		}
	}
	if s := (SecretRequest{Name: "db", Data: []byte("hunter2")}).String(); strings.Contains(s, "hunter2") {
		t.Errorf("SecretRequest prints its data: %s", s)
	}
}
