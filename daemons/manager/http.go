package manager

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

// maxBody bounds request bodies; a service spec is a few KiB.
const maxBody = 1 << 20

func (m *Manager) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		route := pattern[strings.IndexByte(pattern, ' ')+1:]
		mux.HandleFunc(pattern, m.metrics.instrument(route, h))
	}
	handle("GET /v1/info", m.getInfo)
	handle("GET /v1/health", m.getHealth)
	handle("GET /v1/services", m.readToLeader(m.listServices))
	handle("POST /v1/services", m.toLeader(m.createService))
	handle("GET /v1/services/{ref}", m.readToLeader(m.getService))
	handle("PUT /v1/services/{ref}", m.toLeader(m.updateService))
	handle("POST /v1/services/{ref}/scale", m.toLeader(m.scaleService))
	handle("POST /v1/services/{ref}/rollback", m.toLeader(m.rollbackService))
	handle("DELETE /v1/services/{ref}", m.toLeader(m.deleteService))
	handle("GET /v1/tasks", m.readToLeader(m.listTasks))
	handle("GET /v1/tasks/{ref}", m.readToLeader(m.getTask))
	handle("POST /v1/tasks/status", m.toManagers(m.postTaskStatus))
	handle("GET /v1/nodes", m.readToLeader(m.listNodes))
	handle("GET /v1/nodes/{ref}", m.readToLeader(m.getNode))
	handle("PUT /v1/nodes/{ref}/spec", m.toLeader(m.updateNodeSpec))
	handle("POST /v1/nodes/{ref}/heartbeat", m.toManagers(m.postHeartbeat))
	handle("DELETE /v1/nodes/{ref}", m.toLeader(m.deleteNode))
	handle("POST /v1/nodes/{ref}/promote", m.toLeader(m.promoteNode))
	handle("POST /v1/nodes/{ref}/demote", m.toLeader(m.demoteNode))
	handle("GET /v1/watch", m.watch)
	handle("POST /v1/internal/command", m.toLeader(m.postInternalCommand))
	handle("POST /v1/internal/promote", m.toLeader(m.postPromote))
	handle("POST /v1/join", m.toLeader(m.postJoin))
	handle("GET /v1/join-tokens/{kind}", m.toLeader(m.joinToken))
	handle("POST /v1/join-tokens/{kind}/rotate", m.toLeader(m.joinToken))
	handle("POST /v1/certs/renew", m.postRenew)
	handle("GET /v1/ca", m.caInfo)
	handle("POST /v1/ca/rotate", m.toLeader(m.rotateCA))
	handle("GET /v1/services/{ref}/logs", m.serviceLogs)
	handle("GET /v1/tasks/{ref}/logs", m.taskLogs)
	handle("GET /v1/images", m.proxyAgent)
	handle("POST /v1/images/load", m.proxyAgent)
	mux.Handle("GET /metrics", m.metrics.handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, api.Errorf(api.CodeNotFound, "no endpoint %s %s: the API lives under /v1 (services, tasks, nodes, watch, info)", r.Method, r.URL.Path))
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, api.Errorf(api.CodeInternal, "encode response: %v", err))
		return
	}
	writeRaw(w, code, b)
}

func writeRaw(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(b)
	w.Write([]byte{'\n'})
}

// writeRawList writes stored JSON objects as one array.
func writeRawList(w http.ResponseWriter, items [][]byte) {
	n := 2
	for _, it := range items {
		n += len(it) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	b = append(b, ']')
	writeRaw(w, http.StatusOK, b)
}

func writeError(w http.ResponseWriter, err error) {
	var e *api.Error
	if !errors.As(err, &e) {
		e = api.Errorf(api.CodeInternal, "%v", err)
	}
	writeJSON(w, e.HTTPStatus(), e)
}

// decodeBody reads one JSON value into v, refusing unknown fields by name.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	// curl -d sends application/x-www-form-urlencoded: take it as JSON, so
	// the API stays curl-able; refuse what is clearly something else.
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") &&
		!strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return api.Errorf(api.CodeUnsupported, "the body must be JSON (Content-Type application/json), not %q; for YAML files use warrenctl apply -f", ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return bodyError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return bodyError(io.EOF)
	}
	return unmarshalStrict(body, v)
}

// unmarshalStrict decodes one JSON value into v as api.UnmarshalStrict
// does, with errors a person can act on.
func unmarshalStrict(b []byte, v any) error {
	if err := api.UnmarshalStrict(b, v); err != nil {
		return bodyError(err)
	}
	return nil
}

func bodyError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, api.ErrTrailing):
		return api.Errorf(api.CodeInvalid, "the body holds more than one JSON value: send exactly one")
	case errors.Is(err, io.EOF):
		return api.Errorf(api.CodeInvalid, "the request body is empty: send a JSON object")
	case errors.As(err, &tooBig):
		return api.Errorf(api.CodeTooLarge, "the request body is larger than %d bytes", maxBody)
	case errors.As(err, &syn):
		return api.Errorf(api.CodeInvalid, "the body is not valid JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		return api.Errorf(api.CodeInvalid, "field %q: expected %s, got a JSON %s", typ.Field, typ.Type, typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		return &api.Error{Code: api.CodeInvalid, Message: fmt.Sprintf("unknown field %s: check its spelling against the API reference", name),
			Fields: []api.FieldError{{Field: strings.Trim(name, `"`), Message: "unknown field"}}}
	default:
		return api.Errorf(api.CodeInvalid, "cannot read the body: %v", err)
	}
}

// queryVersion reads ?version=N, the version an update is based on.
func queryVersion(r *http.Request) (uint64, error) {
	s := r.URL.Query().Get("version")
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, api.Errorf(api.CodeInvalid, "version %q is not a number: pass the version field of the object you read", s)
	}
	return v, nil
}

func queryBool(r *http.Request, name string) bool {
	if !r.URL.Query().Has(name) {
		return false
	}
	v := r.URL.Query().Get(name)
	return v == "" || v == "1" || v == "true"
}

// consistent makes a read see every write committed before it, when the
// caller asks with ?consistent.
func (m *Manager) consistent(r *http.Request) error {
	if !queryBool(r, "consistent") {
		return nil
	}
	if err := m.raft.r.Barrier(5 * time.Second).Error(); err != nil {
		return api.Errorf(api.CodeNotLeader, "a consistent read needs the leader (%v): read without ?consistent, or retry", err)
	}
	return nil
}
