package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/agent/step"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/wake"
)

// Break-glass (api/breakglass.go): the routes of the agent socket an
// operator on site uses, at a node cut off from every manager, through
// warrenctl --local. Who may call them: whoever may open the agent socket
// (root and group warren, the node's operators: the socket's mode says
// so), the same people who may exec into its tasks there. Who did what is
// taken from the socket's peer credentials, not from the request, and
// every action, done or refused, goes into the journal.
//
//	GET    /v1/local/tasks                 the node's tasks, as the agent sees them
//	POST   /v1/local/tasks/{id}/{action}   stop, start or restart one
//	PUT    /v1/local/tasks/{id}/override   pin an override (env, image; sticky)
//	DELETE /v1/local/tasks/{id}/override   drop it
//	GET    /v1/local/journal               the journal, verified
//
// Changes are refused while the node is connected: the managers own its
// slots then (api/offline.go), and warrenctl service ... is the way.

type peerKey struct{}

// PeerContext records the unix socket peer's credentials in the context of
// its requests (http.Server.ConnContext of the agent socket).
func PeerContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) { cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if cred == nil {
		return ctx
	}
	return context.WithValue(ctx, peerKey{}, *cred)
}

// who names the caller for the journal: the peer's user (by uid), and the
// name its warrenctl claims when that differs.
func who(r *http.Request) (string, int) {
	cred, ok := r.Context().Value(peerKey{}).(unix.Ucred)
	if !ok {
		return "unknown", -1
	}
	name := "uid " + strconv.Itoa(int(cred.Uid))
	if u, err := user.LookupId(strconv.Itoa(int(cred.Uid))); err == nil {
		name = u.Username
	}
	if claimed := strings.TrimSpace(r.Header.Get(api.LocalUserHeader)); claimed != "" && claimed != name && len(claimed) <= 64 && !strings.ContainsAny(claimed, "\n\r\x00") {
		name += " (as " + claimed + ")"
	}
	return name, int(cred.Uid)
}

func (a *Agent) localRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/local/tasks", a.localTasks)
	mux.HandleFunc("POST /v1/local/tasks/{id}/{action}", withTaskID(a.localAction))
	mux.HandleFunc("PUT /v1/local/tasks/{id}/override", withTaskID(a.localOverride))
	mux.HandleFunc("DELETE /v1/local/tasks/{id}/override", withTaskID(a.localClearOverride))
	mux.HandleFunc("GET /v1/local/journal", a.localJournal)
}

func (a *Agent) localTasks(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	st := api.LocalStatus{NodeID: a.nodeID, CutOff: a.cutOff, LastContact: a.lastContact, Tasks: []api.LocalTask{}}
	for _, t := range a.tasks {
		lt := api.LocalTask{ID: t.ID, Name: t.Name(), Image: t.Spec.Image, Desired: t.DesiredState, State: t.Status.State, Container: "none"}
		if c, ok := a.containers[t.ID]; ok {
			lt.Container, lt.PID, lt.ContainerID = string(c.State), c.Pid, c.ID
		}
		if l := a.local[t.ID]; l != nil {
			lt.Restarts, lt.Override = l.Restarts, l.Override
			if l.Override != nil && l.Override.Image != "" {
				lt.Image = l.Override.Image
			}
		}
		st.Tasks = append(st.Tasks, lt)
	}
	a.mu.Unlock()
	slices.SortFunc(st.Tasks, func(x, y api.LocalTask) int { return strings.Compare(x.Name, y.Name) })
	writeJSON(w, http.StatusOK, st)
}

// breakGlass runs one action on task id for the caller (who): it checks that the
// node is cut off and the task is this node's, holds the task against the
// agent's own loop while it acts, and journals the action and its result.
func (a *Agent) breakGlass(user string, uid int, id, action, detail string, fn func(t *api.Task, l *step.Local) error) error {
	err := func() error {
		a.mu.Lock()
		t, cut, busy := a.tasks[id], a.cutOff, a.busy[id]
		if t == nil {
			a.mu.Unlock()
			return api.Errorf(api.CodeNotFound, "no task %s on this node (warrenctl --local ps lists them)", id)
		}
		if !cut {
			a.mu.Unlock()
			return api.Errorf(api.CodeConflict, "this node is connected to the managers, which own its tasks now: use warrenctl service ... (break-glass is for a node cut off from them)")
		}
		if busy {
			a.mu.Unlock()
			return api.Errorf(api.CodeConflict, "task %s is being started or stopped: try again in a moment", id)
		}
		a.busy[id] = true
		l := a.localOf(t)
		a.mu.Unlock()
		defer func() {
			a.mu.Lock()
			delete(a.busy, id)
			a.cpDirty = true
			a.mu.Unlock()
			a.kickReconcile()
		}()
		return fn(t, l)
	}()
	result := "ok"
	if err != nil {
		result = err.Error()
	}
	if _, jerr := a.journal.append(api.JournalEntry{At: time.Now().UTC(), Node: a.NodeID(), User: user, UID: uid,
		Action: action, Task: id, Detail: detail, Result: result}); jerr != nil {
		a.log.Error("break-glass journal", "err", jerr)
		if err == nil {
			err = api.Errorf(api.CodeInternal, "done, but not journaled: %v", jerr)
		}
	}
	a.log.Warn("break-glass", "user", user, "action", action, "task", id, "detail", detail, "result", result)
	if serr := a.saveIfDirty(); serr != nil {
		a.log.Error("node checkpoint", "err", serr)
	}
	return err
}

// setOverride changes task l's override under a.mu (nil drops it).
func (a *Agent) setOverride(l *step.Local, o *api.TaskOverride) {
	a.mu.Lock()
	l.Override = o
	a.mu.Unlock()
}

// restartNow stops t's container, if any, and starts it again in place,
// with its override.
func (a *Agent) restartNow(ctx context.Context, t *api.Task) error {
	if _, err := a.rt.Stop(ctx, t.ID, t.Spec.EffectiveStopGrace().D()); err != nil && !errors.Is(err, rt.ErrNotFound) {
		return fmt.Errorf("stop: %w", err)
	}
	a.remove(ctx, t.ID)
	a.start(ctx, t, true)
	a.mu.Lock()
	c, ok := a.containers[t.ID]
	a.mu.Unlock()
	if !ok || c.State != rt.StateRunning {
		return fmt.Errorf("the task did not start again (warrenctl --local logs %s)", t.ID)
	}
	return nil
}

func (a *Agent) localAction(w http.ResponseWriter, r *http.Request, id string) {
	action := r.PathValue("action")
	user, uid := who(r)
	var fn func(t *api.Task, l *step.Local) error
	ctx := context.WithoutCancel(r.Context())
	switch action {
	case api.LocalStop:
		fn = func(t *api.Task, l *step.Local) error {
			o := api.TaskOverride{}
			if l.Override != nil {
				o = *l.Override
			}
			o.Stopped, o.By, o.At = true, user, time.Now().UTC()
			o.Sticky = o.Sticky || r.URL.Query().Get("sticky") == "true"
			a.setOverride(l, &o)
			if _, err := a.rt.Stop(ctx, t.ID, t.Spec.EffectiveStopGrace().D()); err != nil && !errors.Is(err, rt.ErrNotFound) {
				return fmt.Errorf("stop: %w", err)
			}
			a.remove(ctx, t.ID)
			return nil
		}
	case api.LocalStart, api.LocalRestart:
		fn = func(t *api.Task, l *step.Local) error {
			if l.Override != nil && l.Override.Stopped {
				o := *l.Override
				o.Stopped = false
				if len(o.Env) == 0 && o.Image == "" {
					a.setOverride(l, nil)
				} else {
					a.setOverride(l, &o)
				}
			}
			a.mu.Lock()
			c, running := a.containers[t.ID]
			a.mu.Unlock()
			if action == api.LocalStart && running && c.State == rt.StateRunning {
				return nil
			}
			return a.restartNow(ctx, t)
		}
	default:
		writeErr(w, api.Errorf(api.CodeNotFound, "no break-glass action %q: use stop, start or restart", action))
		return
	}
	if err := a.breakGlass(user, uid, id, action, "", fn); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
}

func (a *Agent) localOverride(w http.ResponseWriter, r *http.Request, id string) {
	var o api.TaskOverride
	if err := decodeJSON(w, r, &o); err != nil {
		writeErr(w, err)
		return
	}
	o.Stopped = false
	if err := api.ValidateOverride(&o); err != nil {
		writeErr(w, err)
		return
	}
	user, uid := who(r)
	o.By, o.At = user, time.Now().UTC()
	ctx := context.WithoutCancel(r.Context())
	err := a.breakGlass(user, uid, id, api.LocalOverride, o.String(), func(t *api.Task, l *step.Local) error {
		if o.Image != "" {
			image, err := api.NormalizeImage(o.Image)
			if err != nil {
				return api.Errorf(api.CodeInvalid, "image %q: %v", o.Image, err)
			}
			has, err := a.rt.HasImage(ctx, image)
			if err != nil {
				return err
			}
			if !has {
				return api.Errorf(api.CodeInvalid, "image %s is not on this node: load it first (warrenctl image load -i FILE.tar)", image)
			}
		}
		prev := l.Override
		a.setOverride(l, &o)
		if err := a.restartNow(ctx, t); err != nil {
			a.setOverride(l, prev)
			a.restartNow(ctx, t)
			return fmt.Errorf("the override did not start, so it was dropped: %w", err)
		}
		return nil
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
}

func (a *Agent) localClearOverride(w http.ResponseWriter, r *http.Request, id string) {
	ctx := context.WithoutCancel(r.Context())
	user, uid := who(r)
	err := a.breakGlass(user, uid, id, api.LocalClearOverride, "", func(t *api.Task, l *step.Local) error {
		if l.Override == nil {
			return api.Errorf(api.CodeNotFound, "task %s has no override", id)
		}
		a.setOverride(l, nil)
		return a.restartNow(ctx, t)
	})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "ok"})
}

// localJournal serves the journal, and whether its chain holds.
func (a *Agent) localJournal(w http.ResponseWriter, r *http.Request) {
	entries, err := a.journal.since(0)
	if err != nil {
		writeErr(w, err)
		return
	}
	res := struct {
		Entries []api.JournalEntry `json:"entries"`
		Broken  string             `json:"broken,omitempty"`
	}{Entries: entries}
	if entries == nil {
		res.Entries = []api.JournalEntry{}
	}
	if err := api.VerifyJournal(entries, 0, ""); err != nil {
		res.Broken = err.Error()
	}
	writeJSON(w, http.StatusOK, res)
}

// withOverride is t with its break-glass override applied, for starting
// its container.
func (a *Agent) withOverride(t *api.Task) *api.Task {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := a.local[t.ID]
	if l == nil || l.Override == nil {
		return t
	}
	c := *t
	c.Spec = l.Override.Apply(t.Spec)
	return &c
}

// reconnected runs when a manager takes the heartbeat again: overrides
// that are not sticky are reverted (the task restarts with the managers'
// spec; a held stop starts again), a sticky stop ends the task (the
// managers replace it), sticky changes stay and are reported; then the
// journal goes to the managers.
func (a *Agent) reconnected(ctx context.Context) {
	done := map[string]bool{}
	for {
		waiting := a.revertOverrides(ctx, done)
		if !waiting {
			break
		}
		// A task the agent was busy with (its override still being
		// applied, say) is seen to once that is over: skipped, its revert
		// or its report would never come. Cut off again, the next
		// reconnection sees to it.
		if off, _ := a.CutOff(); off || wake.For(ctx, 50*time.Millisecond) != nil {
			return
		}
	}
	a.kickReconcile()
	a.sendJournal(ctx)
}

// revertOverrides does reconnected's work for the tasks with an override
// that are not in done and not busy, and adds them to done; waiting says
// some were busy.
func (a *Agent) revertOverrides(ctx context.Context, done map[string]bool) (waiting bool) {
	type revert struct {
		t    *api.Task
		l    *step.Local
		kind string
	}
	var todo []revert
	a.mu.Lock()
	for id, l := range a.local {
		t := a.tasks[id]
		if l.Override == nil || t == nil || done[id] {
			continue
		}
		if a.busy[id] {
			waiting = true
			continue
		}
		switch {
		case !l.Override.Sticky:
			todo = append(todo, revert{t, l, "revert"})
		case l.Override.Stopped:
			todo = append(todo, revert{t, l, "end"})
		default:
			todo = append(todo, revert{t, l, "report"})
		}
		a.busy[id] = true
		done[id] = true
	}
	a.mu.Unlock()
	for _, x := range todo {
		var err error
		detail := x.l.Override.String()
		switch x.kind {
		case "revert":
			a.setOverride(x.l, nil)
			err = a.restartNow(ctx, x.t)
		case "end":
			a.setOverride(x.l, nil)
			a.setReported(x.t.ID, api.TaskStatus{State: api.TaskShutdown, Message: "stopped on the node (break-glass, " + detail + ")"})
		case "report":
			a.mu.Lock()
			c := a.containers[x.t.ID]
			a.mu.Unlock()
			a.report(x.t.ID, api.TaskStatus{State: api.TaskRunning, Message: "running with a sticky override", ContainerID: c.ID, PID: c.Pid, StartedAt: c.StartedAt})
		}
		a.mu.Lock()
		delete(a.busy, x.t.ID)
		a.cpDirty = true
		a.mu.Unlock()
		if x.kind != "report" {
			result := "ok"
			if err != nil {
				result = err.Error()
			}
			a.journal.append(api.JournalEntry{At: time.Now().UTC(), Node: a.NodeID(), User: "warren-agent", UID: 0,
				Action: api.LocalRevert, Task: x.t.ID, Detail: x.kind + ": " + detail, Result: result})
		}
	}
	return waiting
}

func (a *Agent) journalRetryAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.journalRetry
}

func (a *Agent) journalSentSeq() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.journalSent
}

// sendJournal gives the managers the journal entries they have not taken.
func (a *Agent) sendJournal(ctx context.Context) {
	sent := a.journalSentSeq()
	if a.journal.lastSeq() <= sent {
		return
	}
	entries, err := a.journal.since(sent)
	if err != nil {
		a.log.Error("break-glass journal", "err", err)
		return
	}
	if len(entries) > api.MaxJournalUpload {
		entries = entries[:api.MaxJournalUpload]
	}
	if err := a.api.UploadJournal(ctx, a.NodeID(), entries); err != nil {
		a.log.Warn("send the break-glass journal to the managers; trying again in a minute", "err", err)
		a.mu.Lock()
		a.journalRetry = time.Now().Add(time.Minute)
		a.mu.Unlock()
		return
	}
	a.mu.Lock()
	a.journalSent = max(a.journalSent, entries[len(entries)-1].Seq)
	a.cpDirty = true
	a.mu.Unlock()
	a.log.Info("break-glass journal sent to the managers", "entries", len(entries))
}

// decodeJSON reads a small JSON body into v, refusing unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return api.Errorf(api.CodeInvalid, "the request body is not the JSON expected: %v", err)
	}
	return nil
}
