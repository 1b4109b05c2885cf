package api

import (
	"errors"
	"fmt"
	"strings"
)

// Error codes, each with its HTTP status.
const (
	CodeInvalid     = "invalid"      // 400: the request is malformed or breaks a rule
	CodeNotFound    = "not_found"    // 404
	CodeConflict    = "conflict"     // 409: name taken, port clash, version moved on
	CodeNotLeader   = "not_leader"   // 503: no leader to take the write
	CodeUnavailable = "unavailable"  // 503
	CodeInternal    = "internal"     // 500
	CodeForbidden   = "forbidden"    // 403
	CodeTooLarge    = "too_large"    // 413
	CodeUnsupported = "unsupported"  // 415
	CodeAmbiguous   = "ambiguous_id" // 409: an ID prefix matched several objects
	CodeTooMany     = "too_many"     // 429: slow down (joins per address)
)

// Error is what every API endpoint returns on failure, as a JSON body. The
// message says what is wrong and, where it helps, what to do.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Fields lists each invalid field and why, for validation errors.
	Fields []FieldError `json:"fields,omitempty"`
}

// FieldError names one invalid field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	var b strings.Builder
	b.WriteString(e.Message)
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "\n  %s: %s", f.Field, f.Message)
	}
	return b.String()
}

// HTTPStatus maps the error's code to an HTTP status. (The numbers are
// written out so that the pure packages that use api link no net/http.)
func (e *Error) HTTPStatus() int {
	switch e.Code {
	case CodeInvalid:
		return 400 // Bad Request
	case CodeNotFound:
		return 404 // Not Found
	case CodeConflict, CodeAmbiguous:
		return 409 // Conflict
	case CodeForbidden:
		return 403 // Forbidden
	case CodeTooLarge:
		return 413 // Request Entity Too Large
	case CodeUnsupported:
		return 415 // Unsupported Media Type
	case CodeTooMany:
		return 429 // Too Many Requests
	case CodeNotLeader, CodeUnavailable:
		return 503 // Service Unavailable
	default:
		return 500 // Internal Server Error
	}
}

// Errorf makes an *Error with a code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// IsCode says whether err is an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// NotFound says whether err means the object does not exist.
func NotFound(err error) bool { return IsCode(err, CodeNotFound) }
