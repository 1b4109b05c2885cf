package core

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// countingTransport counts the heartbeats a server receives: the empty
// AppendEntries that carry no log position and no commit index.
type countingTransport struct {
	*raft.InmemTransport
	rpcs       chan raft.RPC
	heartbeats atomic.Int64
}

func newCountingTransport(id string, stop <-chan struct{}) *countingTransport {
	_, inner := raft.NewInmemTransport(raft.ServerAddress(id))
	c := &countingTransport{InmemTransport: inner, rpcs: make(chan raft.RPC)}
	go func() {
		for {
			var rpc raft.RPC
			select {
			case rpc = <-inner.Consumer():
			case <-stop:
				return
			}
			if req, ok := rpc.Command.(*raft.AppendEntriesRequest); ok &&
				len(req.Entries) == 0 && req.PrevLogEntry == 0 && req.LeaderCommitIndex == 0 {
				c.heartbeats.Add(1)
			}
			select {
			case c.rpcs <- rpc:
			case <-stop:
				return
			}
		}
	}()
	return c
}

func (c *countingTransport) Consumer() <-chan raft.RPC { return c.rpcs }

// TestIdleHeartbeats: three idle managers at the default timing
// (raftConfig) send each follower a heartbeat at most every half
// HeartbeatTimeout, and hold no election. Heartbeats are most of what
// idle managers cost (qa/bench idle: the CPU of three idle managers
// follows their count); upstream Raft sends one every 45-90 ms at this
// timeout, and Warren sent one every third of it before.
func TestIdleHeartbeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stop := make(chan struct{})
		var (
			trans  []*countingTransport
			rafts  []*raft.Raft
			conf   raft.Configuration
			hbTime time.Duration
		)
		for i := 0; i < 3; i++ {
			id := fmt.Sprintf("m%d", i)
			trans = append(trans, newCountingTransport(id, stop))
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
		}
		for _, a := range trans {
			for _, b := range trans {
				if a != b {
					a.Connect(b.LocalAddr(), b.InmemTransport)
				}
			}
		}
		for i, tr := range trans {
			rc := raftConfig(Config{}, string(conf.Servers[i].ID), hclog.NewNullLogger())
			hbTime = rc.HeartbeatTimeout
			logs, stable, snaps := raft.NewInmemStore(), raft.NewInmemStore(), raft.NewInmemSnapshotStore()
			if err := raft.BootstrapCluster(&rc, logs, stable, snaps, tr, conf); err != nil {
				t.Fatal(err)
			}
			r, err := raft.NewRaft(&rc, &raft.MockFSM{}, logs, stable, snaps, tr)
			if err != nil {
				t.Fatal(err)
			}
			rafts = append(rafts, r)
		}
		defer close(stop)
		defer func() {
			for _, r := range rafts {
				r.Shutdown().Error()
			}
		}()

		var leader *raft.Raft
		for leader == nil {
			time.Sleep(10 * time.Millisecond)
			for _, r := range rafts {
				if r.State() == raft.Leader {
					leader = r
				}
			}
		}
		term := leader.Stats()["term"]
		time.Sleep(2 * time.Second) // settled: the joins' traffic is over
		for _, tr := range trans {
			tr.heartbeats.Store(0)
		}
		const window = 9 * time.Second
		time.Sleep(window)

		most := int64(window/(hbTime/2)) + 1
		least := int64(window / hbTime)
		for i, r := range rafts {
			if r == leader {
				continue
			}
			n := trans[i].heartbeats.Load()
			t.Logf("follower m%d: %d heartbeats in %v", i, n, window)
			if n > most {
				t.Errorf("follower m%d had %d heartbeats in an idle %v, want at most %d (one per half HeartbeatTimeout, %v)", i, n, window, most, hbTime/2)
			}
			if n < least {
				t.Errorf("follower m%d had %d heartbeats in an idle %v, want at least %d (one per HeartbeatTimeout)", i, n, window, least)
			}
		}
		if leader.State() != raft.Leader || leader.Stats()["term"] != term {
			t.Errorf("an idle cluster held an election (term %s → %s)", term, leader.Stats()["term"])
		}
	})
}
