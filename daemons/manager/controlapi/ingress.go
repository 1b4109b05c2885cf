package controlapi

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
)

// The ingress store (api/ingress.go): what warren-ingress shares between
// ingress nodes, sealed here, on the leader that takes the call, like a
// secret's value, and opened here for the ingress node that reads it.
// These handlers run on the leader (the routes are placed there: a
// worker's replica holds no ingress store); who may call them, an
// ingress node for itself, is the route table's business.

// IngressHandlers are the handlers of the ingress store, its locks, the
// secrets its routes name, and the routes' status.
type IngressHandlers struct {
	Get, Put, Delete, Lock, Unlock, Secret, Routes http.HandlerFunc
}

func (s *Server) ingressHandlers() IngressHandlers {
	return IngressHandlers{Get: s.ingressGet, Put: s.ingressPut, Delete: s.ingressDelete,
		Lock: s.ingressLock, Unlock: s.ingressUnlock, Secret: s.ingressSecret, Routes: s.ingressRoutes}
}

// ingressKeys says why this manager cannot seal or open the store's
// values, if it cannot.
func (s *Server) ingressKeys() error {
	if s.cfg.Keys == nil || s.isWorker() {
		return api.Errorf(api.CodeUnavailable, "this node holds no ingress store: ask a manager")
	}
	return nil
}

// ingressGet answers ?key=K with the key and its value, or ?prefix=P
// (&recursive) with the keys under P.
func (s *Server) ingressGet(w http.ResponseWriter, r *http.Request) {
	if err := s.ingressKeys(); err != nil {
		httpx.Error(w, err)
		return
	}
	q := r.URL.Query()
	if !q.Has("key") {
		// "certificates/" is taken as "certificates".
		prefix := strings.TrimSuffix(q.Get("prefix"), "/")
		if prefix != "" {
			if err := store.ValidateIngressKey("prefix", prefix); err != nil {
				httpx.Error(w, err)
				return
			}
		}
		var out []api.IngressObject
		s.store.View(func(v *store.View) error { out = v.IngressList(prefix, httpx.Bool(r, "recursive")); return nil })
		httpx.JSON(w, http.StatusOK, out)
		return
	}
	key := q.Get("key")
	if err := store.ValidateIngressKey("key", key); err != nil {
		httpx.Error(w, err)
		return
	}
	var obj api.IngressObject
	var found bool
	var err error
	s.store.View(func(v *store.View) error {
		o, sl, ok := v.IngressGet(key)
		if !ok {
			return nil
		}
		obj, found = o, true
		if obj.Value, err = s.cfg.Keys.Open(sl, store.PlaceIngress(key)); err != nil {
			err = api.Errorf(api.CodeUnavailable, "the ingress store's key %q does not open on this manager (%v): is it locked? (warrenctl unlock)", key, err)
		}
		return nil
	})
	switch {
	case !found:
		httpx.Error(w, api.Errorf(api.CodeNotFound, "no key %q in the ingress store", key))
	case err != nil:
		httpx.Error(w, err)
	default:
		httpx.JSON(w, http.StatusOK, obj)
	}
}

// ingressPut sets ?key=K to the request's body, sealed.
func (s *Server) ingressPut(w http.ResponseWriter, r *http.Request) {
	if err := s.ingressKeys(); err != nil {
		httpx.Error(w, err)
		return
	}
	key := r.URL.Query().Get("key")
	if err := store.ValidateIngressKey("key", key); err != nil {
		httpx.Error(w, err)
		return
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxIngressValue))
	if err != nil {
		if _, ok := err.(*http.MaxBytesError); ok {
			err = api.Errorf(api.CodeTooLarge, "a value of the ingress store is at most %d bytes", api.MaxIngressValue)
		} else {
			err = httpx.BodyError(err)
		}
		httpx.Error(w, err)
		return
	}
	sealed, err := s.cfg.Keys.Seal(value, store.PlaceIngress(key))
	clear(value)
	if err != nil {
		httpx.Error(w, api.Errorf(api.CodeUnavailable, "the value could not be sealed (%v): is this manager locked? (warrenctl unlock)", err))
		return
	}
	cmd := store.IngressPut{Key: key, Sealed: sealed, Size: int64(len(value)), At: time.Now().UTC()}
	if _, err := s.raft.Propose(r.Context(), store.CmdIngressPut, cmd); err != nil {
		httpx.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ingressDelete removes ?key=K and every key under K/.
func (s *Server) ingressDelete(w http.ResponseWriter, r *http.Request) {
	if err := s.ingressKeys(); err != nil {
		httpx.Error(w, err)
		return
	}
	key := r.URL.Query().Get("key")
	if err := store.ValidateIngressKey("key", key); err != nil {
		httpx.Error(w, err)
		return
	}
	if _, err := s.raft.Propose(r.Context(), store.CmdIngressDelete, store.IngressDelete{Key: key, At: time.Now().UTC()}); err != nil {
		httpx.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ingressLock takes or renews lock {name}; its lease runs from this
// leader's clock, put in the command.
func (s *Server) ingressLock(w http.ResponseWriter, r *http.Request) {
	if err := s.ingressKeys(); err != nil {
		httpx.Error(w, err)
		return
	}
	var req api.IngressLockRequest
	if err := httpx.Decode(w, r, &req); err != nil {
		httpx.Error(w, err)
		return
	}
	name := r.PathValue("name")
	if err := store.ValidateIngressLock(name, req); err != nil {
		httpx.Error(w, err)
		return
	}
	res, err := s.raft.Propose(r.Context(), store.CmdIngressLock,
		store.IngressLockTake{Name: name, Holder: req.Holder, TTL: req.TTL, At: time.Now().UTC()})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	// A request retried gets the answer it got the first time.
	if b, ok := res.(store.Replayed); ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(b)
		return
	}
	l, _ := res.(*api.IngressLock)
	httpx.JSON(w, http.StatusOK, l)
}

// ingressUnlock releases lock {name} for ?holder=H.
func (s *Server) ingressUnlock(w http.ResponseWriter, r *http.Request) {
	if err := s.ingressKeys(); err != nil {
		httpx.Error(w, err)
		return
	}
	name, holder := r.PathValue("name"), r.URL.Query().Get("holder")
	if err := store.ValidateIngressKey("lock name", name); err != nil {
		httpx.Error(w, err)
		return
	}
	if holder == "" {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "name the lock's holder: ?holder=H"))
		return
	}
	if _, err := s.raft.Propose(r.Context(), store.CmdIngressUnlock,
		store.IngressLockRelease{Name: name, Holder: holder, At: time.Now().UTC()}); err != nil {
		httpx.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ingressSecret gives an ingress node the newest value of secret {name},
// which a route names (the route's rule checks that; the answer for any
// other is the same "not found").
func (s *Server) ingressSecret(w http.ResponseWriter, r *http.Request) {
	if err := s.ingressKeys(); err != nil {
		httpx.Error(w, err)
		return
	}
	name := r.PathValue("name")
	var out api.SecretValue
	var err error
	s.store.View(func(v *store.View) error {
		if !v.IngressNamesSecret(name) {
			err = ErrIngressSecret(name)
			return nil
		}
		out, err = s.openSecret(v, name)
		return nil
	})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, out)
}

// ErrIngressSecret is the answer for a secret no route names, or none
// of that name: the same, so that it reveals nothing.
func ErrIngressSecret(name string) error {
	return api.Errorf(api.CodeNotFound, "no ingress route names a secret %q", name)
}

// openSecret opens the newest version of secret name.
func (s *Server) openSecret(v *store.View, name string) (api.SecretValue, error) {
	sec, err := v.Secret(name, false)
	if err != nil || sec.Spec.Name != name {
		return api.SecretValue{}, ErrIngressSecret(name)
	}
	ver := sec.Latest().Version
	sealed, ok := v.SecretSealed(sec.ID, ver)
	if !ok {
		return api.SecretValue{}, ErrIngressSecret(name)
	}
	data, err := s.cfg.Keys.Open(sealed, api.SecretAAD(sec.ID, ver))
	if err != nil {
		return api.SecretValue{}, api.Errorf(api.CodeUnavailable, "secret %s version %d does not open on this manager (%v)", name, ver, err)
	}
	return api.SecretValue{ID: sec.ID, Version: ver, Data: data}, nil
}
