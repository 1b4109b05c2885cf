package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/agent/step"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/keys"
	"github.com/warren-edge/warren/daemons/wake"
	"github.com/warren-edge/warren/netcfg/wg"
)

// Labels every Warren container carries.
const (
	LabelTask        = "warren.task.id"
	LabelService     = "warren.service.id"
	LabelServiceName = "warren.service.name"
	LabelSlot        = "warren.task.slot"
	LabelNode        = "warren.node.id"
)

// Config is what warren-agent is started with.
type Config struct {
	API     *client.Client // the local manager
	Runtime rt.Runtime
	Network Network // nil: no container networking (tests)
	DataDir string
	// Hostname reported in heartbeats (default os.Hostname).
	Hostname string
	// EngineVersion is reported in heartbeats.
	EngineVersion  string
	HeartbeatEvery time.Duration // default 2s
	// MaxParallelStarts bounds containers started at once (default 8).
	MaxParallelStarts int
	// ClusterDNS makes containers resolve through warren-dns on their
	// node's bridge address (the subnet's gateway), under ClusterDomain.
	// Without it they get the host's resolvers.
	ClusterDNS    bool
	ClusterDomain string // default warren.internal
	// LogMaxBytes caps a container's log file before it is rotated
	// (default 10 MiB); one rotated file is kept.
	LogMaxBytes int64
	// Mesh is the node's end of the WireGuard mesh; nil: no mesh (one
	// node, or tests).
	Mesh MeshNet
	// MeshStatusFile is where the agent says which nodes the mesh does not
	// reach now, for warren-dns (api.MeshStatusFile; "" writes none).
	MeshStatusFile string
	Logger         *slog.Logger
	// MaxBlobTransfers bounds the image blobs this node sends to other
	// nodes at once (default 4); more requests get 503 and Retry-After.
	MaxBlobTransfers int
	// FetchImage, when set, is asked for an image a task needs and the
	// node lacks, before the image's registry is: it fetches the image
	// from a node that holds it (imagexfer.Fetcher) and returns nil once
	// the image is present. ctx has no deadline: bound it. nil: only the
	// registry is tried.
	FetchImage func(ctx context.Context, ref string) error
	// SecretsDir is where each task's secrets get a tmpfs of their own
	// (default DefaultSecretsDir); Mounter mounts them (default mount(2)).
	SecretsDir string
	Mounter    Mounter
	// AllowBind are the host folders bind mounts may come from (warren
	// agent --allow-bind); none by default: every bind is refused.
	AllowBind []string
}

// Agent is one running warren-agent.
type Agent struct {
	cfg Config
	log *slog.Logger
	// nodeKeys seals the secrets of this node's tasks for a restart while
	// cut off (secrets.go); made on first use, under keyMu.
	keyMu    sync.Mutex
	nodeKeys *keys.Ring
	api      *client.Client
	rt       rt.Runtime
	net      Network

	nodeID string
	subnet netip.Prefix
	rep    *reporter
	kick   chan struct{}
	// beatNow makes the heartbeat go at once (the mesh came up: the other
	// nodes learn this node's key a heartbeat sooner).
	beatNow chan struct{}
	// imagesStale: the images may have changed; list them at the next
	// heartbeat.
	imagesStale atomic.Bool
	starts      chan struct{}

	mu           sync.Mutex
	tasks        map[string]*api.Task
	synced       bool
	containers   map[string]rt.Container
	pendingExits map[string]rt.Exit
	busy         map[string]bool
	reported     map[string]api.TaskState
	draining     map[string]time.Time // task → when its drain ends (step.ActDrain)
	addrs        map[string]netip.Addr
	netns        map[string]string             // task → its network namespace path
	health       map[string]context.CancelFunc // task → its probe loop
	healthNow    map[string]string             // task → its health as its probe loop last found it
	ports        portState                     // published ports: ports.go, ingress.go
	meshStatus   *wg.Status                    // the mesh as last synced
	meshDesc     *api.NodeMesh                 // this node's end, for the heartbeat
	meshReach    []byte                        // what MeshStatusFile holds
	meshInReach  map[string]bool               // the nodes whose peers were in reach at the last sync (nil: none yet)
	cluster      netip.Prefix                  // the cluster's container range

	// Offline autonomy (offline.go) and the checkpoint (checkpoint.go).
	local        map[string]*step.Local // the node's own record of each task
	cutOff       bool                   // no manager takes the heartbeat now
	lastContact  time.Time              // when one last did
	savedContact time.Time              // the lastContact the checkpoint holds
	index        uint64                 // the watch index a.tasks are as of
	cpIndex      uint64                 // the index of the checkpoint started from
	cpDirty      bool                   // the checkpoint is behind
	cpWrites     uint64
	cpMu         sync.Mutex  // one checkpoint write at a time
	journal      *journal    // break-glass (breakglass.go)
	journalSent  uint64      // the last journal entry the managers took
	journalRetry time.Time   // when to send the journal again after a refusal
	contacted    atomic.Bool // a manager took a heartbeat since the agent started

	runCtx    context.Context                 // Run's context, for work that outlives a loop
	watch     atomic.Pointer[client.Follower] // the task watch, once watchLoop began
	ready     chan struct{}
	readyOnce sync.Once

	// openFile opens the files the agent socket serves (os.Open; a test
	// records what it is asked for).
	openFile func(name string) (*os.File, error)
	// logIdx indexes the task logs by time, for ?since (logindex.go).
	logIdx *logIndexer
	// logPasses counts logLoop's samples (tests read it).
	logPasses atomic.Int64
	// blobs serves the blobs of this node's images to other nodes; nil
	// when the runtime cannot (images.go).
	blobs http.Handler
}

// New makes an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.API == nil || cfg.Runtime == nil {
		return nil, errors.New("agent: an API client and a runtime are required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("agent: a data directory is required (--data-dir)")
	}
	if cfg.HeartbeatEvery == 0 {
		cfg.HeartbeatEvery = 2 * time.Second
	}
	if cfg.MaxParallelStarts == 0 {
		cfg.MaxParallelStarts = 8
	}
	if cfg.ClusterDomain == "" {
		cfg.ClusterDomain = "warren.internal"
	}
	if cfg.SecretsDir == "" {
		cfg.SecretsDir = DefaultSecretsDir
	}
	if cfg.Mounter == nil {
		cfg.Mounter = sysMounter{}
	}
	if cfg.LogMaxBytes == 0 {
		cfg.LogMaxBytes = 10 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, logsDir), 0o700); err != nil {
		return nil, fmt.Errorf("agent: data dir: %w", err)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, api: cfg.API, rt: cfg.Runtime, net: cfg.Network,
		kick: make(chan struct{}, 1), beatNow: make(chan struct{}, 1), starts: make(chan struct{}, cfg.MaxParallelStarts),
		tasks: map[string]*api.Task{}, containers: map[string]rt.Container{}, pendingExits: map[string]rt.Exit{},
		busy: map[string]bool{}, reported: map[string]api.TaskState{}, draining: map[string]time.Time{}, addrs: map[string]netip.Addr{},
		netns: map[string]string{}, health: map[string]context.CancelFunc{}, healthNow: map[string]string{},
		local: map[string]*step.Local{}, cutOff: true, lastContact: time.Now(),
		ready: make(chan struct{}), openFile: os.Open, logIdx: newLogIndexer(time.Now)}
	a.blobs = newBlobServer(cfg)
	j, err := openJournal(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if j.broken != "" {
		cfg.Logger.Error("the break-glass journal does not verify: it was altered or damaged", "err", j.broken)
	}
	a.journal = j
	return a, nil
}

// NodeID is the node this agent runs for (known once Run has begun).
func (a *Agent) NodeID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nodeID
}

// Ready is closed once the agent has adopted what runs and synced its tasks.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// Run runs the agent until ctx ends. Containers keep running after it
// returns.
func (a *Agent) Run(ctx context.Context) error {
	a.runCtx = ctx
	// With a checkpoint the agent needs no manager to start: a node that
	// boots cut off, or whose manager does not answer, runs its tasks.
	if !a.fromCheckpoint(ctx) {
		info, err := a.connect(ctx)
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.nodeID = info.NodeID
		a.mu.Unlock()
		node, err := a.node(ctx, info.NodeID)
		if err != nil {
			return err
		}
		if a.net != nil {
			a.subnet, err = netip.ParsePrefix(node.Subnet)
			if err != nil {
				return fmt.Errorf("agent: node %s has no usable container subnet %q", node.ID, node.Subnet)
			}
			a.cluster = a.clusterRange(info)
		}
	}
	if a.net != nil {
		nn := NodeNet{Subnet: a.subnet, Cluster: a.cluster}
		if a.cfg.Mesh != nil {
			// Named from the start, so an agent restart admits the mesh's
			// traffic all along.
			nn.Mesh = a.cfg.Mesh.Iface()
		}
		if err := a.net.Setup(ctx, nn); err != nil {
			return fmt.Errorf("agent: network: %w", err)
		}
	}
	if err := a.adopt(ctx); err != nil {
		return err
	}
	a.rep = newReporter(a.api, a.nodeID, a.log)
	a.log.Info("agent running", "node", a.nodeID, "subnet", a.subnet, "adopted", len(a.containers))

	a.kickReconcile() // a node started from its checkpoint acts at once
	var wg sync.WaitGroup
	loops := []func(context.Context){a.rep.run, a.heartbeatLoop, a.watchLoop, a.exitLoop, a.reconcileLoop, a.logLoop, a.ingressLoop, a.meshLoop}
	for _, loop := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	wg.Wait()
	return nil
}

// connect waits for the local manager to answer.
func (a *Agent) connect(ctx context.Context) (*api.Info, error) {
	backoff := 100 * time.Millisecond
	for {
		info, err := a.api.Info(ctx)
		if err == nil {
			return info, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		a.log.Warn("waiting for the manager", "err", err)
		if wake.For(ctx, backoff) != nil {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// node reads this node, waiting while a new manager registers it.
func (a *Agent) node(ctx context.Context, id string) (*api.Node, error) {
	backoff := 100 * time.Millisecond
	for {
		n, err := a.api.Node(ctx, id)
		switch {
		case err == nil:
			return n, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case !api.NotFound(err) && !errors.Is(err, client.ErrUnreachable):
			return nil, fmt.Errorf("agent: read this node: %w", err)
		}
		a.log.Info("waiting for the manager to register this node", "node", id)
		if wake.For(ctx, backoff) != nil {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// adopt takes over the containers that already run: they keep running.
func (a *Agent) adopt(ctx context.Context) error {
	cs, err := a.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("agent: list containers: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.containers = map[string]rt.Container{}
	for _, c := range cs {
		if c.Labels[LabelTask] == "" {
			continue // not ours
		}
		a.containers[c.ID] = c
		if a.net != nil && c.State == rt.StateRunning {
			if ns, addr, err := a.net.Attach(ctx, c.ID); err == nil {
				a.addrs[c.ID], a.netns[c.ID] = addr, ns
			}
		}
	}
	return nil
}

func (a *Agent) kickReconcile() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// reconcileLoop runs Step after every change, and every few seconds.
func (a *Agent) reconcileLoop(ctx context.Context) {
	wakeT := time.NewTimer(time.Hour)
	defer wakeT.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-time.After(wake.Until(5 * time.Second)):
		case <-wakeT.C:
		}
		a.mu.Lock()
		acts, wake := step.Step(a.tasks, step.Observed{Containers: a.containers, Busy: a.busy, Reported: a.reported, Synced: a.synced,
			Draining: a.draining, Now: time.Now(), CutOff: a.cutOff, CutOffAt: a.lastContact, Local: a.local, Undelivered: a.rep.undelivered})
		if !wake.IsZero() {
			wakeT.Reset(max(time.Until(wake), time.Millisecond))
		}
		for _, act := range acts {
			switch act.Kind {
			case step.ActReport:
				a.reported[act.TaskID] = act.Status.State
				continue
			case step.ActDrain:
				a.draining[act.TaskID] = act.Until
				continue
			case step.ActStop, step.ActRemove:
				delete(a.draining, act.TaskID)
			}
			a.busy[act.TaskID] = true
		}
		synced := a.synced
		a.syncHealth(ctx)
		a.mu.Unlock()
		// The checkpoint is written before the agent acts on a change (the
		// actions' tasks are busy meanwhile: nothing else acts on them).
		if err := a.saveIfDirty(); err != nil {
			a.log.Error("node checkpoint", "err", err)
		}
		for _, act := range acts {
			switch act.Kind {
			case step.ActReport:
				a.report(act.TaskID, *act.Status)
			case step.ActDrain:
				a.log.Info("task told to stop: out of this node's ports now, stopped once every node has heard", "task", act.TaskID, "drain", time.Until(act.Until).Round(time.Millisecond))
			default:
				go a.do(ctx, act)
			}
		}
		a.publishPorts(ctx)
		if synced {
			a.cleanupSandboxes(ctx)
			a.readyOnce.Do(func() { close(a.ready) })
		}
	}
}

func (a *Agent) do(ctx context.Context, act step.Action) {
	defer func() {
		a.mu.Lock()
		delete(a.busy, act.TaskID)
		a.mu.Unlock()
		a.kickReconcile()
	}()
	switch act.Kind {
	case step.ActStart:
		select {
		case a.starts <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-a.starts }()
		if act.Local && !a.restartLocal(act) {
			return
		}
		a.start(ctx, act.Task, act.Local)
	case step.ActStop:
		a.stop(ctx, act)
	case step.ActRemove:
		if act.Status != nil {
			if act.Task != nil && act.Status.State.Terminal() {
				a.recordEnd(act.Task, *act.Status)
			}
			a.setReported(act.TaskID, *act.Status)
		}
		a.remove(ctx, act.TaskID)
	}
}

func (a *Agent) setReported(id string, st api.TaskStatus) {
	a.mu.Lock()
	a.reported[id] = st.State
	a.mu.Unlock()
	a.report(id, st)
}

// recordEnd keeps a task's end in the node's record: a cut-off node that
// finds the end's report undelivered restarts after it.
func (a *Agent) recordEnd(t *api.Task, st api.TaskStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.localOf(t).Ended = &step.Ended{State: st.State, Code: st.ExitCode, StartedAt: st.StartedAt, At: time.Now()}
	a.cpDirty = true
}

// fail reports a task that could not start, and undoes what was made.
func (a *Agent) fail(ctx context.Context, t *api.Task, state api.TaskState, err error) {
	a.log.Warn("task failed to start", "task", t.ID, "service", t.ServiceName, "err", err)
	a.setReported(t.ID, api.TaskStatus{State: state, Err: err.Error()})
	a.remove(ctx, t.ID)
}

// start prepares and starts t's container. local: a restart in place by a
// cut-off node, which reports only the task running again (the managers
// hold it running all along).
func (a *Agent) start(ctx context.Context, t *api.Task, local bool) {
	t = a.withOverride(t)
	began := time.Now()
	var phases []any
	phase := func(name string) {
		phases = append(phases, name, time.Since(began).Round(time.Millisecond))
	}
	defer func() { a.log.Debug("start phases", append([]any{"task", t.ID}, phases...)...) }()
	logPath, err := a.logPath(t.ID)
	if err != nil {
		a.fail(ctx, t, api.TaskRejected, err)
		return
	}
	if !local {
		a.setReported(t.ID, api.TaskStatus{State: api.TaskPreparing, Message: "preparing image and network"})
	}
	image, err := api.NormalizeImage(t.Spec.Image)
	if err != nil {
		a.fail(ctx, t, api.TaskRejected, fmt.Errorf("image %q: %v", t.Spec.Image, err))
		return
	}
	has, err := a.rt.HasImage(ctx, image)
	if err != nil {
		a.fail(ctx, t, api.TaskFailed, fmt.Errorf("check image %s: %w", image, err))
		return
	}
	if !has {
		if err := a.obtainImage(ctx, image); err != nil {
			a.fail(ctx, t, api.TaskRejected, err)
			return
		}
	}
	phase("image")
	if err := a.checkPorts(ctx, t); err != nil {
		a.fail(ctx, t, api.TaskRejected, err)
		return
	}
	mounts, err := a.taskMounts(t)
	if err != nil {
		a.fail(ctx, t, api.TaskRejected, err)
		return
	}
	spec := rt.ContainerSpec{
		ID: t.ID, Image: image, Command: t.Spec.Command, Args: t.Spec.Args, Env: t.Spec.Env,
		WorkingDir: t.Spec.WorkingDir, User: t.Spec.User, Hostname: shortID(t.ID),
		ReadOnlyRoot: t.Spec.ReadOnly,
		MemoryLimit:  int64(t.Spec.Resources.Limits.MemoryBytes),
		NanoCPUs:     int64(t.Spec.Resources.Limits.NanoCPUs),
		CPUShares:    cpuShares(int64(t.Spec.Resources.Reservations.NanoCPUs)),
		LogPath:      logPath,
		// What the task runs with, the spec's defaults applied here (by
		// the functions service inspect shows them with); no pids limit
		// (-1) is 0 to the runtime.
		PidsLimit:          max(t.Spec.EffectivePidsLimit(), 0),
		Capabilities:       t.Spec.EffectiveCapabilities(),
		SeccompUnconfined:  t.Spec.EffectiveSeccomp() == api.SeccompUnconfined,
		AllowNewPrivileges: t.Spec.AllowNewPrivileges,
		Group:              groupOf(t, a.tasksOf(t.ServiceID)),
		Labels: map[string]string{LabelTask: t.ID, LabelService: t.ServiceID, LabelServiceName: t.ServiceName,
			LabelSlot: strconv.FormatUint(t.Slot, 10), LabelNode: t.NodeID},
	}
	var addr netip.Addr
	if a.net != nil {
		ns, ad, err := a.net.Attach(ctx, t.ID)
		if err != nil {
			a.fail(ctx, t, api.TaskFailed, fmt.Errorf("network: %w", err))
			return
		}
		spec.NetNSPath, addr = ns, ad
		files, err := a.writeNetFiles(t, addr)
		if err != nil {
			a.fail(ctx, t, api.TaskFailed, err)
			return
		}
		spec.Mounts = files
	}
	spec.Mounts = append(spec.Mounts, mounts...)
	phase("network")
	if len(t.Spec.Secrets)+len(t.Spec.Configs) > 0 {
		files, err := a.writeTaskFiles(ctx, t, local)
		if err != nil {
			a.fail(ctx, t, api.TaskFailed, err)
			return
		}
		spec.Mounts = append(spec.Mounts, files...)
		phase("secrets")
	}
	// A container left half-made by an earlier agent is made again.
	if err := a.rt.Delete(ctx, t.ID); err != nil {
		a.fail(ctx, t, api.TaskFailed, err)
		return
	}
	a.mu.Lock()
	delete(a.pendingExits, t.ID)
	a.mu.Unlock()
	phase("delete")
	if err := a.rt.Create(ctx, spec); err != nil {
		a.fail(ctx, t, api.TaskRejected, startError(err))
		return
	}
	phase("create")
	if !local {
		a.setReported(t.ID, api.TaskStatus{State: api.TaskStarting, Message: "starting", ContainerID: t.ID})
	}
	if err := a.rt.Start(ctx, t.ID); err != nil {
		a.fail(ctx, t, api.TaskRejected, startError(err))
		return
	}
	phase("start")
	c, err := a.rt.Inspect(ctx, t.ID)
	if err != nil {
		a.fail(ctx, t, api.TaskFailed, err)
		return
	}
	phase("inspect")
	a.mu.Lock()
	if ex, ok := a.pendingExits[t.ID]; ok && c.State == rt.StateRunning && !staleExit(ex, c) {
		c.State, c.Exit = rt.StateStopped, &ex
	}
	delete(a.pendingExits, t.ID)
	a.containers[t.ID] = c
	if addr.IsValid() {
		a.addrs[t.ID], a.netns[t.ID] = addr, spec.NetNSPath
	}
	a.mu.Unlock()
	if c.State == rt.StateRunning {
		st := api.TaskStatus{State: api.TaskRunning, Message: "running", ContainerID: c.ID, PID: c.Pid, StartedAt: c.StartedAt}
		if addr.IsValid() {
			st.Addr = addr.String()
		}
		if t.Spec.HealthCheck != nil {
			st.Health = api.HealthStarting
		}
		a.setReported(t.ID, st)
		a.log.Debug("task running", "task", t.ID, "service", t.ServiceName, "pid", c.Pid, "addr", st.Addr)
	}
	// A container that already exited is reported by the next Step.
}

// startError says what an operator can do about a failed create or start.
func startError(err error) error {
	switch {
	case errors.Is(err, rt.ErrCommandNotFound):
		return fmt.Errorf("%w: check the service's command and args against the image", err)
	case errors.Is(err, rt.ErrInvalidSpec):
		return fmt.Errorf("%w: check the service's resources and settings", err)
	case errors.Is(err, rt.ErrImageNotFound):
		return fmt.Errorf("%w: load it with warrenctl image load FILE.tar", err)
	}
	return err
}

func (a *Agent) stop(ctx context.Context, act step.Action) {
	ex, err := a.rt.Stop(ctx, act.TaskID, act.Grace)
	if err != nil && !errors.Is(err, rt.ErrNotFound) {
		a.log.Warn("stop container", "task", act.TaskID, "err", err)
		return // retried by the next Step
	}
	if act.Task != nil && !act.Task.Status.State.Terminal() && !act.Quiet {
		code := ex.Code
		st := api.TaskStatus{State: api.TaskShutdown, Message: "stopped", ExitCode: &code, ContainerID: act.TaskID}
		if act.Status != nil {
			// Stopped by the node itself (cut off past maxOffline).
			st.Message = act.Status.Message
			a.mu.Lock()
			a.localOf(act.Task).StoppedCutOff = true
			a.cpDirty = true
			a.mu.Unlock()
		}
		a.setReported(act.TaskID, st)
	}
	a.remove(ctx, act.TaskID)
}

// remove deletes a task's container, network and log.
func (a *Agent) remove(ctx context.Context, id string) {
	if err := a.rt.Delete(ctx, id); err != nil {
		a.log.Warn("delete container", "task", id, "err", err)
		return
	}
	if a.net != nil {
		if err := a.net.Detach(ctx, id); err != nil {
			a.log.Warn("release network", "task", id, "err", err)
		}
	}
	if dir, err := a.netFilesDir(id); err != nil {
		a.log.Warn("remove task files", "task", id, "err", err)
	} else {
		os.RemoveAll(dir)
	}
	a.removeTaskFiles(id)
	a.mu.Lock()
	delete(a.containers, id)
	delete(a.addrs, id)
	delete(a.netns, id)
	delete(a.pendingExits, id)
	if cancel, ok := a.health[id]; ok {
		cancel()
		delete(a.health, id)
	}
	delete(a.healthNow, id)
	a.mu.Unlock()
}

// exitLoop records container exits from the runtime.
func (a *Agent) exitLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ex, ok := <-a.rt.Exits():
			if !ok {
				return
			}
			a.mu.Lock()
			c, ok := a.containers[ex.ID]
			switch {
			case ok && staleExit(ex, c):
				// The container it was, stopped for a restart in place.
			case ok:
				c.State, c.Exit = rt.StateStopped, &ex
				a.containers[ex.ID] = c
			default:
				a.pendingExits[ex.ID] = ex
			}
			a.mu.Unlock()
			a.log.Info("container exited", "task", ex.ID, "code", ex.Code, "oom", ex.OOMKilled)
			a.kickReconcile()
		}
	}
}

// staleExit says ex is the exit of an earlier container of c's task: one
// that stopped before c started. A restart in place (break-glass, an
// override) stops the container and starts a new one with the same ID, and
// the old one's exit can arrive after the new one runs.
func staleExit(ex rt.Exit, c rt.Container) bool {
	return !ex.At.IsZero() && !c.StartedAt.IsZero() && ex.At.Before(c.StartedAt)
}

// imagesChanged says the node's images changed (a load, a fetch, a pull):
// the next heartbeat, at once, lists them again.
func (a *Agent) imagesChanged() {
	a.imagesStale.Store(true)
	a.beatSoon()
}

// imagesRecheck is how often the heartbeat lists the images with no word
// of a change (one changed behind the agent's back, with ctr).
const imagesRecheck = 30 * time.Second

// beatSoon makes the next heartbeat go at once.
func (a *Agent) beatSoon() {
	select {
	case a.beatNow <- struct{}{}:
	default:
	}
}

// heartbeatLoop tells the managers this node is alive.
func (a *Agent) heartbeatLoop(ctx context.Context) {
	// The node's name and resources were fixed when it joined; a heartbeat
	// tells the managers only what the agent knows: its engine and its end of
	// the mesh.
	failing := false
	var sent []api.NodeImage // the images the managers have, once known
	sentOK := false
	var listed time.Time
	for {
		hb := api.Heartbeat{Description: api.NodeDescription{EngineVersion: a.cfg.EngineVersion, Mesh: a.meshDescription(), Disk: a.diskFree()}}
		// The images go only when they changed: other nodes fetch them
		// from here. They are listed after a change the agent made, or
		// every imagesRecheck, not on every heartbeat.
		if !sentOK || a.imagesStale.Swap(false) || time.Since(listed) >= imagesRecheck {
			listed = time.Now()
			if imgs, err := a.Images(ctx); err == nil && (!sentOK || !slices.Equal(imgs, sent)) {
				if len(imgs) > api.MaxNodeImages {
					a.log.Warn("more images than the managers keep: the rest cannot be fetched from this node", "images", len(imgs), "kept", api.MaxNodeImages)
					imgs = imgs[:api.MaxNodeImages]
				}
				hb.Description.Images, hb.ImagesChanged = imgs, true
			}
		}
		self, err := a.api.Heartbeat(ctx, a.nodeID, hb)
		if ctx.Err() == nil {
			a.setContact(err == nil, time.Now())
		}
		if err == nil {
			a.dropVolumes(self)
		}
		if err == nil && a.journal.lastSeq() > a.journalSentSeq() && time.Now().After(a.journalRetryAt()) {
			a.sendJournal(ctx) // one that failed at reconnect goes again
		}
		switch {
		case err == nil && hb.ImagesChanged:
			sent, sentOK = hb.Description.Images, true
		case err != nil && hb.ImagesChanged:
			a.imagesStale.Store(true) // say them again next time
		}
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			a.log.Warn("heartbeat", "err", err)
			failing = true
		case err == nil && failing:
			a.log.Info("heartbeat accepted again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-a.beatNow:
		case <-time.After(wake.Until(a.cfg.HeartbeatEvery)):
		}
	}
}

// watchLoop keeps a.tasks equal to the tasks assigned to this node.
func (a *Agent) watchLoop(ctx context.Context) {
	f := client.NewFollower(client.FollowOptions{Client: a.api, Logger: a.log.With("watch", "tasks"),
		Query: client.WatchQuery{Kinds: []string{api.KindTask}, Node: a.nodeID}})
	a.watch.Store(f)
	f.Run(ctx, a.applyTasks)
}

// applyTasks takes a batch of the task watch in: a full resend replaces
// a.tasks (and makes the agent synced), changes update it. Reconcile
// runs once per batch.
func (a *Agent) applyTasks(b api.WatchBatch) error {
	put := make([]*api.Task, len(b.Events))
	for i, ev := range b.Events {
		if ev.Op == api.OpDelete {
			continue
		}
		var t api.Task
		if err := json.Unmarshal(ev.Object, &t); err != nil || t.ID == "" {
			a.log.Error("watch: undecodable task; ignored", "id", ev.ID, "index", ev.Index, "err", err)
			continue
		}
		put[i] = &t
	}
	a.mu.Lock()
	if b.Reset && b.Index < a.cpIndex {
		// The manager's replica is behind what this node already ran
		// (rebuilt after a crash): keep the checkpoint until it catches
		// up, rather than go back in time.
		a.mu.Unlock()
		return fmt.Errorf("the manager's state (index %d) is older than this node's checkpoint (index %d): the node runs from its checkpoint until the manager catches up", b.Index, a.cpIndex)
	}
	if b.Reset {
		a.tasks, a.synced = make(map[string]*api.Task, len(b.Events)), true
		// What the node keeps of tasks the new list no longer has goes.
		maps.DeleteFunc(a.draining, func(id string, _ time.Time) bool { return !hasEvent(b.Events, id) })
		maps.DeleteFunc(a.local, func(id string, _ *step.Local) bool { return !hasEvent(b.Events, id) })
	}
	if b.Reset {
		a.cpDirty = true
	}
	for i, ev := range b.Events {
		switch {
		case ev.Op == api.OpDelete:
			delete(a.tasks, ev.ID)
			delete(a.reported, ev.ID)
			delete(a.draining, ev.ID)
			delete(a.local, ev.ID)
			a.cpDirty = true
		case put[i] != nil:
			t := put[i]
			if t.Status.State == api.TaskOrphaned && t.DesiredState == api.TaskRunning {
				delete(a.reported, t.ID) // say again that it runs, to claim it back
			}
			if checkpointed(a.tasks[t.ID], t) {
				a.cpDirty = true
			}
			a.tasks[t.ID] = t
		}
	}
	a.index = max(a.index, b.Index)
	a.mu.Unlock()
	a.kickReconcile()
	return nil
}

func hasEvent(evs []api.Event, id string) bool {
	for _, ev := range evs {
		if ev.ID == id && ev.Op != api.OpDelete {
			return true
		}
	}
	return false
}

// Healthy is the watchdog's check: the runtime answers and the watch loop
// is alive (connected, or retrying; before it begins only the runtime
// counts).
func (a *Agent) Healthy(ctx context.Context) error {
	if err := a.rt.Ping(ctx); err != nil {
		return fmt.Errorf("container runtime: %w", err)
	}
	if f := a.watch.Load(); f != nil {
		if since := time.Since(f.Status().Alive); since > 45*time.Second {
			return fmt.Errorf("the task watch has shown no sign of life for %s", since.Round(time.Second))
		}
	}
	return nil
}

// Status is a one-line summary for systemd.
func (a *Agent) Status() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	running := 0
	for _, c := range a.containers {
		if c.State == rt.StateRunning {
			running++
		}
	}
	s := fmt.Sprintf("%d tasks assigned, %d containers running", len(a.tasks), running)
	if a.cutOff {
		s += ", cut off from the managers since " + a.lastContact.UTC().Format(time.RFC3339)
	}
	return s
}

// cleanupSandboxes releases network sandboxes no container uses (left by a
// crash between steps).
func (a *Agent) cleanupSandboxes(ctx context.Context) {
	if a.net == nil {
		return
	}
	ids, err := a.net.Attached(ctx)
	if err != nil {
		return
	}
	for _, id := range ids {
		a.mu.Lock()
		_, used := a.containers[id]
		busy := a.busy[id]
		a.mu.Unlock()
		if !used && !busy {
			a.net.Detach(ctx, id)
		}
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// cpuShares maps a CPU reservation to cgroup CPU shares (1024 per CPU).
func cpuShares(nanoCPUs int64) uint64 {
	if nanoCPUs <= 0 {
		return 0
	}
	return uint64(max(2, nanoCPUs*1024/1e9))
}

// groupOf names the shim that serves a task, given how many tasks of its
// service this node runs. A runc shim serves a group of containers but runs
// one `runc create` at a time: 100 containers in one shim start in 7.9 s,
// spread over 8 shims in 5.3 s (2 cores, BenchmarkParallelStart), for 44 MB
// of shim PSS instead of 21 MB. So a service gets one shim per tasksPerShim
// tasks, at most maxShims, its tasks spread over them by slot.
//
// A service of no more than tasksPerShim tasks here gets no shim of its
// own: it shares one of maxShims shims with the node's other small services,
// chosen by its ID (so its tasks stay together). A shim costs about 2.5 MB
// of PSS with one container in it and 40-60 KB more per container: 150
// one-replica services in a shim each cost 418 MB of shim PSS (qa/bench
// -only shape), 2.7 MB per task.
//
// A group is also a failure domain: if its shim dies, its containers are
// reported dead and restarted; for a shared shim, those of a few services.
func groupOf(t *api.Task, tasksOfService int) string {
	if tasksOfService <= tasksPerShim {
		h := fnv.New32a()
		h.Write([]byte(t.ServiceID))
		return fmt.Sprintf("warren-shared-%d", h.Sum32()%maxShims)
	}
	shims := min((tasksOfService+tasksPerShim-1)/tasksPerShim, maxShims)
	return fmt.Sprintf("warren-%s-%d", t.ServiceID, t.Slot%uint64(shims))
}

const tasksPerShim, maxShims = 12, 8

// tasksOf counts this node's tasks of a service.
func (a *Agent) tasksOf(serviceID string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, t := range a.tasks {
		if t.ServiceID == serviceID {
			n++
		}
	}
	return n
}
