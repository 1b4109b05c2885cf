package agent

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/netcfg/wg"
)

func meshNode(id, subnet, addr string, key *wgtypes.Key) *api.Node {
	n := &api.Node{Meta: api.Meta{ID: id}, Subnet: subnet, Description: api.NodeDescription{Hostname: id, Addr: addr}}
	if key != nil {
		n.Description.Mesh = &api.NodeMesh{PublicKey: key.PublicKey().String(), Port: 51820, Mode: api.MeshUserspace}
	}
	return n
}

func TestMeshPeers(t *testing.T) {
	k := func() *wgtypes.Key { x, _ := wgtypes.GeneratePrivateKey(); return &x }
	ka, kb, kc := k(), k(), k()
	nodes := map[string]*api.Node{
		"a":      meshNode("a", "10.240.1.0/24", "192.0.2.1:4242", ka),
		"b":      meshNode("b", "10.240.2.0/24", "192.0.2.2:4242", kb),
		"nomesh": meshNode("nomesh", "10.240.3.0/24", "192.0.2.3:4242", nil),
		"noaddr": meshNode("noaddr", "10.240.4.0/24", "", kc),
	}
	var warned []string
	warn := func(msg string, args ...any) { warned = append(warned, msg) }
	self, peers, ok := meshPeers("a", nodes, warn)
	if !ok {
		t.Fatal("meshPeers(a) found no record for a")
	}
	if self.Gateway != netip.MustParseAddr("10.240.1.1") || self.Underlay != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("self = %+v", self)
	}
	if len(peers) != 1 || peers[0].NodeID != "b" || peers[0].Endpoint != netip.MustParseAddrPort("192.0.2.2:51820") ||
		peers[0].Subnet != netip.MustParsePrefix("10.240.2.0/24") || peers[0].PublicKey != kb.PublicKey() {
		t.Errorf("peers of a = %+v, want only b at 192.0.2.2:51820 with 10.240.2.0/24", peers)
	}
	// A node that claims b's key: both are left out, and it is said.
	nodes["thief"] = meshNode("thief", "10.240.5.0/24", "192.0.2.5:4242", kb)
	_, peers, _ = meshPeers("a", nodes, warn)
	if len(peers) != 0 || len(warned) == 0 {
		t.Errorf("with two nodes on one key: peers %+v, warnings %v; want none and a warning", peers, warned)
	}
	if _, _, ok := meshPeers("unknown", nodes, warn); ok {
		t.Errorf("meshPeers for a node with no record said ok")
	}
}

// TestMeshStatusNamesNotPeers: the status file warren-dns and
// warren-ingress read names the silent peers and the nodes that are no
// peer at all (no key yet, no address, a stolen key), so they leave out
// the same tasks as the agent's ports (meshReaches).
func TestMeshStatusNamesNotPeers(t *testing.T) {
	k := func() *wgtypes.Key { x, _ := wgtypes.GeneratePrivateKey(); return &x }
	ka, kb, kc := k(), k(), k()
	nodes := map[string]*api.Node{
		"a":      meshNode("a", "10.240.1.0/24", "192.0.2.1:4242", ka),
		"b":      meshNode("b", "10.240.2.0/24", "192.0.2.2:4242", kb),
		"c":      meshNode("c", "10.240.6.0/24", "192.0.2.6:4242", kc),
		"nomesh": meshNode("nomesh", "10.240.3.0/24", "192.0.2.3:4242", nil),
		"noaddr": meshNode("noaddr", "10.240.4.0/24", "", k()),
	}
	_, peers, _ := meshPeers("a", nodes, func(string, ...any) {})
	a, _ := testAgent(t)
	a.cfg.Mesh = fakeMesh{}
	a.cfg.MeshStatusFile = filepath.Join(t.TempDir(), "mesh-status.json")
	a.setMesh(wg.Status{Peers: []wg.PeerStatus{{NodeID: "b", Reachable: true}, {NodeID: "c"}}}, notPeers("a", nodes, peers))
	b, err := os.ReadFile(a.cfg.MeshStatusFile)
	if err != nil {
		t.Fatal(err)
	}
	reach, err := api.ParseMeshReach(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(reach.Unreachable, reach.Out()); got != "[c] [c noaddr nomesh]" {
		t.Errorf("status file %s: unreachable and out %s, want [c] [c noaddr nomesh]", b, got)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range []string{"a", "b", "c", "nomesh", "noaddr"} {
		if out := slices.Contains(reach.Out(), n); out == a.meshReaches(n) && n != "a" {
			t.Errorf("node %s: out of reach in the status file %v, a backend of the ports %v; want one or the other", n, out, a.meshReaches(n))
		}
	}
}
