// Package peer is the one way a manager (or a worker's manager) calls
// another manager's API: by node ID, over the node port's mutual TLS, with
// the caller it acts for named in authz.Header, bodies read to the end so
// connections are reused, and errors that name the manager.
//
// Most calls go to managers (the leader, the managers a worker follows),
// and a peer that is not a manager is refused at the handshake. A request
// placed on the node that runs a task (logs, exec) goes to that node's
// warren-manager whatever its role (Request.Node, Proxy): a worker's
// manager serves those on its node port, and only those.
package peer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/manager/authz"
)

// Dialer reaches other managers' APIs by node ID.
type Dialer interface {
	// Client returns an HTTP client and the base URL of a manager's API.
	Client(nodeID string) (*http.Client, string, error)
	// NodeClient is Client for the manager of a node of either role (a
	// worker's too), at the address of its node record.
	NodeClient(nodeID string) (*http.Client, string, error)
}

// Client calls other managers.
type Client struct{ Dialer Dialer }

// ForwardedHeader marks a request a manager passed on (to the leader, to
// the node that runs a task): the one it reaches never passes it on
// again. Its value is the sender's node ID.
const ForwardedHeader = "X-Warren-Forwarded-By"

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
	// Node sends the request to the manager of node id whatever its role
	// (NodeClient); without it, only a manager is accepted.
	Node bool
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
	hc, base, err := c.dial(id, req.Node)
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("peer: %s %s on %s %s: %w", req.Method, req.Path, what(req.Node), id, err)
	}
	return resp, nil
}

func (c *Client) dial(id string, node bool) (*http.Client, string, error) {
	if c == nil || c.Dialer == nil {
		return nil, "", ErrNoPeers
	}
	dial := c.Dialer.Client
	if node {
		dial = c.Dialer.NodeClient
	}
	hc, base, err := dial(id)
	if err != nil {
		return nil, "", fmt.Errorf("peer: %s %s: %w", what(node), id, err)
	}
	return hc, base, nil
}

func what(node bool) string {
	if node {
		return "node"
	}
	return "manager"
}

// HeaderWait bounds how long Proxy (and SendNode's callers) wait for a
// node's answer to begin: a node cut off since its connection was last
// used would otherwise hold the request until TCP gives up.
const HeaderWait = 5 * time.Second

// Proxy passes r on to the manager of node id (either role) and its answer
// back as it comes: the request body and the answer streamed, a protocol
// upgrade (an exec session) spliced both ways until either end closes. It
// names as as the caller (replacing whatever r said) and adds header.
// When the node cannot be reached, or does not begin to answer within
// HeaderWait, fail writes the error, which names the node; an answer that
// breaks once it began is cut off, never ended as if complete, so the
// reader sees that it broke.
func (c *Client) Proxy(w http.ResponseWriter, r *http.Request, id string, as authz.Caller, header http.Header, fail func(http.ResponseWriter, error)) {
	hc, base, err := c.dial(id, true)
	if err != nil {
		fail(w, err)
		return
	}
	u, err := url.Parse(base)
	if err != nil {
		fail(w, fmt.Errorf("peer: node %s: base %q: %w", id, base, err))
		return
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	outer := r.Context()
	ctx, cancel := context.WithCancelCause(outer)
	defer cancel(nil)
	wait := time.AfterFunc(HeaderWait, func() { cancel(fmt.Errorf("no answer within %s", HeaderWait)) })
	defer wait.Stop()
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host, pr.Out.Host = u.Scheme, u.Host, u.Host
			pr.Out.Header.Del(authz.Header)
			if as.Kind != authz.Anonymous {
				pr.Out.Header.Set(authz.Header, as.Encode())
			}
			for k, vs := range header {
				pr.Out.Header[k] = vs
			}
		},
		Transport:     rt,
		FlushInterval: -1,
		ModifyResponse: func(*http.Response) error {
			wait.Stop()
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if ctx.Err() != nil && outer.Err() == nil {
				err = context.Cause(ctx) // the answer did not begin in time
			}
			fail(w, fmt.Errorf("peer: %s %s on node %s: %w", r.Method, r.URL.Path, id, err))
		},
		ErrorLog: log.New(io.Discard, "", 0),
	}
	p.ServeHTTP(w, r.WithContext(ctx))
}

// answerError turns a refusal into the manager's *api.Error.
func answerError(id string, resp *http.Response, b []byte) error {
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return &e
	}
	return &api.Error{Code: api.CodeUnavailable, Message: fmt.Sprintf("manager %s answered %s: %s", id, resp.Status, strings.TrimSpace(string(b)))}
}
