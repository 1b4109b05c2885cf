package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	json "github.com/segmentio/encoding/json"
	bolt "go.etcd.io/bbolt"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/wake"
)

// Buckets of the state database.
var (
	bMeta         = []byte("meta")
	bServices     = []byte("services")
	bServiceNames = []byte("service_names")
	bPorts        = []byte("ports")
	bTasks        = []byte("tasks")
	bTasksBySvc   = []byte("tasks_by_service")
	bTasksByNode  = []byte("tasks_by_node")
	bNodes        = []byte("nodes")
	bRequests     = []byte("requests")
	bRequestsByAt = []byte("requests_by_at")
	bJournal      = []byte("journal") // node ID, 0, seq (8 bytes) → api.JournalEntry
	// Secrets and configs (apply_secret.go): objects by ID, IDs by name,
	// values by ID, 0, version (8 bytes).
	bSecrets      = []byte("secrets")
	bSecretNames  = []byte("secret_names")
	bSecretValues = []byte("secret_values")
	bConfigs      = []byte("configs")
	bConfigNames  = []byte("config_names")
	bConfigValues = []byte("config_values")
	bVolumes      = []byte("volumes") // name → api.Volume
	// bIngressRoutes indexes the ingress routes services claim: host, 0,
	// path, 0, service ID → nothing (apply_ingress_routes.go).
	bIngressRoutes = []byte("ingress_routes")
	allBuckets     = [][]byte{bMeta, bServices, bServiceNames, bPorts, bIngressRoutes, bTasks, bTasksBySvc, bTasksByNode, bNodes, bRequests, bRequestsByAt, bJournal,
		bSecrets, bSecretNames, bSecretValues, bConfigs, bConfigNames, bConfigValues, bVolumes, bEvents, bIngress, bIngressLocks}
	kAppliedIndex  = []byte("applied_index")
	kCluster       = []byte("cluster")
	kTokens        = []byte("tokens")
	kCA            = []byte("ca")
	kRevoked       = []byte("revoked")
	kOperators     = []byte("operators")
	kRequests      = []byte("requests")
	kFormat        = []byte("format")
	currentFormat  = []byte("1")
	indexSeparator = byte(0)
)

// State is the bbolt database of the cluster's objects. Reads may run
// concurrently with the FSM's writes; Restore swaps the file under a lock.
//
// Writes are not synced one by one: see durability.go for why the database
// can be rebuilt from the Raft log and when it is.
type State struct {
	path string
	mu   sync.RWMutex // guards db against Restore's swap
	db   *bolt.DB
	dur  durability
	// Discarded says why the database found at open was not trusted and
	// was set aside to be rebuilt from Raft ("" when it was kept).
	Discarded string
	// failCommit, when set (by tests, before writing), fails each write
	// transaction at its commit with the error it returns, as a full disk
	// would: the transaction is rolled back.
	failCommit func() error
}

// OpenState opens (or creates) the state database at path.
func OpenState(path string) (*State, error) { return openState(path, false) }

// OpenStateSynced opens a state database that syncs every write (a
// worker's replica, which has no Raft log to be rebuilt from): bbolt's
// own commit protocol keeps it whole through a power cut, so it is never
// set aside for a dirty boot (durability.go).
func OpenStateSynced(path string) (*State, error) { return openState(path, true) }

func openState(path string, synced bool) (*State, error) {
	s := &State{path: path}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s.dur.synced = synced
	s.Discarded = s.dur.open(path)
	db, err := openBolt(path, synced)
	if err != nil && s.Discarded == "" {
		// A database bbolt cannot open is rebuilt like an untrusted one.
		s.Discarded = fmt.Sprintf("it could not be opened (%v)", err)
		setAside(path)
		db, err = openBolt(path, synced)
	}
	if err != nil {
		return nil, err
	}
	s.db = db
	return s, nil
}

func openBolt(path string, synced bool) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         2 * time.Second,
		NoSync:          !synced, // see durability.go
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 64 << 20, // address space only; avoids remaps that wait for readers
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w (is another warren manager using this data dir?)", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		// A state written before routes were indexed gets its index
		// built from its services (a snapshot restored is opened here
		// too).
		indexRoutes := tx.Bucket(bIngressRoutes) == nil
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if indexRoutes {
			if err := rebuildRouteIndex(tx); err != nil {
				return err
			}
		}
		m := tx.Bucket(bMeta)
		if f := m.Get(kFormat); f == nil {
			return m.Put(kFormat, currentFormat)
		} else if !bytes.Equal(f, currentFormat) {
			return fmt.Errorf("state format %q is not the %q this warren reads", f, currentFormat)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return db, nil
}

// Close checkpoints and closes the database.
func (s *State) Close() error {
	cerr := s.Checkpoint()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return err
	}
	return cerr
}

// View runs fn in a read transaction over a consistent state.
func (s *State) View(fn func(v *View) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.View(func(tx *bolt.Tx) error { return fn(&View{tx: tx}) })
}

func (s *State) update(fn func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.dur.mu.Lock()
	defer s.dur.mu.Unlock()
	if err := s.dur.dirty(); err != nil {
		return err
	}
	if fail := s.failCommit; fail != nil {
		apply := fn
		fn = func(tx *bolt.Tx) error {
			if err := apply(tx); err != nil {
				return err
			}
			return fail()
		}
	}
	return s.db.Update(fn)
}

// Checkpoint syncs the database to disk and marks it clean: until the next
// write, it is trusted after a power loss too.
func (s *State) Checkpoint() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.dur.mu.Lock()
	defer s.dur.mu.Unlock()
	if s.dur.clean || s.dur.synced {
		return nil
	}
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("store: sync state: %w", err)
	}
	return s.dur.markClean()
}

// RunCheckpoints checkpoints the database once writes have paused for
// idle, until ctx ends. It looks once per idle, on the process's shared
// wall-clock wakeups (package wake): a checkpoint comes 1-2 idles after
// the last write.
func (s *State) RunCheckpoints(ctx context.Context, idle time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wake.Until(idle)):
		}
		s.dur.mu.Lock()
		due := !s.dur.clean && time.Since(s.dur.lastWrite) >= idle
		s.dur.mu.Unlock()
		if due {
			s.Checkpoint()
		}
	}
}

// AppliedIndex is the Raft index of the last entry applied.
func (s *State) AppliedIndex() uint64 {
	var idx uint64
	s.View(func(v *View) error { idx = v.Index(); return nil })
	return idx
}

// View is a read-only, consistent view of the state. Objects it returns are
// decoded copies; raw bytes are copied too, so both outlive the view.
type View struct{ tx *bolt.Tx }

// Index is the Raft index the view reflects.
func (v *View) Index() uint64 {
	b := v.tx.Bucket(bMeta).Get(kAppliedIndex)
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Cluster returns the cluster's identity, or nil before initialisation.
func (v *View) Cluster() *ClusterInit {
	b := v.tx.Bucket(bMeta).Get(kCluster)
	if b == nil {
		return nil
	}
	var c ClusterInit
	mustDecode(b, &c)
	return &c
}

// CA returns the cluster's current CA: the last rotation's, or the one
// the cluster started with. Nil before initialisation.
func (v *View) CA() *CA {
	if b := v.tx.Bucket(bMeta).Get(kCA); b != nil {
		var c CA
		mustDecode(b, &c)
		return &c
	}
	cl := v.Cluster()
	if cl == nil || cl.CACertPEM == "" {
		return nil
	}
	return &CA{CertPEM: cl.CACertPEM, Key: cl.CAKey, KeyPEM: cl.CAKeyPEM, At: cl.CreatedAt}
}

// JoinTokens returns the cluster's join tokens.
func (v *View) JoinTokens() []JoinToken {
	b := v.tx.Bucket(bMeta).Get(kTokens)
	if b == nil {
		return nil
	}
	var ts []JoinToken
	mustDecode(b, &ts)
	return ts
}

// Revocations is the deny list (expired entries included until the next
// change prunes them).
func (v *View) Revocations() []Revocation {
	var rs []Revocation
	if b := v.tx.Bucket(bMeta).Get(kRevoked); b != nil {
		mustDecode(b, &rs)
	}
	return rs
}

// Revoked says whether the identity kind/id is on the deny list at now.
func (v *View) Revoked(kind, id string, now time.Time) bool {
	for _, r := range v.Revocations() {
		if r.Kind == kind && r.ID == id && now.Before(r.Until) {
			return true
		}
	}
	return false
}

// Operators returns the cluster's operators, by name.
func (v *View) Operators() []api.Operator {
	var os []api.Operator
	if b := v.tx.Bucket(bMeta).Get(kOperators); b != nil {
		mustDecode(b, &os)
	}
	return os
}

// Operator returns the operator with the name, if there is one.
func (v *View) Operator(name string) (api.Operator, bool) {
	for _, o := range v.Operators() {
		if o.Name == name {
			return o, true
		}
	}
	return api.Operator{}, false
}

// NodeByID returns the node with exactly this ID (no prefix, no hostname:
// for checking an identity), if there is one.
func (v *View) NodeByID(id string) (*api.Node, bool) {
	raw := v.tx.Bucket(bNodes).Get([]byte(id))
	if raw == nil {
		return nil, false
	}
	var n api.Node
	mustDecode(raw, &n)
	return &n, true
}

func mustDecode(b []byte, into any) {
	if err := json.Unmarshal(b, into); err != nil {
		panic(fmt.Sprintf("store: corrupt object %.80q: %v", b, err))
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// lookup finds an object in bucket by exact ID, then by unique ID prefix.
// nameBucket, if set, is tried first, mapping names to IDs.
func (v *View) lookup(bucket, nameBucket []byte, kind, ref string) ([]byte, error) {
	if ref == "" {
		return nil, api.Errorf(api.CodeInvalid, "no %s name or ID given", kind)
	}
	b := v.tx.Bucket(bucket)
	if nameBucket != nil {
		if id := v.tx.Bucket(nameBucket).Get([]byte(ref)); id != nil {
			if raw := b.Get(id); raw != nil {
				return raw, nil
			}
		}
	}
	if raw := b.Get([]byte(ref)); raw != nil {
		return raw, nil
	}
	c := b.Cursor()
	p := []byte(ref)
	var found []byte
	n := 0
	for k, val := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, val = c.Next() {
		found = val
		n++
		if n > 1 {
			return nil, api.Errorf(api.CodeAmbiguous, "%s ID prefix %q matches more than one %s: give more characters", kind, ref, kind)
		}
	}
	if n == 0 {
		return nil, api.Errorf(api.CodeNotFound, "no %s %q: list them with warrenctl %s ls", kind, ref, kind)
	}
	return found, nil
}

// ServiceRaw returns the stored JSON of a service by name, ID or ID prefix.
func (v *View) ServiceRaw(ref string) ([]byte, error) {
	raw, err := v.lookup(bServices, bServiceNames, api.KindService, ref)
	return clone(raw), err
}

// Service returns a service by name, ID or ID prefix.
func (v *View) Service(ref string) (*api.Service, error) {
	raw, err := v.lookup(bServices, bServiceNames, api.KindService, ref)
	if err != nil {
		return nil, err
	}
	var s api.Service
	mustDecode(raw, &s)
	return &s, nil
}

// Services returns every service, sorted by name.
func (v *View) Services() []*api.Service {
	var out []*api.Service
	v.tx.Bucket(bServiceNames).ForEach(func(_, id []byte) error {
		if raw := v.tx.Bucket(bServices).Get(id); raw != nil {
			var s api.Service
			mustDecode(raw, &s)
			out = append(out, &s)
		}
		return nil
	})
	return out
}

// ServicesRaw appends the stored JSON of every service, sorted by name.
func (v *View) ServicesRaw(fn func(raw []byte) error) error {
	return v.tx.Bucket(bServiceNames).ForEach(func(_, id []byte) error {
		if raw := v.tx.Bucket(bServices).Get(id); raw != nil {
			return fn(raw)
		}
		return nil
	})
}

// ServiceCount is the number of services.
func (v *View) ServiceCount() int { return v.tx.Bucket(bServices).Stats().KeyN }

// TaskRaw returns the stored JSON of a task by ID or ID prefix.
func (v *View) TaskRaw(ref string) ([]byte, error) {
	raw, err := v.lookup(bTasks, nil, api.KindTask, ref)
	return clone(raw), err
}

// Task returns a task by ID or ID prefix.
func (v *View) Task(ref string) (*api.Task, error) {
	raw, err := v.lookup(bTasks, nil, api.KindTask, ref)
	if err != nil {
		return nil, err
	}
	var t api.Task
	mustDecode(raw, &t)
	return &t, nil
}

// TaskFilter selects tasks; empty fields match everything.
type TaskFilter struct {
	ServiceID string
	NodeID    string
}

// TasksRaw calls fn with the stored JSON of each task the filter selects.
func (v *View) TasksRaw(f TaskFilter, fn func(raw []byte) error) error {
	tasks := v.tx.Bucket(bTasks)
	var idx *bolt.Bucket
	var prefix []byte
	switch {
	case f.ServiceID != "":
		idx, prefix = v.tx.Bucket(bTasksBySvc), indexKey(f.ServiceID, "")
	case f.NodeID != "":
		idx, prefix = v.tx.Bucket(bTasksByNode), indexKey(f.NodeID, "")
	default:
		return tasks.ForEach(func(_, raw []byte) error { return fn(raw) })
	}
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		raw := tasks.Get(k[len(prefix):])
		if raw == nil {
			continue
		}
		if f.NodeID != "" && f.ServiceID != "" {
			var t struct {
				NodeID string `json:"nodeID"`
			}
			mustDecode(raw, &t)
			if t.NodeID != f.NodeID {
				continue
			}
		}
		if err := fn(raw); err != nil {
			return err
		}
	}
	return nil
}

// Tasks returns the tasks the filter selects.
func (v *View) Tasks(f TaskFilter) []*api.Task {
	var out []*api.Task
	v.TasksRaw(f, func(raw []byte) error {
		var t api.Task
		mustDecode(raw, &t)
		out = append(out, &t)
		return nil
	})
	return out
}

// TaskCount is the number of tasks.
func (v *View) TaskCount() int { return v.tx.Bucket(bTasks).Stats().KeyN }

// NodeRaw returns the stored JSON of a node by ID, ID prefix or hostname.
func (v *View) NodeRaw(ref string) ([]byte, error) {
	raw, err := v.node(ref)
	return clone(raw), err
}

func (v *View) node(ref string) ([]byte, error) {
	raw, err := v.lookup(bNodes, nil, api.KindNode, ref)
	if api.NotFound(err) {
		// Operators name nodes by hostname.
		var hit []byte
		n := 0
		v.tx.Bucket(bNodes).ForEach(func(_, b []byte) error {
			var nd api.Node
			mustDecode(b, &nd)
			if nd.Description.Hostname == ref {
				hit = b
				n++
			}
			return nil
		})
		switch n {
		case 1:
			return hit, nil
		case 0:
			return nil, err
		default:
			return nil, api.Errorf(api.CodeAmbiguous, "%d nodes have hostname %q: use the node ID", n, ref)
		}
	}
	return raw, err
}

// Node returns a node by ID, ID prefix or hostname.
func (v *View) Node(ref string) (*api.Node, error) {
	raw, err := v.node(ref)
	if err != nil {
		return nil, err
	}
	var n api.Node
	mustDecode(raw, &n)
	return &n, nil
}

// Nodes returns every node, sorted by hostname.
func (v *View) Nodes() []*api.Node {
	var out []*api.Node
	v.tx.Bucket(bNodes).ForEach(func(_, raw []byte) error {
		var n api.Node
		mustDecode(raw, &n)
		out = append(out, &n)
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Description.Hostname != out[j].Description.Hostname {
			return out[i].Description.Hostname < out[j].Description.Hostname
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// NodeCount is the number of nodes.
func (v *View) NodeCount() int { return v.tx.Bucket(bNodes).Stats().KeyN }

// PortOwner returns the ID of a service other than except that publishes
// a port p conflicts with (api.PortConfig.ConflictsWith), or "".
func (v *View) PortOwner(p api.PortConfig, except string) string {
	id, _ := v.portOwner(p, except)
	return id
}

// portOwner is PortOwner that also returns the other service's port.
func (v *View) portOwner(p api.PortConfig, except string) (string, api.PortConfig) {
	for _, e := range portEntries(v.tx.Bucket(bPorts), p.Key()) {
		if theirs := e.port(); e.ServiceID != except && theirs.ConflictsWith(p) {
			return e.ServiceID, theirs
		}
	}
	return "", api.PortConfig{}
}

func indexKey(a, b string) []byte {
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, indexSeparator)
	return append(k, b...)
}

// portEntry is one published port in the ports bucket, keyed by
// "proto/port" so that clashes are found without scanning every service.
type portEntry struct {
	ServiceID string `json:"s"`
	HostAddr  string `json:"a,omitempty"`
	Proto     string `json:"p"`
	Port      uint16 `json:"n"`
	// Mode is the port's normalized mode; entries written before ports
	// had a mode have none, and get the default of their port (as the
	// stored spec does).
	Mode string `json:"m,omitempty"`
}

// port is the published port of the entry (its target is not kept).
func (e portEntry) port() api.PortConfig {
	return api.PortConfig{Published: e.Port, Protocol: e.Proto, HostAddr: e.HostAddr, Target: e.Port, Mode: e.Mode}
}

func portBucketKey(k api.PortKey) []byte {
	return []byte(fmt.Sprintf("%s/%d", k.Proto, k.Port))
}

func portEntries(b *bolt.Bucket, k api.PortKey) []portEntry {
	raw := b.Get(portBucketKey(k))
	if raw == nil {
		return nil
	}
	var es []portEntry
	mustDecode(raw, &es)
	return es
}
