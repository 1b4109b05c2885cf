package main_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// warrenBin is the warren binary TestMain builds, run by the tests as a
// child process exactly as an operator runs it.
var warrenBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "warren-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Chmod(dir, 0o755) // the manager may run as nobody, see start
		warrenBin = filepath.Join(dir, "warren")
		out, err := exec.Command("go", "build", "-o", warrenBin, "github.com/warren-edge/warren/daemons/warren").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go build warren: %v\n%s", err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// managerProc is a warren manager running as a child process.
type managerProc struct {
	t       *testing.T
	dataDir string
	sock    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	c       *client.Client
}

// base makes a directory the manager can use whoever it runs as. It is not
// t.TempDir: the manager runs as nobody when the test runs as root, and the
// path of a unix socket must stay short.
func base(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "warren-restart-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// start runs `warren manager --data-dir DIR --api-socket PATH` and waits
// until it serves. Run as root, the test runs the manager as nobody, so
// that it shows the manager needs no privileges.
func start(t *testing.T, dir string) *managerProc {
	t.Helper()
	p := &managerProc{t: t, dataDir: filepath.Join(dir, "data"), sock: filepath.Join(dir, "api.sock"),
		logPath: filepath.Join(dir, "manager.log"), done: make(chan struct{})}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "---- start %s\n", time.Now().Format(time.StampMilli))
	p.cmd = exec.Command(warrenBin, "manager", "--data-dir", p.dataDir, "--api-socket", p.sock,
		"--hostname", "restart-test", "--agent-socket", filepath.Join(dir, "agent.sock"), "--log-level", "info")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=", "WATCHDOG_USEC=", "LISTEN_FDS=", "LISTEN_PID=")
	if os.Geteuid() == 0 {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	}
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s manager: %v", warrenBin, err)
	}
	logf.Close()
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	if p.c, err = client.New("unix://" + p.sock); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		hctx, hcancel := context.WithTimeout(ctx, time.Second)
		err := p.c.Health(hctx)
		hcancel()
		if err == nil {
			if fi, err := os.Stat(p.dataDir); err == nil && os.Geteuid() == 0 {
				if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 65534 {
					t.Fatalf("the manager's data dir is owned by uid %d, want 65534 (nobody): the test means to run it unprivileged", uid)
				}
			}
			return p
		}
		select {
		case <-p.done:
			t.Fatalf("warren manager exited before it served (%v):\n%s", p.cmd.ProcessState, p.logTail())
		case <-ctx.Done():
			t.Fatalf("warren manager not healthy after 20s: %v\n%s", err, p.logTail())
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL, as a crash or the OOM killer would, and reaps it.
func (p *managerProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.c.Close()
}

func (p *managerProc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *managerProc) logTail() string {
	l := p.log()
	if len(l) > 6000 {
		l = "...\n" + l[len(l)-6000:]
	}
	return l
}

// ledger records, per service, the spec after its last acknowledged write
// and the spec of a write whose answer never came (the manager died first).
type ledger struct {
	mu   sync.Mutex
	recs map[string]*record
}

type record struct {
	acked    *api.ServiceSpec // nil: the create was never acknowledged
	inflight *api.ServiceSpec // nil: no write without an answer
	op       string           // the last write tried
}

func newLedger() *ledger { return &ledger{recs: map[string]*record{}} }

func (l *ledger) add(name string) *record {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &record{}
	l.recs[name] = r
	return r
}

// load is a workload: writers create services, scale and update them, each
// service written by one writer only, so its acknowledged writes are
// ordered.
type load struct {
	c       *client.Client
	l       *ledger
	round   int
	creates int           // services to create in all
	killAt  int64         // acknowledged writes after which kill is called; 0: never
	kill    func()        // kills the manager
	killed  atomic.Bool   // set before kill
	acks    atomic.Int64  // acknowledged writes
	made    atomic.Int64  // creates tried
	errs    chan error    // unexpected errors (the manager was alive)
	rng     func() uint64 // seeded source for each writer
	seedMu  sync.Mutex
}

func (ld *load) run(writers int) {
	var wg sync.WaitGroup
	ld.errs = make(chan error, writers)
	for g := range writers {
		ld.seedMu.Lock()
		r := rand.New(rand.NewPCG(ld.rng(), uint64(g)))
		ld.seedMu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			ld.writer(g, r)
		}()
	}
	wg.Wait()
	close(ld.errs)
}

func (ld *load) writer(g int, rnd *rand.Rand) {
	var mine []string
	ctx := context.Background()
	for i := 0; ; i++ {
		if ld.killed.Load() {
			return
		}
		var name string
		var r *record
		var next api.ServiceSpec
		var call func() error
		if len(mine) > 0 && rnd.IntN(3) == 0 {
			name = mine[rnd.IntN(len(mine))]
			ld.l.mu.Lock()
			r = ld.l.recs[name]
			ld.l.mu.Unlock()
			next = clone(*r.acked)
			if rnd.IntN(2) == 0 {
				next.Replicas = uint64(rnd.IntN(6))
				r.op = fmt.Sprintf("scale to %d", next.Replicas)
				call = func() error { _, err := ld.c.ScaleService(ctx, name, next.Replicas); return err }
			} else {
				next.Env = []string{fmt.Sprintf("GEN=%d", i)}
				next.Image = fmt.Sprintf("localhost/busybox:%d", i)
				next.Args = []string{"sleep", fmt.Sprint(1000 + i)}
				r.op = "update to GEN=" + fmt.Sprint(i)
				call = func() error { _, err := ld.c.UpdateService(ctx, name, next, 0); return err }
			}
		} else {
			if ld.made.Add(1) > int64(ld.creates) {
				return
			}
			name = fmt.Sprintf("r%d-w%d-%d", ld.round, g, i)
			r = ld.l.add(name)
			next = api.ServiceSpec{Name: name, Image: "localhost/busybox:1", Mode: api.ModeReplicated,
				Replicas: uint64(rnd.IntN(4)), Env: []string{"GEN=0"}, Labels: map[string]string{"round": fmt.Sprint(ld.round)}}
			r.op = "create"
			call = func() error {
				s, err := ld.c.CreateService(ctx, next)
				if err == nil && (s.Spec.Name != name || s.Version == 0) {
					return fmt.Errorf("create %s answered %+v", name, s)
				}
				return err
			}
		}
		r.inflight = &next
		if err := call(); err != nil {
			if !ld.killed.Load() {
				ld.errs <- fmt.Errorf("%s %s: %w (the manager was alive)", r.op, name, err)
			}
			return // the write's fate is unknown: it stays in flight
		}
		r.acked, r.inflight = r.inflight, nil
		if r.op == "create" {
			mine = append(mine, name)
		}
		if n := ld.acks.Add(1); n == ld.killAt {
			ld.killed.Store(true)
			ld.kill()
		}
	}
}

func clone(s api.ServiceSpec) api.ServiceSpec {
	s.Env = append([]string(nil), s.Env...)
	s.Args = append([]string(nil), s.Args...)
	labels := map[string]string{}
	for k, v := range s.Labels {
		labels[k] = v
	}
	s.Labels = labels
	return s
}

func specString(s *api.ServiceSpec) string {
	if s == nil {
		return "nothing"
	}
	return fmt.Sprintf("{image %s, %d replicas, env %v, args %v}", s.Image, s.Replicas, s.Env, s.Args)
}

// verify checks that the manager holds every acknowledged write whole, and
// a write without an answer either whole or not at all; then it records
// what the manager holds as acknowledged, for the next round.
func verify(t *testing.T, p *managerProc, l *ledger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	svcs, err := p.c.Services(ctx, client.ReadOptions{Consistent: true})
	if err != nil {
		t.Fatalf("list services after restart: %v\n%s", err, p.logTail())
	}
	got := map[string]*api.Service{}
	for i := range svcs {
		got[svcs[i].Spec.Name] = &svcs[i]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var lost, acked, inflightApplied, inflightLost int
	for name, r := range l.recs {
		s := got[name]
		delete(got, name)
		switch {
		case s == nil && r.acked != nil:
			lost++
			t.Errorf("service %s: %s was acknowledged, but after kill -9 and restart it is gone (want %s)", name, r.op, specString(r.acked))
		case s == nil:
			inflightLost++
			delete(l.recs, name) // never created; the name is not reused
			continue
		case r.acked != nil && api.SpecEqual(&s.Spec, r.acked):
			acked++
			if r.inflight != nil {
				inflightLost++
			}
		case r.inflight != nil && api.SpecEqual(&s.Spec, r.inflight):
			inflightApplied++
		default:
			t.Errorf("service %s after kill -9 and restart is %s; want %s (acknowledged) or %s (%s, unanswered): a write was lost or half-applied",
				name, specString(&s.Spec), specString(r.acked), specString(r.inflight), r.op)
		}
		if s != nil {
			if s.Version == 0 || s.SpecVersion == 0 || s.SpecVersion > s.Version || s.ID == "" {
				t.Errorf("service %s after restart has ID %q, version %d, spec version %d", name, s.ID, s.Version, s.SpecVersion)
			}
			spec := s.Spec
			r.acked, r.inflight = &spec, nil
		}
	}
	for name := range got {
		t.Errorf("after restart the manager has service %s, which no one created", name)
	}
	t.Logf("after restart: %d services as acknowledged, %d unanswered writes applied, %d not, %d acknowledged writes lost",
		acked, inflightApplied, inflightLost, lost)
}

// waitTasks waits until every service has as many live tasks as replicas:
// the orchestrator resumed after the restart and made no duplicates.
func waitTasks(t *testing.T, p *managerProc, l *ledger) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var bad []string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		svcs, err := p.c.Services(ctx, client.ReadOptions{Consistent: true})
		var tasks []api.Task
		if err == nil {
			tasks, err = p.c.Tasks(ctx, client.TaskQuery{ReadOptions: client.ReadOptions{Consistent: true}})
		}
		cancel()
		if err != nil {
			t.Fatalf("read services and tasks: %v\n%s", err, p.logTail())
		}
		ids := map[string]*api.Service{}
		for i := range svcs {
			ids[svcs[i].ID] = &svcs[i]
		}
		live := map[string]map[uint64]int{}
		bad = bad[:0]
		for _, tk := range tasks {
			s := ids[tk.ServiceID]
			if s == nil {
				bad = append(bad, fmt.Sprintf("task %s of unknown service %s", tk.ID, tk.ServiceID))
				continue
			}
			if tk.Live() {
				if live[s.ID] == nil {
					live[s.ID] = map[uint64]int{}
				}
				live[s.ID][tk.Slot]++
			}
		}
		for _, s := range svcs {
			for slot := uint64(1); slot <= s.Spec.Replicas; slot++ {
				if n := live[s.ID][slot]; n != 1 {
					bad = append(bad, fmt.Sprintf("%s.%d has %d live tasks", s.Spec.Name, slot, n))
				}
			}
			for slot, n := range live[s.ID] {
				if slot > s.Spec.Replicas {
					bad = append(bad, fmt.Sprintf("%s.%d has %d live tasks above %d replicas", s.Spec.Name, slot, n, s.Spec.Replicas))
				}
			}
		}
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(bad)
			if len(bad) > 20 {
				bad = append(bad[:20], "...")
			}
			t.Fatalf("15s after restart the tasks do not match the services:\n%s", strings.Join(bad, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func seed(t *testing.T) func() uint64 {
	s := uint64(time.Now().UnixNano())
	t.Logf("seed %d", s)
	r := rand.New(rand.NewPCG(s, s>>1))
	return r.Uint64
}

// TestKillRestart writes through the API from 8 clients at once, kills the
// manager with SIGKILL in the middle of the writes, restarts it on the same
// data dir and checks that every acknowledged write is there, whole; three
// times, at random points.
func TestKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the warren binary")
	}
	dir := base(t)
	l := newLedger()
	rng := seed(t)
	p := start(t, dir)
	for round := 1; round <= 3; round++ {
		ld := &load{c: p.c, l: l, round: round, creates: 300, rng: rng}
		ld.killAt = 60 + int64(rng()%240)
		ld.kill = p.kill
		began := time.Now()
		ld.run(8)
		for err := range ld.errs {
			t.Errorf("round %d: %v", round, err)
		}
		if !ld.killed.Load() {
			t.Fatalf("round %d: the writes ended after %d acknowledgements, before the kill at %d", round, ld.acks.Load(), ld.killAt)
		}
		t.Logf("round %d: killed after %d acknowledged writes (%s)", round, ld.acks.Load(), time.Since(began).Round(time.Millisecond))
		p.kill()
		p = start(t, dir)
		verify(t, p, l)
		if t.Failed() {
			t.Fatalf("manager log:\n%s", p.logTail())
		}
	}
	waitTasks(t, p, l)
}

// TestStateRebuiltFromRaft damages the state database after a kill -9 the
// way a power loss can (unsynced writes torn) and checks that the manager
// sets it aside and rebuilds it from the Raft log, with every acknowledged
// write.
func TestStateRebuiltFromRaft(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the warren binary")
	}
	dir := base(t)
	l := newLedger()
	rng := seed(t)
	p := start(t, dir)
	db := func() string { return filepath.Join(p.dataDir, "state.db") }
	damages := []struct {
		name     string
		setAside bool // the manager must say it set the database aside
		damage   func(t *testing.T)
	}{
		{"power loss: a new boot", true, func(t *testing.T) {
			// The database was last written in another boot, without a
			// checkpoint since: its unsynced pages may be torn.
			os.Remove(db() + ".clean")
			if err := os.WriteFile(db()+".boot", []byte("00000000-0000-0000-0000-000000000000\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"database deleted", false, func(t *testing.T) {
			for _, f := range []string{"", ".clean", ".boot"} {
				os.Remove(db() + f)
			}
		}},
		{"database garbage, marked clean", true, func(t *testing.T) {
			b, err := os.ReadFile(db())
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(b) && i < 16<<10; i++ {
				b[i] = byte(rng())
			}
			if err := os.WriteFile(db(), b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(db()+".clean", []byte("checkpointed\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for i, d := range damages {
		ld := &load{c: p.c, l: l, round: i + 1, creates: 100, rng: rng, kill: func() {}}
		ld.run(8)
		for err := range ld.errs {
			t.Errorf("%s: %v", d.name, err)
		}
		p.kill()
		before := p.log()
		d.damage(t)
		p = start(t, dir)
		after := strings.TrimPrefix(p.log(), before)
		if set := strings.Contains(after, "state database set aside"); set != d.setAside {
			t.Errorf("%s: manager said it set the state database aside: %v, want %v", d.name, set, d.setAside)
		}
		verify(t, p, l)
		if t.Failed() {
			t.Fatalf("%s: manager log:\n%s", d.name, p.logTail())
		}
		if d.setAside {
			if _, err := os.Stat(db() + ".untrusted"); err != nil {
				t.Errorf("%s: the damaged database was not kept as %s.untrusted: %v", d.name, filepath.Base(db()), err)
			}
		}
	}
	waitTasks(t, p, l)
	info, err := p.c.Info(context.Background())
	if err != nil || info.Services != len(l.recs) {
		t.Errorf("Info() = %+v, %v; want %d services", info, err, len(l.recs))
	}
}
