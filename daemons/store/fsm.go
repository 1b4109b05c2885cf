package store

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	json "github.com/segmentio/encoding/json"
	bolt "go.etcd.io/bbolt"

	"github.com/warren-edge/warren/daemons/api"
)

// FSM applies committed Raft entries to the state database. It implements
// raft.BatchingFSM: a batch of entries is one bbolt transaction, one fsync.
type FSM struct {
	state *State
	hub   *Hub
	// OnApply, if set, is called after each batch with the number of
	// entries and how long the batch took (for metrics).
	OnApply func(n int, d time.Duration)
	// OnDiskFull, if set, is called (from Raft's FSM goroutine, without
	// blocking) when a batch could not be written for lack of space. From
	// then on the FSM applies nothing: the owner must stop this Raft
	// instance, call Resume once there is space, and start a new one,
	// which delivers again every entry after AppliedIndex (diskfull.go).
	OnDiskFull func(err error)
	// OnEvents, if set, is called after each batch with the types of the
	// events it derived (events.go), for metrics.
	OnEvents func(types []string)
	// Events bounds the events the state keeps; set it before the first
	// apply. Every manager of a cluster must use the same.
	Events EventOptions

	mu sync.Mutex
	// failed is the write error that stopped the FSM; nil while it applies.
	failed error
}

// NewFSM makes an FSM over state that publishes changes to hub.
func NewFSM(state *State, hub *Hub) *FSM { return &FSM{state: state, hub: hub} }

type applyFunc func(w *wtx, payload []byte) any

// appliers maps each command type to its apply function.
var appliers = map[CommandType]applyFunc{
	CmdClusterInit:    decoded(applyClusterInit),
	CmdServiceCreate:  decoded(applyServiceCreate),
	CmdServiceUpdate:  decoded(applyServiceUpdate),
	CmdServiceScale:   decoded(applyServiceScale),
	CmdServicePromote: decoded(applyServicePromote),
	CmdServiceDelete:  decoded(applyServiceDelete),
	CmdNodeRegister:   decoded(applyNodeRegister),
	CmdNodeSpec:       decoded(applyNodeSpec),
	CmdNodeStatus:     decoded(applyNodeStatus),
	CmdNodeRemove:     decoded(applyNodeRemove),
	CmdTaskPlan:       decoded(applyTaskPlan),
	CmdTaskStatus:     decoded(applyTaskStatus),
	CmdJoinTokens:     decoded(applyJoinTokens),
	CmdNodeRole:       decoded(applyNodeRole),
	CmdCA:             decoded(applyCA),
	CmdOperatorPut:    decoded(applyOperatorPut),
	CmdOperatorDrop:   decoded(applyOperatorDrop),
	CmdNodeJournal:    decoded(applyNodeJournal),
	CmdVolumeCreate:   decoded(applyVolumeCreate),
	CmdVolumeRemove:   decoded(applyVolumeRemove),
	CmdKeyring:        decoded(applyKeyring),
	CmdReseal:         decoded(applyReseal),
	CmdSecretPut:      decoded(applySecretPut),
	CmdSecretRemove:   decoded(applySecretRemove),
	CmdConfigPut:      decoded(applyConfigPut),
	CmdConfigRemove:   decoded(applyConfigRemove),
	CmdEvent:          decoded(applyEvent),
	CmdDeploy:         decoded(applyDeploy),
	CmdIngressPut:     decoded(applyIngressPut),
	CmdIngressDelete:  decoded(applyIngressDelete),
	CmdIngressLock:    decoded(applyIngressLockTake),
	CmdIngressUnlock:  decoded(applyIngressLockRelease),
}

func init() { appliers[CmdOnce] = applyOnceEntry } // applyOnce refers to appliers

// decoded adapts a typed apply function. A payload that does not decode is
// a bug (or an entry from a newer Warren): the FSM cannot skip it without
// diverging from its peers, so it panics.
//
// The command's At, if it has one, is the time of the events it causes.
func decoded[T any](fn func(w *wtx, c *T) any) applyFunc {
	at := commandAt[T]()
	return func(w *wtx, payload []byte) any {
		var c T
		if err := json.Unmarshal(payload, &c); err != nil {
			panic(fmt.Sprintf("store: entry %d: cannot decode %T: %v", w.index, c, err))
		}
		w.at = time.Time{}
		if at != nil {
			w.at = at(&c)
		}
		return fn(w, &c)
	}
}

// Apply applies one entry.
func (f *FSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies entries in one transaction and returns one result per
// entry: nil, a result value, or an *api.Error for a refused command. On a
// stopped FSM (its disk was full) every result is the disk-full error and
// nothing is applied.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	if f.Failed() != nil {
		return f.refuse(len(logs))
	}
	start := time.Now()
	results := make([]any, len(logs))
	var changes []Change
	var events []string
	var last uint64
	opts := f.Events.withDefaults()
	err := f.state.update(func(tx *bolt.Tx) error {
		w := &wtx{tx: tx, opts: opts}
		applied := readIndex(tx)
		for i, l := range logs {
			last = max(last, l.Index)
			if l.Index <= applied || l.Type != raft.LogCommand || len(l.Data) == 0 {
				continue
			}
			t := CommandType(l.Data[0])
			fn, ok := appliers[t]
			if !ok {
				panic(fmt.Sprintf("store: entry %d has unknown command type %d: this warren is older than the cluster's; upgrade it", l.Index, l.Data[0]))
			}
			w.index = l.Index
			results[i] = fn(w, l.Data[1:])
		}
		changes, events = w.changes, w.events
		if last <= applied {
			return nil
		}
		return writeIndex(tx, last)
	})
	if err != nil {
		if IsDiskFull(err) {
			// Nothing of the batch was written. Skipping it would diverge
			// from the other managers, and panicking would restart into
			// the same full disk: stop until Raft is restarted.
			f.fail(fmt.Errorf("store: apply entries up to %d: %w", last, err))
			return f.refuse(len(logs))
		}
		// The disk failed under us; applying nothing would diverge from the
		// other managers, so stop here and let systemd restart us.
		panic(fmt.Sprintf("store: apply entries up to %d: %v", last, err))
	}
	f.hub.publish(changes, last)
	if f.OnEvents != nil && len(events) > 0 {
		f.OnEvents(events)
	}
	if f.OnApply != nil {
		f.OnApply(len(logs), time.Since(start))
	}
	return results
}

// Failed is the write error that stopped the FSM, or nil while it applies.
func (f *FSM) Failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// Resume lets a stopped FSM apply again. Call it only while no Raft
// instance runs over the FSM, before starting a new one: the new instance
// delivers again the entries the stopped FSM refused.
func (f *FSM) Resume() {
	f.mu.Lock()
	f.failed = nil
	f.mu.Unlock()
}

// fail stops the FSM (the first failure is kept) and tells the owner.
func (f *FSM) fail(err error) {
	f.mu.Lock()
	first := f.failed == nil
	if first {
		f.failed = err
	}
	f.mu.Unlock()
	if first && f.OnDiskFull != nil {
		f.OnDiskFull(err)
	}
}

// refuse is the results of a batch a stopped FSM did not apply: each entry
// is committed, and takes effect once Raft is restarted.
func (f *FSM) refuse(n int) []any {
	e := DiskFullError(filepath.Dir(f.state.path), DiskFullCommitted)
	results := make([]any, n)
	for i := range results {
		results[i] = e
	}
	return results
}

func readIndex(tx *bolt.Tx) uint64 {
	b := tx.Bucket(bMeta).Get(kAppliedIndex)
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func writeIndex(tx *bolt.Tx, idx uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], idx)
	return tx.Bucket(bMeta).Put(kAppliedIndex, b[:])
}

// Snapshot captures the state as of the last applied entry. The copy is
// written by Persist from a read transaction, while applies go on.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.Failed(); err != nil {
		// Raft thinks the refused entries applied: a snapshot now would
		// be labelled with an index the state has not reached, and Raft
		// would drop the log entries it lacks.
		return nil, fmt.Errorf("store: snapshot: the state is behind Raft until its disk has space: %w", err)
	}
	f.state.mu.RLock()
	tx, err := f.state.db.Begin(false)
	if err != nil {
		f.state.mu.RUnlock()
		return nil, fmt.Errorf("store: snapshot: %w", err)
	}
	return &snapshot{tx: tx, unlock: f.state.mu.RUnlock}, nil
}

type snapshot struct {
	tx     *bolt.Tx
	unlock func()
	once   sync.Once
}

// Persist writes the snapshot and lets go of the read transaction (and the
// lock that keeps Restore away): raft.RecoverCluster never calls Release.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	defer s.Release()
	if _, err := s.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("store: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *snapshot) Release() {
	s.once.Do(func() {
		s.tx.Rollback()
		s.unlock()
	})
}

// Restore replaces the state with a snapshot's. The new database is written
// beside the old one, checked, and renamed over it.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	tmp := f.state.path + ".restore"
	if err := writeFileSync(tmp, rc); err != nil {
		os.Remove(tmp) // a part would take the space the next try needs
		err = fmt.Errorf("store: restore: %w", err)
		if IsDiskFull(err) {
			f.fail(err)
		}
		return err
	}
	db, err := openBolt(tmp, false)
	if err != nil {
		os.Remove(tmp)
		if IsDiskFull(err) {
			err = fmt.Errorf("store: restore: %w", err)
			f.fail(err)
			return err
		}
		return fmt.Errorf("store: restore: snapshot is not a state database: %w", err)
	}
	var idx uint64
	db.View(func(tx *bolt.Tx) error { idx = readIndex(tx); return nil })
	db.Close()

	f.state.mu.Lock()
	defer f.state.mu.Unlock()
	f.state.dur.mu.Lock()
	defer f.state.dur.mu.Unlock()
	if err := f.state.dur.dirty(); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := f.state.db.Close(); err != nil {
		return fmt.Errorf("store: restore: close state: %w", err)
	}
	if err := os.Rename(tmp, f.state.path); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := syncDir(filepath.Dir(f.state.path)); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if f.state.db, err = openBolt(f.state.path, f.state.dur.synced); err != nil {
		return fmt.Errorf("store: restore: reopen: %w", err)
	}
	f.hub.Reset(idx)
	return nil
}

func writeFileSync(path string, r io.Reader) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// wtx is the write side of one batch: it stamps versions, keeps the
// secondary indexes in step, and records the changes for the hub.
type wtx struct {
	tx      *bolt.Tx
	index   uint64
	changes []Change
	// at is the time of the command being applied (its At; zero if it has
	// none), which stamps the events it causes.
	at   time.Time
	opts EventOptions
	// events are the types of the events derived in this batch.
	events []string
	// hosts caches nodes' hostnames for the events of this batch.
	hosts map[string]string
	// held, while not nil, keeps the events derived instead of storing
	// them: a deployment stores them only if it is applied (applyDeploy).
	held *[]api.ClusterEvent
}

func (w *wtx) view() *View { return &View{tx: w.tx} }

// record adds a change for the hub; public, if not nil, is the object's
// public projection, encoded once for every worker's watch.
func (w *wtx) record(op, kind, id, nodeID, serviceID string, obj []byte, public any) {
	line := encodeChange(w.index, op, kind, id, obj)
	// The object is the line's tail, before the closing "}\n".
	object := line[len(line)-2-len(obj) : len(line)-2]
	c := Change{Index: w.index, Op: op, Kind: kind, ID: id,
		NodeID: nodeID, ServiceID: serviceID, Line: line, Object: object}
	if public != nil {
		pb, err := json.Marshal(public)
		if err != nil {
			panic(fmt.Sprintf("store: encode %s: %v", id, err))
		}
		c.Public = encodeChange(w.index, op, kind, id, pb)
	}
	w.changes = append(w.changes, c)
}

// put stores obj. bbolt writes nothing to disk before the commit, so a
// Put error is a bug (a key or value out of bbolt's bounds), not the disk.
func (w *wtx) put(bucket []byte, id string, obj any) []byte {
	b, err := json.Marshal(obj)
	if err != nil {
		panic(fmt.Sprintf("store: encode %s: %v", id, err))
	}
	if err := w.tx.Bucket(bucket).Put([]byte(id), b); err != nil {
		panic(fmt.Sprintf("store: put %s: %v", id, err))
	}
	return b
}

func (w *wtx) must(err error) {
	if err != nil {
		panic(fmt.Sprintf("store: entry %d: %v", w.index, err))
	}
}

func (w *wtx) putService(s *api.Service, op string) {
	s.Version = w.index
	w.serviceEvents(w.tx.Bucket(bServices).Get([]byte(s.ID)), s)
	raw := w.put(bServices, s.ID, s)
	w.record(op, api.KindService, s.ID, "", "", raw, api.PublicService(s))
}

func (w *wtx) putNode(n *api.Node, op string) {
	n.Version = w.index
	w.nodeEvents(w.tx.Bucket(bNodes).Get([]byte(n.ID)), n)
	raw := w.put(bNodes, n.ID, n)
	w.record(op, api.KindNode, n.ID, "", "", raw, api.PublicNode(n))
}

// putTask stores t; prev is its stored form before this change (nil when new).
func (w *wtx) putTask(prev, t *api.Task) {
	t.Version = w.index
	raw := w.put(bTasks, t.ID, t)
	op := api.OpUpdate
	if prev == nil {
		op = api.OpCreate
		w.must(w.tx.Bucket(bTasksBySvc).Put(indexKey(t.ServiceID, t.ID), nil))
	}
	if t.NodeID != "" && (prev == nil || prev.NodeID != t.NodeID) {
		if prev != nil && prev.NodeID != "" {
			w.must(w.tx.Bucket(bTasksByNode).Delete(indexKey(prev.NodeID, t.ID)))
		}
		w.must(w.tx.Bucket(bTasksByNode).Put(indexKey(t.NodeID, t.ID), nil))
	}
	w.record(op, api.KindTask, t.ID, t.NodeID, t.ServiceID, raw, api.PublicTask(t))
	w.taskEvents(prev, t)
}

func (w *wtx) deleteTask(t *api.Task) {
	raw, _ := json.Marshal(t)
	w.must(w.tx.Bucket(bTasks).Delete([]byte(t.ID)))
	w.must(w.tx.Bucket(bTasksBySvc).Delete(indexKey(t.ServiceID, t.ID)))
	if t.NodeID != "" {
		w.must(w.tx.Bucket(bTasksByNode).Delete(indexKey(t.NodeID, t.ID)))
	}
	w.record(api.OpDelete, api.KindTask, t.ID, t.NodeID, t.ServiceID, raw, api.PublicTask(t))
}

// task returns the stored task with exactly this ID, or nil.
func (w *wtx) task(id string) *api.Task {
	raw := w.tx.Bucket(bTasks).Get([]byte(id))
	if raw == nil {
		return nil
	}
	var t api.Task
	mustDecode(raw, &t)
	return &t
}

func (w *wtx) service(id string) *api.Service {
	raw := w.tx.Bucket(bServices).Get([]byte(id))
	if raw == nil {
		return nil
	}
	var s api.Service
	mustDecode(raw, &s)
	return &s
}

func (w *wtx) node(id string) *api.Node {
	raw := w.tx.Bucket(bNodes).Get([]byte(id))
	if raw == nil {
		return nil
	}
	var n api.Node
	mustDecode(raw, &n)
	return &n
}
