package link

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetNSPath returns the file sandbox id's network namespace is mounted on.
func (h *Host) NetNSPath(id string) string { return filepath.Join(h.netnsDir, id) }

// CreateSandbox makes the network of sandbox id and returns the path of its
// network namespace (NetnsDir/id), for the container runtime:
//
//   - a network namespace bind-mounted at NetnsDir/id, which lives on with
//     no process in it;
//   - a veth pair: the host end, named VethName(id), attached to bridge in
//     hairpin mode and up; the other end, eth0 in the sandbox, with address addr (such as
//     10.88.3.2/24) and up;
//   - lo up and a default route via gw in the sandbox.
//
// The bridge must exist (EnsureBridge). Calling CreateSandbox again for the
// same id repairs and reuses what exists; a new addr replaces the old one.
// If it fails for a new sandbox, nothing of it is left behind.
func (h *Host) CreateSandbox(id, bridge string, addr netip.Prefix, gw netip.Addr) (nsPath string, err error) {
	if err := checkID(id); err != nil {
		return "", fmt.Errorf("link: create sandbox: %w", err)
	}
	if !addr.IsValid() || !addr.Addr().Is4() || addr.Addr() == addr.Masked().Addr() {
		return "", fmt.Errorf("link: create sandbox %s: address %s: want the container's IPv4 address with the subnet's prefix length, such as 10.88.3.2/24", id, addr)
	}
	if !gw.Is4() || !addr.Contains(gw) || gw == addr.Addr() {
		return "", fmt.Errorf("link: create sandbox %s: gateway %s: want the bridge's address in %s", id, gw, addr.Masked())
	}
	h.mu.Lock()
	defer h.mu.Unlock()

	br, err := h.nl.LinkByName(bridge)
	if isNotFound(err) {
		return "", fmt.Errorf("link: create sandbox %s: bridge %s does not exist: call EnsureBridge first", id, bridge)
	}
	if err != nil {
		return "", fmt.Errorf("link: create sandbox %s: bridge %s: %w", id, bridge, err)
	}
	if br.Type() != "bridge" {
		return "", fmt.Errorf("link: create sandbox %s: %s is a %s link, not a bridge", id, bridge, br.Type())
	}

	path := h.NetNSPath(id)
	ns, created, err := h.ensureNetNS(path)
	if err != nil {
		return "", fmt.Errorf("link: create sandbox %s: network namespace %s: %w", id, path, err)
	}
	defer ns.Close()
	if created {
		defer func() {
			if err != nil {
				h.deleteSandbox(id)
			}
		}()
	}
	sbx, err := handleIn(ns)
	if err != nil {
		return "", fmt.Errorf("link: create sandbox %s: %w", id, err)
	}
	defer sbx.Close()

	host, peer, err := h.ensureVeth(id, br, ns, sbx)
	if err != nil {
		return "", fmt.Errorf("link: create sandbox %s: veth: %w", id, err)
	}
	if err := h.nl.LinkSetMaster(host, br); err != nil {
		return "", fmt.Errorf("link: create sandbox %s: attach %s to %s: %w", id, host.Attrs().Name, bridge, err)
	}
	// Hairpin: a container reaching its own published port (node
	// address -> DNAT back to itself) sends a frame that the bridge must
	// return through the port it came in on. With br_netfilter the DNAT
	// happens in the bridge, so this is needed (Docker and kubelet set it
	// too).
	if err := h.nl.LinkSetHairpin(host, true); err != nil {
		return "", fmt.Errorf("link: create sandbox %s: hairpin mode on %s: %w", id, host.Attrs().Name, err)
	}
	if err := h.nl.LinkSetUp(host); err != nil {
		return "", fmt.Errorf("link: create sandbox %s: set %s up: %w", id, host.Attrs().Name, err)
	}
	if err := configureSandbox(sbx, peer, addr, gw); err != nil {
		return "", fmt.Errorf("link: create sandbox %s: inside: %w", id, err)
	}
	return path, nil
}

// ensureNetNS opens the namespace at path, creating it (and the directory)
// if needed. created says whether it was made by this call.
func (h *Host) ensureNetNS(path string) (ns netns.NsHandle, created bool, err error) {
	if err := ensureSharedDir(h.netnsDir); err != nil {
		return netns.None(), false, err
	}
	ns, err = openNetNSFile(path)
	switch {
	case err == nil:
		return ns, false, nil
	case errors.Is(err, errNotNetNS):
		// A file with nothing mounted: a crash between creating and
		// mounting. Start over.
		if err := removeNetNSFile(path); err != nil {
			return netns.None(), false, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return netns.None(), false, err
	}
	if err := createNetNSFile(path); err != nil {
		return netns.None(), false, err
	}
	ns, err = openNetNSFile(path)
	if err != nil {
		removeNetNSFile(path)
		return netns.None(), false, err
	}
	return ns, true, nil
}

// ensureVeth returns the two ends of sandbox id's veth pair, creating the
// pair if it does not exist. Ends that do not belong together (one of them
// was lost) are deleted and the pair made again.
func (h *Host) ensureVeth(id string, br netlink.Link, ns netns.NsHandle, sbx *netlink.Handle) (host, peer netlink.Link, err error) {
	name := VethName(id)
	host, herr := h.nl.LinkByName(name)
	peer, perr := sbx.LinkByName(SandboxIfname)
	if herr != nil && !isNotFound(herr) {
		return nil, nil, herr
	}
	if perr != nil && !isNotFound(perr) {
		return nil, nil, perr
	}
	if herr == nil && perr == nil && host.Type() == "veth" && peer.Type() == "veth" &&
		host.Attrs().ParentIndex == peer.Attrs().Index && peer.Attrs().ParentIndex == host.Attrs().Index {
		return host, peer, nil
	}
	if herr == nil {
		if err := h.nl.LinkDel(host); err != nil && !isNotFound(err) {
			return nil, nil, fmt.Errorf("delete stale %s: %w", name, err)
		}
	}
	if perr == nil {
		if err := sbx.LinkDel(peer); err != nil && !isNotFound(err) {
			return nil, nil, fmt.Errorf("delete stale %s in the sandbox: %w", SandboxIfname, err)
		}
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: name, MTU: br.Attrs().MTU},
		PeerName:      SandboxIfname,
		PeerNamespace: netlink.NsFd(ns),
		PeerMTU:       uint32(br.Attrs().MTU),
	}
	if err := h.nl.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", name, err)
	}
	// The alias tells an operator running "ip link" whose veth this is.
	if host, err = h.nl.LinkByName(name); err != nil {
		return nil, nil, err
	}
	if err := h.nl.LinkSetAlias(host, "warren sandbox "+id); err != nil {
		return nil, nil, fmt.Errorf("set alias of %s: %w", name, err)
	}
	if peer, err = sbx.LinkByName(SandboxIfname); err != nil {
		return nil, nil, fmt.Errorf("find %s in the sandbox: %w", SandboxIfname, err)
	}
	return host, peer, nil
}

// configureSandbox sets up lo and eth0 inside the sandbox: the address, up,
// and the default route via gw.
func configureSandbox(sbx *netlink.Handle, eth netlink.Link, addr netip.Prefix, gw netip.Addr) error {
	lo, err := sbx.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("lo: %w", err)
	}
	if err := sbx.LinkSetUp(lo); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	addrs, err := sbx.AddrList(eth, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", SandboxIfname, err)
	}
	want := IPNet(addr)
	found := false
	for _, a := range addrs {
		if a.IPNet.String() == want.String() {
			found = true
			continue
		}
		if err := sbx.AddrDel(eth, &a); err != nil {
			return fmt.Errorf("remove old address %s: %w", a.IPNet, err)
		}
	}
	if !found {
		if err := sbx.AddrAdd(eth, &netlink.Addr{IPNet: want}); err != nil {
			return fmt.Errorf("add address %s to %s: %w", addr, SandboxIfname, err)
		}
	}
	if err := sbx.LinkSetUp(eth); err != nil {
		return fmt.Errorf("set %s up: %w", SandboxIfname, err)
	}
	route := &netlink.Route{
		LinkIndex: eth.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        net.IP(gw.AsSlice()),
	}
	if err := sbx.RouteReplace(route); err != nil {
		return fmt.Errorf("default route via %s: %w", gw, err)
	}
	return nil
}

// DeleteSandbox removes sandbox id's network namespace file and sets its
// veth pair down, off the bridge; the kernel deletes the pair with the
// namespace, soon after (see deleteSandbox).
// Parts that are already gone are not an error, so it also cleans up after
// a half-made sandbox.
func (h *Host) DeleteSandbox(id string) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("link: delete sandbox: %w", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.deleteSandbox(id); err != nil {
		return fmt.Errorf("link: delete sandbox %s: %w", id, err)
	}
	return nil
}

func (h *Host) deleteSandbox(id string) error {
	// The host end is set down, not deleted: the pair goes with the
	// namespace. Once its file is unmounted and no process is in it, the
	// kernel deletes the namespace's devices, the pair with them, in a
	// batch of its own, soon after (about 15 ms here). Deleting the veth
	// here waited for the kernel's RCU grace periods instead, about 25 ms
	// a sandbox under this Host's lock: removing 100 tasks cost the agent
	// 3 s. Down and off the bridge, the host end takes no frame meanwhile,
	// so an address given out again at once is not answered by the old
	// sandbox. The namespace may outlive its file while something holds
	// it (a process still in it; a root process that opened the file:
	// unlike iproute2's, the directory is root's alone): it then keeps its
	// pair, down and off the bridge, so that holding many cannot fill the
	// bridge's ports.
	name := VethName(id)
	l, err := h.nl.LinkByName(name)
	switch {
	case err == nil:
		if err := h.nl.LinkSetDown(l); err != nil && !isNotFound(err) {
			return fmt.Errorf("set %s down: %w", name, err)
		}
		if err := h.nl.LinkSetNoMaster(l); err != nil && !isNotFound(err) {
			return fmt.Errorf("take %s off the bridge: %w", name, err)
		}
	case !isNotFound(err):
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := removeNetNSFile(h.NetNSPath(id)); err != nil {
		return err
	}
	return nil
}

// ListSandboxes returns the ids of the sandboxes whose namespace files are in
// NetnsDir, sorted, so that an agent can delete those it no longer runs
// after a restart. A missing directory means no sandboxes.
func (h *Host) ListSandboxes() ([]string, error) {
	entries, err := os.ReadDir(h.netnsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("link: list sandboxes in %s: %w", h.netnsDir, err)
	}
	var ids []string
	for _, e := range entries {
		if e.Type().IsRegular() && checkID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}
