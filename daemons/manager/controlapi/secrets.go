package controlapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
)

// Secrets and configs share their handlers; kind says which. A secret's
// value is sealed here, on the leader that takes the call (the route runs
// there), before it goes into a Raft command, and opened only for a node
// that runs a task using it (the route's rule checks that). A config's
// data goes in as it is.

// putRetries bounds how often a new version is tried again when another
// took its number meanwhile.
const putRetries = 3

func (s *Server) listFiles(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.consistent(r); err != nil {
			httpx.Error(w, err)
			return
		}
		var out any
		s.store.View(func(v *store.View) error {
			if kind == api.KindSecret {
				l := v.Secrets()
				if l == nil {
					l = []*api.Secret{}
				}
				out = l
			} else {
				l := v.Configs()
				if l == nil {
					l = []*api.Config{}
				}
				out = l
			}
			return nil
		})
		httpx.JSON(w, http.StatusOK, out)
	}
}

func (s *Server) getFile(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.consistent(r); err != nil {
			httpx.Error(w, err)
			return
		}
		var out any
		var err error
		s.store.View(func(v *store.View) error {
			if kind == api.KindSecret {
				out, err = v.Secret(r.PathValue("ref"), true)
				return nil
			}
			var c *api.Config
			if c, err = v.Config(r.PathValue("ref"), true); err == nil && httpx.Bool(r, "data") {
				for i := range c.Versions {
					c.Versions[i].Data, _ = v.ConfigData(c.ID, c.Versions[i].Version)
				}
			}
			out = c
			return nil
		})
		if err != nil {
			httpx.Error(w, err)
			return
		}
		httpx.JSON(w, http.StatusOK, out)
	}
}

// lookupFile returns the stored secret or config (its config as the
// secret shape) by name, ID or ID prefix.
func (s *Server) lookupFile(kind, ref string) (*api.Secret, error) {
	var out *api.Secret
	var err error
	s.store.View(func(v *store.View) error {
		if kind == api.KindSecret {
			out, err = v.Secret(ref, false)
		} else {
			var c *api.Config
			c, err = v.Config(ref, false)
			out = (*api.Secret)(c)
		}
		return nil
	})
	return out, err
}

// propose puts one version of obj with its data: sealed for a secret.
func (s *Server) putFile(r *http.Request, kind string, obj api.Secret, data []byte) (any, error) {
	now := time.Now().UTC()
	if kind == api.KindConfig {
		return s.raft.Propose(r.Context(), store.CmdConfigPut, store.ConfigPut{Config: api.Config(obj), Data: data, At: now})
	}
	if s.cfg.Keys == nil {
		return nil, api.Errorf(api.CodeUnavailable, "this manager holds no keys to seal a secret with: ask another manager")
	}
	v := obj.Versions[0].Version
	sealed, err := s.cfg.Keys.Seal(data, api.SecretAAD(obj.ID, v))
	if err != nil {
		return nil, api.Errorf(api.CodeUnavailable, "the secret could not be sealed (%v): is this manager locked? (warrenctl unlock)", err)
	}
	return s.raft.Propose(r.Context(), store.CmdSecretPut, store.SecretPut{Secret: obj, Sealed: sealed, At: now})
}

func (s *Server) createFile(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.SecretRequest
		if err := httpx.Decode(w, r, &req); err != nil {
			httpx.Error(w, err)
			return
		}
		if err := api.ValidateSecretRequest(kind, &req, true); err != nil {
			httpx.Error(w, err)
			return
		}
		now := time.Now().UTC()
		obj := api.Secret{Meta: api.Meta{ID: api.NewID(), CreatedAt: now, UpdatedAt: now},
			Spec:     api.SecretSpec{Name: req.Name, Labels: req.Labels},
			Versions: []api.SecretVersion{{Version: 1, CreatedAt: now, Size: len(req.Data)}}}
		res, err := s.putFile(r, kind, obj, req.Data)
		if err != nil {
			httpx.Error(w, err)
			return
		}
		httpx.JSON(w, http.StatusCreated, res)
	}
}

// updateFile gives a secret or config a new version; the services that
// use it roll to it.
func (s *Server) updateFile(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.SecretRequest
		if err := httpx.Decode(w, r, &req); err != nil {
			httpx.Error(w, err)
			return
		}
		if err := api.ValidateSecretRequest(kind, &req, false); err != nil {
			httpx.Error(w, err)
			return
		}
		var res any
		var err error
		for range putRetries {
			var cur *api.Secret
			if cur, err = s.lookupFile(kind, r.PathValue("ref")); err != nil {
				break
			}
			now := time.Now().UTC()
			obj := api.Secret{Meta: api.Meta{ID: cur.ID},
				Versions: []api.SecretVersion{{Version: cur.Latest().Version + 1, CreatedAt: now, Size: len(req.Data)}}}
			if res, err = s.putFile(r, kind, obj, req.Data); !api.IsCode(err, api.CodeConflict) {
				break
			}
		}
		if err != nil {
			httpx.Error(w, err)
			return
		}
		httpx.JSON(w, http.StatusOK, res)
	}
}

func (s *Server) deleteFile(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cur, err := s.lookupFile(kind, r.PathValue("ref"))
		if err != nil {
			httpx.Error(w, err)
			return
		}
		cmd := store.CmdSecretRemove
		if kind == api.KindConfig {
			cmd = store.CmdConfigRemove
		} else if err := s.checkNoRouteNames(cur.Spec.Name); err != nil {
			httpx.Error(w, err)
			return
		}
		if _, err := s.raft.Propose(r.Context(), cmd, store.SecretRemove{ID: cur.ID}); err != nil {
			httpx.Error(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// checkNoRouteNames refuses to remove a secret that an ingress route
// names. The tasks' own uses are the FSM's rule (removeFile); this one is
// checked here, before the command, so that log entries committed before
// it apply as they did.
func (s *Server) checkNoRouteNames(name string) error {
	return s.store.View(func(v *store.View) error {
		if users := v.IngressSecretUsers(name); len(users) > 0 {
			return api.Errorf(api.CodeConflict, "secret %q is named by the ingress routes of service %s: change or remove those routes first (warrenctl service update --ingress-add ... or --ingress-rm HOST/PATH SERVICE)",
				name, strings.Join(users, ", "))
		}
		return nil
	})
}

// nodeFile gives node {ref} the value of version {version} of the secret
// or config {id}, for its task. Who may ask (the node, for a task it runs
// that uses that version) is the route's rule; this opens the value.
func (s *Server) nodeFile(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		version, err := strconv.ParseUint(r.PathValue("version"), 10, 64)
		if err != nil || api.ValidateID(id) != nil {
			httpx.Error(w, api.Errorf(api.CodeInvalid, "a %s is asked for by ID and version number", kind))
			return
		}
		var data []byte
		var found bool
		var openErr error
		s.store.View(func(v *store.View) error {
			if kind == api.KindConfig {
				data, found = v.ConfigData(id, version)
				return nil
			}
			sealed, ok := v.SecretSealed(id, version)
			if !ok {
				return nil
			}
			found = true
			if s.cfg.Keys == nil {
				openErr = api.Errorf(api.CodeUnavailable, "this manager holds no keys")
				return nil
			}
			if data, openErr = s.cfg.Keys.Open(sealed, api.SecretAAD(id, version)); openErr != nil {
				openErr = api.Errorf(api.CodeUnavailable, "secret %s version %d does not open on this manager (%v)", id, version, openErr)
			}
			return nil
		})
		switch {
		case !found:
			httpx.Error(w, api.Errorf(api.CodeNotFound, "no %s %s version %d", kind, id, version))
		case openErr != nil:
			httpx.Error(w, openErr)
		default:
			httpx.JSON(w, http.StatusOK, api.SecretValue{ID: id, Version: version, Data: data})
		}
	}
}
