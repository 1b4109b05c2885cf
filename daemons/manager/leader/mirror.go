package leader

import (
	"maps"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/orchestrator"
	"github.com/warren-edge/warren/daemons/scheduler"
	"github.com/warren-edge/warren/daemons/store"
)

// mirror is the leader loop's decoded copy of the state. It follows the
// hub, decoding only the objects that change, and remembers which services
// need reconciling, so a pass costs what changed rather than the whole
// cluster.
type mirror struct {
	index     uint64
	services  map[string]*api.Service
	tasks     map[string]*api.Task
	nodes     map[string]*api.Node
	byService map[string]map[string]*api.Task

	dirty map[string]bool // service IDs to reconcile
	all   bool            // reconcile every service
	// waiting are the tasks waiting for a node (task ID → service ID):
	// their services are reconciled again whenever capacity may have freed.
	waiting map[string]string
	// occupying are the tasks that hold a place on a node (the scheduler
	// counts them), by ID.
	occupying map[string]*api.Task
	// volumes are the cluster's volumes: name → the node each lives on.
	volumes scheduler.Volumes
}

func newMirror() *mirror { return &mirror{} }

// load replaces the mirror's content with the state in v.
func (mr *mirror) load(v *store.View) {
	*mr = mirror{index: v.Index(), services: map[string]*api.Service{}, tasks: map[string]*api.Task{},
		nodes: map[string]*api.Node{}, byService: map[string]map[string]*api.Task{},
		dirty: map[string]bool{}, all: true, waiting: map[string]string{}, occupying: map[string]*api.Task{},
		volumes: scheduler.Volumes{}}
	for _, vol := range v.Volumes() {
		mr.volumes[vol.Spec.Name] = vol.NodeID
	}
	for _, s := range v.Services() {
		mr.services[s.ID] = s
	}
	for _, n := range v.Nodes() {
		mr.nodes[n.ID] = n
	}
	for _, t := range v.Tasks(store.TaskFilter{}) {
		mr.putTask(t)
	}
}

func (mr *mirror) putTask(t *api.Task) {
	mr.tasks[t.ID] = t
	if t.DesiredState == api.TaskRunning && (t.Status.State == api.TaskPending || t.Status.State == api.TaskNew) {
		mr.waiting[t.ID] = t.ServiceID
	} else {
		delete(mr.waiting, t.ID)
	}
	if t.NodeID != "" && !t.Status.State.Terminal() && t.Status.State != api.TaskNew && t.Status.State != api.TaskPending {
		mr.occupying[t.ID] = t
	} else {
		delete(mr.occupying, t.ID)
	}
	m := mr.byService[t.ServiceID]
	if m == nil {
		m = map[string]*api.Task{}
		mr.byService[t.ServiceID] = m
	}
	m[t.ID] = t
}

func (mr *mirror) dropTask(id string) {
	delete(mr.waiting, id)
	delete(mr.occupying, id)
	if t := mr.tasks[id]; t != nil {
		delete(mr.byService[t.ServiceID], id)
		if len(mr.byService[t.ServiceID]) == 0 {
			delete(mr.byService, t.ServiceID)
		}
		delete(mr.tasks, id)
	}
}

// apply folds one change into the mirror and marks what it affects.
func (mr *mirror) apply(c *store.Change) {
	switch c.Kind {
	case api.KindService:
		mr.dirty[c.ID] = true
		if c.Op == api.OpDelete {
			delete(mr.services, c.ID)
			return
		}
		var s api.Service
		mustDecode(c.Object, &s)
		mr.services[s.ID] = &s
	case api.KindTask:
		mr.dirty[c.ServiceID] = true
		if c.Op == api.OpDelete {
			mr.dropTask(c.ID)
			mr.capacityMayHaveFreed()
			return
		}
		var t api.Task
		mustDecode(c.Object, &t)
		if t.Status.State.Terminal() {
			mr.capacityMayHaveFreed()
		}
		mr.putTask(&t)
	case api.KindNode:
		mr.all = true // availability, state or labels change placement everywhere
		if c.Op == api.OpDelete {
			delete(mr.nodes, c.ID)
			return
		}
		var n api.Node
		mustDecode(c.Object, &n)
		mr.nodes[n.ID] = &n
	case api.KindVolume:
		// A volume made, bound or removed may let waiting tasks go.
		if c.Op == api.OpDelete {
			delete(mr.volumes, c.ID)
		} else {
			var v api.Volume
			mustDecode(c.Object, &v)
			mr.volumes[v.Spec.Name] = v.NodeID
		}
		mr.capacityMayHaveFreed()
	}
}

func (mr *mirror) capacityMayHaveFreed() {
	for _, svc := range mr.waiting {
		mr.dirty[svc] = true
	}
}

func mustDecode(b []byte, v any) {
	if err := json.Unmarshal(b, v); err != nil {
		panic("manager: the hub sent an object that does not decode: " + err.Error())
	}
}

// hasWork says whether a pass is needed.
func (mr *mirror) hasWork() bool { return mr.all || len(mr.dirty) > 0 }

// take returns the input of a pass over the dirty services (all of them if
// needed) and clears the marks.
func (mr *mirror) take(now time.Time) orchestrator.Input {
	in := orchestrator.Input{Now: now, Volumes: maps.Clone(mr.volumes)}
	for _, n := range mr.nodes {
		in.Nodes = append(in.Nodes, n)
	}
	chosen := mr.dirty
	if mr.all {
		chosen = map[string]bool{}
		for id := range mr.byService {
			chosen[id] = true
		}
		for id := range mr.services {
			chosen[id] = true
		}
	}
	for id := range chosen {
		if s := mr.services[id]; s != nil {
			in.Services = append(in.Services, s)
		}
	}
	for sid := range chosen {
		for _, t := range mr.byService[sid] {
			in.Tasks = append(in.Tasks, t)
		}
	}
	// The other services' tasks only matter to the scheduler (those that
	// hold a place on a node), and only when something waits for a node.
	in.OthersFunc = func() []*api.Task {
		var others []*api.Task
		for _, t := range mr.occupying {
			if !chosen[t.ServiceID] {
				others = append(others, t)
			}
		}
		return others
	}
	mr.dirty, mr.all = map[string]bool{}, false
	return in
}
