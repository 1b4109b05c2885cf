package controlapi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
)

// deploymentBody is api.DeploymentRequest with each service's JSON kept
// raw, so that each gets decodeSpec's default of replicas.
type deploymentBody struct {
	Name     string            `json:"name,omitempty"`
	Services []json.RawMessage `json:"services"`
	Prune    bool              `json:"prune,omitempty"`
}

// deployRetries bounds how often a deployment is planned again when a
// service changed between the plan and the commit (the leader's own
// status writes do that during a rolling update).
const deployRetries = 5

// deploy creates, updates and (with prune) removes services as one
// deployment: one Raft entry (store.Deploy), all or nothing. Each spec goes
// through checkService, as a create or an update of it would; every
// problem of every spec is answered at once, and then nothing changes.
// With ?dry-run it answers what it would do.
func (s *Server) deploy(w http.ResponseWriter, r *http.Request) {
	var body deploymentBody
	if err := httpx.Decode(w, r, &body); err != nil {
		httpx.Error(w, err)
		return
	}
	specs, err := s.deploymentSpecs(&body)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	dryRun := httpx.Bool(r, "dry-run")
	for attempt := 1; ; attempt++ {
		out, raced, err := s.deployOnce(r.Context(), &body, slices.Clone(specs), dryRun)
		if raced && attempt < deployRetries {
			continue
		}
		if err != nil {
			httpx.Error(w, err)
			return
		}
		httpx.JSON(w, http.StatusOK, out)
		return
	}
}

// deploymentSpecs decodes and checks what needs no state: the stack's
// name, each spec on its own, names given twice.
func (s *Server) deploymentSpecs(body *deploymentBody) ([]api.ServiceSpec, error) {
	if body.Name != "" {
		if err := api.ValidateStackName(body.Name); err != nil {
			return nil, api.Errorf(api.CodeInvalid, "%v", err)
		}
	}
	if body.Prune && body.Name == "" {
		return nil, api.Errorf(api.CodeInvalid, `prune needs the stack's "name": it removes the services labelled %s=NAME that are not in the deployment`, api.LabelStack)
	}
	if len(body.Services) == 0 && !body.Prune {
		return nil, api.Errorf(api.CodeInvalid, `a deployment needs a list of services: {"services": [spec, ...]}`)
	}
	if len(body.Services) > api.MaxDeploymentServices {
		return nil, api.Errorf(api.CodeInvalid, "%d services in one deployment; the limit is %d", len(body.Services), api.MaxDeploymentServices)
	}
	specs := make([]api.ServiceSpec, len(body.Services))
	var fields []api.FieldError
	seen := map[string]int{}
	routes := map[api.IngressKey]int{}
	for i, raw := range body.Services {
		spec := &specs[i]
		if err := unmarshalSpec(raw, spec); err != nil {
			fields = append(fields, api.FieldError{Field: fmt.Sprintf("services[%d]", i), Message: err.Error()})
			continue
		}
		if body.Name != "" {
			if v, ok := spec.Labels[api.LabelStack]; ok && v != body.Name {
				fields = append(fields, api.FieldError{Field: fmt.Sprintf("services[%d] (%s)", i, spec.Name),
					Message: fmt.Sprintf("label %s=%s: the service belongs to stack %s, not %s", api.LabelStack, v, v, body.Name)})
				continue
			}
			spec.Labels = maps.Clone(spec.Labels)
			if spec.Labels == nil {
				spec.Labels = map[string]string{}
			}
			spec.Labels[api.LabelStack] = body.Name
		}
		if j, ok := seen[spec.Name]; ok && spec.Name != "" {
			fields = append(fields, api.FieldError{Field: fmt.Sprintf("services[%d] (%s)", i, spec.Name),
				Message: fmt.Sprintf("services[%d] has the same name: a deployment names each service once", j)})
			continue
		}
		seen[spec.Name] = i
		// A route claimed twice in one spec is the validator's to name.
		for _, r := range spec.Ingress {
			k := r.Key()
			j, ok := routes[k]
			if !ok {
				routes[k] = i
				continue
			}
			if j != i {
				fields = append(fields, api.FieldError{Field: fmt.Sprintf("services[%d] (%s)", i, spec.Name),
					Message: fmt.Sprintf("ingress route %s is claimed by services[%d] (%s) too: a route goes to one service; keep it in one", k, j, specs[j].Name)})
				break
			}
		}
	}
	if len(fields) > 0 {
		return nil, refused(body.Name, fields, api.CodeInvalid)
	}
	return specs, nil
}

// refused is the error of a deployment with bad services; its code is
// that of the first problem (invalid, or a conflict or a missing secret
// found against the state).
func refused(name string, fields []api.FieldError, code string) error {
	msg := "the deployment was refused, nothing was changed:"
	if name != "" {
		msg = "stack " + name + " was not deployed, nothing was changed:"
	}
	// The fields follow the message, one a line (api.Error.Error).
	return &api.Error{Code: code, Message: msg, Fields: fields}
}

// deployOnce plans the deployment against the local state and commits it.
// raced says the FSM refused it with a conflict the plan did not see (a
// service changed, or a name or port was taken, since): planning again
// either succeeds or names the problem.
func (s *Server) deployOnce(ctx context.Context, body *deploymentBody, specs []api.ServiceSpec, dryRun bool) (_ *api.Deployment, raced bool, _ error) {
	var existing []*api.Service
	s.store.View(func(v *store.View) error { existing = v.Services(); return nil })
	byName := map[string]*api.Service{}
	for _, svc := range existing {
		byName[svc.Spec.Name] = svc
	}
	now := time.Now().UTC()
	cmd := store.Deploy{ID: api.NewID(), Name: body.Name, At: now}
	out := &api.Deployment{Name: body.Name}
	var fields []api.FieldError
	code := api.CodeInvalid
	wanted := map[string]bool{}
	// The deployment's services that exist get these specs: a route one
	// of them gives up is free for the others (store.InDeployment).
	next := map[string]*api.ServiceSpec{}
	for i := range specs {
		if cur := byName[specs[i].Name]; cur != nil {
			next[cur.ID] = &specs[i]
		}
	}
	for i := range specs {
		spec := &specs[i]
		wanted[spec.Name] = true
		cur := byName[spec.Name]
		self := ""
		if cur != nil {
			self = cur.ID
			api.CarryPins(spec, &cur.Spec) // a pinned version stays, as with apply
		}
		err := s.checkService(ctx, spec, self, store.InDeployment(next))
		if err == nil && cur != nil && body.Name != "" && cur.Spec.Labels[api.LabelStack] != body.Name {
			err = api.Errorf(api.CodeConflict, "a service named %q exists and is not part of stack %s: remove it, or rename the stack's service", spec.Name, body.Name)
		}
		if err == nil && cur != nil && spec.Mode != cur.Spec.Mode {
			err = api.Errorf(api.CodeInvalid, "service %q is %s: a service's mode cannot change; remove it and deploy again", cur.Spec.Name, cur.Spec.Mode)
		}
		if err != nil {
			if len(fields) == 0 {
				code = errCode(err)
			}
			field := "services." + spec.Name
			if spec.Name == "" {
				field = fmt.Sprintf("services[%d]", i)
			}
			fields = append(fields, api.FieldError{Field: field, Message: err.Error()})
			continue
		}
		item := api.DeploymentService{Name: spec.Name}
		switch {
		case cur == nil:
			svc := api.Service{Meta: api.Meta{ID: api.NewID(), CreatedAt: now, UpdatedAt: now}, Spec: *spec}
			cmd.Creates = append(cmd.Creates, svc)
			item.Action, item.Service = api.DeployCreated, &svc
		case api.SpecEqual(&cur.Spec, spec):
			item.Action, item.Service = api.DeployUnchanged, cur
			if store.CanResume(cur) {
				// Its deployment failed: deploying it again starts
				// its update again (the FSM says whether it did).
				cmd.Resumes = append(cmd.Resumes, cur.ID)
				item.Action = api.DeployResumed
			}
		default:
			cmd.Updates = append(cmd.Updates, store.ServiceUpdate{ID: cur.ID, Spec: *spec, ExpectVersion: cur.Version, At: now})
			next := *cur
			next.Spec = *spec
			item.Action, item.Service = api.DeployUpdated, &next
		}
		out.Services = append(out.Services, item)
	}
	if len(fields) > 0 {
		return nil, false, refused(body.Name, fields, code)
	}
	if body.Prune {
		for _, svc := range existing {
			if svc.Spec.Labels[api.LabelStack] == body.Name && !wanted[svc.Spec.Name] {
				cmd.Removes = append(cmd.Removes, svc.ID)
				out.Services = append(out.Services, api.DeploymentService{Name: svc.Spec.Name, Action: api.DeployRemoved, Service: svc})
			}
		}
	}
	replaying := s.raft != nil && s.raft.Replaying(ctx)
	if dryRun || (len(cmd.Creates)+len(cmd.Updates)+len(cmd.Resumes)+len(cmd.Removes) == 0 && !replaying) {
		return out, false, nil
	}
	res, err := s.raft.Propose(ctx, store.CmdDeploy, cmd)
	if err != nil {
		return nil, api.IsCode(err, api.CodeConflict), err
	}
	var done store.DeployResult
	switch r := res.(type) {
	case *store.DeployResult:
		done = *r
	case store.Replayed: // a request sent again: the first run's result
		if err := json.Unmarshal(r, &done); err != nil {
			return nil, false, api.Errorf(api.CodeInternal, "deployment: the result of the first request: %v", err)
		}
	default:
		return nil, false, api.Errorf(api.CodeInternal, "deployment: unexpected result %T", res)
	}
	return s.deployed(out, &done), false, nil
}

func errCode(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return api.CodeInternal
}

// deployed is the answer after the commit: what the FSM did to each
// service, each service as it is now (a removed one as it was).
func (s *Server) deployed(planned *api.Deployment, done *store.DeployResult) *api.Deployment {
	out := &api.Deployment{ID: done.ID, Name: planned.Name}
	byName := map[string]api.DeploymentService{}
	for _, it := range planned.Services {
		byName[it.Name] = it
	}
	did := map[string]bool{}
	s.store.View(func(v *store.View) error {
		for _, d := range done.Services {
			did[d.Name] = true
			it := api.DeploymentService{Name: d.Name, Action: d.Action, Service: byName[d.Name].Service}
			if d.Action != api.DeployRemoved {
				if svc, err := v.Service(d.ID); err == nil {
					it.Service = svc
				}
			}
			out.Services = append(out.Services, it)
		}
		return nil
	})
	for _, it := range planned.Services { // left out of the command: unchanged
		if !did[it.Name] {
			if it.Action == api.DeployResumed { // gone since the plan
				it.Action = api.DeployUnchanged
			}
			out.Services = append(out.Services, it)
		}
	}
	slices.SortStableFunc(out.Services, func(a, b api.DeploymentService) int { return strings.Compare(a.Name, b.Name) })
	return out
}
