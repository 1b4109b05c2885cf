// Package httpx is how the manager's handlers speak HTTP: JSON bodies read
// strictly and bounded, answers and errors written as JSON, and the query
// parameters every endpoint reads the same way.
package httpx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

// MaxBody bounds request bodies; a service spec is a few KiB.
const MaxBody = 1 << 20

// JSON writes v as the JSON answer.
func JSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		Error(w, api.Errorf(api.CodeInternal, "encode response: %v", err))
		return
	}
	Raw(w, code, b)
}

// Raw writes stored JSON as the answer.
func Raw(w http.ResponseWriter, code int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	w.Write(b)
	w.Write([]byte{'\n'})
}

// RawList writes stored JSON objects as one array.
func RawList(w http.ResponseWriter, items [][]byte) {
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
	Raw(w, http.StatusOK, b)
}

// Error writes err as a JSON api.Error with its HTTP status; an error that
// is not an *api.Error is an internal one.
func Error(w http.ResponseWriter, err error) {
	var e *api.Error
	if !errors.As(err, &e) {
		e = api.Errorf(api.CodeInternal, "%v", err)
	}
	JSON(w, e.HTTPStatus(), e)
}

// Body reads the request body whole, bounded by MaxBody, and refuses what
// is clearly not JSON.
func Body(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	// curl -d sends application/x-www-form-urlencoded: take it as JSON, so
	// the API stays curl-able; refuse what is clearly something else.
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") &&
		!strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil, api.Errorf(api.CodeUnsupported, "the body must be JSON (Content-Type application/json), not %q; for YAML files use warrenctl apply -f", ct)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		return nil, BodyError(err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, BodyError(io.EOF)
	}
	return body, nil
}

// Decode reads one JSON value into v, refusing unknown fields by name.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := Body(w, r)
	if err != nil {
		return err
	}
	return Unmarshal(body, v)
}

// Unmarshal decodes one JSON value into v as api.UnmarshalStrict does,
// with errors a person can act on.
func Unmarshal(b []byte, v any) error {
	if err := api.UnmarshalStrict(b, v); err != nil {
		return BodyError(err)
	}
	return nil
}

// BodyError says what is wrong with a body that did not decode.
func BodyError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, api.ErrTrailing):
		return api.Errorf(api.CodeInvalid, "the body holds more than one JSON value: send exactly one")
	case errors.Is(err, io.EOF):
		return api.Errorf(api.CodeInvalid, "the request body is empty: send a JSON object")
	case errors.As(err, &tooBig):
		return api.Errorf(api.CodeTooLarge, "the request body is larger than %d bytes", MaxBody)
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

// Version reads ?version=N, the version an update is based on.
func Version(r *http.Request) (uint64, error) {
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

// Bool reads a flag parameter: present with no value, 1 or true.
func Bool(r *http.Request, name string) bool {
	if !r.URL.Query().Has(name) {
		return false
	}
	v := r.URL.Query().Get(name)
	return v == "" || v == "1" || v == "true"
}
