package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/agent/step"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/netcfg/atomicfile"
)

// The node checkpoint: what the agent needs to run its node's tasks with no
// manager at all (DESIGN.md §3, offline autonomy). It is written atomically
// (atomicfile: temporary file, fsync, rename, fsync of the directory)
// before the agent acts on a change, so a crash at any instant leaves the
// old checkpoint or the new one, and a node that boots cut off, or whose
// manager does not answer, starts its tasks from it.
//
// It holds the node's identity and container network (its subnet and the
// cluster's range), the tasks assigned to it with their specs, slots,
// restart counts and statuses (so the images they need), the watch index
// they are as of, the node's own record of each task (restarts in place,
// last end: step.Local) and when a manager last took its heartbeat.
type nodeCheckpoint struct {
	NodeID  string `json:"nodeID"`
	Subnet  string `json:"subnet,omitempty"`
	Cluster string `json:"cluster,omitempty"`
	// Index is the watch index Tasks are as of.
	Index uint64                 `json:"index"`
	Tasks []*api.Task            `json:"tasks"`
	Local map[string]*step.Local `json:"local,omitempty"`
	// LastContact is when a manager last took this node's heartbeat.
	LastContact time.Time `json:"lastContact,omitzero"`
	// JournalSent is the last break-glass journal entry the managers took.
	JournalSent uint64 `json:"journalSent,omitempty"`
}

// checkpointed says whether a task's change from old (nil: new to the
// node) to t must reach the checkpoint before the agent acts on it: what
// the node is to run (the task, its spec, its desired state), whether it
// gets traffic (Standby) and whether it ended. The statuses the agent itself reports on the way (preparing,
// starting, running) need not: from a checkpoint that is behind on them,
// a node starts the same containers (a task the managers hold as running
// and one they hold as starting both start again after a reboot).
func checkpointed(old, t *api.Task) bool {
	if old == nil {
		return true
	}
	return old.DesiredState != t.DesiredState || old.SpecVersion != t.SpecVersion || old.NodeID != t.NodeID ||
		old.Status.State.Terminal() != t.Status.State.Terminal() ||
		(old.Status.State == api.TaskOrphaned) != (t.Status.State == api.TaskOrphaned) ||
		old.Attempt != t.Attempt || old.Standby != t.Standby || !offlineEqual(old.Status.Offline, t.Status.Offline)
}

func offlineEqual(a, b *api.OfflineRun) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Restarts == b.Restarts && a.Readopted == b.Readopted
}

// checkpointFile is the checkpoint's name in the agent's data dir.
const checkpointFile = "checkpoint.json"

// checkpointFormat is the envelope's format; a checkpoint of another
// format is not read (the agent then waits for its manager).
const checkpointFormat = 1

type checkpointEnvelope struct {
	Format int `json:"format"`
	// Sum is the SHA-256 of Body: a checkpoint that changed on disk
	// (bit rot, an editor) is refused rather than half believed.
	Sum  string          `json:"sha256"`
	Body json.RawMessage `json:"body"`
}

func encodeCheckpoint(cp *nodeCheckpoint) ([]byte, error) {
	body, err := json.Marshal(cp)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	return json.Marshal(checkpointEnvelope{Format: checkpointFormat, Sum: hex.EncodeToString(sum[:]), Body: body})
}

// writeCheckpoint writes an encoded checkpoint to dir, atomically and
// durably.
func writeCheckpoint(dir string, b []byte) error {
	if err := atomicfile.Write(filepath.Join(dir, checkpointFile), b, 0o600); err != nil {
		return fmt.Errorf("agent: write the checkpoint: %w", err)
	}
	return nil
}

// errNoCheckpoint: the node has none yet (a new node).
var errNoCheckpoint = errors.New("no checkpoint")

// loadCheckpoint reads and checks the checkpoint in dir. Temporary files
// a crash left are removed. An error other than errNoCheckpoint says what
// is wrong with the file; the agent then goes on without it.
func loadCheckpoint(dir string) (*nodeCheckpoint, error) {
	if tmps, _ := filepath.Glob(filepath.Join(dir, "."+checkpointFile+".tmp-*")); len(tmps) > 0 {
		for _, t := range tmps {
			os.Remove(t)
		}
	}
	path := filepath.Join(dir, checkpointFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoCheckpoint
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var env checkpointEnvelope
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, fmt.Errorf("%s is not a node checkpoint (%v)", path, err)
	}
	if env.Format != checkpointFormat {
		return nil, fmt.Errorf("%s is of format %d, not the %d this agent reads", path, env.Format, checkpointFormat)
	}
	sum := sha256.Sum256(env.Body)
	if !strings.EqualFold(env.Sum, hex.EncodeToString(sum[:])) {
		return nil, fmt.Errorf("%s does not match its checksum: it changed on disk", path)
	}
	var cp nodeCheckpoint
	if err := json.Unmarshal(env.Body, &cp); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if cp.NodeID == "" || len(cp.NodeID) > 64 {
		return nil, fmt.Errorf("%s names no node", path)
	}
	for _, t := range cp.Tasks {
		if t == nil || api.ValidateID(t.ID) != nil || t.NodeID != cp.NodeID {
			return nil, fmt.Errorf("%s holds a task that is not this node's", path)
		}
	}
	if cp.Local == nil {
		cp.Local = map[string]*step.Local{}
	}
	return &cp, nil
}

// MeasureCheckpoint writes the checkpoint of a node with tasks tasks (specs
// as a typical service has) to dir n times, as the agent does before it
// acts on a change, and returns each write's time: `make bench` reports
// it. Each write is two fsyncs (the file, then the directory).
func MeasureCheckpoint(dir string, tasks, n int) ([]time.Duration, error) {
	cp := &nodeCheckpoint{NodeID: api.NewID(), Subnet: "10.240.1.0/24", Cluster: "10.240.0.0/12", Local: map[string]*step.Local{}}
	for i := range tasks {
		t := &api.Task{Meta: api.Meta{ID: api.NewID()}, ServiceID: api.NewID(), ServiceName: "web", Slot: uint64(i + 1), NodeID: cp.NodeID,
			Spec: api.ServiceSpec{Name: "web", Image: "localhost/web:1.2", Replicas: uint64(tasks), Args: []string{"serve", "--port", "8080"},
				Env:   []string{"A=1", "LOG=info"},
				Ports: []api.PortConfig{{Target: 8080, Published: 80}}},
			DesiredState: api.TaskRunning, Status: api.TaskStatus{State: api.TaskRunning, ContainerID: "c", PID: 1000 + i, Addr: "10.240.1.7"}}
		cp.Tasks = append(cp.Tasks, t)
	}
	out := make([]time.Duration, 0, n)
	for i := range n {
		cp.Index = uint64(i + 1)
		began := time.Now()
		b, err := encodeCheckpoint(cp)
		if err == nil {
			err = writeCheckpoint(dir, b)
		}
		if err != nil {
			return out, err
		}
		out = append(out, time.Since(began))
	}
	return out, nil
}

// CheckpointInfo sums up a node checkpoint, for tests and tools.
type CheckpointInfo struct {
	NodeID string
	Index  uint64
	Tasks  int
}

// ReadCheckpoint reads and checks the checkpoint in an agent's data dir, as
// the agent does when it starts.
func ReadCheckpoint(dir string) (CheckpointInfo, error) {
	cp, err := loadCheckpoint(dir)
	if err != nil {
		return CheckpointInfo{}, err
	}
	return CheckpointInfo{NodeID: cp.NodeID, Index: cp.Index, Tasks: len(cp.Tasks)}, nil
}
