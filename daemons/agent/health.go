package agent

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vishvananda/netns"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/netcfg/link"
)

// Health checks.
//
//	container running ─▶ starting ─(probe ok)─▶ healthy ◀─(probe ok)─┐
//	                        │                      │                  │
//	                        │ (failures in the start period, before a first pass, do not count)
//	                        └──(retries consecutive failures)──▶ unhealthy ─▶ stopped, reported failed
//
// The state machine is pure (healthTracker.observe); healthLoop does the
// probing and reporting. A task with a check is a backend of the node's
// published ports only while healthy (ports.go): the agent publishes them
// again on each change, before it reports it. An unhealthy task leaves
// DNS at once (warren-dns answers only healthy tasks) and is stopped; the
// manager replaces it under the restart policy.

// maxHealthOutput caps the probe output kept in a status.
const maxHealthOutput = 1024

// healthTracker follows one task's probe results.
type healthTracker struct {
	status   string
	failures uint64
	started  time.Time // the container's start, for the start period
	passed   bool      // a probe has passed: the start period is over
}

// observe folds one probe result in. It says whether the health changed
// and whether the task must be stopped as unhealthy.
func (h *healthTracker) observe(ok bool, now time.Time, hc api.HealthCheck) (changed, kill bool) {
	prev := h.status
	switch {
	case ok:
		h.failures, h.passed = 0, true
		h.status = api.HealthHealthy
	case !h.passed && now.Before(h.started.Add(hc.StartPeriod.D())):
		// Still starting: failures do not count yet (as with docker, the
		// first pass ends the start period).
	default:
		h.failures++
		if h.failures >= hc.Retries {
			h.status = api.HealthUnhealthy
		}
	}
	return h.status != prev, h.status == api.HealthUnhealthy
}

// syncHealth starts a probe loop for each running task that has a check
// and none yet, and ends the loops of tasks that no longer run. Callers
// hold a.mu.
func (a *Agent) syncHealth(ctx context.Context) {
	for id, t := range a.tasks {
		c, ok := a.containers[id]
		want := ok && c.State == rt.StateRunning && t.DesiredState == api.TaskRunning &&
			!t.Status.State.Terminal() && t.Spec.HealthCheck != nil
		cancel, has := a.health[id]
		switch {
		case want && !has:
			hctx, cancel := context.WithCancel(ctx)
			a.health[id] = cancel
			tr := trackerFor(t, c)
			a.healthNow[id] = tr.status
			go a.healthLoop(hctx, t, tr)
		case !want && has:
			cancel()
			delete(a.health, id)
			delete(a.healthNow, id)
		}
	}
	for id, cancel := range a.health {
		if _, ok := a.tasks[id]; !ok {
			cancel()
			delete(a.health, id)
			delete(a.healthNow, id)
		}
	}
}

// trackerFor begins following the health of t's running container c:
// starting, or healthy when the store holds it healthy in this very
// container (one the agent adopted when it started again), so that an
// agent's restart does not take its healthy tasks out of service until
// their next probe.
func trackerFor(t *api.Task, c rt.Container) healthTracker {
	tr := healthTracker{status: api.HealthStarting, started: c.StartedAt}
	if tr.started.IsZero() {
		tr.started = time.Now()
	}
	if t.Status.State == api.TaskRunning && t.Status.Health == api.HealthHealthy &&
		!c.StartedAt.IsZero() && t.Status.StartedAt.Equal(c.StartedAt) {
		tr.status, tr.passed = api.HealthHealthy, true
	}
	return tr
}

// healthLoop probes t's container and acts on what it finds. A change of
// health is recorded (healthNow), then the ports are published again (the
// task serves only while healthy), then it is reported: the node serves
// a task that turned healthy before anyone who learns of it from the
// store acts on it, and stops serving one that failed before it is
// stopped.
func (a *Agent) healthLoop(ctx context.Context, t *api.Task, tr healthTracker) {
	hc := t.Spec.HealthCheck.Effective()
	if tr.status != t.Status.Health {
		a.reportHealth(t.ID, tr.status, "")
	}
	tick := time.NewTicker(hc.Interval.D())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, hc.Timeout.D())
		ok, out := a.probe(pctx, t, hc)
		cancel()
		if ctx.Err() != nil {
			return
		}
		changed, kill := tr.observe(ok, time.Now(), hc)
		if changed {
			a.log.Info("task health", "task", t.ID, "service", t.ServiceName, "health", tr.status, "output", out)
			if !a.setHealth(ctx, t.ID, tr.status) {
				return // the loop was ended meanwhile
			}
			a.publishPorts(ctx)
			a.reportHealth(t.ID, tr.status, out)
		}
		if kill {
			// Stopping outlives this loop: the exit it causes ends the loop.
			a.stopUnhealthy(a.runCtx, t, fmt.Sprintf("unhealthy: %d health checks in a row failed: %s", tr.failures, out))
			return
		}
	}
}

// setHealth records a task's health as its probe loop, whose context is
// ctx, found it, unless the loop was ended (under a.mu, as it is ended):
// a loop's late result does not outlive it.
func (a *Agent) setHealth(ctx context.Context, id, health string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	a.healthNow[id] = health
	return true
}

// reportHealth reports the task as running with its health.
func (a *Agent) reportHealth(id, health, output string) {
	a.mu.Lock()
	c, ok := a.containers[id]
	addr := a.addrs[id]
	a.mu.Unlock()
	if !ok || c.State != rt.StateRunning {
		return
	}
	st := api.TaskStatus{State: api.TaskRunning, Message: "running", ContainerID: c.ID, PID: c.Pid,
		StartedAt: c.StartedAt, Health: health, HealthOutput: capOutput(output)}
	if addr.IsValid() {
		st.Addr = addr.String()
	}
	a.report(id, st)
}

func capOutput(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxHealthOutput {
		s = s[:maxHealthOutput-3] + "..."
	}
	return s
}

// stopUnhealthy stops an unhealthy task's container and reports it failed.
func (a *Agent) stopUnhealthy(ctx context.Context, t *api.Task, why string) {
	a.mu.Lock()
	if a.busy[t.ID] {
		a.mu.Unlock()
		return // already being stopped
	}
	a.busy[t.ID] = true
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.busy, t.ID)
		a.mu.Unlock()
		a.kickReconcile()
	}()
	ex, err := a.rt.Stop(ctx, t.ID, t.Spec.EffectiveStopGrace().D())
	if err != nil {
		a.log.Warn("stop unhealthy container", "task", t.ID, "err", err)
	}
	code := ex.Code
	a.setReported(t.ID, api.TaskStatus{State: api.TaskFailed, Err: why, ExitCode: &code, ContainerID: t.ID,
		Health: api.HealthUnhealthy})
	a.remove(ctx, t.ID)
}

// probe runs one check.
func (a *Agent) probe(ctx context.Context, t *api.Task, hc api.HealthCheck) (bool, string) {
	if hc.Type == api.HealthExec {
		code, out, err := a.rt.Exec(ctx, t.ID, hc.Command, hc.Timeout.D())
		switch {
		case err != nil:
			return false, err.Error()
		case code != 0:
			return false, fmt.Sprintf("exit code %d: %s", code, strings.TrimSpace(string(out)))
		}
		return true, string(out)
	}
	a.mu.Lock()
	nsPath := a.netns[t.ID]
	a.mu.Unlock()
	conn, err := dialIn(ctx, nsPath, fmt.Sprintf("127.0.0.1:%d", hc.Port))
	if err != nil {
		return false, err.Error()
	}
	defer conn.Close()
	if hc.Type == api.HealthTCP {
		return true, fmt.Sprintf("port %d accepts connections", hc.Port)
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", hc.Port, hc.Path), nil)
	req.Header.Set("User-Agent", "warren-health/1")
	req.Close = true
	if err := req.Write(conn); err != nil {
		return false, err.Error()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return false, err.Error()
	}
	resp.Body.Close()
	lo, hi, _ := hc.StatusRange()
	out := fmt.Sprintf("GET %s: %s", hc.Path, resp.Status)
	return resp.StatusCode >= lo && resp.StatusCode <= hi, out
}

// dialIn connects to addr from inside the network namespace at nsPath: the
// socket is made on a thread in that namespace.
func dialIn(ctx context.Context, nsPath, addr string) (net.Conn, error) {
	if nsPath == "" {
		return nil, fmt.Errorf("the task has no network namespace to probe in")
	}
	h, err := netns.GetFromPath(nsPath)
	if err != nil {
		return nil, fmt.Errorf("open the task's network namespace: %w", err)
	}
	defer h.Close()
	var conn net.Conn
	err = link.Do(h, func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return conn, err
}
