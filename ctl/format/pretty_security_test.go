package format

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
)

func TestPrettySecurity(t *testing.T) {
	services, _, _ := fixture()
	s := services[0]
	s.Spec.CapAdd = []string{"CAP_NET_BIND_SERVICE"}
	s.Spec.CapDrop = []string{"ALL"}
	s.Spec.Seccomp = api.SeccompUnconfined
	s.Spec.AllowNewPrivileges = true
	s.Spec.PidsLimit = api.PidsUnlimited
	s.Spec.User = "65534:65534"
	var b bytes.Buffer
	if err := PrettyService(&b, &s, now); err != nil {
		t.Fatal(err)
	}
	golden(t, "service_pretty_security", b.Bytes())
	s.Spec.CapDrop, s.Spec.PidsLimit = []string{"NET_RAW"}, 100
	b.Reset()
	PrettyService(&b, &s, now)
	for _, want := range []string{`\n  Pids Limit: +100\n`, `\n   Dropped: +NET_RAW\n`, `Capabilities: +CAP_AUDIT_WRITE, .*CAP_NET_BIND_SERVICE, CAP_SETFCAP`} {
		if !regexp.MustCompile(want).MatchString(b.String()) {
			t.Errorf("service inspect --pretty of a spec with capDrop [NET_RAW], pidsLimit 100 does not show %q:\n%s", want, b.String())
		}
	}
}
