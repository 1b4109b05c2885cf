package wg

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"sort"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/warren-edge/warren/netcfg/link"
)

// Overhead is what WireGuard adds to each packet over an IPv4 underlay (20
// IP, 8 UDP, 32 WireGuard); over IPv6 it is 80.
const (
	Overhead4 = 60
	Overhead6 = 80
)

// MeshConfig is the agent's side of the mesh.
type MeshConfig struct {
	// Iface is the interface Serve made (default warren-wg).
	Iface string
	// KeyFile holds the node's private key (made on first use).
	KeyFile string
	// Port is the UDP port the node listens on (default 51820).
	Port int
	// NetNSPath is the network namespace that plays the node; "" is this
	// process's own (tests run a node in a namespace they made).
	NetNSPath string
}

// Self is this node's side of the mesh, from its node record.
type Self struct {
	// Gateway is the node's bridge address, first of its subnet.
	Gateway netip.Addr
	// Underlay is the node's address on its LAN, for the MTU.
	Underlay netip.Addr
}

// Mesh configures the node's mesh interface through wgctrl.
type Mesh struct {
	cfg  MeshConfig
	key  wgtypes.Key
	wg   *wgctrl.Client
	host *link.Host

	mu      sync.Mutex
	applied map[wgtypes.Key]netip.AddrPort
	heard   map[wgtypes.Key]heard
	status  Status
}

type heard struct {
	rx uint64
	at time.Time
}

// Status is the mesh as the last Sync left it.
type Status struct {
	Mode  string       `json:"mode"`
	Iface string       `json:"iface"`
	Port  int          `json:"port"`
	MTU   int          `json:"mtu"`
	Peers []PeerStatus `json:"peers"`
	Err   string       `json:"error,omitempty"`
	// Fresh: the interface had no key (new, or warren mesh restarted)
	// and this sync set it up from nothing.
	Fresh bool `json:"-"`
}

// PeerStatus is one peer as the device sees it.
type PeerStatus struct {
	NodeID        string    `json:"nodeID"`
	Endpoint      string    `json:"endpoint,omitempty"`
	LastHandshake time.Time `json:"lastHandshake,omitzero"`
	// LastHeard is when traffic from the peer was last seen (its
	// keepalive comes every Keepalive at least).
	LastHeard time.Time `json:"lastHeard,omitzero"`
	RxBytes   int64     `json:"rxBytes"`
	TxBytes   int64     `json:"txBytes"`
	Reachable bool      `json:"reachable"`
}

// HeardFresh is how long a peer may be silent and still count as
// reachable: two keepalives and a margin, 35 s. A node that goes dark
// leaves DNS answers within HeardFresh, the agent's sync period and
// warren-dns's poll: about 42 s.
const HeardFresh = 2*Keepalive + 5*time.Second

// NewMesh loads (or makes) the node's key and opens wgctrl.
func NewMesh(cfg MeshConfig) (*Mesh, error) {
	if cfg.Iface == "" {
		cfg.Iface = DefaultIface
	}
	if cfg.Port == 0 {
		cfg.Port = 51820
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return nil, fmt.Errorf("wg: mesh port %d: want 1 to 65535", cfg.Port)
	}
	if cfg.KeyFile == "" {
		return nil, errors.New("wg: mesh: a key file is required")
	}
	key, err := LoadOrCreateKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	host, err := link.Open(link.Config{NetNSPath: cfg.NetNSPath})
	if err != nil {
		return nil, fmt.Errorf("wg: mesh: %w", err)
	}
	var c *wgctrl.Client
	err = host.Do(func() (err error) { c, err = wgctrl.New(); return err })
	if err != nil {
		host.Close()
		return nil, fmt.Errorf("wg: open wgctrl: %w", err)
	}
	return &Mesh{cfg: cfg, key: key, wg: c, host: host, applied: map[wgtypes.Key]netip.AddrPort{}, heard: map[wgtypes.Key]heard{}}, nil
}

// PublicKey is the node's public key, for its node record.
func (m *Mesh) PublicKey() wgtypes.Key { return m.key.PublicKey() }

// Port is the UDP port the node listens on.
func (m *Mesh) Port() int { return m.cfg.Port }

// Iface is the mesh interface's name.
func (m *Mesh) Iface() string { return m.cfg.Iface }

// ErrNoDevice says the mesh interface does not exist (warren-mesh is not
// running).
var ErrNoDevice = errors.New("wg: the mesh interface does not exist: is warren-mesh running?")

// Sync makes the interface carry the node's key and port and exactly the
// peers given, sets its MTU and address and routes each peer's subnet
// through it. It changes only what differs. now stamps the reachability.
func (m *Mesh) Sync(self Self, peers []Peer, now time.Time) (Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.sync(self, peers, now)
	if err != nil {
		st.Err = err.Error()
	}
	m.status = st
	return st, err
}

func (m *Mesh) sync(self Self, peers []Peer, now time.Time) (Status, error) {
	st := Status{Iface: m.cfg.Iface, Port: m.cfg.Port}
	dev, err := m.device()
	if err != nil {
		return st, err
	}
	st.Mode = modeOf(dev.Type)
	if dev.PrivateKey != m.key || dev.ListenPort != m.cfg.Port {
		st.Fresh = true
		port := m.cfg.Port
		if err := m.wg.ConfigureDevice(m.cfg.Iface, wgtypes.Config{PrivateKey: &m.key, ListenPort: &port}); err != nil {
			return st, fmt.Errorf("wg: set the key and port of %s: %w", m.cfg.Iface, err)
		}
	}
	byKey := map[wgtypes.Key]string{}
	var routes []netip.Prefix
	for _, p := range peers {
		byKey[p.PublicKey] = p.NodeID
		routes = append(routes, p.Subnet)
	}
	if cfg, change := Plan(dev.Peers, peers, m.applied); change {
		if err := m.wg.ConfigureDevice(m.cfg.Iface, cfg); err != nil {
			return st, fmt.Errorf("wg: configure the peers of %s: %w", m.cfg.Iface, err)
		}
		if dev, err = m.device(); err != nil {
			return st, err
		}
	}
	overhead := Overhead4
	if self.Underlay.Is6() && !self.Underlay.Is4In6() {
		overhead = Overhead6
	}
	st.MTU = m.host.UnderlayMTU(self.Underlay) - overhead
	if err := m.host.EnsureMesh(link.MeshLink{Name: m.cfg.Iface, Addr: self.Gateway, MTU: st.MTU, Routes: routes}); err != nil {
		return st, err
	}
	seen := map[wgtypes.Key]bool{}
	for _, p := range dev.Peers {
		seen[p.PublicKey] = true
		h := m.heard[p.PublicKey]
		if rx := uint64(p.ReceiveBytes); rx != h.rx {
			h = heard{rx: rx, at: now}
			m.heard[p.PublicKey] = h
		}
		ps := PeerStatus{NodeID: byKey[p.PublicKey], LastHandshake: p.LastHandshakeTime, LastHeard: h.at,
			RxBytes: p.ReceiveBytes, TxBytes: p.TransmitBytes}
		if p.Endpoint != nil {
			ps.Endpoint = p.Endpoint.String()
		}
		ps.Reachable = Reachable(p.LastHandshakeTime, now) && !h.at.IsZero() && now.Sub(h.at) < HeardFresh
		st.Peers = append(st.Peers, ps)
	}
	for k := range m.heard {
		if !seen[k] {
			delete(m.heard, k)
		}
	}
	sort.Slice(st.Peers, func(i, j int) bool { return st.Peers[i].NodeID < st.Peers[j].NodeID })
	return st, nil
}

func (m *Mesh) device() (*wgtypes.Device, error) {
	dev, err := m.wg.Device(m.cfg.Iface)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s)", ErrNoDevice, m.cfg.Iface)
	}
	if err != nil {
		return nil, fmt.Errorf("wg: read %s: %w", m.cfg.Iface, err)
	}
	return dev, nil
}

// Status is the mesh as the last Sync left it.
func (m *Mesh) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

// Close releases wgctrl; the interface and its peers stay.
func (m *Mesh) Close() error {
	m.wg.Close()
	return m.host.Close()
}

func modeOf(t wgtypes.DeviceType) string {
	if t == wgtypes.LinuxKernel {
		return ModeKernel
	}
	return ModeUserspace
}
