// Package client is the typed Go client of Warren's HTTP API, used by
// warrenctl, the agent, dns, ingress and the tests. It talks to a manager
// over its unix socket (unix:///run/warren/api.sock, the default) or over
// HTTP(S), or over a transport of the caller's (NewHTTP).
//
// Follower is the one watch follower of the daemons (agent, dns, the
// worker's replica): it turns a watch stream into batches of whole indexes
// (api.WatchBatch), reconnects and resumes. Watch is the raw stream.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/pki"
)

// DefaultHost is where a node's manager listens.
const DefaultHost = "unix:///run/warren/api.sock"

// DefaultAgentHost is where a node's agent listens (its break-glass
// routes: warrenctl --local).
const DefaultAgentHost = "unix:///run/warren/agent.sock"

// Client calls one manager's API.
type Client struct {
	host  string
	base  string // scheme://authority the HTTP client sees
	hc    *http.Client
	local bool // a unix socket
	// Retry, when set, makes a call that found no leader, or no manager
	// listening, try again (the same write: it is applied once) until it
	// has tried for Retry or its context ends. warrenctl sets it; daemons
	// that retry on their own leave it zero.
	Retry time.Duration
	// Retrying, when set, hears of each failed try that Retry will make
	// again, and how long until then (warrenctl says why it waits).
	Retrying func(err error, wait time.Duration)
	// Header is sent with every request.
	Header http.Header
}

// New makes a client for host: unix:///PATH or a plain socket path (a
// node's local API), or http://HOST:PORT (an API behind a proxy). An
// empty host means DefaultHost. A manager's node port (https://HOST:PORT)
// needs an operator's certificate: NewTLS.
func New(host string) (*Client, error) {
	if host == "" {
		host = DefaultHost
	}
	c := &Client{host: host}
	switch {
	case strings.HasPrefix(host, "unix://") || strings.HasPrefix(host, "/"):
		path := strings.TrimPrefix(host, "unix://")
		if path == "" {
			return nil, fmt.Errorf("client: %q names no socket path", host)
		}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}
		c.hc = &http.Client{Transport: tr}
		c.base = "http://warren"
		c.local = true
	case strings.HasPrefix(host, "https://"):
		return nil, fmt.Errorf("client: %s is a manager's node port: it speaks mutual TLS only; give an operator's certificate (warrenctl --tls-dir DIR, made by warrenctl operator add)", host)
	case strings.HasPrefix(host, "http://"):
		// Plain HTTP: a manager's API behind a proxy of the operator's
		// own (or a test's fake). A node port refuses it (below).
		u, err := url.Parse(host)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("client: %q is not a URL", host)
		}
		c.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		c.base = "http://" + u.Host
	default:
		return nil, fmt.Errorf("client: host %q: use unix:///path/to/api.sock, or https://HOST:PORT with an operator's certificate", host)
	}
	return c, nil
}

// The files of an operator's credentials, as warrenctl operator add
// writes them to a directory.
const (
	OperatorKeyFile  = "operator.key"
	OperatorCertFile = "operator.crt"
	OperatorCAFile   = "ca.crt"
)

// NewTLS makes a client for a manager's node port, https://HOST:PORT,
// with the operator credentials in dir (OperatorKeyFile, OperatorCertFile,
// OperatorCAFile). It trusts only the cluster's CA, and only a manager's
// certificate at the other end.
func NewTLS(host, dir string) (*Client, error) {
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("client: %q: a node port is https://HOST:PORT", host)
	}
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("client: operator credentials: %w (make them with warrenctl operator add NAME --out %s on a manager)", err, dir)
		}
		return b, nil
	}
	keyPEM, err := read(OperatorKeyFile)
	if err != nil {
		return nil, err
	}
	certPEM, err := read(OperatorCertFile)
	if err != nil {
		return nil, err
	}
	caPEM, err := read(OperatorCAFile)
	if err != nil {
		return nil, err
	}
	bundle, err := pki.ParseBundle(caPEM)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", filepath.Join(dir, OperatorCAFile), err)
	}
	creds, err := pki.NewCredentials(certPEM, keyPEM, bundle)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", filepath.Join(dir, OperatorCertFile), err)
	}
	cfg := pki.ClientConfig(creds, pki.RequireRole(pki.RoleManager))
	cfg.NextProtos = []string{"http/1.1"}
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	return &Client{host: host, base: "https://" + u.Host, hc: &http.Client{Transport: tr}}, nil
}

// NewHTTP makes a client that sends its requests with hc to base, an
// http(s)://AUTHORITY URL: for transports New does not make, such as a
// worker's mTLS client of a manager's node port (base https://NODEID).
// Close closes hc's idle connections.
func NewHTTP(base string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base %q: use http(s)://HOST", base)
	}
	if hc == nil {
		return nil, fmt.Errorf("client: base %s: no HTTP client", base)
	}
	return &Client{host: base, base: u.Scheme + "://" + u.Host, hc: hc}, nil
}

// Host is the address the client was made for.
func (c *Client) Host() string { return c.host }

// HTTP returns the client's *http.Client and the base URL its API paths go
// under, for a caller that reads a stream of its own (an image's blobs).
func (c *Client) HTTP() (*http.Client, string) { return c.hc, c.base }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// ErrUnreachable wraps failures to reach the manager at all.
var ErrUnreachable = errors.New("client: cannot reach the warren manager")

func (c *Client) request(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var raw []byte
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("client: encode request: %w", err)
		}
		raw = b
	}
	return c.requestRaw(ctx, method, path, raw, "")
}

// requestRaw is request with a body sent as it is, of type ct ("": JSON).
func (c *Client) requestRaw(ctx context.Context, method, path string, raw []byte, ct string) (*http.Response, error) {
	// A write is named once, so that sending it again (below, or through
	// a manager that passes it on to a new leader) applies it once.
	reqID := ""
	if method != http.MethodGet && method != http.MethodHead {
		reqID = api.NewRequestID()
	}
	var deadline time.Time
	if c.Retry > 0 {
		deadline = time.Now().Add(c.Retry)
	}
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		hdr := http.Header{}
		if reqID != "" {
			hdr.Set(api.RequestIDHeader, reqID)
		}
		if ct != "" {
			hdr.Set("Content-Type", ct)
		}
		resp, err := c.send(ctx, method, path, raw, hdr)
		if err == nil || deadline.IsZero() || !retryable(err) || time.Now().Add(backoff).After(deadline) {
			return resp, err
		}
		if c.Retrying != nil {
			c.Retrying(err, backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err() // interrupted while waiting: say so
		case <-t.C:
		}
	}
}

// retryable says whether a failed call may succeed soon: no leader yet
// (an election), or no manager listening on the socket or port (one
// starting).
func retryable(err error) bool {
	return api.IsCode(err, api.CodeNotLeader) ||
		errors.Is(err, ErrUnreachable) && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT))
}

// send makes one try of a request, with hdr's headers besides.
func (c *Client) send(ctx context.Context, method, path string, body []byte, hdr http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range c.Header {
		req.Header[k] = vs
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if d, ok := ctx.Deadline(); ok {
		req.Header.Set(api.TimeoutHeader, time.Until(d).Round(time.Millisecond).String())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if c.local {
			return nil, fmt.Errorf("%w at %s (%w): is warren-manager running, and may you use its socket (root or group warren)?", ErrUnreachable, c.host, unwrapNet(err))
		}
		if strings.HasPrefix(c.base, "http://") && hungUp(err) {
			// A node port closes a plain HTTP connection without a word.
			return nil, fmt.Errorf("client: %s hung up without an answer (%w): if it is a manager's node port, that speaks mutual TLS only: use https:// with an operator's certificate (warrenctl --tls-dir DIR)", c.host, unwrapNet(err))
		}
		return nil, fmt.Errorf("%w at %s (%w): is the address the manager's node port, and is the operator certificate of this cluster?", ErrUnreachable, c.host, unwrapNet(err))
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		err := decodeError(resp)
		if resp.StatusCode == http.StatusBadRequest && strings.Contains(err.Error(), "HTTP request to an HTTPS server") {
			return nil, fmt.Errorf("client: %s is a manager's node port: it speaks mutual TLS only: use https:// with an operator's certificate (warrenctl --tls-dir DIR)", c.host)
		}
		return nil, err
	}
	return resp, nil
}

// hungUp says whether the server closed the connection instead of
// answering.
func hungUp(err error) bool {
	// net/http says "server closed idle connection" (an unexported error)
	// when the peer closes a new connection before answering, as often as
	// it says EOF.
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		strings.Contains(err.Error(), "server closed idle connection")
}

func unwrapNet(err error) error {
	var op *net.OpError
	if errors.As(err, &op) {
		return op.Err
	}
	return err
}

func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return &e
	}
	return &api.Error{Code: api.CodeInternal, Message: fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(b)))}
}

// do sends a request and decodes a JSON response into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	// Read to the end, so the connection is reused, then decode.
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("client: read %s %s: %w", method, path, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("client: decode %s %s: %w", method, path, err)
	}
	return nil
}

func esc(ref string) string { return url.PathEscape(ref) }

// ReadOptions tune a read.
type ReadOptions struct {
	// Consistent makes the read wait for every earlier committed write.
	Consistent bool
	// Status asks for services' task counts (Service.Status).
	Status bool
}

func (o ReadOptions) query() string {
	v := url.Values{}
	if o.Consistent {
		v.Set("consistent", "1")
	}
	if o.Status {
		v.Set("status", "1")
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// Info describes the manager.
func (c *Client) Info(ctx context.Context) (*api.Info, error) {
	var out api.Info
	return &out, c.do(ctx, http.MethodGet, "/v1/info", nil, &out)
}

// Health returns nil when the manager can serve.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/v1/health", nil, nil)
}

// Services lists every service.
func (c *Client) Services(ctx context.Context, o ReadOptions) ([]api.Service, error) {
	var out []api.Service
	return out, c.do(ctx, http.MethodGet, "/v1/services"+o.query(), nil, &out)
}

// Service reads a service by name, ID or ID prefix.
func (c *Client) Service(ctx context.Context, ref string, o ReadOptions) (*api.Service, error) {
	var out api.Service
	return &out, c.do(ctx, http.MethodGet, "/v1/services/"+esc(ref)+o.query(), nil, &out)
}

// CreateService creates a service.
func (c *Client) CreateService(ctx context.Context, spec api.ServiceSpec) (*api.Service, error) {
	var out api.Service
	return &out, c.do(ctx, http.MethodPost, "/v1/services", spec, &out)
}

// CreateServiceDryRun shows what creating the service would do.
func (c *Client) CreateServiceDryRun(ctx context.Context, spec api.ServiceSpec) (*api.DryRun, error) {
	var out api.DryRun
	return &out, c.do(ctx, http.MethodPost, "/v1/services?dry-run", spec, &out)
}

// UpdateService replaces a service's spec. A non-zero version makes the
// update fail with a conflict if the service changed since that version.
func (c *Client) UpdateService(ctx context.Context, ref string, spec api.ServiceSpec, version uint64) (*api.Service, error) {
	var out api.Service
	return &out, c.do(ctx, http.MethodPut, "/v1/services/"+esc(ref)+versionQuery(version, ""), spec, &out)
}

// UpdateServiceDryRun shows what the update would do.
func (c *Client) UpdateServiceDryRun(ctx context.Context, ref string, spec api.ServiceSpec, version uint64) (*api.DryRun, error) {
	var out api.DryRun
	return &out, c.do(ctx, http.MethodPut, "/v1/services/"+esc(ref)+versionQuery(version, "dry-run"), spec, &out)
}

func versionQuery(version uint64, flag string) string {
	var q []string
	if version != 0 {
		q = append(q, "version="+strconv.FormatUint(version, 10))
	}
	if flag != "" {
		q = append(q, flag)
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + strings.Join(q, "&")
}

// ScaleService sets a replicated service's replica count.
func (c *Client) ScaleService(ctx context.Context, ref string, replicas uint64) (*api.Service, error) {
	var out api.Service
	return &out, c.do(ctx, http.MethodPost, "/v1/services/"+esc(ref)+"/scale", api.ScaleRequest{Replicas: &replicas}, &out)
}

// PromoteService promotes the canaries of a service's update.
func (c *Client) PromoteService(ctx context.Context, ref string) (*api.Service, error) {
	var out api.Service
	return &out, c.do(ctx, http.MethodPost, "/v1/services/"+esc(ref)+"/promote", struct{}{}, &out)
}

// RollbackService returns a service to its previous spec.
func (c *Client) RollbackService(ctx context.Context, ref string) (*api.Service, error) {
	var out api.Service
	return &out, c.do(ctx, http.MethodPost, "/v1/services/"+esc(ref)+"/rollback", struct{}{}, &out)
}

// RemoveService deletes a service; its tasks are stopped and removed.
func (c *Client) RemoveService(ctx context.Context, ref string, version uint64) error {
	return c.do(ctx, http.MethodDelete, "/v1/services/"+esc(ref)+versionQuery(version, ""), nil, nil)
}

// Deploy creates, updates and (with req.Prune) removes services as one
// deployment, all or nothing.
func (c *Client) Deploy(ctx context.Context, req api.DeploymentRequest) (*api.Deployment, error) {
	var out api.Deployment
	return &out, c.do(ctx, http.MethodPost, "/v1/deployments", req, &out)
}

// DeployDryRun says what Deploy would do, and changes nothing.
func (c *Client) DeployDryRun(ctx context.Context, req api.DeploymentRequest) (*api.Deployment, error) {
	var out api.Deployment
	return &out, c.do(ctx, http.MethodPost, "/v1/deployments?dry-run", req, &out)
}

// TaskQuery selects tasks; empty fields select all.
type TaskQuery struct {
	Service string // name, ID or prefix
	Node    string // ID, prefix or hostname
	ReadOptions
}

// Tasks lists tasks.
func (c *Client) Tasks(ctx context.Context, q TaskQuery) ([]api.Task, error) {
	v := url.Values{}
	if q.Service != "" {
		v.Set("service", q.Service)
	}
	if q.Node != "" {
		v.Set("node", q.Node)
	}
	if q.Consistent {
		v.Set("consistent", "1")
	}
	path := "/v1/tasks"
	if len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out []api.Task
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// Task reads one task by ID or prefix.
func (c *Client) Task(ctx context.Context, ref string) (*api.Task, error) {
	var out api.Task
	return &out, c.do(ctx, http.MethodGet, "/v1/tasks/"+esc(ref), nil, &out)
}

// ReportTaskStatus records what a node's agent observed.
func (c *Client) ReportTaskStatus(ctx context.Context, nodeID string, updates []api.TaskStatusUpdate) (*api.TaskStatusResult, error) {
	var out api.TaskStatusResult
	return &out, c.do(ctx, http.MethodPost, "/v1/nodes/"+esc(nodeID)+"/tasks/status", api.TaskStatusRequest{NodeID: nodeID, Updates: updates}, &out)
}

// Volumes lists the volumes.
func (c *Client) Volumes(ctx context.Context, o ReadOptions) ([]api.Volume, error) {
	var out []api.Volume
	return out, c.do(ctx, http.MethodGet, "/v1/volumes"+o.query(), nil, &out)
}

// Volume reads a volume by name.
func (c *Client) Volume(ctx context.Context, name string) (*api.Volume, error) {
	var out api.Volume
	return &out, c.do(ctx, http.MethodGet, "/v1/volumes/"+esc(name), nil, &out)
}

// CreateVolume makes a volume.
func (c *Client) CreateVolume(ctx context.Context, spec api.VolumeSpec) (*api.Volume, error) {
	var out api.Volume
	return &out, c.do(ctx, http.MethodPost, "/v1/volumes", spec, &out)
}

// RemoveVolume deletes a volume (and, on its node, its data); refused
// while a task uses it.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/volumes/"+esc(name), nil, nil)
}

// Nodes lists the nodes.
func (c *Client) Nodes(ctx context.Context, o ReadOptions) ([]api.Node, error) {
	var out []api.Node
	return out, c.do(ctx, http.MethodGet, "/v1/nodes"+o.query(), nil, &out)
}

// Node reads a node by ID, prefix or hostname.
func (c *Client) Node(ctx context.Context, ref string) (*api.Node, error) {
	var out api.Node
	return &out, c.do(ctx, http.MethodGet, "/v1/nodes/"+esc(ref), nil, &out)
}

// UpdateNodeSpec replaces a node's spec, refused if the node moved on from
// version (when not zero).
func (c *Client) UpdateNodeSpec(ctx context.Context, ref string, spec api.NodeSpec, version uint64) (*api.Node, error) {
	var out api.Node
	return &out, c.do(ctx, http.MethodPut, "/v1/nodes/"+esc(ref)+"/spec"+versionQuery(version, ""), spec, &out)
}

// RemoveNode deletes a node from the cluster.
func (c *Client) RemoveNode(ctx context.Context, ref string, force bool) error {
	q := ""
	if force {
		q = "?force"
	}
	return c.do(ctx, http.MethodDelete, "/v1/nodes/"+esc(ref)+q, nil, nil)
}

// Heartbeat tells the managers the node's agent is alive.
func (c *Client) Heartbeat(ctx context.Context, nodeID string, hb api.Heartbeat) (*api.Node, error) {
	var out api.Node
	return &out, c.do(ctx, http.MethodPost, "/v1/nodes/"+esc(nodeID)+"/heartbeat", hb, &out)
}

// Raw performs a request and returns the response body, for endpoints the
// typed methods do not cover (e.g. /metrics).
func (c *Client) Raw(ctx context.Context, method, path string) ([]byte, error) {
	resp, err := c.request(ctx, method, path, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// JoinToken makes a new join token of a kind ("worker" or "manager"),
// shown only in this answer: rotate revokes the kind's others; a ttl > 0
// makes it expire then (manager tokens expire after 24h when not told).
func (c *Client) JoinToken(ctx context.Context, kind string, rotate bool, ttl time.Duration) (*api.JoinTokenInfo, error) {
	v := url.Values{}
	if ttl > 0 {
		v.Set("ttl", ttl.String())
	}
	if rotate {
		v.Set("rotate", "1")
	}
	q := ""
	if len(v) > 0 {
		q = "?" + v.Encode()
	}
	var out api.JoinTokenInfo
	return &out, c.do(ctx, http.MethodPost, "/v1/join-tokens/"+esc(kind)+q, struct{}{}, &out)
}

// JoinTokens lists the live join tokens (without their secrets).
func (c *Client) JoinTokens(ctx context.Context) ([]api.JoinTokenInfo, error) {
	var out []api.JoinTokenInfo
	return out, c.do(ctx, http.MethodGet, "/v1/join-tokens", nil, &out)
}

// RevokeJoinToken revokes a join token by ID.
func (c *Client) RevokeJoinToken(ctx context.Context, id string) (*api.JoinTokenInfo, error) {
	var out api.JoinTokenInfo
	return &out, c.do(ctx, http.MethodDelete, "/v1/join-tokens/"+esc(id), nil, &out)
}

// PromoteNode makes a worker a manager; DemoteNode the reverse.
func (c *Client) PromoteNode(ctx context.Context, ref string) (*api.Node, error) {
	var out api.Node
	return &out, c.do(ctx, http.MethodPost, "/v1/nodes/"+esc(ref)+"/promote", struct{}{}, &out)
}

// DemoteNode makes a manager a worker.
func (c *Client) DemoteNode(ctx context.Context, ref string) (*api.Node, error) {
	var out api.Node
	return &out, c.do(ctx, http.MethodPost, "/v1/nodes/"+esc(ref)+"/demote", struct{}{}, &out)
}

// CA describes the cluster's CA.
func (c *Client) CA(ctx context.Context) (*api.CAInfo, error) {
	var out api.CAInfo
	return &out, c.do(ctx, http.MethodGet, "/v1/ca", nil, &out)
}

// RotateCA starts a CA rotation, or with finish ends the running one.
func (c *Client) RotateCA(ctx context.Context, finish bool) (*api.CAInfo, error) {
	var out api.CAInfo
	q := ""
	if finish {
		q = "?finish"
	}
	return &out, c.do(ctx, http.MethodPost, "/v1/ca/rotate"+q, struct{}{}, &out)
}

// AddOperator asks for an operator certificate for the key whose request
// is in req (the key stays with the caller).
func (c *Client) AddOperator(ctx context.Context, req api.OperatorRequest) (*api.OperatorResponse, error) {
	var out api.OperatorResponse
	return &out, c.do(ctx, http.MethodPost, "/v1/operators", req, &out)
}

// Operators lists the cluster's operators.
func (c *Client) Operators(ctx context.Context) ([]api.Operator, error) {
	var out []api.Operator
	return out, c.do(ctx, http.MethodGet, "/v1/operators", nil, &out)
}

// RemoveOperator removes an operator: its certificates are refused from
// then on.
func (c *Client) RemoveOperator(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/operators/"+esc(name), nil, nil)
}
