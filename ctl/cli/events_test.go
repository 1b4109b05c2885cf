package cli_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// jsonEvents reads warrenctl events -o json's NDJSON.
func jsonEvents(t *testing.T, out string) []api.ClusterEvent {
	t.Helper()
	var evs []api.ClusterEvent
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var ev api.ClusterEvent
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("warrenctl events -o json printed %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

func TestEvents(t *testing.T) {
	c := startCluster(t)
	c.must("service", "create", "--name", "web", "--restart-delay", "10ms", "localhost/busybox", "sleep", "1000")
	task := c.runningTasks("web")[0]
	c.must("service", "exec", "web.1", "--", "echo", "secret-argument")
	if err := c.rt.Exit(task.ID, 3); err != nil {
		t.Fatal(err)
	}
	var evs []api.ClusterEvent
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs = jsonEvents(t, c.must("events", "-o", "json").stdout)
		var failed, restarted, exec bool
		for _, ev := range evs {
			failed = failed || ev.Type == api.EventTaskFailed && ev.TaskID == task.ID && ev.ExitCode != nil && *ev.ExitCode == 3
			restarted = restarted || ev.Type == api.EventTaskRestarted && ev.Service == "web"
			exec = exec || ev.Type == api.EventExecRun && ev.TaskID == task.ID
		}
		if failed && restarted && exec {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events -o json = %+v; want task.failed (exit 3), task.restarted and exec.run of web", evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i, ev := range evs {
		if i > 0 && ev.Seq <= evs[i-1].Seq {
			t.Errorf("events -o json: seq %d after %d, want increasing", ev.Seq, evs[i-1].Seq)
		}
		if ev.Type == api.EventExecRun && strings.Contains(ev.Message, "secret-argument") {
			t.Errorf("exec.run event %+v carries the command's arguments", ev)
		}
	}

	// The lines for a person: time, type, what, message.
	r := c.must("events", "--filter", "type=task.failed")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "task.failed") || !strings.Contains(lines[0], "service web") ||
		!strings.Contains(lines[0], "node node-1") || !strings.Contains(lines[0], "(exit code 3)") {
		t.Errorf("events --filter type=task.failed printed %q; want one line naming web, node-1 and exit code 3", r.stdout)
	}
	if _, err := time.Parse(time.RFC3339, strings.Fields(lines[0])[0]); err != nil {
		t.Errorf("events line %q does not start with the time: %v", lines[0], err)
	}
	// Filters, and since a seq.
	if got := jsonEvents(t, c.must("events", "-o", "json", "--filter", "service=web,type=exec.run").stdout); len(got) != 1 || got[0].Type != api.EventExecRun {
		t.Errorf("events --filter service=web,type=exec.run = %+v, want the one exec", got)
	}
	if got := jsonEvents(t, c.must("events", "-o", "json", "--filter", "service=nope").stdout); len(got) != 0 {
		t.Errorf("events --filter service=nope = %+v, want none", got)
	}
	last := evs[len(evs)-1].Seq
	if got := jsonEvents(t, c.must("events", "-o", "json", "--since", strconv.FormatUint(evs[0].Seq, 10)).stdout); len(got) == 0 || got[0].Seq != evs[0].Seq+1 {
		t.Errorf("events --since %d = %+v, want the events after it", evs[0].Seq, got)
	}
	for _, bad := range [][]string{{"--filter", "colour=red"}, {"--filter", "type=task.exploded"}, {"--since", "yesterday"}, {"-o", "yaml"}} {
		if r := c.run(append([]string{"events"}, bad...)...); r.code != 2 {
			t.Errorf("events %v: exit %d, stderr %q; want 2 (usage)", bad, r.code, r.stderr)
		}
	}

	// -f prints new events as they happen, until interrupted.
	fctx, cancel := context.WithCancel(c.ctx)
	done := make(chan result, 1)
	go func() {
		done <- runWith(fctx, c.host, "", "events", "-f", "-o", "json", "--since", strconv.FormatUint(last, 10), "--filter", "type=update.started")
	}()
	time.Sleep(100 * time.Millisecond) // the stream is open (if not, --since still finds the event)
	c.must("service", "update", "--detach", "--image", "localhost/busybox:2", "web")
	var fr result
	deadline = time.Now().Add(10 * time.Second)
	for {
		// Stop the follow once the event is surely applied.
		if got := jsonEvents(t, c.must("events", "-o", "json", "--filter", "type=update.started").stdout); len(got) > 0 || time.Now().After(deadline) {
			time.Sleep(200 * time.Millisecond)
			cancel()
			fr = <-done
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := jsonEvents(t, fr.stdout)
	if fr.code != 0 || len(got) != 1 || got[0].Type != api.EventUpdateStarted || got[0].Seq <= last {
		t.Errorf("events -f: exit %d, events %+v, stderr %q; want 0 and the update.started after seq %d", fr.code, got, fr.stderr, last)
	}
}
