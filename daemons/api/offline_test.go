package api

import (
	"strings"
	"testing"
	"time"
)

func TestOfflinePolicyValidation(t *testing.T) {
	for _, c := range []struct {
		p    OfflinePolicy
		want string // "" valid
	}{
		{OfflinePolicy{}, ""},
		{OfflinePolicy{Restart: "local", MaxOffline: Duration(72 * time.Hour), OnReconnect: "replace"}, ""},
		{OfflinePolicy{Restart: "sometimes"}, "offline.restart"},
		{OfflinePolicy{OnReconnect: "both"}, "offline.onReconnect"},
		{OfflinePolicy{MaxOffline: -1}, "offline.maxOffline"},
		{OfflinePolicy{MaxOffline: MaxOfflineLimit + 1}, "offline.maxOffline"},
	} {
		s := ServiceSpec{Name: "web", Image: "busybox", Replicas: 1, Offline: c.p}
		err := ValidateServiceSpec(&s)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.p, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: got %v, want an error about %s", c.p, err, c.want)
		}
	}
	g := ServiceSpec{Mode: ModeGlobal, Offline: OfflinePolicy{Restart: OfflineRestartWait}}
	if g.EffectiveOfflineRestart() != OfflineRestartLocal {
		t.Error("a global service must always restart locally")
	}
}

func TestRestartRule(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := RestartPolicy{Condition: RestartOnFailure, Delay: Duration(time.Second), MaxAttempts: 2, Window: Duration(time.Minute)}
	if _, ok := p.Restart(RestartCount{}, TaskComplete, t0, t0.Add(time.Second), t0); ok {
		t.Error("on-failure restarted a task that completed")
	}
	at, ok := p.Restart(RestartCount{}, TaskFailed, t0, t0.Add(time.Second), t0)
	if !ok || !at.Equal(t0.Add(2*time.Second)) {
		t.Errorf("first failure: %v %v", at, ok)
	}
	c := p.Next(RestartCount{}, t0, t0.Add(time.Second), t0.Add(2*time.Second))
	c = p.Next(c, t0, t0.Add(3*time.Second), t0.Add(5*time.Second))
	if c.WindowAttempts != 2 || c.Attempt != 2 {
		t.Fatalf("count after two quick restarts: %+v", c)
	}
	// Quick ends back off: the third waits 4 s (1 s doubled twice).
	at, ok = p.Restart(c, TaskFailed, t0.Add(5*time.Second), t0.Add(6*time.Second), t0.Add(6*time.Second))
	if ok || !at.Equal(c.WindowStart.Add(time.Minute)) {
		t.Errorf("attempts spent: got %v %v, want the window's reopening", at, ok)
	}
	at, ok = p.Restart(c, TaskFailed, t0.Add(5*time.Second), t0.Add(6*time.Second), t0.Add(2*time.Minute))
	if !ok || !at.Equal(t0.Add(6*time.Second).Add(4*time.Second)) {
		t.Errorf("window reopened: got %v %v", at, ok)
	}
}
