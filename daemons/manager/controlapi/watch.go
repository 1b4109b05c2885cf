package controlapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/authz"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
	"github.com/warren-edge/warren/daemons/wake"
)

// watchFilter reads ?kind=task,service&node=REF&service=REF.
func (s *Server) watchFilter(r *http.Request) (*store.Filter, error) {
	q := r.URL.Query()
	f := &store.Filter{}
	if ks := q.Get("kind"); ks != "" {
		f.Kinds = map[string]bool{}
		for _, k := range strings.Split(ks, ",") {
			switch k {
			case api.KindService, api.KindTask, api.KindNode, api.KindVolume:
				f.Kinds[k] = true
			default:
				return nil, api.Errorf(api.CodeInvalid, "kind %q: watch service, task, node or volume (comma-separated)", k)
			}
		}
	}
	// A worker watches its own node scope only: whatever it asks, its
	// certificate decides.
	if c := authz.CallerOf(r.Context()); c.Kind == authz.Worker {
		f.Worker = c.NodeID
	} else if id := q.Get("worker"); id != "" {
		f.Worker = id
	}
	var err error
	s.store.View(func(v *store.View) error {
		f.ServiceID, f.NodeID, err = refsOf(v, r)
		return nil
	})
	return f, err
}

// watch streams every change after ?index=N as NDJSON (api.Event per
// line). With no index, or one older than the hub's history, it first
// sends the whole watched state: a reset line, a create line per object,
// and a synced line.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	f, err := s.watchFilter(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	var after uint64
	if s := r.URL.Query().Get("index"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			httpx.Error(w, api.Errorf(api.CodeInvalid, "index %q is not a number", s))
			return
		}
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		httpx.Error(w, api.Errorf(api.CodeInternal, "streaming is not supported on this connection"))
		return
	}
	s.cfg.Watchers(1)
	defer s.cfg.Watchers(-1)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher.Flush() // the client knows at once that the stream is open

	ctx := r.Context()
	buf := make([]store.Change, 0, 256)
	resync := after == 0
	for {
		wait := s.store.Hub().Wait()
		if resync {
			if after, err = s.sendState(w, f); err != nil {
				return
			}
			flusher.Flush()
			resync = false
		}
		changes, upTo, err := s.store.Hub().Read(after, f, 256, buf[:0])
		if err == store.ErrTooOld {
			resync = true
			continue
		}
		for i := range changes {
			if _, err := w.Write(f.LineFor(&changes[i])); err != nil {
				return
			}
		}
		if len(changes) > 0 {
			// The batch ends on an index boundary: say so, so a replica
			// knows the last index is whole.
			if _, err := w.Write(controlLine(api.OpPing, upTo)); err != nil {
				return
			}
			flusher.Flush()
		}
		after = max(after, upTo)
		if len(changes) > 0 && upTo > changes[len(changes)-1].Index {
			continue // more may be waiting past the batch
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		case <-time.After(wake.Until(api.WatchPing)): // with the process's other periodic wakeups
			if _, err := w.Write(controlLine(api.OpPing, after)); err != nil {
				return
			}
			flusher.Flush()
		}
	}
}

func controlLine(op string, index uint64) []byte {
	return []byte(`{"index":` + strconv.FormatUint(index, 10) + `,"op":"` + op + `"}` + "\n")
}

// sendState writes the full state the filter selects, as of one index, and
// returns that index. A worker's scope gets the public projection of what
// is not its own.
func (s *Server) sendState(w http.ResponseWriter, f *store.Filter) (uint64, error) {
	var index uint64
	var lines [][]byte
	add := func(kind, id string, obj any) {
		raw, _ := json.Marshal(obj)
		lines = append(lines, []byte(`{"index":`+strconv.FormatUint(index, 10)+`,"op":"create","kind":"`+kind+`","id":`+strconv.Quote(id)+`,"object":`+string(raw)+"}\n"))
	}
	s.store.View(func(v *store.View) error {
		index = v.Index()
		if len(f.Kinds) == 0 || f.Kinds[api.KindNode] {
			for _, n := range v.Nodes() {
				if f.Worker != "" && n.ID != f.Worker {
					add(api.KindNode, n.ID, api.PublicNode(n))
				} else {
					add(api.KindNode, n.ID, n)
				}
			}
		}
		if len(f.Kinds) == 0 || f.Kinds[api.KindService] {
			for _, s := range v.Services() {
				if f.Worker != "" {
					add(api.KindService, s.ID, api.PublicService(s))
				} else {
					add(api.KindService, s.ID, s)
				}
			}
		}
		if len(f.Kinds) == 0 || f.Kinds[api.KindTask] {
			tf := store.TaskFilter{NodeID: f.NodeID, ServiceID: f.ServiceID}
			if f.Worker != "" {
				tf.NodeID = ""
			}
			for _, t := range v.Tasks(tf) {
				if f.Worker != "" && t.NodeID != f.Worker {
					add(api.KindTask, t.ID, api.PublicTask(t))
				} else {
					add(api.KindTask, t.ID, t)
				}
			}
		}
		// A worker's scope has no volumes (its node's record lists those
		// that live on it).
		if (len(f.Kinds) == 0 || f.Kinds[api.KindVolume]) && f.Worker == "" {
			for _, vol := range v.Volumes() {
				add(api.KindVolume, vol.Spec.Name, vol)
			}
		}
		return nil
	})
	if _, err := w.Write(controlLine(api.OpReset, index)); err != nil {
		return 0, err
	}
	for _, l := range lines {
		if _, err := w.Write(l); err != nil {
			return 0, err
		}
	}
	_, err := w.Write(controlLine(api.OpSynced, index))
	return index, err
}
