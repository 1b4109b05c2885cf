package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// TaskChange is one change of a task as a watch delivered it: when the
// watcher got it, and the task's desired state, state and health then.
type TaskChange struct {
	Seen    time.Time
	Task    string // the task's ID, first 8 characters
	Node    string // the host's name, or the node ID's first 8 characters
	Version uint64 // the spec version the task runs
	Desired api.TaskState
	State   api.TaskState
	Health  string
	Standby bool // running without traffic (a blue/green set)
}

func (c TaskChange) String() string {
	h := c.Health
	if h == "" {
		h = "-"
	}
	sb := ""
	if c.Standby {
		sb = " standby"
	}
	return fmt.Sprintf("%s task %s on %s v%d desired=%s state=%s health=%s%s",
		c.Seen.Format("15:04:05.000"), c.Task, c.Node, c.Version, c.Desired, c.State, h, sb)
}

// Timeline records the changes of a service's tasks, as seen through
// one manager's watch, to set beside what a load saw.
type Timeline struct {
	mu      sync.Mutex
	changes []TaskChange
	last    map[string]TaskChange
}

// WatchTasks follows the tasks of service through m until ctx ends. hosts
// name the nodes (optional).
func WatchTasks(ctx context.Context, m *Host, service string, hosts ...*Host) *Timeline {
	names := map[string]string{}
	for _, h := range hosts {
		if id := h.NodeID(); id != "" {
			names[id] = h.Name
		}
	}
	tl := &Timeline{last: map[string]TaskChange{}}
	f := client.NewFollower(client.FollowOptions{Client: m.Client, Logger: slog.New(slog.DiscardHandler),
		Query: client.WatchQuery{Kinds: []string{api.KindTask}, Service: service}})
	go f.Run(ctx, func(b api.WatchBatch) error {
		now := time.Now()
		for _, ev := range b.Events {
			var t api.Task
			if ev.Op == api.OpDelete || json.Unmarshal(ev.Object, &t) != nil || t.ID == "" {
				continue
			}
			node := names[t.NodeID]
			if node == "" {
				node = short(t.NodeID)
			}
			c := TaskChange{Seen: now, Task: short(t.ID), Node: node, Version: t.SpecVersion,
				Desired: t.DesiredState, State: t.Status.State, Health: t.Status.Health, Standby: t.Standby}
			tl.mu.Lock()
			if prev, ok := tl.last[t.ID]; !ok || prev.Desired != c.Desired || prev.State != c.State || prev.Health != c.Health || prev.Standby != c.Standby {
				tl.changes = append(tl.changes, c)
				tl.last[t.ID] = c
			}
			tl.mu.Unlock()
		}
		return nil
	})
	return tl
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// Changes are the changes recorded so far, in the order they came.
func (tl *Timeline) Changes() []TaskChange {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]TaskChange(nil), tl.changes...)
}

// Between is the changes seen from from to to, one a line.
func (tl *Timeline) Between(from, to time.Time) string {
	var b strings.Builder
	for _, c := range tl.Changes() {
		if !c.Seen.Before(from) && !c.Seen.After(to) {
			fmt.Fprintf(&b, "  %s\n", c)
		}
	}
	return b.String()
}
