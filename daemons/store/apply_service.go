package store

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

func applyJoinTokens(w *wtx, c *JoinTokens) any {
	b, _ := json.Marshal(c.Tokens)
	w.must(w.tx.Bucket(bMeta).Put(kTokens, b))
	return nil
}

func applyCA(w *wtx, c *CA) any {
	if w.view().Cluster() == nil {
		return api.Errorf(api.CodeConflict, "the cluster is not initialised")
	}
	b, _ := json.Marshal(c)
	w.must(w.tx.Bucket(bMeta).Put(kCA, b))
	return nil
}

func applyClusterInit(w *wtx, c *ClusterInit) any {
	if w.view().Cluster() != nil {
		return api.Errorf(api.CodeConflict, "the cluster is already initialised")
	}
	if c.Keyring != nil {
		c.Keyring.Index = w.index
		b, _ := json.Marshal(c.Keyring)
		w.must(w.tx.Bucket(bMeta).Put(kKeyring, b))
		c.Keyring = nil // kept once, at kKeyring
	}
	b, _ := json.Marshal(c)
	w.must(w.tx.Bucket(bMeta).Put(kCluster, b))
	return nil
}

// CheckServiceConflicts says whether spec, stored as the service with ID
// self ("" for a new one), would clash with another service: the same
// name, or a published port that conflicts with one another service
// publishes (api.PortConfig.ConflictsWith: an ingress port is taken on
// every node; two host-mode ports are kept apart by the scheduler). The
// manager's handlers call it to refuse a bad write before it reaches Raft,
// and the FSM again when it applies the write, against the state of that
// moment.
//
// It refuses an ingress route (host and path) another service claims,
// looked up in the route index: the cost is that of the spec's routes, not
// of the number of services. InDeployment says which routes the same
// write frees.
//
// It also refuses a spec that mounts a volume that does not exist.
func (v *View) CheckServiceConflicts(self string, spec *api.ServiceSpec, opts ...ConflictOption) error {
	var o conflictOpts
	for _, opt := range opts {
		opt(&o)
	}
	if err := v.checkVolumesExist(spec); err != nil {
		return err
	}
	if id := v.tx.Bucket(bServiceNames).Get([]byte(spec.Name)); id != nil && string(id) != self {
		return api.Errorf(api.CodeConflict, "a service named %q exists: choose another name, or change it with warrenctl service update", spec.Name)
	}
	for _, p := range spec.Ports {
		owner, theirs := v.portOwner(p, self)
		if owner == "" {
			continue
		}
		name := owner
		if s, err := v.Service(owner); err == nil {
			name = s.Spec.Name
		}
		mine, their := p.Normalized().Mode, theirs.Normalized().Mode
		if mine == api.PortModeIngress && their == api.PortModeIngress {
			return api.Errorf(api.CodeConflict, "port %s is already published by service %q (mode ingress, on every node): choose another published port", p.Key(), name)
		}
		return api.Errorf(api.CodeConflict, "port %s (mode %s) conflicts with port %s of service %q (mode %s): an ingress port is taken on every node; choose another published port, or publish both in mode host",
			p.Key(), mine, theirs.Key(), name, their)
	}
	return v.checkRoutes(self, spec, o)
}

// claim moves what service serviceID holds in the indexes (published
// ports, ingress routes) from spec old to spec next; nil is no spec.
func (w *wtx) claim(serviceID string, old, next *api.ServiceSpec) {
	var none api.ServiceSpec
	if old == nil {
		old = &none
	}
	if next == nil {
		next = &none
	}
	w.setPorts(serviceID, old.Ports, next.Ports)
	w.setRoutes(serviceID, old.Ingress, next.Ingress)
}

func (w *wtx) setPorts(serviceID string, old, ports []api.PortConfig) {
	b := w.tx.Bucket(bPorts)
	for _, p := range old {
		k := p.Key()
		es := slices.DeleteFunc(portEntries(b, k), func(e portEntry) bool { return e.ServiceID == serviceID })
		if len(es) == 0 {
			w.must(b.Delete(portBucketKey(k)))
		} else {
			raw, _ := json.Marshal(es)
			w.must(b.Put(portBucketKey(k), raw))
		}
	}
	for _, p := range ports {
		k := p.Key()
		e := portEntry{ServiceID: serviceID, Proto: k.Proto, Port: k.Port, Mode: p.Normalized().Mode}
		if k.HostAddr.IsValid() {
			e.HostAddr = k.HostAddr.String()
		}
		raw, _ := json.Marshal(append(portEntries(b, k), e))
		w.must(b.Put(portBucketKey(k), raw))
	}
}

func applyServiceCreate(w *wtx, c *ServiceCreate) any {
	s := c.Service
	v := w.view()
	if w.tx.Bucket(bServices).Get([]byte(s.ID)) != nil {
		return api.Errorf(api.CodeConflict, "a service with ID %s exists", s.ID)
	}
	if err := v.CheckServiceConflicts(s.ID, &s.Spec); err != nil {
		return err
	}
	if err := v.ResolveFileRefs(&s.Spec); err != nil {
		return err
	}
	s.SpecVersion = w.index
	w.must(w.tx.Bucket(bServiceNames).Put([]byte(s.Spec.Name), []byte(s.ID)))
	w.claim(s.ID, nil, &s.Spec)
	w.putService(&s, api.OpCreate)
	return &s
}

// TaskSpecChanged says whether a spec change reaches the containers (it
// gives the service a new SpecVersion, and the tasks an update): a
// change of replicas, labels, restart or update policy, or ingress routes
// (warren-ingress follows them) does not restart tasks.
func TaskSpecChanged(a, b *api.ServiceSpec) bool {
	strip := func(s api.ServiceSpec) []byte {
		s.Replicas, s.Labels, s.Ingress = 0, nil, nil
		s.RestartPolicy, s.UpdateConfig = api.RestartPolicy{}, api.UpdateConfig{}
		raw, _ := json.Marshal(s)
		return raw
	}
	return !bytes.Equal(strip(*a), strip(*b))
}

func versionConflict(kind, name string, have, want uint64) error {
	return api.Errorf(api.CodeConflict, "%s %q has changed since version %d (now %d): read it again and retry", kind, name, want, have)
}

func applyServiceUpdate(w *wtx, c *ServiceUpdate) any {
	s := w.service(c.ID)
	if s == nil {
		return api.Errorf(api.CodeNotFound, "no service %q", c.ID)
	}
	if c.ExpectVersion != 0 && c.ExpectVersion != s.Version {
		return versionConflict("service", s.Spec.Name, s.Version, c.ExpectVersion)
	}
	if err := w.view().ResolveFileRefs(&c.Spec); err != nil {
		return err
	}
	if api.SpecEqual(&s.Spec, &c.Spec) {
		return s // nothing to do: apply is idempotent
	}
	if err := w.view().CheckServiceConflicts(s.ID, &c.Spec); err != nil {
		return err
	}
	if c.Spec.IsGlobal() != s.Spec.IsGlobal() {
		return api.Errorf(api.CodeInvalid, "service %q is %s: a service's mode cannot change; remove it and create it again", s.Spec.Name, modeOf(&s.Spec))
	}
	if c.Spec.Name != s.Spec.Name {
		w.must(w.tx.Bucket(bServiceNames).Delete([]byte(s.Spec.Name)))
		w.must(w.tx.Bucket(bServiceNames).Put([]byte(c.Spec.Name), []byte(s.ID)))
	}
	w.claim(s.ID, &s.Spec, &c.Spec)
	w.changeSpec(s, &c.Spec, c.At, c.Rollback, c.Deployment)
	w.putService(s, api.OpUpdate)
	return s
}

// changeSpec moves s to spec, as an update or a rollback: a change that
// reaches the tasks gets a new SpecVersion and starts a rolling update.
// A rollback to the previous spec keeps the tasks the update never
// reached (SameAsVersions).
func (w *wtx) changeSpec(s *api.Service, spec *api.ServiceSpec, at time.Time, rollback bool, deployment string) {
	if TaskSpecChanged(&s.Spec, spec) {
		// A rollback to the previous spec keeps the tasks made from it,
		// under any of the versions it had.
		var same []uint64
		if rollback && s.PreviousSpec != nil && !TaskSpecChanged(s.PreviousSpec, spec) {
			same = append([]uint64{s.PreviousSpecVersion}, s.PreviousSameAs...)
			same = same[:min(len(same), api.MaxSameAs)]
		}
		prevVersion, prevSame := s.SpecVersion, s.SameAsVersions
		s.SpecVersion, s.SameAsVersions = w.index, same
		state := api.UpdateUpdating
		if rollback {
			state = api.UpdateRollingBack
		}
		s.UpdateStatus = &api.UpdateStatus{State: state, SpecVersion: s.SpecVersion, StartedAt: at.UTC().Format(timeLayout),
			ProgressAt: at.UTC().Format(time.RFC3339Nano), Deployment: deployment}
		if !rollback && !spec.IsGlobal() {
			s.UpdateStatus.Canaries = spec.UpdateConfig.CanaryCount(spec.Replicas)
		}
		s.PreviousSpecVersion, s.PreviousSameAs = prevVersion, prevSame
	}
	if rollback {
		s.PreviousSpec, s.PreviousSpecVersion, s.PreviousSameAs = nil, 0, nil
	} else {
		prev := s.Spec
		s.PreviousSpec = &prev
	}
	s.Spec = *spec
	s.UpdatedAt = at
}

// autoRollback applies a plan's rollback of a failed update, and then
// takes every other service of the same deployment that is still part of
// it out of it too: a stack rolls back as one. A service the deployment
// created has nothing to roll back to: its update is paused instead,
// saying why and what the operator can do (pauseCreated). It reports why
// it skipped.
func (w *wtx) autoRollback(rb api.Rollback, at time.Time) string {
	s := w.service(rb.ServiceID)
	switch {
	case s == nil:
		return rb.ServiceID + ": service is gone"
	case s.SpecVersion != rb.SpecVersion:
		return s.Spec.Name + ": updated since the rollback was planned"
	case s.Rolling():
		return s.Spec.Name + ": already rolling back"
	case s.PreviousSpec == nil && !createdBy(s, ""):
		return s.Spec.Name + ": nothing to roll back to"
	case s.PreviousSpec == nil && s.UpdateStatus.State != api.UpdateUpdating:
		return s.Spec.Name + ": its update is " + s.UpdateStatus.State + " and it has nothing to roll back to"
	}
	dep := ""
	if s.UpdateStatus != nil {
		dep = s.UpdateStatus.Deployment
	}
	var others []*api.Service
	if dep != "" {
		others = slices.DeleteFunc(w.view().servicesOfDeployment(dep), func(o *api.Service) bool { return o.ID == s.ID || o.Rolling() })
	}
	rolls := s.PreviousSpec != nil || slices.ContainsFunc(others, func(o *api.Service) bool { return o.PreviousSpec != nil })
	all := append(others[:len(others):len(others)], s)
	if err := w.view().checkRollback(all); err != nil {
		for _, o := range all {
			if o.PreviousSpec != nil || createdBy(o, dep) {
				w.pauseRefused(o, rb.Reason, err, at)
			}
		}
		return s.Spec.Name + ": " + err.Error()
	}
	if s.PreviousSpec != nil {
		w.rollbackOne(s, rb.Reason, at)
	} else {
		w.pauseCreated(s, fmt.Sprintf("deployment %s failed because of this service: %s", dep, rb.Reason), rolls, at)
	}
	cause := fmt.Sprintf("service %s of deployment %s failed: %s", s.Spec.Name, dep, rb.Reason)
	for _, o := range others {
		switch {
		case o.PreviousSpec != nil:
			w.rollbackOne(o, cause, at)
		case createdBy(o, dep) && o.UpdateStatus.State != api.UpdatePaused:
			w.pauseCreated(o, cause, rolls, at)
		}
	}
	return ""
}

// checkRollback says whether the services that have a previous spec can
// go back to it together, as the checks of an update would have it
// (CheckServiceConflicts, the routes they swap among them free for each
// other): another service may have taken a name, a port or a route one of
// them gave up since.
func (v *View) checkRollback(svcs []*api.Service) error {
	next := map[string]*api.ServiceSpec{}
	for _, s := range svcs {
		if s.PreviousSpec != nil {
			next[s.ID] = s.PreviousSpec
		}
	}
	for _, s := range svcs {
		if s.PreviousSpec == nil {
			continue
		}
		if err := v.CheckServiceConflicts(s.ID, s.PreviousSpec, InDeployment(next)); err != nil {
			return fmt.Errorf("service %q cannot go back to its previous spec: %w", s.Spec.Name, err)
		}
	}
	return nil
}

// pauseRefused pauses the update of s, whose automatic rollback (for
// reason) err refused: it keeps the spec it has, and the message says
// why and what the operator can do.
func (w *wtx) pauseRefused(s *api.Service, reason string, err error, at time.Time) {
	st := api.UpdateStatus{SpecVersion: s.SpecVersion}
	if s.UpdateStatus != nil {
		st = *s.UpdateStatus
	}
	st.State = api.UpdatePaused
	st.Message = fmt.Sprintf("update paused: %s, and the automatic rollback was refused: %v; fix the spec and update the service again, or free what its previous spec needs and run warrenctl service rollback %s",
		reason, err, s.Spec.Name)
	st.ProgressAt = at.UTC().Format(time.RFC3339Nano)
	s.UpdateStatus = &st
	w.putService(s, api.OpUpdate)
}

// createdBy says whether s is a service that deployment dep ("": any)
// created and that has had no update since: it has no previous spec to
// roll back to, and its last update is not a rollback.
func createdBy(s *api.Service, dep string) bool {
	st := s.UpdateStatus
	return s.PreviousSpec == nil && st != nil && st.Deployment != "" && (dep == "" || st.Deployment == dep) &&
		st.State != api.UpdateRollingBack && st.State != api.UpdateRolledBack
}

// CanResume says whether a deployment of s's spec, unchanged, starts its
// update again: s was created by a deployment that failed, or its own
// update failed, and its update paused (it had nothing to roll back to).
// Deploying it again is what the pause's message asks for.
func CanResume(s *api.Service) bool {
	return createdBy(s, "") && s.UpdateStatus.State == api.UpdatePaused
}

// pauseCreated pauses the update of s, a service its failed deployment
// created, which has no spec to roll back to: it keeps what runs, and its
// message says why, whether the deployment's other services roll back,
// and what to do.
func (w *wtx) pauseCreated(s *api.Service, why string, othersRollBack bool, at time.Time) {
	st := *s.UpdateStatus
	fix := fmt.Sprintf("fix its spec and apply it again, or remove the service with warrenctl service rm %s", s.Spec.Name)
	if stack := s.Spec.Labels[api.LabelStack]; stack != "" {
		fix = fmt.Sprintf("fix the compose file and deploy the stack again, or remove the stack with warrenctl stack rm %s", stack)
	}
	note := ""
	if othersRollBack {
		note = " (the services it updated roll back)"
	}
	st.State = api.UpdatePaused
	st.Message = fmt.Sprintf("update paused: %s; %s was created by this deployment and has nothing to roll back to%s: %s",
		why, s.Spec.Name, note, fix)
	st.ProgressAt = at.UTC().Format(time.RFC3339Nano)
	s.UpdateStatus = &st
	w.putService(s, api.OpUpdate)
}

// applyServicePromote promotes the canaries of a running update.
func applyServicePromote(w *wtx, c *ServicePromote) any {
	s := w.service(c.ID)
	switch {
	case s == nil:
		return api.Errorf(api.CodeNotFound, "no service %q", c.ID)
	case c.SpecVersion != 0 && c.SpecVersion != s.SpecVersion:
		return api.Errorf(api.CodeConflict, "service %q was updated since: its canaries are not the ones asked for; look again with warrenctl service ps", s.Spec.Name)
	case !s.InCanary():
		state := "no update"
		if s.UpdateStatus != nil {
			state = "its update is " + s.UpdateStatus.State
			if s.UpdateStatus.Promoted {
				state = "its canaries are already promoted"
			}
		}
		return api.Errorf(api.CodeConflict, "service %q has no canaries waiting (%s): promote applies to an update with --update-canary", s.Spec.Name, state)
	}
	s.UpdateStatus.Promoted = true
	s.UpdateStatus.ProgressAt = c.At.UTC().Format(time.RFC3339Nano)
	s.UpdateStatus.Message = ""
	w.putService(s, api.OpUpdate)
	return s
}

// servicesOfDeployment lists the services whose last update belongs to
// deployment dep.
func (v *View) servicesOfDeployment(dep string) []*api.Service {
	var out []*api.Service
	for _, s := range v.Services() {
		if s.UpdateStatus != nil && s.UpdateStatus.Deployment == dep {
			out = append(out, s)
		}
	}
	return out
}

func (w *wtx) rollbackOne(s *api.Service, reason string, at time.Time) {
	prev := *s.PreviousSpec
	dep := ""
	if s.UpdateStatus != nil {
		dep = s.UpdateStatus.Deployment
	}
	// An update that only changed what does not reach the tasks has no
	// rolling update to undo: its spec is put back all the same.
	if prev.Name != s.Spec.Name {
		w.must(w.tx.Bucket(bServiceNames).Delete([]byte(s.Spec.Name)))
		w.must(w.tx.Bucket(bServiceNames).Put([]byte(prev.Name), []byte(s.ID)))
	}
	w.claim(s.ID, &s.Spec, &prev)
	w.changeSpec(s, &prev, at, true, dep)
	if s.UpdateStatus == nil || s.UpdateStatus.State != api.UpdateRollingBack {
		s.UpdateStatus = &api.UpdateStatus{State: api.UpdateRollingBack, SpecVersion: s.SpecVersion, StartedAt: at.UTC().Format(timeLayout),
			ProgressAt: at.UTC().Format(time.RFC3339Nano), Deployment: dep}
	}
	s.UpdateStatus.Automatic, s.UpdateStatus.Message = true, "rolling back: "+reason
	w.putService(s, api.OpUpdate)
}

const timeLayout = "2006-01-02T15:04:05Z07:00"

func modeOf(s *api.ServiceSpec) string {
	if s.IsGlobal() {
		return api.ModeGlobal
	}
	return api.ModeReplicated
}

func applyServiceScale(w *wtx, c *ServiceScale) any {
	s := w.service(c.ID)
	if s == nil {
		return api.Errorf(api.CodeNotFound, "no service %q", c.ID)
	}
	if s.Spec.IsGlobal() {
		return api.Errorf(api.CodeInvalid, "service %q is global: it runs one task per node and cannot be scaled", s.Spec.Name)
	}
	if s.Spec.Replicas == c.Replicas {
		return s
	}
	s.Spec.Replicas = c.Replicas
	s.UpdatedAt = c.At
	w.putService(s, api.OpUpdate)
	return s
}

func applyServiceDelete(w *wtx, c *ServiceDelete) any {
	s := w.service(c.ID)
	if s == nil {
		return api.Errorf(api.CodeNotFound, "no service %q", c.ID)
	}
	if c.ExpectVersion != 0 && c.ExpectVersion != s.Version {
		return versionConflict("service", s.Spec.Name, s.Version, c.ExpectVersion)
	}
	w.must(w.tx.Bucket(bServices).Delete([]byte(s.ID)))
	w.must(w.tx.Bucket(bServiceNames).Delete([]byte(s.Spec.Name)))
	w.claim(s.ID, &s.Spec, nil)
	raw, _ := json.Marshal(s)
	w.record(api.OpDelete, api.KindService, s.ID, "", "", raw, api.PublicService(s))
	for _, t := range w.view().Tasks(TaskFilter{ServiceID: s.ID}) {
		prev := *t
		if !moveDesired(t, api.TaskRemove) {
			continue
		}
		if t.NodeID == "" && !t.Status.State.Terminal() {
			// Never placed: no agent will report on it.
			t.Status = api.TaskStatus{State: api.TaskShutdown, Timestamp: c.At, Message: "service removed"}
		}
		t.UpdatedAt = c.At
		w.putTask(&prev, t)
	}
	return nil
}
