package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// Deploy is one deployment: services created, updated and removed in one
// Raft entry, all or nothing. Each created service and each update that
// reaches the tasks records ID as its UpdateStatus.Deployment, so that
// when one of them fails its update and rolls back, the others that can
// roll back do too, and those it created, which have nothing to roll back
// to, pause (autoRollback).
//
// Removes are applied last and never fail (a service already gone is
// skipped): a removed service's name, ports and ingress routes are
// therefore not free for the creates of the same deployment.
//
// Ingress routes can move between the deployment's services: before its
// creates and updates, each updated service gives up the routes its new
// spec no longer has, so another service of the deployment may claim
// them, whatever the order. Two of its services claiming one route are
// refused as a conflict.
type Deploy struct {
	ID string `json:"id"`
	// Name is the stack's name, or "" for a deployment of no stack (an
	// apply of several services).
	Name    string          `json:"name,omitempty"`
	Creates []api.Service   `json:"creates,omitempty"`
	Updates []ServiceUpdate `json:"updates,omitempty"`
	// Resumes are IDs of services an earlier deployment created whose
	// update is paused (CanResume), deployed again unchanged: their
	// update starts again, as part of this one. One that changed since
	// is left as it is.
	Resumes []string `json:"resumes,omitempty"`
	// Removes are IDs of services to delete (a stack deploy's prune).
	Removes []string  `json:"removes,omitempty"`
	At      time.Time `json:"at"`
}

// deployBuckets are the buckets service creates and updates write: a
// refused deployment puts them back as they were. (TestDeployAllOrNothing
// compares the whole database, so a writer added to those appliers
// without being added here fails it.) The events they derive are held
// back until the whole deployment is applied (wtx.held).
var deployBuckets = [][]byte{bServices, bServiceNames, bPorts, bIngressRoutes}

// DeployResult is what a deployment did, service by service (the
// services it left unchanged are among its updates).
type DeployResult struct {
	ID       string            `json:"id"`
	Services []DeployedService `json:"services"`
}

// DeployedService is what a deployment did to one service.
type DeployedService struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Action string `json:"action"` // api.DeployCreated, ...
}

func applyDeploy(w *wtx, c *Deploy) any {
	if c.ID == "" {
		return api.Errorf(api.CodeInvalid, "a deployment needs an ID")
	}
	saved := w.saveBuckets(deployBuckets)
	changes := len(w.changes)
	// Its events are stored once the whole deployment is applied.
	var held []api.ClusterEvent
	w.held = &held
	defer func() { w.held = nil }()
	fail := func(what string, res any) any {
		w.restoreBuckets(saved)
		w.changes = w.changes[:changes]
		err, _ := res.(error)
		var ae *api.Error
		if errors.As(err, &ae) {
			out := *ae
			out.Message = fmt.Sprintf("deployment %s: %s: %s; nothing was changed", c.ID, what, ae.Message)
			return &out
		}
		return api.Errorf(api.CodeInternal, "deployment %s: %s: %v; nothing was changed", c.ID, what, err)
	}
	out := &DeployResult{ID: c.ID}
	for _, u := range c.Updates {
		if s := w.service(u.ID); s != nil {
			w.releaseRoutes(s.ID, s.Spec.Ingress, u.Spec.Ingress)
		}
	}
	for _, s := range c.Creates {
		now := c.At.UTC().Format(timeLayout)
		s.UpdateStatus = &api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: w.index, StartedAt: now, ProgressAt: now, Deployment: c.ID}
		if res := applyServiceCreate(w, &ServiceCreate{Service: s}); isError(res) {
			return fail("create service "+s.Spec.Name, res)
		}
		out.Services = append(out.Services, DeployedService{ID: s.ID, Name: s.Spec.Name, Action: api.DeployCreated})
	}
	for _, u := range c.Updates {
		u.Deployment, u.Rollback = c.ID, false
		if u.At.IsZero() {
			u.At = c.At
		}
		res := applyServiceUpdate(w, &u)
		if isError(res) {
			return fail("update service "+u.Spec.Name, res)
		}
		action := api.DeployUpdated
		if s := res.(*api.Service); s.Version != w.index {
			action = api.DeployUnchanged
		}
		out.Services = append(out.Services, DeployedService{ID: u.ID, Name: u.Spec.Name, Action: action})
	}
	for _, id := range c.Resumes {
		s := w.service(id)
		if s == nil {
			continue
		}
		action := api.DeployUnchanged
		if CanResume(s) {
			now := c.At.UTC()
			s.UpdateStatus = &api.UpdateStatus{State: api.UpdateUpdating, SpecVersion: s.SpecVersion, StartedAt: now.Format(timeLayout),
				ProgressAt: now.Format(time.RFC3339Nano), Deployment: c.ID}
			w.putService(s, api.OpUpdate)
			action = api.DeployResumed
		}
		out.Services = append(out.Services, DeployedService{ID: id, Name: s.Spec.Name, Action: action})
	}
	for _, id := range c.Removes {
		s := w.service(id)
		if s == nil {
			continue
		}
		if res := applyServiceDelete(w, &ServiceDelete{ID: id, At: c.At}); isError(res) {
			// applyServiceDelete refuses only a missing service or a
			// version mismatch, and neither can happen here.
			panic(fmt.Sprintf("store: entry %d: deployment %s: remove %s: %v", w.index, c.ID, id, res))
		}
		out.Services = append(out.Services, DeployedService{ID: id, Name: s.Spec.Name, Action: api.DeployRemoved})
	}
	w.held = nil
	for _, ev := range held {
		w.emit(ev)
	}
	return out
}

func isError(res any) bool {
	_, ok := res.(error)
	return ok
}

// savedBucket is a copy of one bucket's keys and values.
type savedBucket struct {
	name []byte
	kv   [][2][]byte
}

// saveBuckets copies the buckets (flat ones: no nested buckets).
func (w *wtx) saveBuckets(names [][]byte) []savedBucket {
	out := make([]savedBucket, 0, len(names))
	for _, n := range names {
		sb := savedBucket{name: n}
		w.must(w.tx.Bucket(n).ForEach(func(k, v []byte) error {
			sb.kv = append(sb.kv, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return nil
		}))
		out = append(out, sb)
	}
	return out
}

// restoreBuckets puts back what saveBuckets copied: every key not in the
// copy is deleted, every key in it gets its old value.
func (w *wtx) restoreBuckets(saved []savedBucket) {
	for _, sb := range saved {
		b := w.tx.Bucket(sb.name)
		var keys [][]byte
		w.must(b.ForEach(func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		}))
		for _, k := range keys {
			w.must(b.Delete(k))
		}
		for _, kv := range sb.kv {
			w.must(b.Put(kv[0], kv[1]))
		}
	}
}
