package cluster

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// regInput is one operation on the register: a service's label "v".
type regInput struct {
	write bool
	value string // written
}

// registerModel is a single register: write(v) sets it, read() returns
// it. The state is the value.
var registerModel = porcupine.Model{
	Init: func() any { return "0" },
	Step: func(state, input, output any) (bool, any) {
		in := input.(regInput)
		if in.write {
			return true, in.value
		}
		return output.(string) == state.(string), state
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output any) string {
		in := input.(regInput)
		if in.write {
			return "write(" + in.value + ")"
		}
		return "read() → " + output.(string)
	},
	DescribeState: func(state any) string { return state.(string) },
}

// history records operations with their call and return times.
type history struct {
	t0  time.Time
	mu  sync.Mutex
	ops []porcupine.Operation
	// what happened to the operations that are not in ops, or are open
	discarded, open, acked, reads int
	openErrs                      []error
	notes                         []porcupine.Annotation
}

// dropUnseenOpenWrites leaves out the writes of unknown outcome whose
// value no read returned. That does not change the verdict (values are
// unique): such a write, if it happened, can always be placed just before
// the next write placed after its call, or last, where no read sees it.
// Kept, each is one more operation open to the end of the history, and a
// few hundred of them make the search explode.
func dropUnseenOpenWrites(ops []porcupine.Operation) []porcupine.Operation {
	seen := map[string]bool{}
	for _, op := range ops {
		if in := op.Input.(regInput); !in.write {
			seen[op.Output.(string)] = true
		}
	}
	var out []porcupine.Operation
	for _, op := range ops {
		if in := op.Input.(regInput); in.write && op.Return == math.MaxInt64 && !seen[in.value] {
			continue
		}
		out = append(out, op)
	}
	return out
}

// summarize counts distinct error messages.
func summarize(errs []error) string {
	ws := make([]Write, len(errs))
	for i, err := range errs {
		ws[i].Err = err
	}
	return errorSummary(ws)
}

func (h *history) now() int64 { return int64(time.Since(h.t0)) }

func (h *history) note(what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	at := h.now()
	h.notes = append(h.notes, porcupine.Annotation{Tag: "nemesis", Start: at, End: at, Description: what, BackgroundColor: "#f4c7c3"})
}

// neverApplied says whether a failed write certainly did nothing: the
// manager's socket refused the connection; the manager refused it before
// proposing it (no leader to forward to, or a forwarded write that
// reached a non-leader); or it could not connect to the leader to forward
// it (the 503 "did not answer" then quotes a failed dial).
func neverApplied(err error) bool {
	if Refused(err) {
		return true
	}
	if api.IsCode(err, api.CodeUnavailable) && strings.Contains(err.Error(), "did not answer (dial tcp") {
		return true
	}
	if !api.IsCode(err, api.CodeNotLeader) {
		return false
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "the managers have no leader now") || strings.HasPrefix(msg, "this manager is not the leader any more")
}

// TestLinearizableRegister has clients on every manager write a service's
// label (plain puts of unique values) and read it back with consistent
// reads, while the leader is killed and restarted and managers are cut
// off and healed; porcupine then checks that the history is linearizable.
// A write that failed without certainly failing is kept, open-ended: it
// may have happened at any time after its call.
func TestLinearizableRegister(t *testing.T) {
	if testing.Short() {
		t.Skip("30 s of operations under faults")
	}
	t.Parallel() // with TestSecurity, which mostly waits
	c := startCluster(t, 3, 0)
	ctx := ctxFor(t, 3*time.Minute)
	ms := c.Managers()
	const reg = "register"
	if _, err := ms[0].Client.CreateService(ctx, idle(reg, map[string]string{"v": "0"})); err != nil {
		t.Fatal(err)
	}
	h := &history{t0: time.Now()}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	clientID := 0
	for _, m := range ms {
		for range 2 {
			id := clientID
			clientID++
			wg.Add(1)
			go func() {
				defer wg.Done()
				runRegisterClient(ctx, h, m, reg, id, stop)
			}()
		}
	}

	// The faults, one after the other, each given time to settle.
	nemesis := func() error {
		pause := func(d time.Duration) { time.Sleep(d) }
		pause(2 * time.Second)
		for round := range 2 {
			l, err := c.Leader(ctx)
			if err != nil {
				return err
			}
			h.note("kill -9 leader " + l.Name)
			if err := l.KillManager(); err != nil {
				return err
			}
			pause(3 * time.Second)
			h.note("restart " + l.Name)
			if err := l.RestartManager(ctx); err != nil {
				return err
			}
			pause(2 * time.Second)
			if l, err = c.Leader(ctx); err != nil {
				return err
			}
			h.note("cut off leader " + l.Name)
			if err := l.Cut(); err != nil {
				return err
			}
			pause(3 * time.Second)
			h.note("heal " + l.Name)
			if err := l.Heal(); err != nil {
				return err
			}
			pause(2 * time.Second)
			if l, err = c.Leader(ctx); err != nil {
				return err
			}
			f := ms[(round+1)%len(ms)]
			if f == l {
				f = ms[(round+2)%len(ms)]
			}
			h.note("cut off follower " + f.Name)
			if err := f.Cut(); err != nil {
				return err
			}
			pause(2 * time.Second)
			h.note("heal " + f.Name)
			if err := f.Heal(); err != nil {
				return err
			}
			pause(2 * time.Second)
		}
		return nil
	}
	nerr := nemesis()
	close(stop)
	wg.Wait()
	if nerr != nil {
		t.Fatalf("nemesis: %v", nerr)
	}

	h.mu.Lock()
	ops := dropUnseenOpenWrites(h.ops)
	h.mu.Unlock()
	t.Logf("history: %d operations: %d consistent reads, %d acknowledged writes, %d writes of unknown outcome (%d of them read by someone, kept open-ended; the others left out: see dropUnseenOpenWrites), %d failed reads and certainly-failed writes left out; unknown outcomes: %s",
		len(ops), h.reads, h.acked, h.open, len(ops)-h.reads-h.acked, h.discarded, summarize(h.openErrs))
	if h.reads < 100 || h.acked < 100 {
		t.Fatalf("too few operations succeeded to mean anything")
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, time.Minute)
	t.Logf("porcupine: %s (checked in %.1f s)", res, time.Since(start).Seconds())
	if res != porcupine.Ok {
		info.AddAnnotations(h.notes)
		path := filepath.Join(os.TempDir(), fmt.Sprintf("warren-linearizability-%d.html", time.Now().UnixNano()))
		if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
			t.Logf("visualization: %v", err)
		}
		t.Errorf("the history of %d operations is %s for a register (linearizable: Ok); visualization: %s", len(ops), res, path)
	}
}

// runRegisterClient does random writes and consistent reads through one
// manager until stop.
func runRegisterClient(ctx context.Context, h *history, m *Host, reg string, id int, stop <-chan struct{}) {
	cl, err := client.New("unix://" + m.Socket) // its own connections
	if err != nil {
		panic(err)
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	for seq := 1; ; seq++ {
		select {
		case <-stop:
			return
		default:
		}
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		op := porcupine.Operation{ClientId: id}
		if rng.IntN(2) == 0 {
			v := strconv.Itoa(id*1_000_000 + seq)
			op.Input = regInput{write: true, value: v}
			op.Call = h.now()
			_, err = cl.UpdateService(rctx, reg, idle(reg, map[string]string{"v": v}), 0)
			op.Return = h.now()
			op.Output = ""
			h.mu.Lock()
			switch {
			case err == nil:
				h.acked++
				h.ops = append(h.ops, op)
			case neverApplied(err):
				h.discarded++
			default:
				// Unknown outcome: it may take effect at any time later.
				op.Return = math.MaxInt64
				h.open++
				h.openErrs = append(h.openErrs, err)
				h.ops = append(h.ops, op)
			}
			h.mu.Unlock()
		} else {
			op.Input = regInput{}
			op.Call = h.now()
			var s *api.Service
			s, err = cl.Service(rctx, reg, client.ReadOptions{Consistent: true})
			op.Return = h.now()
			h.mu.Lock()
			if err == nil {
				op.Output = s.Spec.Labels["v"]
				h.reads++
				h.ops = append(h.ops, op)
			} else {
				h.discarded++
			}
			h.mu.Unlock()
		}
		cancel()
		if err != nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
}
