package membership

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/core"
	"github.com/warren-edge/warren/daemons/manager/peer"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// PrepareToLead runs when this manager becomes leader, before the leader's
// loops: a new cluster's first entry (its identity, range and CA), and
// this manager's certificate if it has none yet.
func (m *Membership) PrepareToLead(ctx context.Context) error {
	if err := m.initialise(ctx); err != nil {
		return err
	}
	if err := m.ensureKeyring(ctx); err != nil {
		m.log.Warn("encryption at rest: the keyring", "err", err)
	}
	if err := m.registerVoters(ctx); err != nil {
		return err
	}
	if m.credentials() == nil {
		if err := m.selfSign(); err != nil {
			m.log.Warn("make this manager's certificate", "err", err)
		}
	}
	return nil
}

// initialise makes a new cluster's first entry.
func (m *Membership) initialise(ctx context.Context) error {
	var cluster *store.ClusterInit
	m.store.View(func(v *store.View) error { cluster = v.Cluster(); return nil })
	if cluster != nil {
		return nil
	}
	now := time.Now().UTC()
	clusterID := api.NewID()
	ca, err := pki.NewCA(clusterID, now)
	if err != nil {
		return err
	}
	ring, caKey, err := m.newClusterKeys(ca, now)
	if err != nil {
		return err
	}
	_, err = m.propose(ctx, store.CmdClusterInit, store.ClusterInit{
		ClusterID: clusterID, ClusterCIDR: m.cfg.ClusterCIDR, SubnetBits: m.cfg.SubnetBits, CreatedAt: now,
		CACertPEM: string(ca.CertPEM()), CAKey: caKey, Keyring: ring})
	if err != nil && !api.IsCode(err, api.CodeConflict) {
		m.log.Warn("initialise cluster", "err", err)
		return err
	}
	return nil
}

// registerSelf keeps this manager's node registered with its current
// description and address, through the leader, whoever it is. It tries
// again soon, then every 250 ms: the manager serves once it is
// registered (Healthy), and a new cluster is initialised a few
// milliseconds after its first election.
func (m *Membership) registerSelf(ctx context.Context) {
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 250*time.Millisecond) {
		err := m.registerOnce(ctx)
		if err == nil {
			return
		}
		if core.Sleep(ctx, wait) != nil {
			return
		}
	}
}

func (m *Membership) registerOnce(ctx context.Context) error {
	var cluster *store.ClusterInit
	var self *api.Node
	m.store.View(func(v *store.View) error {
		cluster = v.Cluster()
		self, _ = v.Node(m.nodeID)
		return nil
	})
	if cluster == nil {
		return errors.New("cluster not initialised yet")
	}
	desc := LocalDescription(m.cfg.Hostname)
	desc.Addr = m.cfg.AdvertiseAddr
	if self != nil {
		want := self.Description
		want.Hostname, want.OS, want.Arch, want.NanoCPUs, want.MemoryBytes = desc.Hostname, desc.OS, desc.Arch, desc.NanoCPUs, desc.MemoryBytes
		want.RaftCommands = desc.RaftCommands
		if desc.Addr != "" {
			want.Addr = desc.Addr
		}
		if want.Equal(self.Description) {
			return nil
		}
	}
	reg := store.NodeRegister{ID: m.nodeID, Role: api.RoleManager, Labels: m.cfg.Labels, Description: desc, At: time.Now().UTC()}
	return m.leaderWrite(ctx, store.CmdNodeRegister, reg)
}

// LeaderWrite commits a command from inside the manager (one that
// internalCommands takes from peers): proposed here on the leader, sent to
// the leader's internal endpoint from a follower.
func (m *Membership) LeaderWrite(ctx context.Context, t store.CommandType, payload any) error {
	return m.leaderWrite(ctx, t, payload)
}

// leaderWrite commits a command from inside the manager: proposed here on
// the leader, sent to the leader's internal endpoint from a follower.
func (m *Membership) leaderWrite(ctx context.Context, t store.CommandType, payload any) error {
	if m.isLeader() {
		_, err := m.propose(ctx, t, payload)
		return err
	}
	leader := m.leaderID()
	if leader == "" {
		return errors.New("no leader to write to")
	}
	body, err := store.Encode(t, payload)
	if err != nil {
		return err
	}
	return m.peers.Do(ctx, leader, peer.Request{Method: http.MethodPost, Path: "/v1/internal/command",
		Body: body, ContentType: "application/octet-stream"}, nil)
}

// registerVoters registers the bootstrap voters that have no record yet.
func (m *Membership) registerVoters(ctx context.Context) error {
	for _, id := range m.cfg.BootstrapVoters {
		var known bool
		m.store.View(func(v *store.View) error { _, known = v.NodeByID(id); return nil })
		if known {
			continue
		}
		reg := store.NodeRegister{ID: id, Role: api.RoleManager, Description: api.NodeDescription{Hostname: id}, At: time.Now().UTC()}
		if _, err := m.propose(ctx, store.CmdNodeRegister, reg); err != nil {
			return err
		}
	}
	return nil
}
