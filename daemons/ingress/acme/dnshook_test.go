package acme

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mholt/acmez/v3/acme"
)

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHookSolver(t *testing.T) {
	out := filepath.Join(t.TempDir(), "calls")
	h := hookSolver{cmd: writeScript(t, `echo "$1 $2 $3" >> `+out+"\n"), timeout: 10 * time.Second}
	chal := acme.Challenge{Type: acme.ChallengeTypeDNS01, Token: "tok", KeyAuthorization: "tok.thumb",
		Identifier: acme.Identifier{Type: "dns", Value: "shop.example"}}
	if err := h.Present(context.Background(), chal); err != nil {
		t.Fatalf("Present: %v", err)
	}
	if err := h.CleanUp(context.Background(), chal); err != nil {
		t.Fatalf("CleanUp: %v", err)
	}
	b, _ := os.ReadFile(out)
	v := chal.DNS01KeyAuthorization()
	want := "present _acme-challenge.shop.example. " + v + "\ncleanup _acme-challenge.shop.example. " + v + "\n"
	if string(b) != want {
		t.Errorf("hook was called with\n%s\nwant\n%s", b, want)
	}
}

func TestHookSolverFails(t *testing.T) {
	chal := acme.Challenge{Type: acme.ChallengeTypeDNS01, Identifier: acme.Identifier{Type: "dns", Value: "shop.example"}}
	h := hookSolver{cmd: writeScript(t, "echo 'zone shop.example: API token refused' >&2\nexit 3\n"), timeout: 10 * time.Second}
	err := h.Present(context.Background(), chal)
	if err == nil || !strings.Contains(err.Error(), "API token refused") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("Present with a failing hook = %v, want its exit status and stderr", err)
	}
	h = hookSolver{cmd: writeScript(t, "exec sleep 30\n"), timeout: 200 * time.Millisecond}
	err = h.Present(context.Background(), chal)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("Present with a hook that hangs = %v, want a timeout", err)
	}
	h = hookSolver{cmd: "/nonexistent/hook"}
	if err := h.Present(context.Background(), chal); err == nil {
		t.Errorf("Present with a missing hook succeeded")
	}
}
