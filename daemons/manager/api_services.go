package manager

import (
	"net/http"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/orchestrator"
	"github.com/warren-edge/warren/daemons/store"
)

// decodeSpec reads a service spec body. A spec that leaves replicas out
// gets 1 replica, as docker service create does; an explicit 0 stays 0.
func decodeSpec(w http.ResponseWriter, r *http.Request, spec *api.ServiceSpec) error {
	var raw json.RawMessage
	if err := decodeBody(w, r, &raw); err != nil {
		return err
	}
	if err := unmarshalStrict(raw, spec); err != nil {
		return err
	}
	var has struct {
		Replicas *uint64 `json:"replicas"`
	}
	json.Unmarshal(raw, &has)
	api.DefaultReplicas(spec, has.Replicas != nil)
	return nil
}

// checkService normalises and validates a spec and checks it against the
// local state (store.View.CheckServiceConflicts), so most bad writes never
// reach Raft; the FSM checks the conflicts again when it applies the write.
func (m *Manager) checkService(spec *api.ServiceSpec, self string) error {
	api.NormalizeSpec(spec)
	if err := api.ValidateServiceSpec(spec); err != nil {
		return err
	}
	return m.state.View(func(v *store.View) error { return v.CheckServiceConflicts(self, spec) })
}

// dryRun plans as if svc were stored, changing nothing: the tasks it
// would make and place, and those it would stop.
func (m *Manager) dryRun(svc *api.Service) api.DryRun {
	in := m.readInput(time.Now().UTC())
	replaced := false
	for i, s := range in.Services {
		if s.ID == svc.ID {
			in.Services[i], replaced = svc, true
		}
	}
	if !replaced {
		in.Services = append(in.Services, svc)
	}
	plan, _ := orchestrator.Plan(in, m.orchestratorOptions())
	out := api.DryRun{Service: svc}
	for _, t := range plan.Creates {
		if t.ServiceID == svc.ID {
			out.Tasks = append(out.Tasks, t)
		}
	}
	mine := map[string]bool{}
	for _, t := range in.Tasks {
		if t.ServiceID == svc.ID {
			mine[t.ID] = true
		}
	}
	for _, c := range plan.Updates {
		if mine[c.ID] && (c.DesiredState == api.TaskShutdown || c.DesiredState == api.TaskRemove) {
			out.Stops = append(out.Stops, c.ID)
		}
	}
	return out
}

func (m *Manager) createService(w http.ResponseWriter, r *http.Request) {
	var spec api.ServiceSpec
	if err := decodeSpec(w, r, &spec); err != nil {
		writeError(w, err)
		return
	}
	if err := m.checkService(&spec, ""); err != nil {
		writeError(w, err)
		return
	}
	now := time.Now().UTC()
	svc := api.Service{Meta: api.Meta{ID: api.NewID(), CreatedAt: now, UpdatedAt: now}, Spec: spec}
	if queryBool(r, "dry-run") {
		svc.SpecVersion = m.state.AppliedIndex() + 1
		writeJSON(w, http.StatusOK, m.dryRun(&svc))
		return
	}
	res, err := m.propose(store.CmdServiceCreate, store.ServiceCreate{Service: svc})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

// withStatus fills in each service's task counts.
func (m *Manager) withStatus(v *store.View, svcs []*api.Service) {
	var nodes []*api.Node
	for _, s := range svcs {
		st := &api.ServiceStatus{DesiredTasks: s.Spec.Replicas}
		if s.Spec.IsGlobal() {
			if nodes == nil {
				nodes = v.Nodes()
			}
			st.DesiredTasks = orchestrator.GlobalNodes(&s.Spec, nodes)
		}
		for _, t := range v.Tasks(store.TaskFilter{ServiceID: s.ID}) {
			if t.DesiredState == api.TaskRunning && t.Status.State == api.TaskRunning {
				st.RunningTasks++
			}
		}
		s.Status = st
	}
}

func (m *Manager) listServices(w http.ResponseWriter, r *http.Request) {
	if err := m.consistent(r); err != nil {
		writeError(w, err)
		return
	}
	if queryBool(r, "status") {
		var svcs []*api.Service
		m.state.View(func(v *store.View) error {
			svcs = v.Services()
			m.withStatus(v, svcs)
			return nil
		})
		if svcs == nil {
			svcs = []*api.Service{}
		}
		writeJSON(w, http.StatusOK, svcs)
		return
	}
	var items [][]byte
	m.state.View(func(v *store.View) error {
		return v.ServicesRaw(func(raw []byte) error {
			items = append(items, append([]byte(nil), raw...))
			return nil
		})
	})
	writeRawList(w, items)
}

func (m *Manager) getService(w http.ResponseWriter, r *http.Request) {
	if err := m.consistent(r); err != nil {
		writeError(w, err)
		return
	}
	if queryBool(r, "status") {
		var s *api.Service
		var err error
		m.state.View(func(v *store.View) error {
			if s, err = v.Service(r.PathValue("ref")); err == nil {
				m.withStatus(v, []*api.Service{s})
			}
			return nil
		})
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, s)
		return
	}
	var raw []byte
	var err error
	m.state.View(func(v *store.View) error {
		raw, err = v.ServiceRaw(r.PathValue("ref"))
		return nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	writeRaw(w, http.StatusOK, raw)
}

func (m *Manager) lookupService(ref string) (*api.Service, error) {
	var s *api.Service
	var err error
	m.state.View(func(v *store.View) error { s, err = v.Service(ref); return nil })
	return s, err
}

func (m *Manager) updateService(w http.ResponseWriter, r *http.Request) {
	version, err := queryVersion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	var spec api.ServiceSpec
	if err := decodeSpec(w, r, &spec); err != nil {
		writeError(w, err)
		return
	}
	cur, err := m.lookupService(r.PathValue("ref"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := m.checkService(&spec, cur.ID); err != nil {
		writeError(w, err)
		return
	}
	if version != 0 && version != cur.Version {
		writeError(w, api.Errorf(api.CodeConflict, "service %q has changed since version %d (now %d): read it again and retry", cur.Spec.Name, version, cur.Version))
		return
	}
	if queryBool(r, "dry-run") {
		next := *cur
		if !api.SpecEqual(&cur.Spec, &spec) {
			next.Spec, next.SpecVersion = spec, m.state.AppliedIndex()+1
			next.UpdateStatus = &api.UpdateStatus{State: orchestrator.UpdateUpdating, StartedAt: time.Now().UTC().Format(time.RFC3339)}
		}
		writeJSON(w, http.StatusOK, m.dryRun(&next))
		return
	}
	res, err := m.propose(store.CmdServiceUpdate, store.ServiceUpdate{ID: cur.ID, Spec: spec, ExpectVersion: version, At: time.Now().UTC()})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (m *Manager) scaleService(w http.ResponseWriter, r *http.Request) {
	var req api.ScaleRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Replicas == nil {
		writeError(w, api.Errorf(api.CodeInvalid, `the body needs "replicas": N`))
		return
	}
	if *req.Replicas > api.MaxReplicas {
		writeError(w, api.Errorf(api.CodeInvalid, "%d replicas is more than the limit of %d", *req.Replicas, api.MaxReplicas))
		return
	}
	cur, err := m.lookupService(r.PathValue("ref"))
	if err != nil {
		writeError(w, err)
		return
	}
	res, err := m.propose(store.CmdServiceScale, store.ServiceScale{ID: cur.ID, Replicas: *req.Replicas, At: time.Now().UTC()})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (m *Manager) rollbackService(w http.ResponseWriter, r *http.Request) {
	// The leader's own status writes move the version on; retry a few
	// times rather than hand the caller a conflict it did not cause.
	var res any
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var cur *api.Service
		if cur, err = m.lookupService(r.PathValue("ref")); err != nil {
			break
		}
		if cur.PreviousSpec == nil {
			err = api.Errorf(api.CodeConflict, "service %q has no previous spec to roll back to", cur.Spec.Name)
			break
		}
		res, err = m.propose(store.CmdServiceUpdate, store.ServiceUpdate{ID: cur.ID, Spec: *cur.PreviousSpec,
			ExpectVersion: cur.Version, At: time.Now().UTC(), Rollback: true})
		if !api.IsCode(err, api.CodeConflict) {
			break
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (m *Manager) deleteService(w http.ResponseWriter, r *http.Request) {
	version, err := queryVersion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	cur, err := m.lookupService(r.PathValue("ref"))
	if err != nil {
		writeError(w, err)
		return
	}
	if _, err := m.propose(store.CmdServiceDelete, store.ServiceDelete{ID: cur.ID, ExpectVersion: version, At: time.Now().UTC()}); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, cur)
}
