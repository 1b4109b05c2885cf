package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/warren-edge/warren/daemons/agent/imagexfer"
	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
)

// maxImageUpload bounds an image tarball sent to the local socket.
const maxImageUpload = 4 << 30

// Handler serves the agent's local API (the agent.sock): the node's images,
// image loading, task logs, exec sessions and the agent's own status. The
// manager proxies the cluster API's image, log and exec endpoints here.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", a.getStatus)
	mux.HandleFunc("GET /v1/images", a.listImages)
	mux.HandleFunc("POST /v1/images/load", a.loadImage)
	mux.HandleFunc("POST /v1/images/prestage", a.prestageImage)
	mux.HandleFunc("GET /v1/tasks/{id}/logs", withTaskID(a.taskLogs))
	mux.HandleFunc("POST /v1/tasks/{id}/exec", withTaskID(a.exec))
	a.localRoutes(mux)
	if a.blobs != nil {
		mux.Handle(imagexfer.BlobPattern, a.blobs)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, api.Errorf(api.CodeNotFound, "no endpoint %s %s on the agent", r.Method, r.URL.Path))
	})
	return mux
}

// withTaskID serves a route that names a task by {id}. Every route of the
// agent socket that takes an ID goes through it: the mux unescapes %2F in
// a path value, so {id} may be "../../etc/x", and the ID is checked
// (api.ValidateID) before the handler sees it. A bad one gets a 400 that
// says what is wrong with it.
func withTaskID(h func(w http.ResponseWriter, r *http.Request, id string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := api.ValidateID(id); err != nil {
			writeErr(w, api.Errorf(api.CodeInvalid, "task %v", err))
			return
		}
		h(w, r, id)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	var e *api.Error
	if !errors.As(err, &e) {
		e = api.Errorf(api.CodeInternal, "%v", err)
	}
	writeJSON(w, e.HTTPStatus(), e)
}

func (a *Agent) getStatus(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	st := api.AgentStatus{NodeID: a.nodeID, Tasks: len(a.tasks), Containers: len(a.containers), Engine: a.cfg.EngineVersion}
	for _, c := range a.containers {
		if c.State == rt.StateRunning {
			st.Running++
		}
	}
	a.mu.Unlock()
	if err := a.Healthy(r.Context()); err != nil {
		st.Message = err.Error()
	} else {
		st.Healthy = true
	}
	writeJSON(w, http.StatusOK, st)
}

func (a *Agent) listImages(w http.ResponseWriter, r *http.Request) {
	imgs, err := a.rt.ListImages(r.Context())
	if err != nil {
		writeErr(w, api.Errorf(api.CodeUnavailable, "list images: %v", err))
		return
	}
	out := make([]api.Image, 0, len(imgs))
	for _, i := range imgs {
		out = append(out, api.Image{Name: i.Name, Digest: i.Digest, Size: i.Size, Node: a.NodeID()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *Agent) loadImage(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, maxImageUpload)
	imgs, err := a.rt.ImportImage(r.Context(), body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeErr(w, api.Errorf(api.CodeTooLarge, "the image tarball is larger than %s", api.FormatBytes(maxImageUpload)))
			return
		}
		writeErr(w, api.Errorf(api.CodeInvalid, "load image: %v: send an OCI image layout or docker save tarball", err))
		return
	}
	out := make([]api.Image, 0, len(imgs))
	for _, i := range imgs {
		out = append(out, api.Image{Name: i.Name, Digest: i.Digest, Size: i.Size, Node: a.NodeID()})
	}
	a.log.Info("images loaded", "count", len(out))
	a.kickReconcile() // tasks waiting for these images may start now
	a.imagesChanged() // other nodes may fetch it from here now
	writeJSON(w, http.StatusOK, out)
}

// prestageImage makes an image present on this node ahead of a rollout
// (?ref=IMAGE): nothing if it is here, else fetched from a node that holds
// it (Config.FetchImage), else pulled from its registry.
func (a *Agent) prestageImage(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("ref")
	if ref == "" || len(ref) > 512 {
		writeErr(w, api.Errorf(api.CodeInvalid, "prestage: give the image as ?ref=IMAGE (1 to 512 bytes)"))
		return
	}
	ref, err := api.NormalizeImage(ref)
	if err != nil {
		writeErr(w, api.Errorf(api.CodeInvalid, "prestage: %v", err))
		return
	}
	have, err := a.Images(r.Context())
	if err != nil {
		writeErr(w, api.Errorf(api.CodeUnavailable, "%v", err))
		return
	}
	for _, i := range have {
		if i.Ref == ref {
			writeJSON(w, http.StatusOK, api.PrestageResult{Node: a.NodeID(), Image: i, Already: true})
			return
		}
	}
	start := time.Now()
	if err := a.obtainImage(r.Context(), ref); err != nil {
		writeErr(w, api.Errorf(api.CodeUnavailable, "%v", err))
		return
	}
	res := api.PrestageResult{Node: a.NodeID(), Took: api.Duration(time.Since(start))}
	if have, err := a.Images(r.Context()); err == nil {
		for _, i := range have {
			if i.Ref == ref {
				res.Image = i
			}
		}
	}
	a.log.Info("image prestaged", "image", ref, "took", time.Since(start).Round(time.Millisecond))
	writeJSON(w, http.StatusOK, res)
}

// taskLogs streams a task's log: the lines written since ?since=T
// (api.ParseLogSince, to within a second: logindex.go), of those the
// last ?tail=N (default all), then, with ?follow, what is written next
// until the client leaves.
func (a *Agent) taskLogs(w http.ResponseWriter, r *http.Request, id string) {
	path, err := a.logPath(id)
	if err != nil {
		writeErr(w, api.Errorf(api.CodeInvalid, "%v", err))
		return
	}
	tail := -1
	if s := r.URL.Query().Get("tail"); s != "" && s != "all" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeErr(w, api.Errorf(api.CodeInvalid, "tail %q: give a number of lines or all", s))
			return
		}
		tail = n
	}
	var since time.Time
	if s := r.URL.Query().Get("since"); s != "" {
		if since, err = api.ParseLogSince(s, a.logIdx.now()); err != nil {
			writeErr(w, err)
			return
		}
	}
	follow := r.URL.Query().Has("follow")
	f, err := a.openFile(path)
	if err != nil {
		writeErr(w, api.Errorf(api.CodeNotFound, "no log for task %s on this node", id))
		return
	}
	defer f.Close()
	var start int64
	if !since.IsZero() {
		if start, err = a.logIdx.since(path, f, since); err != nil {
			writeErr(w, api.Errorf(api.CodeUnavailable, "the log of task %s: %v", id, err))
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if err := streamLog(r.Context(), w, fl, f, start, tail, follow); err != nil && r.Context().Err() == nil {
		a.log.Debug("log stream ended", "task", id, "err", err)
	}
}

// streamLog writes f from start, a line start, or only the last tail
// lines of that (all if tail < 0), then follows it if asked, across
// rotations (the file shrinking).
func streamLog(ctx context.Context, w io.Writer, fl http.Flusher, f *os.File, start int64, tail int, follow bool) error {
	tailStart, err := tailOffset(f, tail)
	if err != nil {
		return err
	}
	start = max(start, tailStart)
	if _, err := f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	off := start
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			off += int64(n)
			continue
		}
		if err != nil && err != io.EOF {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		if fi, err := f.Stat(); err == nil && fi.Size() < off {
			// Rotated (copied away and truncated): read on from the start.
			off = 0
			f.Seek(0, io.SeekStart)
		}
	}
}

// tailOffset finds where the last n lines of f begin.
func tailOffset(f *os.File, n int) (int64, error) {
	if n < 0 {
		return 0, nil
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	if n == 0 {
		return size, nil
	}
	const chunk = 8 << 10
	pos := size
	lines := 0
	buf := make([]byte, chunk)
	// A final newline ends the last line; it does not start a new one.
	skipLast := true
	for pos > 0 {
		step := min(int64(chunk), pos)
		pos -= step
		if _, err := f.ReadAt(buf[:step], pos); err != nil && err != io.EOF {
			return 0, err
		}
		for i := step - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				skipLast = false
				continue
			}
			if skipLast {
				skipLast = false
				continue
			}
			lines++
			if lines == n {
				return pos + i + 1, nil
			}
		}
	}
	return 0, nil
}
