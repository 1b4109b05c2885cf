package api

import (
	"bytes"
	"errors"

	json "github.com/segmentio/encoding/json"
)

// ErrTrailing is UnmarshalStrict's error for bytes after the JSON value.
var ErrTrailing = errors.New("more than one JSON value")

// UnmarshalStrict decodes one JSON value into v as the API reads request
// bodies: an unknown field is an error, and so is a field name in another
// case than documented (encoding/json would take "Name" for "name"), and
// anything but white space after the value.
func UnmarshalStrict(b []byte, v any) error {
	rest, err := json.Parse(b, v, json.DisallowUnknownFields|json.DontMatchCaseInsensitiveStructFields)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return ErrTrailing
	}
	return nil
}
