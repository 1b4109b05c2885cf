package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// TestMinorityPartition cuts the leader off the LAN: the two others elect
// a leader and keep taking writes; the cut manager refuses writes and
// consistent reads with a 503 that says why, and keeps serving its local
// state; once healed it catches up.
func TestMinorityPartition(t *testing.T) {
	c := startCluster(t, 3, 2)
	ctx := ctxFor(t, 2*time.Minute)
	m1 := c.Host("m1")
	if _, err := m1.Client.CreateService(ctx, idle("before-cut", nil)); err != nil {
		t.Fatal(err)
	}
	before := deploy(t, c, "web", 4)
	cut, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var majority []*Host
	for _, m := range c.Managers() {
		if m != cut {
			majority = append(majority, m)
		}
	}
	// Every manager has applied before-cut, so the cut one can serve it.
	eventually(t, 5*time.Second, "every manager has before-cut", func() error {
		for _, m := range c.Managers() {
			if _, err := m.Client.Service(ctx, "before-cut", client.ReadOptions{}); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
		}
		return nil
	})

	if err := cut.Cut(); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	next, err := c.Leader(ctx, cut)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cut the leader %s off; %s leads the majority after %.0f ms", cut.Name, next.Name, float64(time.Since(cutAt))/1e6)

	// The majority takes writes through both of its managers.
	var created []string
	for _, m := range majority {
		name := "during-cut-" + m.Name
		eventually(t, 10*time.Second, "a write through "+m.Name, func() error {
			_, err := m.Client.CreateService(ctx, idle(name, nil))
			if api.IsCode(err, api.CodeConflict) {
				return nil // an earlier try was committed after all
			}
			return err
		})
		created = append(created, name)
	}

	// The minority refuses writes, with a 503 that says why.
	var refusal error
	eventually(t, 10*time.Second, cut.Name+" refuses writes", func() error {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err := cut.Client.CreateService(rctx, idle("on-the-minority", nil))
		if err == nil {
			return errors.New("the write was acknowledged")
		}
		if !api.IsCode(err, api.CodeNotLeader) && !api.IsCode(err, api.CodeUnavailable) {
			return fmt.Errorf("refused with %v, want a 503 not_leader or unavailable", err)
		}
		refusal = err
		return nil
	})
	t.Logf("%s refuses writes: %v", cut.Name, refusal)
	if msg := refusal.Error(); !strings.Contains(msg, "leader") && !strings.Contains(msg, "quorum") {
		t.Errorf("the refusal %q does not say that there is no leader or quorum", msg)
	}
	// ... every time, not just once.
	for i := range 5 {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := cut.Client.UpdateService(rctx, "before-cut", idle("before-cut", map[string]string{"try": fmt.Sprint(i)}), 0)
		cancel()
		if err == nil {
			t.Fatalf("%s acknowledged an update while cut off from the majority", cut.Name)
		}
	}
	// A consistent read needs the leader: refused too.
	if _, err := cut.Client.Service(ctx, "before-cut", client.ReadOptions{Consistent: true}); err == nil {
		t.Errorf("%s answered a consistent read while cut off", cut.Name)
	} else if !api.IsCode(err, api.CodeNotLeader) && !api.IsCode(err, api.CodeUnavailable) {
		t.Errorf("%s refused a consistent read with %v, want a 503", cut.Name, err)
	} else {
		t.Logf("%s refuses consistent reads: %v", cut.Name, err)
	}
	// Its own state it still serves.
	if s, err := cut.Client.Service(ctx, "before-cut", client.ReadOptions{}); err != nil {
		t.Errorf("%s does not serve a local read while cut off: %v", cut.Name, err)
	} else if s.Spec.Labels["try"] != "" {
		t.Errorf("%s shows an update it refused: labels %v", cut.Name, s.Spec.Labels)
	}
	if _, err := cut.Client.Services(ctx, client.ReadOptions{}); err != nil {
		t.Errorf("%s does not list services while cut off: %v", cut.Name, err)
	}
	if _, err := cut.Client.Service(ctx, created[0], client.ReadOptions{}); !api.NotFound(err) {
		t.Errorf("%s has %s, written on the majority while it was cut off (err %v)", cut.Name, created[0], err)
	}
	nodeStates(ctx, t, next, c)

	if err := cut.Heal(); err != nil {
		t.Fatal(err)
	}
	healed := time.Now()
	eventually(t, 20*time.Second, cut.Name+" catches up", func() error {
		for _, name := range created {
			if _, err := cut.Client.Service(ctx, name, client.ReadOptions{}); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	})
	t.Logf("%s caught up %.0f ms after the heal", cut.Name, float64(time.Since(healed))/1e6)
	if err := cut.WaitVoter(ctx); err != nil {
		t.Fatal(err)
	}
	// Nothing written on the minority while cut off exists anywhere.
	for _, m := range c.Managers() {
		if _, err := m.Client.Service(ctx, "on-the-minority", client.ReadOptions{Consistent: true}); !api.NotFound(err) {
			t.Errorf("%s: on-the-minority, refused while cut off, reads as %v", m.Name, err)
		}
	}
	after := waitContainers(t, c, "web", 4)
	if !sameContainers(before, after) {
		t.Errorf("the workers' containers changed across the partition:\nbefore %v\nafter  %v", before, after)
	}
}

// nodeStates logs the nodes as a manager sees them.
func nodeStates(ctx context.Context, t *testing.T, m *Host, c *Cluster) {
	t.Helper()
	ns, err := m.Client.Nodes(ctx, client.ReadOptions{})
	if err != nil {
		t.Logf("nodes through %s: %v", m.Name, err)
		return
	}
	var b strings.Builder
	for _, n := range ns {
		fmt.Fprintf(&b, " %s=%s", n.Description.Hostname, n.Status.State)
	}
	t.Logf("nodes as %s sees them:%s", m.Name, b.String())
}
