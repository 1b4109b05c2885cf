package nspawn

import (
	"testing"
	"time"
)

// TestWorkerCutOff: issue 11's promises on booted hosts, with the shipped
// units: a worker cut off from its manager (its LAN link dropped by
// nftables in its own namespace) restarts a killed task in place, boots
// from a power cut with every task running again and the manager still
// unreachable, and on reconnect is taken in as it is: the same tasks, no
// restart of a healthy one, no duplicate (OfflineScenario).
func TestWorkerCutOff(t *testing.T) {
	if why := Enabled("nspawn"); why != "" {
		t.Skip(why)
	}
	ctx := ctxFor(t, 8*time.Minute)
	c, m1, _ := bootFirstManager(ctx, t)
	w1, err := joinWorker(ctx, c, m1, "w1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := OfflineScenario(ctx, m1, w1, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figures: local restart %.2f s (connected %.2f s), offline boot → all running %.2f s, reconnect → converged %.2f s",
		res.LocalRestart.Seconds(), res.ConnectedRestart.Seconds(), res.OfflineBoot.Seconds(), res.Reconnect.Seconds())
}
