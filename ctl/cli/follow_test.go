package cli_test

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/ctl/cli"
	"github.com/warren-edge/warren/daemons/api"
)

// The clock the follow tests give warrenctl, and the manager's times.
var (
	t0      = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	started = t0.Add(-time.Minute).Format(time.RFC3339)
)

// updating is web as an update from v12 to v15 leaves it, in state.
func updating(version uint64, st api.UpdateStatus) api.Service {
	if st.StartedAt == "" {
		st.StartedAt = started
	}
	return api.Service{Meta: api.Meta{ID: "svc0000000000000000000001", Version: 2, UpdatedAt: t0.Add(-time.Minute)},
		Spec:        api.ServiceSpec{Name: "web", Image: "busybox:2", Mode: api.ModeReplicated, Replicas: 2},
		SpecVersion: version, PreviousSpecVersion: 12, UpdateStatus: &st}
}

// slotTask is web's task in a slot: made from version, in state, desired
// running unless the state has ended; a running task started ran ago.
func slotTask(slot, version uint64, state api.TaskState, ran time.Duration) api.Task {
	desired := api.TaskRunning
	if state.Terminal() {
		desired = api.TaskShutdown
	}
	t := api.Task{Meta: api.Meta{ID: "task" + strings.Repeat("0", 19) + string(rune('0'+slot)) + string(rune('a'+version%26))},
		ServiceID: "svc0000000000000000000001", ServiceName: "web", Slot: slot, NodeID: "node000000000000000000001",
		SpecVersion: version, DesiredState: desired, Status: api.TaskStatus{State: state, Timestamp: t0.Add(-time.Second)}}
	if state == api.TaskRunning {
		t.Status.StartedAt = t0.Add(-ran)
	}
	return t
}

// rollout is an update of web's two slots from v12 to v15 that completes.
func rollout() []fakeStep {
	R, S := api.TaskRunning, api.TaskStarting
	return []fakeStep{
		{updating(15, api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 15}),
			[]api.Task{slotTask(1, 12, R, time.Hour), slotTask(2, 12, R, time.Hour)}},
		{updating(15, api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 15}),
			[]api.Task{slotTask(1, 12, api.TaskShutdown, 0), slotTask(1, 15, S, 0), slotTask(2, 12, R, time.Hour)}},
		{updating(15, api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 15}),
			[]api.Task{slotTask(1, 12, api.TaskShutdown, 0), slotTask(1, 15, R, 3*time.Second), slotTask(2, 12, R, time.Hour)}},
		{updating(15, api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 15, Updated: 1}),
			[]api.Task{slotTask(1, 15, R, 6*time.Second), slotTask(2, 12, api.TaskShutdown, 0), slotTask(2, 15, R, 2*time.Second)}},
		{updating(15, api.UpdateStatus{State: api.UpdateCompleted, SpecVersion: 15, Updated: 2}),
			[]api.Task{slotTask(1, 15, R, 6*time.Second), slotTask(2, 15, R, 6*time.Second)}},
	}
}

// runTerm runs warrenctl against url with the clock at t0, stderr a
// terminal or not.
func runTerm(url string, terminal bool, args ...string) result {
	var out, errb bytes.Buffer
	app := &cli.App{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return map[string]string{cli.EnvHost: url}[k] },
		Now: func() time.Time { return t0 }, PollEvery: time.Millisecond, Retry: -1,
		IsTerminal: func(w io.Writer) bool { return terminal && w == &errb }}
	code := app.Run(context.Background(), args)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// TestUpdateShowsSlots: without a terminal, a line each time the update's
// state or a slot changes, and no control codes.
func TestUpdateShowsSlots(t *testing.T) {
	f, url := newFake(t)
	f.steps = rollout()
	r := runTerm(url, false, "service", "update", "--image", "busybox:2", "web")
	want := `web: updating v12 → v15: 0/2 updated, 0 failed (monitor 5s)
web.1  v12  waiting
web.2  v12  waiting
web.1  v12 → v15  starting
web.1  v12 → v15  running
web: updating v12 → v15: 1/2 updated, 0 failed (monitor 5s)
web.1  v12 → v15  updated
web.2  v12 → v15  running
web: completed v12 → v15: 2/2 updated, 0 failed (monitor 5s)
web.2  v12 → v15  updated
`
	if r.code != 0 || r.stdout != "web\n" || r.stderr != want {
		t.Errorf("service update of two slots, stderr no terminal: exit %d, stdout %q, stderr:\n%s\nwant exit 0, web and:\n%s", r.code, r.stdout, r.stderr, want)
	}
}

// TestUpdateRedrawsSlotsOnATerminal: on a terminal the block is drawn
// over itself, with a running task's time against the monitor.
func TestUpdateRedrawsSlotsOnATerminal(t *testing.T) {
	f, url := newFake(t)
	f.steps = rollout()
	r := runTerm(url, true, "service", "update", "--image", "busybox:2", "web")
	if r.code != 0 {
		t.Fatalf("service update on a terminal: exit %d, stderr %q", r.code, r.stderr)
	}
	frames := strings.Split(r.stderr, "\x1b[3A")
	if len(frames) != 5 {
		t.Errorf("service update on a terminal drew %d frames, want 5, each after moving 3 lines up:\n%q", len(frames), r.stderr)
	}
	third := "\r\x1b[2Kweb: updating v12 → v15: 0/2 updated, 0 failed (monitor 5s)\n" +
		"\r\x1b[2K  web.1  v12 → v15  running 3s/5s\n" +
		"\r\x1b[2K  web.2  v12        waiting\n"
	last := "\r\x1b[2Kweb: completed v12 → v15: 2/2 updated, 0 failed (monitor 5s)\n" +
		"\r\x1b[2K  web.1  v12 → v15  updated\n" +
		"\r\x1b[2K  web.2  v12 → v15  updated\n"
	if len(frames) == 5 && (frames[2] != third || frames[4] != last) {
		t.Errorf("service update on a terminal: third frame %q, last %q; want %q and %q", frames[2], frames[4], third, last)
	}
}

// TestUpdateExitCodes: the update's end decides the exit code, with its
// reason; a timeout says where it stands.
func TestUpdateExitCodes(t *testing.T) {
	R := api.TaskRunning
	running := []api.Task{slotTask(1, 15, R, time.Hour), slotTask(2, 12, R, time.Hour)}
	rolling := func(state string, st api.UpdateStatus) api.Service {
		st.State, st.SpecVersion, st.Automatic = state, 16, true
		s := updating(16, st)
		s.SameAsVersions, s.PreviousSpecVersion = []uint64{12}, 0
		return s
	}
	why := "rolling back: task web.1: non-zero exit (1)"
	tests := []struct {
		name   string
		args   []string
		steps  []fakeStep
		code   int
		stderr []string
	}{
		{"completed", nil, rollout(), 0, []string{"web: completed"}},
		{"paused", nil, []fakeStep{
			{updating(15, api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 15}), running},
			{updating(15, api.UpdateStatus{State: api.UpdatePaused, SpecVersion: 15, Failed: 1, Message: "update paused: 1 of 2 tasks failed"}), running},
		}, 1, []string{"warrenctl: service web: the update paused: update paused: 1 of 2 tasks failed\n", "warrenctl service rollback web"}},
		{"rolled back on its own", nil, []fakeStep{
			{updating(15, api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 15}), running},
			{rolling(api.UpdateRollingBack, api.UpdateStatus{Message: why, Failed: 1}),
				[]api.Task{slotTask(1, 15, R, time.Hour), slotTask(2, 12, R, time.Hour)}},
			{rolling(api.UpdateRollingBack, api.UpdateStatus{Message: why}),
				[]api.Task{slotTask(1, 15, api.TaskShutdown, 0), slotTask(1, 16, api.TaskStarting, 0), slotTask(2, 12, R, time.Hour)}},
			{rolling(api.UpdateRolledBack, api.UpdateStatus{}), []api.Task{slotTask(1, 16, R, time.Hour), slotTask(2, 12, R, time.Hour)}},
		}, 1, []string{
			"web: rolling back (automatic) v15 → v16: 0/2 updated, 1 failed (monitor 5s); " + why + "\n",
			"web.1  v15 → v16  starting\n",
			"web.2  v12  running\n",
			"warrenctl: service web: update rolled back: task web.1: non-zero exit (1)\n"}},
		{"rolled back on its own, then paused", nil, []fakeStep{
			{updating(15, api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 15}), running},
			{rolling(api.UpdateRollingBack, api.UpdateStatus{Message: why}), running},
			{rolling(api.UpdatePaused, api.UpdateStatus{Message: "rollback paused: web.1 failed again"}), running},
		}, 1, []string{"warrenctl: service web: the update failed (task web.1: non-zero exit (1)) and its rollback paused: rollback paused: web.1 failed again\n"}},
		{"timeout", []string{"--timeout", "50ms"}, []fakeStep{
			{updating(15, api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 15, Updated: 1}), running},
		}, 1, []string{"warrenctl: service web: after 50ms the update is updating: 1/2 updated, 0 failed, 1/2 running, 1 on the old spec\n",
			"It goes on in the cluster: follow it with warrenctl service ps web"}},
		{"another update", nil, []fakeStep{
			{updating(15, api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 15}), running},
			{updating(20, api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: 20}), running},
		}, 1, []string{"service web: changed by another update while warrenctl waited (its tasks now go to spec version 20)"}},
		{"quiet", []string{"-q"}, rollout(), 0, nil},
	}
	for _, tt := range tests {
		f, url := newFake(t)
		f.steps = tt.steps
		r := runTerm(url, false, append(append([]string{"service", "update", "--image", "busybox:2"}, tt.args...), "web")...)
		ok := r.code == tt.code
		for _, s := range tt.stderr {
			ok = ok && strings.Contains(r.stderr, s)
		}
		if tt.stderr == nil {
			ok = ok && r.stderr == ""
		}
		if !ok {
			t.Errorf("service update that ends %s: exit %d, stderr:\n%s\nwant exit %d and stderr with %q", tt.name, r.code, r.stderr, tt.code, tt.stderr)
		}
	}
}

// TestRollbackFollows: service rollback succeeds when the service is
// rolled back, and fails when the rollback pauses; -d does not wait.
func TestRollbackFollows(t *testing.T) {
	back := func(state string, msg string) api.Service {
		s := updating(16, api.UpdateStatus{State: state, SpecVersion: 16, Message: msg})
		s.SameAsVersions, s.PreviousSpecVersion = []uint64{12}, 0
		return s
	}
	tasks := []api.Task{slotTask(1, 16, api.TaskRunning, time.Hour), slotTask(2, 12, api.TaskRunning, time.Hour)}
	for _, tt := range []struct {
		args   []string
		steps  []fakeStep
		code   int
		stderr string
	}{
		{[]string{"service", "rollback", "web"}, []fakeStep{{back(api.UpdateRollingBack, ""), tasks}, {back(api.UpdateRolledBack, ""), tasks}},
			0, "web.1  v16  rolled back\nweb.2  v12  running\nweb: rolled-back v1 → v16: 0/2 updated, 0 failed (monitor 5s)\n"},
		{[]string{"service", "update", "--rollback", "web"}, []fakeStep{{back(api.UpdateRollingBack, ""), tasks}, {back(api.UpdatePaused, "paused: web.1 failed"), tasks}},
			1, "warrenctl: service web: the rollback paused: paused: web.1 failed\nSee warrenctl service ps web\n"},
		{[]string{"service", "rollback", "-d", "web"}, []fakeStep{{back(api.UpdatePaused, "never seen"), tasks}}, 0, ""},
	} {
		f, url := newFake(t)
		f.steps = tt.steps
		r := runTerm(url, false, tt.args...)
		if r.code != tt.code || r.stdout != "web\n" || !strings.HasSuffix(r.stderr, tt.stderr) || (tt.stderr == "" && r.stderr != "") {
			t.Errorf("warrenctl %s: exit %d, stdout %q, stderr:\n%s\nwant exit %d and stderr ending in %q", strings.Join(tt.args, " "), r.code, r.stdout, r.stderr, tt.code, tt.stderr)
		}
		if tt.code == 0 && tt.stderr == "" && f.step != 0 {
			t.Errorf("warrenctl %s looked at the tasks %d times, want none", strings.Join(tt.args, " "), f.step)
		}
	}
}

// TestPolicyFlagsReachTheManager: the rollback and deadline flags of
// service update arrive in the spec the manager gets.
func TestPolicyFlagsReachTheManager(t *testing.T) {
	f, url := newFake(t)
	r := runWith(context.Background(), url, "", "service", "update", "-d", "--update-progress-deadline", "3m",
		"--rollback-monitor", "9s", "--rollback-order", "start-first", "web")
	if r.code != 0 {
		t.Fatalf("service update with rollback flags: exit %d, stderr %q", r.code, r.stderr)
	}
	got := f.svc.Spec
	if got.UpdateConfig.ProgressDeadline != api.Duration(3*time.Minute) || got.RollbackConfig == nil ||
		!reflect.DeepEqual(*got.RollbackConfig, api.UpdateConfig{FailureAction: api.FailurePause, Monitor: api.Duration(9 * time.Second), Order: api.OrderStartFirst, ProgressDeadline: api.Duration(3 * time.Minute)}) {
		t.Errorf("service update --update-progress-deadline 3m --rollback-monitor 9s --rollback-order start-first sent updateConfig %+v, rollbackConfig %+v",
			got.UpdateConfig, got.RollbackConfig)
	}
	r = runWith(context.Background(), url, "", "service", "update", "-d", "--rollback-failure-action", "rollback", "web")
	if r.code != 1 || !strings.Contains(r.stderr, `rollbackConfig.failureAction: "rollback" is not an action for a failed rollback`) {
		t.Errorf("service update --rollback-failure-action rollback: exit %d, stderr %q; want 1 and the validation error", r.code, r.stderr)
	}
}
