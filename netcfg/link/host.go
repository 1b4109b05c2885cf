package link

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultNetnsDir is where sandbox network namespaces are bind-mounted.
const DefaultNetnsDir = "/run/warren/netns"

// Config says which network namespace a Host works in.
type Config struct {
	// NetNSPath is the network namespace that plays the node: a file such
	// as /run/netns/NAME or /proc/PID/ns/net. Empty means the namespace of
	// this process (/proc/self/ns/net), the node's own in a daemon.
	NetNSPath string
	// NetnsDir is the directory sandbox namespaces are bind-mounted in.
	// Empty means DefaultNetnsDir.
	NetnsDir string
}

// Host is the node's side of container networking, in one network
// namespace: the bridge, the host ends of the veths, the sysctls. It is
// safe for concurrent use; operations run one at a time.
type Host struct {
	mu       sync.Mutex
	ns       netns.NsHandle
	nl       *netlink.Handle
	netnsDir string
}

// Open opens the host network namespace of cfg. Close the Host when done.
func Open(cfg Config) (*Host, error) {
	path := cfg.NetNSPath
	if path == "" {
		path = "/proc/self/ns/net"
	}
	ns, err := netns.GetFromPath(path)
	if err != nil {
		return nil, fmt.Errorf("link: open host network namespace %s: %w", path, err)
	}
	nl, err := handleIn(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("link: open host network namespace %s: %w", path, err)
	}
	dir := cfg.NetnsDir
	if dir == "" {
		dir = DefaultNetnsDir
	}
	return &Host{ns: ns, nl: nl, netnsDir: dir}, nil
}

// Close releases the Host's namespace handle and netlink socket. It changes
// nothing in the namespace.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.nl != nil {
		h.nl.Close()
		h.nl = nil
	}
	return h.ns.Close()
}

// NetNS returns the handle of the host network namespace, for example for
// nft.InNetNS. It stays valid until Close.
func (h *Host) NetNS() netns.NsHandle { return h.ns }

// NetnsDir returns the directory sandbox namespaces are mounted in.
func (h *Host) NetnsDir() string { return h.netnsDir }

// Do runs fn in the host network namespace. See the package function Do.
func (h *Host) Do(fn func() error) error { return Do(h.ns, fn) }

// handleIn opens a route netlink socket in ns.
func handleIn(ns netns.NsHandle) (*netlink.Handle, error) {
	var nl *netlink.Handle
	err := Do(ns, func() error {
		var err error
		nl, err = netlink.NewHandle(unix.NETLINK_ROUTE)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	return nl, nil
}

// isNotFound reports whether err says a link does not exist.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}
