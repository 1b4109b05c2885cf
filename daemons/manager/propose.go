package manager

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/store"
)

// applyTimeout bounds how long a write waits to be committed.
const applyTimeout = 10 * time.Second

// propose commits a command and returns the FSM's result. A refused
// command comes back as its *api.Error.
func (m *Manager) propose(t store.CommandType, payload any) (any, error) {
	b, err := store.Encode(t, payload)
	if err != nil {
		return nil, api.Errorf(api.CodeInternal, "%v", err)
	}
	start := time.Now()
	f := m.raft.r.Apply(b, applyTimeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return nil, api.Errorf(api.CodeNotLeader, "this manager cannot take writes now (%v): retry in a moment; if it persists, check warrenctl node ls for a manager quorum", err)
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, api.Errorf(api.CodeUnavailable, "the cluster did not commit the write within %s: it may have lost its quorum", applyTimeout)
		default:
			return nil, api.Errorf(api.CodeUnavailable, "raft: %v", err)
		}
	}
	m.metrics.raftApply.Observe(time.Since(start).Seconds())
	if err, ok := f.Response().(error); ok {
		return nil, err
	}
	return f.Response(), nil
}
