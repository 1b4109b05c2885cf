package controlapi

import (
	"net/http"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
)

// createVolume stores a new volume; a node named in the spec is resolved
// to its ID here, and checked again by the FSM.
func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) {
	var spec api.VolumeSpec
	if err := httpx.Decode(w, r, &spec); err != nil {
		httpx.Error(w, err)
		return
	}
	if err := api.ValidateVolumeSpec(&spec); err != nil {
		httpx.Error(w, err)
		return
	}
	now := time.Now().UTC()
	vol := api.Volume{Meta: api.Meta{ID: api.NewID(), CreatedAt: now, UpdatedAt: now}, Spec: spec}
	var err error
	s.store.View(func(v *store.View) error {
		if _, e := v.Volume(spec.Name); e == nil {
			err = api.Errorf(api.CodeConflict, "a volume named %q exists: choose another name", spec.Name)
			return nil
		}
		if spec.Node != "" {
			var n *api.Node
			if n, err = v.Node(spec.Node); err == nil {
				vol.NodeID = n.ID
			}
		}
		return nil
	})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	res, err := s.raft.Propose(r.Context(), store.CmdVolumeCreate, store.VolumeCreate{Volume: vol})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusCreated, res)
}

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) {
	if err := s.volumesHere(r); err != nil {
		httpx.Error(w, err)
		return
	}
	out := []*api.Volume{}
	s.store.View(func(v *store.View) error { out = append(out, v.Volumes()...); return nil })
	httpx.JSON(w, http.StatusOK, out)
}

func (s *Server) getVolume(w http.ResponseWriter, r *http.Request) {
	if err := s.volumesHere(r); err != nil {
		httpx.Error(w, err)
		return
	}
	var vol *api.Volume
	var err error
	s.store.View(func(v *store.View) error { vol, err = v.Volume(r.PathValue("name")); return nil })
	if err != nil {
		httpx.Error(w, err)
		return
	}
	httpx.JSON(w, http.StatusOK, vol)
}

// deleteVolume removes a volume no live task mounts; the FSM checks it
// again against the state of the moment it applies.
func (s *Server) deleteVolume(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var err error
	s.store.View(func(v *store.View) error {
		if _, err = v.Volume(name); err == nil {
			err = v.CheckVolumeUnused(name)
		}
		return nil
	})
	if err != nil {
		httpx.Error(w, err)
		return
	}
	if _, err := s.raft.Propose(r.Context(), store.CmdVolumeRemove, store.VolumeRemove{Name: name, At: time.Now().UTC()}); err != nil {
		httpx.Error(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// volumesHere refuses volume reads on a worker (its replica holds none)
// and makes a consistent read when asked.
func (s *Server) volumesHere(r *http.Request) error {
	if s.isWorker() {
		return api.Errorf(api.CodeUnavailable, "the managers keep the volumes, not this worker: ask a manager (--host https://MANAGER:4242)")
	}
	return s.consistent(r)
}
