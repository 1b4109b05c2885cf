package nspawn

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/qa/testimage"
)

// ExampleSeed is the image's example cloud-init seed
// (image/cloud-init/user-data) with conf as its warren.conf, as an
// operator would write it for host name.
func ExampleSeed(name, conf string) (*Seed, error) {
	repo, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	ud, err := os.ReadFile(repo + "/image/cloud-init/user-data")
	if err != nil {
		return nil, err
	}
	head, after, ok := strings.Cut(string(ud), "path: /etc/warren/warren.conf")
	if !ok {
		return nil, errors.New("image/cloud-init/user-data writes no /etc/warren/warren.conf")
	}
	before, block, ok := strings.Cut(after, "content: |\n")
	if !ok {
		return nil, errors.New("no content block for warren.conf in image/cloud-init/user-data")
	}
	// The block is the lines indented by 6; what follows stays.
	lines := strings.SplitAfter(block, "\n")
	i := 0
	for i < len(lines) && (strings.HasPrefix(lines[i], "      ") || lines[i] == "\n") {
		i++
	}
	var b strings.Builder
	b.WriteString(head + "path: /etc/warren/warren.conf" + before + "content: |\n")
	for _, l := range strings.Split(strings.TrimRight(conf, "\n"), "\n") {
		b.WriteString("      " + l + "\n")
	}
	b.WriteString("\n" + strings.Join(lines[i:], ""))
	return &Seed{
		MetaData: fmt.Sprintf("instance-id: warren-%s\nlocal-hostname: %s\n", name, name),
		UserData: b.String(),
	}, nil
}

// PowerCut ends the machine at once (SIGKILL to its PID 1: no shutdown, no
// sync by its services) and boots it again on the same disk.
func (h *Host) PowerCut(ctx context.Context) error {
	h.kill()
	return h.start(ctx)
}

// CutOff drops everything on the host's LAN link (its eth0), in its own
// network namespace, as a cable pulled out; containers and the host's
// loopback keep working. The rule outlives the host's reboots.
func (h *Host) CutOff(ctx context.Context) error {
	rules := `table inet warrenqa_cut {
	chain cut_in { type filter hook input priority -300; iifname "eth0" drop; }
	chain cut_out { type filter hook output priority -300; oifname "eth0" drop; }
	chain cut_fwd { type filter hook forward priority -300; iifname "eth0" drop; oifname "eth0" drop; }
}`
	cmd := exec.CommandContext(ctx, "nsenter", "--net="+h.NetNS(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nspawn: cut %s off: %v: %s", h.Spec.Name, err, out)
	}
	return nil
}

// Reconnect undoes CutOff.
func (h *Host) Reconnect(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "nsenter", "--net="+h.NetNS(), "nft", "delete", "table", "inet", "warrenqa_cut").CombinedOutput()
	if err != nil {
		return fmt.Errorf("nspawn: reconnect %s: %v: %s", h.Spec.Name, err, out)
	}
	return nil
}

// OfflineResult is what the offline scenario measured.
type OfflineResult struct {
	// LocalRestart: a task's process killed on the cut-off worker → its
	// container runs again (restart delay 1 s included).
	LocalRestart time.Duration
	// ConnectedRestart: the same with the managers reachable (the
	// managers replace the task).
	ConnectedRestart time.Duration
	// OfflineBoot: power cut while cut off → every task running again,
	// from the launch of the machine.
	OfflineBoot time.Duration
	// Reconnect: the cable back → the managers show every task running
	// with its local restarts, on the same containers.
	Reconnect time.Duration
}

// OfflineScenario runs issue 11's story on booted hosts: m1 a manager, w1
// a worker joined to it. Two tasks of a service run on w1; w1 is cut off;
// one task's process is killed (the node restarts it in place); w1 loses
// power and boots again, still cut off (its tasks run again from its
// checkpoint); the cable comes back (the managers take the node's history
// in: the same tasks, no restart of a healthy one, no duplicate). Any
// broken promise is an error. logf narrates.
func OfflineScenario(ctx context.Context, m1, w1 *Host, logf func(string, ...any)) (OfflineResult, error) {
	var res OfflineResult
	cl, err := m1.Client()
	if err != nil {
		return res, err
	}
	defer cl.Close()
	if err := loadTestImage(ctx, w1); err != nil {
		return res, err
	}
	spec := api.ServiceSpec{Name: "edge", Image: "localhost/busybox:latest", Replicas: 2,
		Command:       []string{"sleep", "100001"},
		Placement:     api.Placement{Constraints: []string{"node.hostname==" + w1.Name()}},
		RestartPolicy: api.RestartPolicy{Delay: api.Duration(time.Second)}}
	if _, err := cl.CreateService(ctx, spec); err != nil {
		return res, fmt.Errorf("create the service: %w", err)
	}
	pids, err := waitPIDs(ctx, w1, 2, nil, 90*time.Second)
	if err != nil {
		return res, err
	}

	// Connected, for comparison: the managers replace a killed task.
	victim := anyKey(pids)
	began := time.Now()
	if _, err := w1.Exec(ctx, "kill -9 "+pids[victim]); err != nil {
		return res, err
	}
	if pids, err = waitPIDs(ctx, w1, 2, func(p map[string]string) bool { return p[victim] == "" }, 60*time.Second); err != nil {
		return res, fmt.Errorf("connected restart: %w", err)
	}
	res.ConnectedRestart = time.Since(began)
	logf("connected: a killed task replaced by the managers in %.2f s", res.ConnectedRestart.Seconds())
	ids := map[string]bool{}
	for id := range pids {
		ids[id] = true
	}
	if err := waitManagerRunning(ctx, cl, ids, nil, 60*time.Second); err != nil {
		return res, err
	}

	// Cut off: the node restarts a killed task in place.
	if err := w1.CutOff(ctx); err != nil {
		return res, err
	}
	if _, err := w1.WaitUnit(ctx, "warren-agent.service", []string{"StatusText"}, func(p map[string]string) bool {
		return strings.Contains(p["StatusText"], "cut off")
	}); err != nil {
		return res, fmt.Errorf("the agent never said it is cut off: %w", err)
	}
	victim = anyKey(pids)
	old := pids[victim]
	began = time.Now()
	if _, err := w1.Exec(ctx, "kill -9 "+old); err != nil {
		return res, err
	}
	if _, err = waitPIDs(ctx, w1, 2, func(p map[string]string) bool { return p[victim] != "" && p[victim] != old }, 60*time.Second); err != nil {
		return res, fmt.Errorf("cut off, the killed task was not restarted in place: %w", err)
	}
	res.LocalRestart = time.Since(began)
	logf("cut off: the killed task restarted in place in %.2f s", res.LocalRestart.Seconds())

	// Power cut while cut off: the tasks run again from the checkpoint.
	if err := w1.PowerCut(ctx); err != nil {
		return res, err
	}
	launched := launchedWall(w1)
	if pids, err = waitPIDs(ctx, w1, 2, func(p map[string]string) bool { return p[victim] != "" }, 90*time.Second); err != nil {
		return res, fmt.Errorf("cut off, after a power cut: %w", err)
	}
	res.OfflineBoot = time.Since(launched)
	for id := range pids {
		if !ids[id] {
			return res, fmt.Errorf("after the offline reboot w1 runs task %s, which is not one of %v", id, keys(ids))
		}
	}
	logf("cut off, power cut: both tasks running %.2f s after the machine's launch", res.OfflineBoot.Seconds())
	if _, err := cl.Info(ctx); err != nil {
		return res, err
	}

	// Break-glass, as an operator on site would over SSH: a sticky
	// override on one task (it restarts with it), journaled.
	if out, err := w1.Exec(ctx, "warrenctl --local ps"); err != nil || !strings.Contains(out, "cut off") {
		return res, fmt.Errorf("warrenctl --local ps on the cut-off worker: %v\n%s", err, out)
	}
	if out, err := w1.Exec(ctx, "warrenctl --local override "+victim+" --env MODE=degraded --sticky"); err != nil {
		return res, fmt.Errorf("warrenctl --local override: %v\n%s", err, out)
	}
	if pids, err = waitPIDs(ctx, w1, 2, func(p map[string]string) bool { return p[victim] != "" }, 60*time.Second); err != nil {
		return res, fmt.Errorf("after the override: %w", err)
	}
	if out, err := w1.Exec(ctx, "cat /proc/"+pids[victim]+"/environ | tr '\\0' '\\n'"); err != nil || !strings.Contains(out, "MODE=degraded") {
		return res, fmt.Errorf("the overridden task runs without MODE=degraded (%v):\n%s", err, out)
	}
	logf("cut off: warrenctl --local override pinned MODE=degraded on %s", victim)

	// The cable back: the managers take the history in, nothing restarts.
	steady := pids
	began = time.Now()
	if err := w1.Reconnect(ctx); err != nil {
		return res, err
	}
	if err := waitManagerRunning(ctx, cl, ids, func(t api.Task) bool {
		return t.Status.Offline != nil && t.Status.Offline.Restarts >= 1
	}, 120*time.Second); err != nil {
		return res, fmt.Errorf("after reconnect: %w", err)
	}
	res.Reconnect = time.Since(began)
	logf("reconnected: the managers show both tasks running with their local restarts %.2f s after the cable came back", res.Reconnect.Seconds())
	// A little longer: nothing may restart or be duplicated afterwards.
	time.Sleep(5 * time.Second)
	now, err := runningPIDs(ctx, w1)
	if err != nil {
		return res, err
	}
	for id, pid := range steady {
		if now[id] != pid {
			return res, fmt.Errorf("task %s was restarted on reconnect (pid %s, now %q)", id, pid, now[id])
		}
	}
	if len(now) != len(steady) {
		return res, fmt.Errorf("after reconnect w1 runs %v, want exactly %v", now, steady)
	}
	ts, err := cl.Tasks(ctx, client.TaskQuery{Service: "edge"})
	if err != nil {
		return res, err
	}
	for _, t := range ts {
		if t.Live() && !ids[t.ID] {
			return res, fmt.Errorf("after reconnect the managers hold another live task %s (%s on %s): a duplicate", t.ID, t.Status.State, t.NodeID)
		}
		if t.ID == victim && (t.Status.Offline == nil || t.Status.Offline.Override == nil || !slices.Contains(t.Status.Offline.Override.Env, "MODE=degraded")) {
			return res, fmt.Errorf("the managers did not record the sticky override of %s: %+v", t.ID, t.Status.Offline)
		}
	}
	// The journal reached the managers, chained, with who did it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		js, err := cl.NodeJournal(ctx, w1.Name())
		if err == nil && len(js) > 0 {
			if err := api.VerifyJournal(js, 0, ""); err != nil {
				return res, fmt.Errorf("the managers' copy of w1's journal: %w", err)
			}
			last := js[len(js)-1]
			if last.Action != api.LocalOverride || last.User != "root" || last.Result != "ok" {
				return res, fmt.Errorf("w1's journal at the managers ends with %+v, want root's override", last)
			}
			break
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("w1's journal never reached the managers (%v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return res, nil
}

// errNoTestImage: the busybox test image cannot be made on this machine.
var errNoTestImage = errors.New("cannot make the busybox test image here")

// loadTestImage builds the busybox test image and loads it on h with
// warrenctl (through the manager, into the agent's containerd).
func loadTestImage(ctx context.Context, h *Host) error {
	var b bytes.Buffer
	if err := testimage.Build(&b, testimage.Options{Name: "localhost/busybox:latest"}); err != nil {
		return fmt.Errorf("%w: %v", errNoTestImage, err)
	}
	if err := h.CopyIn("/root/busybox.tar", b.Bytes(), 0o644); err != nil {
		return err
	}
	if out, err := h.Exec(ctx, "warrenctl image load -i /root/busybox.tar"); err != nil {
		return fmt.Errorf("warrenctl image load on %s: %v\n%s", h.Name(), err, out)
	}
	return nil
}

// runningPIDs is task ID → PID of the Warren containers running on h
// (ctr tasks ls in namespace warren).
func runningPIDs(ctx context.Context, h *Host) (map[string]string, error) {
	out, err := h.Exec(ctx, "ctr -n warren tasks ls")
	if err != nil {
		return nil, fmt.Errorf("ctr tasks ls on %s: %v: %s", h.Name(), err, out)
	}
	pids := map[string]string{}
	for _, l := range strings.Split(out, "\n")[1:] {
		f := strings.Fields(l)
		if len(f) >= 3 && f[2] == "RUNNING" {
			pids[f[0]] = f[1]
		}
	}
	return pids, nil
}

// waitPIDs waits until h runs n Warren containers and ok (if given) holds.
func waitPIDs(ctx context.Context, h *Host, n int, ok func(map[string]string) bool, d time.Duration) (map[string]string, error) {
	deadline := time.Now().Add(d)
	var last map[string]string
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p, err := runningPIDs(ctx, h); err == nil {
			last = p
			if len(p) == n && (ok == nil || ok(p)) {
				return p, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("%s never ran the %d containers wanted; last seen %v", h.Name(), n, last)
}

// waitManagerRunning waits until the managers show exactly the tasks ids
// running (and ok holds for each).
func waitManagerRunning(ctx context.Context, cl *client.Client, ids map[string]bool, ok func(api.Task) bool, d time.Duration) error {
	deadline := time.Now().Add(d)
	var last []api.Task
	for time.Now().Before(deadline) && ctx.Err() == nil {
		ts, err := cl.Tasks(ctx, client.TaskQuery{Service: "edge"})
		if err == nil {
			last = ts
			n := 0
			for _, t := range ts {
				if t.Status.State == api.TaskRunning && t.DesiredState == api.TaskRunning && ids[t.ID] && (ok == nil || ok(t)) {
					n++
				}
			}
			if n == len(ids) {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	var b strings.Builder
	for _, t := range last {
		fmt.Fprintf(&b, "  %s %s desired=%s state=%s offline=%s\n", t.Name(), t.ID, t.DesiredState, t.Status.State, t.Status.Offline)
	}
	return fmt.Errorf("the managers never showed tasks %v running as wanted; last seen:\n%s", keys(ids), b.String())
}

func anyKey(m map[string]string) string {
	for k := range m {
		return k
	}
	return ""
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// launchedWall is the wall-clock time of the host's last launch.
func launchedWall(h *Host) time.Time {
	return time.Now().Add(-(monotonicNow() - h.Launched()))
}

// joinWorker boots a manager host and a worker host joined to it.
func joinWorker(ctx context.Context, c *Cluster, m1 *Host, name string) (*Host, error) {
	cl, err := m1.Client()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	tok, err := cl.JoinToken(ctx, api.RoleWorker, false, 0)
	if err != nil {
		return nil, err
	}
	join := netip.AddrPortFrom(m1.Addr, 4242).String()
	seed, err := ExampleSeed(name, fmt.Sprintf("role = worker\njoin_token = %s\nmanagers = %s\nhostname = %s\n", tok.Token, join, name))
	if err != nil {
		return nil, err
	}
	hs, err := c.Add(ctx, HostSpec{Name: name, Seed: seed})
	if err != nil {
		return nil, err
	}
	if _, ok := waitNodes(ctx, cl, len(c.Hosts), 90*time.Second); !ok {
		return nil, fmt.Errorf("%s never joined as a ready node", name)
	}
	return hs[0], nil
}

// waitNodes waits until the manager lists n nodes, all ready, and returns
// the last list and whether it got there within d.
func waitNodes(ctx context.Context, cl *client.Client, n int, d time.Duration) ([]api.Node, bool) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last []api.Node
	for {
		if nodes, err := cl.Nodes(ctx, client.ReadOptions{}); err == nil {
			last = nodes
			ready := 0
			for _, nd := range nodes {
				if nd.Status.State == api.NodeReady {
					ready++
				}
			}
			if len(nodes) == n && ready == n {
				return nodes, true
			}
		}
		select {
		case <-ctx.Done():
			return last, false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// OfflineBench runs OfflineScenario on two booted hosts for `make bench`.
func OfflineBench(ctx context.Context) (OfflineResult, error) {
	if os.Geteuid() != 0 {
		return OfflineResult{}, errors.New("nspawn: the offline figures need root")
	}
	p, err := DefaultPaths()
	if err != nil {
		return OfflineResult{}, err
	}
	if _, err := EnsureTree(ctx, p); err != nil {
		return OfflineResult{}, err
	}
	seed, err := ExampleSeed("m1", "role = manager\ncluster = init\nhostname = m1\n")
	if err != nil {
		return OfflineResult{}, err
	}
	c, err := Boot(ctx, p, HostSpec{Name: "m1", Seed: seed})
	if err != nil {
		return OfflineResult{}, err
	}
	defer c.Close()
	m1 := c.Hosts[0]
	if _, err := m1.WaitActive(ctx, "warren-manager.service"); err != nil {
		return OfflineResult{}, err
	}
	w1, err := joinWorker(ctx, c, m1, "w1")
	if err != nil {
		return OfflineResult{}, err
	}
	return OfflineScenario(ctx, m1, w1, func(string, ...any) {})
}
