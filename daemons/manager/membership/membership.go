// Package membership is who belongs to the cluster and what they may do:
// join tokens, joining, node certificates and their renewal, CA rotation,
// promotion and demotion (the Raft voters follow the node records), the
// operators, and the node port where all of it meets the network (mutual
// TLS 1.3; Raft and the API chosen by ALPN). It also tells the router who
// a node-port caller is, checking the certificate's identity against the
// cluster's records on every request.
//
// A worker cut off from every manager for longer than its certificate
// lives keeps running: nothing on the node needs its certificate (its
// agent, dns and ingress use the local sockets). Back within the grace
// (Config.CertGrace, 30 days; warren manager --cert-grace) it renews with
// the expired certificate, the one route that takes one (authz.Rule.Expired),
// and stays the same node with the same role; after the grace the
// managers refuse it, warrenctl node ls says so, and warren rejoin with a
// worker token brings it back with its ID (Rejoin). Only the managers
// judge expiry and the grace, with their clocks: a node's clock a day
// off changes nothing (daemons/pki/README.md, "Clock skew").
//
// What an attacker gains: a worker's expired certificate and key, stolen
// within the grace, are as good as a valid pair (they renew into one, for
// that node and role only, as the node itself would); after the grace
// they are good for nothing without a join token. node rm ends both at
// once, for the certificate's life and the grace after it (RevokeFor). A
// node promoted or demoted meanwhile, or removed, cannot renew its
// expired certificate; nor can an operator's.
package membership

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/manager/peer"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// Store is what membership reads on every node: the state (a manager's) or
// the replica (a worker's).
type Store interface {
	View(fn func(v *store.View) error) error
	Hub() *store.Hub
}

// Config is what membership is made of.
type Config struct {
	DataDir  string
	Hostname string
	Labels   map[string]string
	// ClusterCIDR and SubnetBits are a new cluster's node subnets.
	ClusterCIDR string
	SubnetBits  int
	// AdvertiseAddr is this node's node port as others reach it.
	AdvertiseAddr string
	// BootstrapVoters are the managers a cluster is bootstrapped with (tests
	// start several at once): the first leader registers them all, so that
	// each is known to the others before it registers itself.
	BootstrapVoters []string
	// Peers reaches other managers' APIs; nil: the node port's mTLS client.
	Peers peer.Dialer
	// CertGrace is how long after a node's certificate expired the
	// managers still renew it, for a node that was cut off meanwhile
	// (0: DefaultCertGrace; negative: none). Give every manager the same.
	CertGrace time.Duration
	// Keys seals what the managers keep encrypted (nil on a worker).
	Keys   *keys.Ring
	Logger *slog.Logger
}

// DefaultCertGrace is how long after its certificate expired a node cut
// off meanwhile may still renew it.
const DefaultCertGrace = 30 * 24 * time.Hour

// Membership is one node's membership role.
type Membership struct {
	cfg    Config
	log    *slog.Logger
	nodeID string
	store  Store
	core   *core.Core // nil on a worker
	peers  *peer.Client
	book   *addrBook
	np     *nodePort

	// keysMu makes the keyring's read-modify-writes one at a time;
	// keysWake wakes keepKeys (a rotation started).
	keysMu   sync.Mutex
	keysWake chan struct{}

	credMu sync.Mutex
	creds  *pki.Credentials
	// keyMu serialises the changes of the node's key and certificate: two
	// at once (the leader's first certificate and the renewal loop) could
	// each make a key and leave one's key beside the other's certificate.
	keyMu sync.Mutex

	idMu     sync.Mutex
	identity Identity

	tokenMu sync.Mutex // serialises join token changes on the leader
	joins   *rateLimiter

	roleChanged chan struct{}
	roleOnce    sync.Once
	dropState   bool // a demoted manager drops the full state on Close
	// joinIndex is the leader's index when this node joined (on the start
	// that joined): a new manager asks to vote once it has applied it.
	joinIndex uint64
}

// Open prepares a node's membership before its store opens: its identity,
// its credentials, and the node port's listener (nil: none). Start runs
// it.
func Open(cfg Config, id Identity, nodePort net.Listener) (*Membership, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Membership{cfg: cfg, log: cfg.Logger, nodeID: id.NodeID, identity: id, book: newAddrBook(), keysWake: make(chan struct{}, 1),
		roleChanged: make(chan struct{}), joins: newRateLimiter(joinBurst, joinEvery)}
	for _, p := range id.Managers {
		m.book.set(p.ID, p.Addr)
	}
	var err error
	if m.creds, err = m.loadCredentials(); err != nil {
		return nil, err
	}
	dialer := cfg.Peers
	if dialer == nil && (nodePort != nil || id.Role == api.RoleWorker || m.creds != nil) {
		dialer = &tlsPeers{m: m}
	}
	m.peers = &peer.Client{Dialer: dialer}
	if nodePort != nil {
		m.np = newNodePort(m, nodePort)
	}
	return m, nil
}

// Peers is the client other roles call managers with.
func (m *Membership) Peers() *peer.Client { return m.peers }

// Stream is Raft's stream layer over the node port (nil without one).
func (m *Membership) Stream() raft.StreamLayer {
	if m.np == nil {
		return nil
	}
	return m.np.raft
}

// HasCredentials says whether this node holds its certificate yet.
func (m *Membership) HasCredentials() bool { return m.credentials() != nil }

// Start serves the node port with h (the API's router, which asks
// Authenticate who called) and runs the loops of a manager (c set) or of a
// worker (c nil) over st, until ctx ends.
func (m *Membership) Start(ctx context.Context, st Store, c *core.Core, h http.Handler) {
	m.store, m.core = st, c
	st.View(func(v *store.View) error { m.book.learn(v); return nil })
	if m.np != nil {
		m.np.server.Handler = h
		go m.np.serve()
	}
	go m.watchOwnRole(ctx)
	go m.followCA(ctx)
	// A worker too: its replica's node records say where other nodes are,
	// for what it passes on for itself (an image's blobs).
	go m.learnAddresses(ctx)
	if c == nil {
		go m.keepWorkerCredentials(ctx)
		return
	}
	m.followKeyring()
	go m.keepKEK(ctx)
	go m.keepKeys(ctx)
	go m.keepCredentials(ctx)
	go m.registerSelf(ctx)
	if m.identity.Role != "" {
		// A joined manager asks to vote once it has caught up.
		go m.askToVote(ctx, m.joinIndex)
	}
}

// Close stops the node port and, for a demoted manager, drops the state
// that belonged to its old role (call it after the store is closed).
func (m *Membership) Close() {
	if m.np != nil {
		m.np.close()
	}
	if m.dropState {
		m.dropFullState()
	}
}

// NodeID is this node's ID.
func (m *Membership) NodeID() string { return m.nodeID }

// RevokeFor is how long a removed node's identity stays on the deny list:
// until every certificate it may hold has expired, and the grace after
// that, in which an expired one could still be renewed.
func (m *Membership) RevokeFor() time.Duration { return nodeCertTTL + m.certGrace() }

// certGrace is how long after expiry a node's certificate still renews.
func (m *Membership) certGrace() time.Duration {
	switch g := m.cfg.CertGrace; {
	case g == 0:
		return DefaultCertGrace
	case g < 0:
		return 0
	default:
		return g
	}
}

func (m *Membership) isWorker() bool { return m.core == nil }

func (m *Membership) isLeader() bool { return m.core != nil && m.core.IsLeader() }

// leaderID is the leader's node ID as this manager knows it ("" on a
// worker, or with no leader).
func (m *Membership) leaderID() string {
	if m.core == nil {
		return ""
	}
	return m.core.LeaderID()
}

func (m *Membership) propose(ctx context.Context, t store.CommandType, payload any) (any, error) {
	return m.core.Propose(ctx, t, payload)
}

// Handlers names membership's handlers for the route table.
type Handlers struct {
	NewJoinToken, ListJoinTokens, DeleteJoinToken http.HandlerFunc
	InternalKEK                                   http.HandlerFunc
	Unlock, UnlockKey, RotateUnlockKey, Autolock  http.HandlerFunc
	Keys, RotateDataKey, CheckKeys                http.HandlerFunc
	Join, Renew, CAInfo, RotateCA                 http.HandlerFunc
	Promote, Demote                               http.HandlerFunc
	InternalCommand, InternalPromote              http.HandlerFunc
	NewOperator, ListOperators, DeleteOperator    http.HandlerFunc
}

// Handlers returns the handlers.
func (m *Membership) Handlers() Handlers {
	return Handlers{
		NewJoinToken: m.postJoinToken, ListJoinTokens: m.listJoinTokens, DeleteJoinToken: m.deleteJoinToken,
		Join: m.postJoin, Renew: m.postRenew, CAInfo: m.caInfo, RotateCA: m.rotateCA,
		Promote: m.promoteNode, Demote: m.demoteNode,
		InternalCommand: m.postInternalCommand, InternalPromote: m.postPromote,
		NewOperator: m.postOperator, ListOperators: m.listOperators, DeleteOperator: m.deleteOperator,
		InternalKEK: m.getKEK, Unlock: m.postUnlock, UnlockKey: m.getUnlockKey, RotateUnlockKey: m.rotateUnlockKey,
		Autolock: m.putAutolock, Keys: m.getKeys, RotateDataKey: m.rotateDataKey, CheckKeys: m.checkKeys,
	}
}
