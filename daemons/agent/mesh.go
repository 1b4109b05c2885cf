package agent

import (
	"bytes"
	"context"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	json "github.com/segmentio/encoding/json"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/wake"
	"github.com/warren-edge/warren/netcfg/atomicfile"
	"github.com/warren-edge/warren/netcfg/ipam"
	"github.com/warren-edge/warren/netcfg/wg"
)

// MeshNet is the node's end of the WireGuard mesh as the agent drives it;
// netcfg/wg.Mesh is the real one.
type MeshNet interface {
	PublicKey() wgtypes.Key
	Port() int
	Iface() string
	Sync(self wg.Self, peers []wg.Peer, now time.Time) (wg.Status, error)
}

// meshEvery is how often the mesh loop syncs with no change to the
// nodes: it refreshes the peers' reachability and repairs an interface
// that warren-mesh made anew after a restart.
const meshEvery = 5 * time.Second

// meshLoop keeps the mesh interface's peers equal to the other nodes'
// records: a watch of the nodes, and a sync after every change and every
// meshEvery.
func (a *Agent) meshLoop(ctx context.Context) {
	if a.cfg.Mesh == nil {
		return
	}
	changed := make(chan struct{}, 1)
	nodes := map[string]*api.Node{}
	var mu sync.Mutex // guards nodes
	f := client.NewFollower(client.FollowOptions{Client: a.api, Logger: a.log.With("watch", "nodes"),
		Query: client.WatchQuery{Kinds: []string{api.KindNode}}})
	go f.Run(ctx, func(b api.WatchBatch) error {
		mu.Lock()
		if b.Reset {
			clear(nodes)
		}
		for _, ev := range b.Events {
			if ev.Op == api.OpDelete {
				delete(nodes, ev.ID)
				continue
			}
			var n api.Node
			if err := json.Unmarshal(ev.Object, &n); err != nil || n.ID == "" {
				a.log.Error("watch: undecodable node; ignored", "id", ev.ID, "err", err)
				continue
			}
			nodes[n.ID] = &n
		}
		mu.Unlock()
		select {
		case changed <- struct{}{}:
		default:
		}
		return nil
	})
	failing, netFailing, netSet := "", "", false
	next := meshEvery
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			next = meshSoon
		case <-time.After(wake.Until(next)):
		}
		mu.Lock()
		self, peers, ok := meshPeers(a.nodeID, nodes, a.log.Warn)
		others := notPeers(a.nodeID, nodes, peers)
		mu.Unlock()
		if !ok {
			continue // this node's record is not in yet
		}
		st, err := a.cfg.Mesh.Sync(self, peers, time.Now())
		if err != nil {
			if err.Error() != failing {
				a.log.Warn("mesh", "err", err)
				failing = err.Error()
			}
			continue
		}
		if st.Fresh || !netSet {
			// The interface may be new (warren mesh restarted): the
			// published ports' rules and its sysctls again, and again at
			// the next sync until that works.
			var err error
			if a.net != nil {
				err = a.net.SetMesh(ctx, st.Iface)
			}
			netSet = err == nil
			switch {
			case err != nil && err.Error() != netFailing:
				a.log.Warn("mesh: published ports through the mesh", "err", err)
				netFailing = err.Error()
			case err == nil && netFailing != "":
				a.log.Info("mesh: published ports through the mesh again", "iface", st.Iface)
				netFailing = ""
			}
		}
		if failing != "" {
			a.log.Info("mesh in step again", "iface", st.Iface, "peers", len(st.Peers))
			failing = ""
		}
		if a.setMesh(st, others) {
			a.publishPorts(ctx) // a node in or out of reach: its tasks too
		}
		next = nextMeshSync(st, next)
	}
}

// meshSoon is the first wait before the mesh loop looks again at a peer
// out of reach: a new peer shakes hands within milliseconds, and its
// tasks are backends only once the loop has seen it (meshReaches).
const meshSoon = 250 * time.Millisecond

// nextMeshSync is the wait before the next sync: meshEvery while every
// peer is in reach, else from meshSoon doubling up to meshEvery, so that
// a node that joins is reachable within a fraction of a second and one
// that is gone costs no more than the others.
func nextMeshSync(st wg.Status, last time.Duration) time.Duration {
	for _, p := range st.Peers {
		if !p.Reachable {
			return min(max(2*last, meshSoon), meshEvery)
		}
	}
	return meshEvery
}

// meshPeers computes this node's side and its peers from the node records:
// every other node that has a mesh key, a subnet and an address. Two nodes
// that claim one key are both left out (the store refuses that, so it
// would be a bug or an attack), and warn says so.
func meshPeers(self string, nodes map[string]*api.Node, warn func(msg string, args ...any)) (wg.Self, []wg.Peer, bool) {
	me := nodes[self]
	if me == nil {
		return wg.Self{}, nil, false
	}
	sub, err := netip.ParsePrefix(me.Subnet)
	if err != nil {
		return wg.Self{}, nil, false
	}
	s := wg.Self{Gateway: ipam.GatewayOf(sub)}
	if ep := me.MeshEndpoint(); ep.IsValid() {
		s.Underlay = ep.Addr()
	} else if ap, err := netip.ParseAddrPort(me.Description.Addr); err == nil {
		s.Underlay = ap.Addr()
	}
	var peers []wg.Peer
	owners := map[wgtypes.Key]int{}
	for _, n := range nodes {
		if n.ID == self || n.Description.Mesh == nil {
			continue
		}
		key, err := wgtypes.ParseKey(n.Description.Mesh.PublicKey)
		sub, serr := netip.ParsePrefix(n.Subnet)
		ep := n.MeshEndpoint()
		if err != nil || serr != nil || !ep.IsValid() {
			continue
		}
		owners[key]++
		peers = append(peers, wg.Peer{NodeID: n.ID, PublicKey: key, Endpoint: ep, Subnet: sub.Masked()})
	}
	out := peers[:0]
	for _, p := range peers {
		if owners[p.PublicKey] > 1 {
			warn("mesh: two nodes claim one public key; both left out", "node", p.NodeID, "key", p.PublicKey.String())
			continue
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return s, out, true
}

// notPeers are the nodes other than self that have no peer among peers,
// sorted.
func notPeers(self string, nodes map[string]*api.Node, peers []wg.Peer) []string {
	peer := make(map[string]bool, len(peers))
	for _, p := range peers {
		peer[p.NodeID] = true
	}
	var out []string
	for id := range nodes {
		if id != self && !peer[id] {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// setMesh records the mesh's state: the heartbeat reports this node's end,
// the agent socket serves the peers' reachability, and MeshStatusFile
// tells warren-dns and warren-ingress the nodes out of reach (the silent
// peers and the others: the nodes that are not peers). It says whether
// the nodes in reach changed.
func (a *Agent) setMesh(st wg.Status, others []string) (reachChanged bool) {
	m := &api.NodeMesh{PublicKey: a.cfg.Mesh.PublicKey().String(), Port: uint16(a.cfg.Mesh.Port()), Mode: st.Mode, MTU: st.MTU}
	reach := api.MeshReach{Unreachable: []string{}, NotPeers: others}
	inReach := make(map[string]bool, len(st.Peers))
	for _, p := range st.Peers {
		switch {
		case p.NodeID == "":
		case p.Reachable:
			inReach[p.NodeID] = true
		default:
			reach.Unreachable = append(reach.Unreachable, p.NodeID)
		}
	}
	raw, _ := json.Marshal(reach)
	a.mu.Lock()
	a.meshStatus = &st
	if a.meshInReach == nil || !maps.Equal(inReach, a.meshInReach) {
		a.meshInReach, reachChanged = inReach, true
	}
	newDesc := a.meshDesc == nil || *a.meshDesc != *m
	a.meshDesc = m
	changed := !bytes.Equal(raw, a.meshReach)
	a.mu.Unlock()
	if newDesc {
		a.beatSoon()
	}
	if !changed || a.cfg.MeshStatusFile == "" {
		return reachChanged
	}
	// Its directory, when missing (the image's tmpfiles.d makes it):
	// 0755, which warren-dns and warren-ingress need to watch it.
	_ = os.MkdirAll(filepath.Dir(a.cfg.MeshStatusFile), 0o755)
	if err := atomicfile.Write(a.cfg.MeshStatusFile, raw, 0o644); err != nil {
		a.log.Warn("mesh: write the status file for warren-dns", "file", a.cfg.MeshStatusFile, "err", err)
		return reachChanged
	}
	if len(reach.Unreachable) > 0 {
		a.log.Info("mesh: nodes out of reach", "nodes", reach.Unreachable)
	}
	a.mu.Lock()
	a.meshReach = raw
	a.mu.Unlock()
	return reachChanged
}

// meshDescription is this node's end of the mesh for the heartbeat, nil
// until the mesh is up.
func (a *Agent) meshDescription() *api.NodeMesh {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.meshDesc
}
