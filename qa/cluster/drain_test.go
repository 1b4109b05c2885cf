package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// TestStopDrainAcrossNodes: a node that hears of a task's stop late sends
// it no connection after its process is gone. w1 publishes the port of two
// tasks that run on w2; w1 is held from the managers for a second while
// the service is scaled to one, so w1's watch, and with it w1's ports,
// lag the stop by more than a second. The task told to stop drains for 3s
// (stopDrain) before its SIGTERM: under a steady load through w1, no
// request fails. (With no drain, w2 stops the task at once and w1 keeps
// sending it connections until its watch catches up.)
func TestStopDrainAcrossNodes(t *testing.T) {
	wc := startWeb(t, 4*time.Minute, func(c *Cluster) api.ServiceSpec {
		spec := WebService("web", 2, 8080, api.OrderStopFirst)
		spec.Placement.Constraints = []string{"node.hostname==" + c.Host("w2").Name}
		spec.StopDrain = api.Duration(3 * time.Second)
		return spec
	}, 2)
	ctx, m, w1 := wc.ctx, wc.m, wc.w1
	load := wc.underLoad(t, "a task on w2 stopped, w1 held", time.Second, 2*time.Second, func() {
		if err := w1.Hold(); err != nil {
			t.Fatal(err)
		}
		held := true
		defer func() {
			if held {
				w1.Release()
			}
		}()
		if _, err := m.Client.ScaleService(ctx, "web", 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if err := w1.Release(); err != nil {
			t.Fatal(err)
		}
		held = false
		// The stopped task ends (drained, then stopped), and the load
		// runs on a while past it.
		eventually(t, time.Minute, "one task stopped, one running", func() error {
			ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: "web"})
			if err != nil {
				return err
			}
			stopped := 0
			for _, tk := range ts {
				if tk.DesiredState != api.TaskRunning && tk.Status.State == api.TaskShutdown {
					stopped++
				}
			}
			if stopped != 1 || len(liveTasks(ts)) != 1 {
				return fmt.Errorf("tasks:%s", describeTasks(ts))
			}
			return nil
		})
	})
	// Both tasks answered the load: it ran across the stop.
	if len(load.Bodies()) != 2 {
		t.Errorf("answers %v: want both tasks'", load.Bodies())
	}
}
