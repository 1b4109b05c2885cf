package manager

import (
	"encoding/json"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/orchestrator"
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
	// waiting are services with tasks waiting for a node: they are
	// reconciled again whenever capacity may have freed up.
	waiting map[string]bool
}

func newMirror() *mirror { return &mirror{} }

// load replaces the mirror's content with the state in v.
func (mr *mirror) load(v *store.View) {
	*mr = mirror{index: v.Index(), services: map[string]*api.Service{}, tasks: map[string]*api.Task{},
		nodes: map[string]*api.Node{}, byService: map[string]map[string]*api.Task{},
		dirty: map[string]bool{}, all: true, waiting: map[string]bool{}}
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
	m := mr.byService[t.ServiceID]
	if m == nil {
		m = map[string]*api.Task{}
		mr.byService[t.ServiceID] = m
	}
	m[t.ID] = t
}

func (mr *mirror) dropTask(id string) {
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
	}
}

func (mr *mirror) capacityMayHaveFreed() {
	for id := range mr.waiting {
		mr.dirty[id] = true
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
	in := orchestrator.Input{Now: now}
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
	for sid, ts := range mr.byService {
		for _, t := range ts {
			if chosen[sid] {
				in.Tasks = append(in.Tasks, t)
			} else {
				in.Others = append(in.Others, t)
			}
		}
	}
	mr.dirty, mr.all = map[string]bool{}, false
	return in
}

// noteWaiting records which services have tasks waiting for a node.
func (mr *mirror) noteWaiting() {
	mr.waiting = map[string]bool{}
	for _, t := range mr.tasks {
		if t.DesiredState == api.TaskRunning && (t.Status.State == api.TaskPending || t.Status.State == api.TaskNew) {
			mr.waiting[t.ServiceID] = true
		}
	}
}
