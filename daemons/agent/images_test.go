package agent_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/agent"
	"github.com/warren-edge/warren/daemons/agent/runtime/fake"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/managertest"
)

// TestFetchImageHook: an image the node lacks is asked of Config.FetchImage
// first, then of its registry; when neither has it, the task is rejected
// with a message that says so and what to do.
func TestFetchImageHook(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	n := &node{t: t, m: managertest.Start(t, managertest.Options{}), rt: fake.New(), ctx: ctx, dataDir: t.TempDir()}
	const elsewhere, pullable, nowhere = "localhost/elsewhere:1", "localhost/pullable:1", "localhost/nowhere:1"
	n.rt.SetPullable(pullable, true)
	var mu sync.Mutex
	var asked []string
	hook := func(ctx context.Context, ref string) error {
		mu.Lock()
		asked = append(asked, ref)
		mu.Unlock()
		if ref == elsewhere {
			n.rt.AddImage(ref)
			return nil
		}
		return errors.New("no node holds it")
	}
	a, err := agent.New(agent.Config{API: n.m.Client, Runtime: n.rt, DataDir: n.dataDir, Hostname: "node-1",
		HeartbeatEvery: 100 * time.Millisecond, FetchImage: hook,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	n.stop, n.done = stop, make(chan error, 1)
	go func() { n.done <- a.Run(runCtx) }()
	t.Cleanup(n.stopAgent)

	for _, c := range []struct{ name, image string }{{"from-node", "localhost/elsewhere:1"}, {"from-registry", pullable}} {
		s := svc(c.name, 1)
		s.Image = c.image
		if _, err := n.m.Client.CreateService(ctx, s); err != nil {
			t.Fatal(err)
		}
		n.waitTasks(c.name, "running", countRunning(1))
	}
	s := svc("ghost", 1)
	s.Image = nowhere
	s.RestartPolicy.Condition = api.RestartNone
	n.m.Client.CreateService(ctx, s)
	ts := n.waitTasks("ghost", "rejected", func(ts []api.Task) bool {
		return len(ts) == 1 && ts[0].Status.State == api.TaskRejected
	})
	for _, want := range []string{"image " + nowhere + " is on no reachable node (no node holds it)", "could not be pulled", "warrenctl image load"} {
		if !strings.Contains(ts[0].Status.Err, want) {
			t.Errorf("task of an image on no node failed with %q; want it to say %q", ts[0].Status.Err, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{elsewhere, pullable, nowhere}; !slices.Equal(asked, want) {
		t.Errorf("FetchImage was asked for %q; want %q (each missing image, once)", asked, want)
	}
	if pulls := n.rt.CallsTo("PullImage"); !slices.Equal(pulls, []string{pullable, nowhere}) {
		t.Errorf("the registry was asked for %q; want only the images no node had: %q", pulls, []string{pullable, nowhere})
	}
}

// TestImagesOfANode: what the agent lists for the managers.
func TestImagesOfANode(t *testing.T) {
	n := startNode(t, managertest.Options{})
	a, err := agent.New(agent.Config{API: n.m.Client, Runtime: n.rt, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := a.Images(n.ctx)
	if err != nil || len(imgs) != 2 || imgs[0].Ref != "docker.io/library/busybox:latest" || imgs[1].Ref != "localhost/busybox:latest" ||
		!strings.HasPrefix(imgs[0].Target.Digest, "sha256:") || imgs[0].Size == 0 {
		t.Errorf("Images() = %+v, %v; want both images of the node, sorted, with digest and size", imgs, err)
	}
}
