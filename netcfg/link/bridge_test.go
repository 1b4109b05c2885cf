package link_test

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
)

func TestEnsureBridge(t *testing.T) {
	rootForward, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	h, ns := newNode(t)

	br, err := ns.NL.LinkByName(bridge)
	if err != nil {
		t.Fatalf("after EnsureBridge, no link %s in the host namespace: %v", bridge, err)
	}
	if br.Type() != "bridge" {
		t.Errorf("%s is a %s, want a bridge", bridge, br.Type())
	}
	if br.Attrs().Flags&(1<<0) == 0 { // net.FlagUp
		t.Errorf("%s is down, want up", bridge)
	}
	assertAddrs(t, ns.NL, br, "10.88.3.1/24")
	for key, want := range map[string]string{
		"net/ipv4/ip_forward":                         "1",
		"net/ipv4/conf/" + bridge + "/route_localnet": "1",
	} {
		if got, err := h.Sysctl(key); err != nil || got != want {
			t.Errorf("host namespace sysctl %s = %q, %v; want %q", key, got, err, want)
		}
	}
	if now, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); string(now) != string(rootForward) {
		t.Errorf("the real host's ip_forward changed from %q to %q: EnsureBridge wrote outside its namespace", rootForward, now)
	}

	// Again: nothing changes, not even the MAC address.
	mac := br.Attrs().HardwareAddr.String()
	if err := h.EnsureBridge(bridge, gw); err != nil {
		t.Fatalf("second EnsureBridge: %v", err)
	}
	br, _ = ns.NL.LinkByName(bridge)
	if got := br.Attrs().HardwareAddr.String(); got != mac {
		t.Errorf("second EnsureBridge changed the MAC address from %s to %s", mac, got)
	}
	assertAddrs(t, ns.NL, br, "10.88.3.1/24")

	// A new subnet replaces the old gateway address.
	if err := h.EnsureBridge(bridge, netip.MustParsePrefix("10.88.9.1/24")); err != nil {
		t.Fatalf("EnsureBridge with a new gateway: %v", err)
	}
	assertAddrs(t, ns.NL, br, "10.88.9.1/24")
}

func TestEnsureBridgeErrors(t *testing.T) {
	h, ns := newHost(t)
	// A link of another kind already has the name.
	// (This kernel has no dummy links; a veth will do.)
	if err := ns.NL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "taken0"}, PeerName: "taken1"}); err != nil {
		t.Fatal(err)
	}
	err := h.EnsureBridge("taken0", gw)
	if err == nil || !strings.Contains(err.Error(), "a veth link with that name exists") {
		t.Errorf("EnsureBridge over a veth: error %v, want one saying a veth has the name", err)
	}
	for _, bad := range []string{"10.88.3.0/24", "10.88.3.1/31", "fd00::1/64"} {
		if err := h.EnsureBridge(bridge, netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("EnsureBridge(%s, %s) succeeded, want an error", bridge, bad)
		}
	}
	if err := h.EnsureBridge("name-longer-than-15", gw); err == nil {
		t.Errorf("EnsureBridge with a 19-byte name succeeded, want an error")
	}
}

func TestDeleteBridge(t *testing.T) {
	h, ns := newNode(t)
	if err := h.DeleteBridge(bridge); err != nil {
		t.Fatalf("DeleteBridge: %v", err)
	}
	if _, err := ns.NL.LinkByName(bridge); err == nil {
		t.Errorf("after DeleteBridge, %s still exists", bridge)
	}
	if err := h.DeleteBridge(bridge); err != nil {
		t.Errorf("DeleteBridge of a missing bridge: %v, want nil", err)
	}
	if err := ns.NL.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "notbr0"}, PeerName: "notbr1"}); err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteBridge("notbr0"); err == nil {
		t.Errorf("DeleteBridge(notbr0) deleted a veth, want a refusal")
	}
}

func assertAddrs(t *testing.T, nl *netlink.Handle, l netlink.Link, want ...string) {
	t.Helper()
	addrs, err := nl.AddrList(l, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range addrs {
		got = append(got, a.IPNet.String())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("%s has IPv4 addresses %v, want %v", l.Attrs().Name, got, want)
	}
}

func TestRouteLocalnet(t *testing.T) {
	h, ns := newNode(t)
	peer := nstest.New(t)
	nstest.Connect(t, ns, "wvmesh0", nil, peer, "wvmesh0", nil)
	key := "net/ipv4/conf/wvmesh0/route_localnet"
	if got, _ := h.Sysctl(key); got != "0" {
		t.Fatalf("before RouteLocalnet, %s = %q, want 0", key, got)
	}
	for range 2 { // the second call changes nothing
		if err := h.RouteLocalnet("wvmesh0"); err != nil {
			t.Fatalf("RouteLocalnet(wvmesh0): %v", err)
		}
	}
	if got, err := h.Sysctl(key); err != nil || got != "1" {
		t.Errorf("after RouteLocalnet, %s = %q, %v; want 1", key, got, err)
	}
	if err := h.RouteLocalnet("wvnothere0"); err == nil || !strings.Contains(err.Error(), "wvnothere0") {
		t.Errorf("RouteLocalnet(wvnothere0), no such link = %v; want an error naming it", err)
	}
}
