package store

import (
	"bytes"
	"fmt"

	json "github.com/segmentio/encoding/json"
	bolt "go.etcd.io/bbolt"

	"github.com/warren-edge/warren/daemons/api"
)

// The ingress routes services claim are indexed in bIngressRoutes, so that
// a write is checked against the routes of its own spec, not against every
// service: one key per claim, host, 0, path, 0, service ID (the host and
// path normalized, api.IngressRoute.Key; neither holds a 0 byte once
// valid). A claim is removed by its own service only, so a stale index
// cannot free another service's route.
//
// The index lives in the state database: a snapshot carries it, and a
// state (or snapshot) written before it existed has it built from its
// services when it is opened (openBolt, rebuildRouteIndex).

func routePrefix(k api.IngressKey) []byte {
	b := make([]byte, 0, len(k.Host)+len(k.Path)+2)
	b = append(b, k.Host...)
	b = append(b, indexSeparator)
	b = append(b, k.Path...)
	return append(b, indexSeparator)
}

func routeIndexKey(k api.IngressKey, serviceID string) []byte {
	return append(routePrefix(k), serviceID...)
}

// RouteOwner returns the ID of a service other than except that claims
// the route with key k, or "".
func (v *View) RouteOwner(k api.IngressKey, except string) string {
	prefix := routePrefix(k)
	c := v.tx.Bucket(bIngressRoutes).Cursor()
	for key, _ := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, _ = c.Next() {
		if id := string(key[len(prefix):]); id != except {
			return id
		}
	}
	return ""
}

// setRoutes moves the claims of service serviceID from the routes old to
// routes.
func (w *wtx) setRoutes(serviceID string, old, routes []api.IngressRoute) {
	b := w.tx.Bucket(bIngressRoutes)
	for _, r := range old {
		w.must(b.Delete(routeIndexKey(r.Key(), serviceID)))
	}
	for _, r := range routes {
		w.must(b.Put(routeIndexKey(r.Key(), serviceID), nil))
	}
}

// releaseRoutes drops the claims of service serviceID on the routes of
// old that routes does not have: a deployment frees them before it
// applies its creates and updates, so that a route can move from one of
// its services to another in one step.
func (w *wtx) releaseRoutes(serviceID string, old, routes []api.IngressRoute) {
	keep := map[api.IngressKey]bool{}
	for _, r := range routes {
		keep[r.Key()] = true
	}
	b := w.tx.Bucket(bIngressRoutes)
	for _, r := range old {
		if !keep[r.Key()] {
			w.must(b.Delete(routeIndexKey(r.Key(), serviceID)))
		}
	}
}

// checkRoutes refuses a route of spec that another service claims, naming
// it and saying what to do.
func (v *View) checkRoutes(self string, spec *api.ServiceSpec, o conflictOpts) error {
	for _, r := range spec.Ingress {
		k := r.Key()
		owner := v.RouteOwner(k, self)
		if owner == "" || o.frees(owner, k) {
			continue
		}
		name := owner
		if s, err := v.Service(owner); err == nil {
			name = s.Spec.Name
		}
		return api.Errorf(api.CodeConflict, "ingress route %s is already claimed by service %q: remove it there first (warrenctl service update --ingress-rm %s%s %s), or choose another host or path",
			k, name, k.Host, rmPath(k.Path), name)
	}
	return nil
}

// rmPath is the path part of a --ingress-rm argument.
func rmPath(p string) string {
	if p == "/" {
		return ""
	}
	return p
}

// rebuildRouteIndex fills bIngressRoutes from the stored services.
func rebuildRouteIndex(tx *bolt.Tx) error {
	b := tx.Bucket(bIngressRoutes)
	return tx.Bucket(bServices).ForEach(func(k, raw []byte) error {
		var s api.Service
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("index the ingress routes: service %q: %w", k, err)
		}
		for _, r := range s.Spec.Ingress {
			if err := b.Put(routeIndexKey(r.Key(), s.ID), nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// ConflictOption changes what CheckServiceConflicts counts as a conflict.
type ConflictOption func(*conflictOpts)

type conflictOpts struct {
	// next are the specs that services (by ID) get in the same write.
	next map[string]*api.ServiceSpec
}

// frees says whether the write moves service owner to a spec that no
// longer claims route k.
func (o conflictOpts) frees(owner string, k api.IngressKey) bool {
	next, ok := o.next[owner]
	if !ok {
		return false
	}
	for _, r := range next.Ingress {
		if r.Key() == k {
			return false
		}
	}
	return true
}

// InDeployment says that the spec checked is one of a deployment's, in
// which the services of next (by ID) get those specs: a route one of them
// claims now and gives up in its next spec is free for the others, as the
// FSM applies a deployment (applyDeploy releases them first). Names and
// ports are not moved that way.
func InDeployment(next map[string]*api.ServiceSpec) ConflictOption {
	return func(o *conflictOpts) { o.next = next }
}
