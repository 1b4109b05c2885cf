package manager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/orchestrator"
	"github.com/warren-edge/warren/daemons/pki"
	"github.com/warren-edge/warren/daemons/store"
)

// runLeadership starts the leader's loops when this manager becomes leader
// and stops them when it is not any more.
func (m *Manager) runLeadership(ctx context.Context) {
	notify := m.raft.r.LeaderCh()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var stop context.CancelFunc
	var wg sync.WaitGroup
	for {
		leader := m.raft.r.State() == raft.Leader
		switch {
		case leader && stop == nil:
			var lctx context.Context
			lctx, stop = context.WithCancel(ctx)
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.lead(lctx)
			}()
		case !leader && stop != nil:
			stop()
			wg.Wait()
			stop = nil
		}
		m.metrics.setRaftState(m.raft.r.State())
		select {
		case <-ctx.Done():
			if stop != nil {
				stop()
			}
			wg.Wait()
			return
		case <-notify:
		case <-tick.C:
		}
	}
}

// lead runs while this manager is the leader.
func (m *Manager) lead(ctx context.Context) {
	// Apply everything earlier leaders committed before deciding anything.
	for m.raft.r.Barrier(5*time.Second).Error() != nil {
		if sleepCtx(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
	for m.initialise() != nil {
		if sleepCtx(ctx, 200*time.Millisecond) != nil {
			return
		}
	}
	if m.credentials() == nil {
		if err := m.selfSign(); err != nil {
			m.log.Warn("make this manager's certificate", "err", err)
		}
	}
	m.log.Info("leading the cluster", "node", m.nodeID)
	m.beats.reset(time.Now())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.monitorNodes(ctx) }()
	go func() { defer wg.Done(); m.reconcileLoop(ctx) }()
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// initialise makes a new cluster's first entry.
func (m *Manager) initialise() error {
	var cluster *store.ClusterInit
	m.state.View(func(v *store.View) error { cluster = v.Cluster(); return nil })
	if cluster != nil {
		return nil
	}
	now := time.Now().UTC()
	clusterID := api.NewID()
	ca, err := pki.NewCA(clusterID, now)
	if err != nil {
		return err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return err
	}
	_, err = m.propose(store.CmdClusterInit, store.ClusterInit{
		ClusterID: clusterID, ClusterCIDR: m.cfg.ClusterCIDR, SubnetBits: m.cfg.SubnetBits, CreatedAt: now,
		CACertPEM: string(ca.CertPEM()), CAKeyPEM: string(keyPEM)})
	if err != nil && !api.IsCode(err, api.CodeConflict) {
		m.log.Warn("initialise cluster", "err", err)
		return err
	}
	return nil
}

// registerSelf keeps this manager's node registered with its current
// description and address, through the leader, whoever it is.
func (m *Manager) registerSelf(ctx context.Context) {
	for {
		err := m.registerOnce(ctx)
		if err == nil {
			return
		}
		if sleepCtx(ctx, 250*time.Millisecond) != nil {
			return
		}
	}
}

func (m *Manager) registerOnce(ctx context.Context) error {
	var cluster *store.ClusterInit
	var self *api.Node
	m.state.View(func(v *store.View) error {
		cluster = v.Cluster()
		self, _ = v.Node(m.nodeID)
		return nil
	})
	if cluster == nil {
		return errors.New("cluster not initialised yet")
	}
	desc := localDescription(m.cfg.Hostname)
	desc.Addr = m.cfg.AdvertiseAddr
	if self != nil {
		want := self.Description
		want.Hostname, want.OS, want.Arch, want.NanoCPUs, want.MemoryBytes = desc.Hostname, desc.OS, desc.Arch, desc.NanoCPUs, desc.MemoryBytes
		if desc.Addr != "" {
			want.Addr = desc.Addr
		}
		if want == self.Description {
			return nil
		}
	}
	reg := store.NodeRegister{ID: m.nodeID, Role: api.RoleManager, Labels: m.cfg.Labels, Description: desc, At: time.Now().UTC()}
	return m.leaderWrite(ctx, store.CmdNodeRegister, reg)
}

// leaderWrite commits a command from inside the manager: proposed here on
// the leader, sent to the leader's internal endpoint from a follower.
func (m *Manager) leaderWrite(ctx context.Context, t store.CommandType, payload any) error {
	if m.isLeader() {
		_, err := m.propose(t, payload)
		return err
	}
	leader := m.leaderID()
	if leader == "" || m.cfg.Peers == nil {
		return errors.New("no leader to write to")
	}
	hc, base, err := m.cfg.Peers.Client(leader)
	if err != nil {
		return err
	}
	body, err := store.Encode(t, payload)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/internal/command", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("leader %s: %s: %s", leader, resp.Status, b)
	}
	return nil
}

// readInput reads what the reconciler needs from one consistent view.
func (m *Manager) readInput(now time.Time) orchestrator.Input {
	in := orchestrator.Input{Now: now}
	m.state.View(func(v *store.View) error {
		in.Services = v.Services()
		in.Tasks = v.Tasks(store.TaskFilter{})
		in.Nodes = v.Nodes()
		return nil
	})
	return in
}

func (m *Manager) orchestratorOptions() orchestrator.Options {
	return orchestrator.Options{RescheduleGrace: m.cfg.RescheduleGrace}
}

// fullPassEvery bounds how long any service goes without a reconcile pass.
const fullPassEvery = 15 * time.Second

// reconcileLoop runs the orchestrator and scheduler over the services that
// changed, and over all of them at the times they ask for, and commits
// their plans. It follows the hub through a mirror, so it decodes only
// what changed.
func (m *Manager) reconcileLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	full := time.NewTicker(fullPassEvery)
	defer full.Stop()
	mr := newMirror()
	m.state.View(func(v *store.View) error { mr.load(v); return nil })
	buf := make([]store.Change, 0, 1024)
	var wake time.Time
	var last []byte // the last plan committed, without its time
	for {
		wait := m.hub.Wait()
		changes, upTo, err := m.hub.Read(mr.index, &store.Filter{}, 1<<20, buf[:0])
		if err == store.ErrTooOld {
			m.state.View(func(v *store.View) error { mr.load(v); return nil })
		} else {
			for i := range changes {
				mr.apply(&changes[i])
			}
			mr.index = max(mr.index, upTo)
		}
		if !wake.IsZero() && !time.Now().Before(wake) {
			mr.all, wake = true, time.Time{}
		}
		if mr.hasWork() {
			start := time.Now()
			plan, next := orchestrator.Plan(mr.take(start), m.orchestratorOptions())
			if !next.IsZero() && (wake.IsZero() || next.Before(wake)) {
				wake = next
			}
			if !orchestrator.IsEmpty(&plan) {
				key := planKey(plan)
				if !bytes.Equal(key, last) {
					if _, err := m.propose(store.CmdTaskPlan, plan); err != nil {
						m.log.Warn("commit task plan", "err", err)
						mr.all = true
						if sleepCtx(ctx, 200*time.Millisecond) != nil {
							return
						}
						continue
					}
					last = key
				}
			}
			m.metrics.reconcile.Observe(time.Since(start).Seconds())
		}
		timer.Stop()
		if !wake.IsZero() {
			timer.Reset(max(time.Until(wake), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		case <-timer.C:
		case <-full.C:
			mr.all = true
		}
		// Let a burst of writes land before the next pass: one pass then
		// handles many changes.
		if sleepCtx(ctx, 2*time.Millisecond) != nil {
			return
		}
	}
}

// planKey identifies a plan's content. Committing the same plan twice in a
// row would change nothing; not doing so keeps a plan the FSM skips from
// spinning the loop.
func planKey(p api.TaskPlan) []byte {
	p.At = time.Time{}
	b, _ := json.Marshal(p)
	return b
}

// monitorNodes marks nodes down when their agent stops reporting.
func (m *Manager) monitorNodes(ctx context.Context) {
	tick := time.NewTicker(m.cfg.NodeTimeout / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var nodes []*api.Node
		m.state.View(func(v *store.View) error { nodes = v.Nodes(); return nil })
		now := time.Now().UTC()
		for _, n := range nodes {
			if n.Status.State != api.NodeReady {
				continue
			}
			if seen := m.beats.lastSeen(n.ID); now.Sub(seen) > m.cfg.NodeTimeout {
				_, err := m.propose(store.CmdNodeStatus, store.NodeStatus{ID: n.ID, Status: api.NodeStatus{
					State: api.NodeDown, Timestamp: now, Message: "no heartbeat since " + seen.Format(time.RFC3339)}})
				if err != nil {
					m.log.Warn("mark node down", "node", n.ID, "err", err)
				} else {
					m.log.Warn("node down", "node", n.ID, "hostname", n.Description.Hostname)
				}
			}
		}
	}
}

// heartbeat records a node's report; the first after a silence marks the
// node ready and refreshes its description.
func (m *Manager) heartbeat(nodeID string, hb api.Heartbeat) (*api.Node, error) {
	if m.raft.r.State() != raft.Leader {
		return nil, api.Errorf(api.CodeNotLeader, "this manager is not the leader; heartbeats go to the leader")
	}
	var n *api.Node
	var err error
	m.state.View(func(v *store.View) error { n, err = v.Node(nodeID); return nil })
	if err != nil {
		return nil, err
	}
	m.beats.record(n.ID, time.Now())
	now := time.Now().UTC()
	d := hb.Description // empty fields keep the record's (as the FSM merges)
	if d.Addr == "" {
		d.Addr = n.Description.Addr
	}
	if d.EngineVersion == "" {
		d.EngineVersion = n.Description.EngineVersion
	}
	if hb.Description.Hostname != "" && d != n.Description {
		if _, err := m.propose(store.CmdNodeRegister, store.NodeRegister{ID: n.ID, Description: hb.Description, At: now}); err != nil {
			return nil, err
		}
	}
	if n.Status.State != api.NodeReady {
		res, err := m.propose(store.CmdNodeStatus, store.NodeStatus{ID: n.ID, Status: api.NodeStatus{State: api.NodeReady, Timestamp: now, Message: "agent reporting"}})
		if err != nil {
			return nil, err
		}
		n = res.(*api.Node)
	}
	return n, nil
}
