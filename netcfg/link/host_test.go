package link_test

import (
	"net/netip"
	"testing"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
	"github.com/warren-edge/warren/netcfg/link"
)

const bridge = "warren0"

var (
	gw     = netip.MustParsePrefix("10.88.3.1/24")
	gwAddr = gw.Addr()
)

// newHost returns a Host whose network namespace is a fresh test namespace
// and whose sandbox namespaces go to a temporary directory.
func newHost(t *testing.T) (*link.Host, *nstest.NS) {
	t.Helper()
	ns := nstest.New(t)
	h, err := link.Open(link.Config{NetNSPath: ns.Path, NetnsDir: nstest.NetnsDir(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h, ns
}

// newNode is newHost with the bridge made.
func newNode(t *testing.T) (*link.Host, *nstest.NS) {
	t.Helper()
	h, ns := newHost(t)
	if err := h.EnsureBridge(bridge, gw); err != nil {
		t.Fatalf("EnsureBridge(%s, %s): %v", bridge, gw, err)
	}
	return h, ns
}
