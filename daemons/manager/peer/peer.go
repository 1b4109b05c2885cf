// Package peer is the one way a manager (or a worker's manager) calls
// another manager's API: by node ID, over the node port's mutual TLS, with
// the caller it acts for named in authz.Header, bodies read to the end so
// connections are reused, and errors that name the manager.
package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/authz"
)

// Dialer reaches other managers' APIs by node ID.
type Dialer interface {
	// Client returns an HTTP client and the base URL of a manager's API.
	Client(nodeID string) (*http.Client, string, error)
}

// Client calls other managers.
type Client struct{ Dialer Dialer }

// ErrNoPeers means the manager has no way to reach others (no node port).
var ErrNoPeers = errors.New("peer: this manager cannot reach other managers (no node port configured)")

// Request is one call to a manager.
type Request struct {
	Method, Path string
	// Body is JSON-encoded unless it is already []byte (sent as is, with
	// ContentType).
	Body        any
	ContentType string
	// As is the caller the request is made for; the zero Caller is the
	// calling manager itself.
	As authz.Caller
	// Header holds more headers to send.
	Header http.Header
}

// Do sends req to manager id and decodes a JSON answer into out (if not
// nil). A refusal comes back as the manager's *api.Error.
func (c *Client) Do(ctx context.Context, id string, req Request, out any) error {
	resp, err := c.Send(ctx, id, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("peer: read %s %s from manager %s: %w", req.Method, req.Path, id, err)
	}
	if resp.StatusCode >= 300 {
		return answerError(id, resp, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("peer: decode %s %s from manager %s: %w", req.Method, req.Path, id, err)
	}
	return nil
}

// Send sends req to manager id and returns the answer as it comes (the
// caller closes its body), whatever its status.
func (c *Client) Send(ctx context.Context, id string, req Request) (*http.Response, error) {
	if c == nil || c.Dialer == nil {
		return nil, ErrNoPeers
	}
	hc, base, err := c.Dialer.Client(id)
	if err != nil {
		return nil, fmt.Errorf("peer: manager %s: %w", id, err)
	}
	var rd io.Reader
	ct := req.ContentType
	switch b := req.Body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, fmt.Errorf("peer: encode %s %s: %w", req.Method, req.Path, err)
		}
		rd, ct = bytes.NewReader(raw), "application/json"
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, base+req.Path, rd)
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	for k, vs := range req.Header {
		hr.Header[k] = vs
	}
	if ct != "" {
		hr.Header.Set("Content-Type", ct)
	}
	if req.As.Kind != authz.Anonymous {
		hr.Header.Set(authz.Header, req.As.Encode())
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("peer: %s %s on manager %s: %w", req.Method, req.Path, id, err)
	}
	return resp, nil
}

// answerError turns a refusal into the manager's *api.Error.
func answerError(id string, resp *http.Response, b []byte) error {
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return &e
	}
	return &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf("manager %s answered %s: %s", id, resp.Status, strings.TrimSpace(string(b)))}
}
