package controlapi

import (
	"context"
	"net/http"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/orchestrator"
	"github.com/warren-edge/warren/daemons/scheduler"
	"github.com/warren-edge/warren/daemons/store"
)

// decodeSpec reads a service spec body. A spec that leaves replicas out
// gets 1 replica, as docker service create does; an explicit 0 stays 0.
func decodeSpec(w http.ResponseWriter, r *http.Request, spec *api.ServiceSpec) error {
	var raw json.RawMessage
	if err := httpx.Decode(w, r, &raw); err != nil {
		return err
	}
	return unmarshalSpec(raw, spec)
}

// unmarshalSpec reads one spec's JSON (a body, or one service of a
// deployment), strictly, with decodeSpec's default of replicas.
func unmarshalSpec(raw json.RawMessage, spec *api.ServiceSpec) error {
	if err := httpx.Unmarshal(raw, spec); err != nil {
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
// A request sent again (it was applied before) skips the state check: the
// state has its own write in it, and Propose answers the first result.
func (s *Server) checkService(ctx context.Context, spec *api.ServiceSpec, self string, opts ...store.ConflictOption) error {
	api.NormalizeSpec(spec)
	if err := api.ValidateServiceSpec(spec); err != nil {
		return err
	}
	if s.raft != nil && s.raft.Replaying(ctx) {
		return nil
	}
	return s.store.View(func(v *store.View) error {
		if err := v.ResolveFileRefs(spec); err != nil {
			return err
		}
		if err := v.CheckRouteSecrets(spec); err != nil {
			return err
		}
		return v.CheckServiceConflicts(self, spec, opts...)
	})
}

// dryRun plans as if svc were stored, changing nothing: the tasks it
// would make and place, and those it would stop.
func (s *Server) dryRun(svc *api.Service) api.DryRun {
	in := s.readInput(time.Now().UTC())
	replaced := false
	for i, s := range in.Services {
		if s.ID == svc.ID {
			in.Services[i], replaced = svc, true
		}
	}
	if !replaced {
		in.Services = append(in.Services, svc)
	}
	plan, _ := orchestrator.Plan(in, s.cfg.Orchestrator)
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

func (s *Server) createService(w http.ResponseWriter, r *http.Request) {
	var spec api.ServiceSpec
	if err := decodeSpec(w, r, &spec); err != nil {
		httpx.Error(w, err)
		return
	}
	if err := s.checkService(r.Context(), &spec, ""); err != nil {
		httpx.Error(w, err)
		return
	}
	now := time.Now().UTC()
	svc := api.Service{Meta: api.Meta{ID: api.NewID(), CreatedAt: now, UpdatedAt: now}, Spec: spec}
	if httpx.Bool(r, "dry-run") {
		svc.SpecVersion = s.store.AppliedIndex() + 1
		httpx.JSON(w, http.StatusOK, s.dryRun(&svc))
		return
	}
	res, err := s.raft.Propose(r.Context(), store.CmdServiceCreate, store.ServiceCreate{Service: svc})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusCreated, res)
}

// withStatus fills in each service's task counts.
func withStatus(v *store.View, svcs []*api.Service) {
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

func (s *Server) listServices(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r); err != nil {
		httpx.Error(w, err)
		return
	}
	if httpx.Bool(r, "status") {
		var svcs []*api.Service
		s.store.View(func(v *store.View) error {
			svcs = v.Services()
			withStatus(v, svcs)
			return nil
		})
		if svcs == nil {
			svcs = []*api.Service{}
		}
		httpx.JSON(w, http.StatusOK, svcs)
		return
	}
	var items [][]byte
	s.store.View(func(v *store.View) error {
		return v.ServicesRaw(func(raw []byte) error {
			items = append(items, append([]byte(nil), raw...))
			return nil
		})
	})
	httpx.RawList(w, items)
}

func (s *Server) getService(w http.ResponseWriter, r *http.Request) {
	if err := s.consistent(r); err != nil {
		httpx.Error(w, err)
		return
	}
	if httpx.Bool(r, "status") {
		var svc *api.Service
		var err error
		s.store.View(func(v *store.View) error {
			if svc, err = v.Service(r.PathValue("ref")); err == nil {
				withStatus(v, []*api.Service{svc})
			}
			return nil
		})
		if err != nil {
			httpx.Error(w, err)
			return
		}
		httpx.JSON(w, http.StatusOK, svc)
		return
	}
	var raw []byte
	var err error
	s.store.View(func(v *store.View) error {
		raw, err = v.ServiceRaw(r.PathValue("ref"))
		return nil
	})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.Raw(w, http.StatusOK, raw)
}

func (s *Server) lookupService(ref string) (*api.Service, error) {
	var svc *api.Service
	var err error
	s.store.View(func(v *store.View) error { svc, err = v.Service(ref); return nil })
	return svc, err
}

func (s *Server) updateService(w http.ResponseWriter, r *http.Request) {
	version, err := httpx.Version(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	var spec api.ServiceSpec
	if err := decodeSpec(w, r, &spec); err != nil {
		httpx.Error(w, err)
		return
	}
	cur, err := s.lookupService(r.PathValue("ref"))
	if err != nil {
		httpx.Error(w, err)
		return
	}
	if err := s.checkService(r.Context(), &spec, cur.ID); err != nil {
		httpx.Error(w, err)
		return
	}
	if version != 0 && version != cur.Version {
		httpx.Error(w, api.Errorf(api.CodeConflict, "service %q has changed since version %d (now %d): read it again and retry", cur.Spec.Name, version, cur.Version))
		return
	}
	if httpx.Bool(r, "dry-run") {
		next := *cur
		next.Spec = spec
		if store.TaskSpecChanged(&cur.Spec, &spec) { // as the FSM decides it
			next.SpecVersion = s.store.AppliedIndex() + 1
			next.UpdateStatus = &api.UpdateStatus{State: orchestrator.UpdateUpdating, StartedAt: time.Now().UTC().Format(time.RFC3339)}
		}
		httpx.JSON(w, http.StatusOK, s.dryRun(&next))
		return
	}
	res, err := s.raft.Propose(r.Context(), store.CmdServiceUpdate, store.ServiceUpdate{ID: cur.ID, Spec: spec, ExpectVersion: version, At: time.Now().UTC()})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, res)
}

func (s *Server) scaleService(w http.ResponseWriter, r *http.Request) {
	var req api.ScaleRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.Error(w, err)
		return
	}
	if req.Replicas == nil {
		httpx.Error(w, api.Errorf(api.CodeInvalid, `the body needs "replicas": N`))
		return
	}
	if *req.Replicas > api.MaxReplicas {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "%d replicas is more than the limit of %d", *req.Replicas, api.MaxReplicas))
		return
	}
	cur, err := s.lookupService(r.PathValue("ref"))
	if err != nil {
		httpx.Error(w, err)
		return
	}
	res, err := s.raft.Propose(r.Context(), store.CmdServiceScale, store.ServiceScale{ID: cur.ID, Replicas: *req.Replicas, At: time.Now().UTC()})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, res)
}

func (s *Server) rollbackService(w http.ResponseWriter, r *http.Request) {
	// The leader's own status writes move the version on; retry a few
	// times rather than hand the caller a conflict it did not cause.
	var res any
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var cur *api.Service
		if cur, err = s.lookupService(r.PathValue("ref")); err != nil {
			break
		}
		if cur.PreviousSpec == nil {
			err = api.Errorf(api.CodeConflict, "service %q has no previous spec to roll back to", cur.Spec.Name)
			break
		}
		res, err = s.raft.Propose(r.Context(), store.CmdServiceUpdate, store.ServiceUpdate{ID: cur.ID, Spec: *cur.PreviousSpec,
			ExpectVersion: cur.Version, At: time.Now().UTC(), Rollback: true})
		if !api.IsCode(err, api.CodeConflict) {
			break
		}
	}
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, res)
}

// promoteService promotes the canaries of a service's update.
func (s *Server) promoteService(w http.ResponseWriter, r *http.Request) {
	cur, err := s.lookupService(r.PathValue("ref"))
	if err != nil {
		httpx.Error(w, err)
		return
	}
	res, err := s.raft.Propose(r.Context(), store.CmdServicePromote, store.ServicePromote{ID: cur.ID, SpecVersion: cur.SpecVersion, At: time.Now().UTC()})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, res)
}

func (s *Server) deleteService(w http.ResponseWriter, r *http.Request) {
	version, err := httpx.Version(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	cur, err := s.lookupService(r.PathValue("ref"))
	if err != nil {
		httpx.Error(w, err)
		return
	}
	if _, err := s.raft.Propose(r.Context(), store.CmdServiceDelete, store.ServiceDelete{ID: cur.ID, ExpectVersion: version, At: time.Now().UTC()}); err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, cur)
}

// readInput reads what the orchestrator needs from one consistent view.
func (s *Server) readInput(now time.Time) orchestrator.Input {
	in := orchestrator.Input{Now: now}
	s.store.View(func(v *store.View) error {
		in.Services = v.Services()
		in.Tasks = v.Tasks(store.TaskFilter{})
		in.Nodes = v.Nodes()
		in.Volumes = scheduler.Volumes{}
		for _, vol := range v.Volumes() {
			in.Volumes[vol.Spec.Name] = vol.NodeID
		}
		return nil
	})
	return in
}
