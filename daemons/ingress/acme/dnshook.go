package acme

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/mholt/acmez/v3"
	"github.com/mholt/acmez/v3/acme"
)

// DefaultDNSHookTimeout bounds one run of the DNS hook.
const DefaultDNSHookTimeout = 5 * time.Minute

// hookSolver solves dns-01 challenges with an operator's command, for
// sites behind NAT that no CA can reach on port 80 or 443:
//
//	HOOK present _acme-challenge.shop.example. VALUE
//	HOOK cleanup _acme-challenge.shop.example. VALUE
//
// (the arguments of lego's exec provider, so its scripts work). The
// command runs without a shell. "present" returns once the TXT record is
// visible to the world (waiting for propagation is the hook's job); a
// non-zero exit fails the challenge with the hook's stderr in the error.
type hookSolver struct {
	cmd     string
	timeout time.Duration
}

func (h hookSolver) Present(ctx context.Context, chal acme.Challenge) error {
	return h.run(ctx, "present", chal)
}

func (h hookSolver) CleanUp(ctx context.Context, chal acme.Challenge) error {
	return h.run(ctx, "cleanup", chal)
}

// maxHookStderr is how much of the hook's stderr goes into an error.
const maxHookStderr = 2048

func (h hookSolver) run(ctx context.Context, action string, chal acme.Challenge) error {
	fqdn := chal.DNS01TXTRecordName() + "."
	value := chal.DNS01KeyAuthorization()
	timeout := h.timeout
	if timeout <= 0 {
		timeout = DefaultDNSHookTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.cmd, action, fqdn, value)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &capped{buf: &stderr, max: maxHookStderr}
	if err := cmd.Run(); err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %s", timeout)
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = "(no stderr)"
		}
		return fmt.Errorf("acme: dns hook %s %s %s: %w: %s", h.cmd, action, fqdn, err, msg)
	}
	return nil
}

// capped keeps the first max bytes written to it and drops the rest.
type capped struct {
	buf *bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

var _ acmez.Solver = hookSolver{}
