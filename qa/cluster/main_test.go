package cluster

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// warrenBin is the warren binary TestMain builds for the tests.
var warrenBin string

func TestMain(m *testing.M) {
	if socket := os.Getenv(dialHelperEnv); socket != "" {
		os.Exit(dialHelper(socket)) // run again by socketAsNobody
	}
	flag.Parse()
	if Available(true) != nil {
		os.Exit(m.Run()) // each test skips, saying why
	}
	dir, err := os.MkdirTemp("", "warren-cluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	warrenBin = filepath.Join(dir, "warren")
	build := exec.Command("go", "build", "-o", warrenBin, "github.com/warren-edge/warren/daemons/warren")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build warren:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// startCluster brings up managers and workers for t (skipping where the
// machine cannot) and tears them down when t ends, with every process's
// log when t failed.
func startCluster(t *testing.T, managers, workers int, managerArgs ...string) *Cluster {
	t.Helper()
	if err := Available(workers > 0); err != nil {
		t.Skip(err)
	}
	c, err := New(Config{Bin: warrenBin, ManagerArgs: managerArgs, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.Dump(t.Logf, 60)
		}
		if err := c.Close(); err != nil {
			t.Errorf("tear down: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := c.Start(ctx, managers, workers); err != nil {
		t.Fatal(err)
	}
	return c
}

// sleeper runs until told to stop (a plain sleep as PID 1 would ignore
// SIGTERM and make every stop wait its grace period).
var sleeper = []string{"sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"}

// onWorkers is a service of n sleepers placed on workers only.
func onWorkers(name string, n uint64) api.ServiceSpec {
	return api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: n, Args: sleeper,
		Placement:       api.Placement{Constraints: []string{"node.role==worker"}},
		StopGracePeriod: api.Duration(2 * time.Second)}
}

// deploy runs a service of n sleepers on the workers, one replica at a
// time: each plan then places one task, which keeps the tests that are
// about something else clear of the replica bug that
// TestWorkerAgentSeesEveryTaskOfOnePlan shows (several tasks of one plan
// on one worker: its agent may start only the first).
func deploy(t *testing.T, c *Cluster, name string, n int) running {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	m := c.Managers()[0]
	if _, err := m.Client.CreateService(ctx, onWorkers(name, 1)); err != nil {
		t.Fatal(err)
	}
	var out running
	for i := 1; i <= n; i++ {
		if i > 1 {
			if _, err := m.Client.ScaleService(ctx, name, uint64(i)); err != nil {
				t.Fatal(err)
			}
		}
		out = waitContainers(t, c, name, i)
	}
	return out
}

// idle is a service with no tasks: an object to write to.
func idle(name string, labels map[string]string) api.ServiceSpec {
	return api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: 0, Labels: labels}
}

// eventually retries fn every 50 ms until it returns nil or d passes.
func eventually(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after %s: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// within retries fn every 50 ms until it returns nil or d passes, and
// returns its last error.
func within(d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// describeTasks is one line per task.
func describeTasks(ts []api.Task) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "\n  %s slot %d node %.8s desired=%s state=%s %s", t.ID[:8], t.Slot, t.NodeID, t.DesiredState, t.Status.State, t.Status.Message)
	}
	return b.String()
}

// liveTasks are the tasks meant to run and running.
func liveTasks(ts []api.Task) []api.Task {
	var out []api.Task
	for _, t := range ts {
		if t.DesiredState == api.TaskRunning && t.Status.State == api.TaskRunning {
			out = append(out, t)
		}
	}
	return out
}

// consistentTasks reads a service's tasks with a consistent read.
func consistentTasks(ctx context.Context, h *Host, service string) ([]api.Task, error) {
	return h.Client.Tasks(ctx, client.TaskQuery{Service: service, ReadOptions: client.ReadOptions{Consistent: true}})
}
