package controlapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/authz"
	"github.com/warren-edge/warren/daemons/manager/httpx"
	"github.com/warren-edge/warren/daemons/store"
)

// eventChunk is how many events are read in one read transaction: a slow
// client never holds one open.
const eventChunk = 1024

// eventQuery reads GET /v1/events's query: ?since=SEQ|RFC3339 (a seq is
// exclusive: the last one the client saw), until=RFC3339,
// type=a,b&service=REF&node=REF, follow=1.
func (s *Server) eventQuery(r *http.Request) (since uint64, f store.EventFilter, err error) {
	q := r.URL.Query()
	if v := q.Get("since"); v != "" {
		if since, err = strconv.ParseUint(v, 10, 64); err != nil {
			t, terr := time.Parse(time.RFC3339Nano, v)
			if terr != nil {
				return 0, f, api.Errorf(api.CodeInvalid, "since %q is neither an event seq nor an RFC 3339 time", v)
			}
			since, f.From, err = 0, t, nil
		}
	}
	if v := q.Get("until"); v != "" {
		if f.Until, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return 0, f, api.Errorf(api.CodeInvalid, "until %q is not an RFC 3339 time (2026-12-05T19:00:00Z)", v)
		}
	}
	if v := q.Get("type"); v != "" {
		f.Types = map[string]bool{}
		for _, t := range strings.Split(v, ",") {
			if !api.KnownEventType(t) {
				return 0, f, api.Errorf(api.CodeInvalid, "event type %q: the types are %s", t, strings.Join(api.EventTypes, ", "))
			}
			f.Types[t] = true
		}
	}
	// A service or node that is gone still names its events: a ref that
	// resolves is matched by ID, any other by ID or name as given.
	f.Service, f.Node = q.Get("service"), q.Get("node")
	s.store.View(func(v *store.View) error {
		if f.Service != "" {
			if sv, err := v.Service(f.Service); err == nil {
				f.Service = sv.ID
			}
		}
		if f.Node != "" {
			if n, err := v.Node(f.Node); err == nil {
				f.Node = n.ID
			}
		}
		return nil
	})
	return since, f, nil
}

// events streams the cluster's events as NDJSON (api.ClusterEvent per
// line), oldest first: those kept after ?since, and with ?follow=1 the
// new ones as they are applied, until the client goes or ?until passes.
// It reads this manager's state (every manager derives the same events);
// a follower wakes on the watch hub, like the watch stream.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if s.isWorker() {
		httpx.Error(w, api.Errorf(api.CodeInvalid, "node %s is a worker: its replica holds no events; ask a manager (warrenctl on a manager, or --host)", s.cfg.NodeID))
		return
	}
	since, f, err := s.eventQuery(r)
	if err != nil {
		httpx.Error(w, err)
		return
	}
	follow := httpx.Bool(r, "follow")
	flusher, _ := w.(http.Flusher)
	if follow && flusher == nil {
		httpx.Error(w, api.Errorf(api.CodeInternal, "streaming is not supported on this connection"))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if follow {
		flusher.Flush()
	}
	ctx := r.Context()
	if follow && !f.Until.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, f.Until)
		defer cancel()
	}
	f.Max = eventChunk
	buf := make([]byte, 0, 64<<10)
	for {
		wait := s.store.Hub().Wait()
		n, past := 0, false
		buf = buf[:0]
		s.store.View(func(v *store.View) error {
			past = v.EachEvent(since, f, func(ev *api.ClusterEvent, raw []byte) {
				buf = append(append(buf, raw...), '\n')
				since, n = ev.Seq, n+1
			})
			if !past && n < eventChunk {
				// Read to the end: what the filter left out need not
				// be read again.
				since = max(since, v.LastEventSeq())
			}
			return nil
		})
		if len(buf) > 0 {
			if _, err := w.Write(buf); err != nil {
				return
			}
			if follow {
				flusher.Flush()
			}
		}
		if n == eventChunk {
			continue
		}
		if !follow || past {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		}
	}
}

// RecordExec records an exec.run event for the exec a caller asked for
// (the request's body, an api.ExecRequest) in task ref: who, which task,
// and the command's argv[0] only. It is called where the caller enters
// the cluster (the router's audit of the exec route), on a manager: a worker's manager records nothing (it has no
// Raft, and is trusted with no record of what others did). The write
// goes on in the background: an exec is not held up by, nor refused for,
// a cluster that cannot commit.
func (s *Server) RecordExec(r *http.Request, c authz.Caller, body []byte) {
	if s.isWorker() || s.cfg.LeaderWrite == nil {
		return
	}
	var req api.ExecRequest
	if httpx.Unmarshal(body, &req) != nil || req.Validate() != nil {
		return // the exec itself is refused
	}
	var t *api.Task
	var host string
	s.store.View(func(v *store.View) error {
		var err error
		if t, err = v.Task(r.PathValue("ref")); err == nil {
			if n, ok := v.NodeByID(t.NodeID); ok {
				host = n.Description.Hostname
			}
		}
		return nil
	})
	if t == nil || t.Status.State != api.TaskRunning {
		return // no exec runs
	}
	msg := c.String() + " ran " + req.Cmd[0]
	if len(msg) > 256 {
		msg = msg[:256]
	}
	rec := store.EventRecord{At: time.Now().UTC(), Event: api.ClusterEvent{Type: api.EventExecRun,
		ServiceID: t.ServiceID, Service: t.ServiceName, NodeID: t.NodeID, Node: host, TaskID: t.ID, Message: msg}}
	if err := rec.Validate(); err != nil {
		s.cfg.Logger.Warn("exec event not recorded", "task", t.ID, "err", err)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.cfg.LeaderWrite(ctx, store.CmdEvent, rec); err != nil {
			s.cfg.Logger.Warn("exec event not recorded", "task", t.ID, "caller", c.String(), "err", err)
		}
	}()
}
