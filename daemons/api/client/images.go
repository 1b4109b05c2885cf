package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
)

// Images lists the images on the manager's node.
func (c *Client) Images(ctx context.Context) ([]api.Image, error) {
	var out []api.Image
	return out, c.do(ctx, http.MethodGet, "/v1/images", nil, &out)
}

// LoadImage sends an OCI-layout or docker-archive tarball to the manager's
// node, which imports and unpacks it.
func (c *Client) LoadImage(ctx context.Context, tarball io.Reader) ([]api.Image, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/images/load", tarball)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w at %s (%w)", ErrUnreachable, c.host, unwrapNet(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return nil, decodeError(resp)
	}
	var out []api.Image
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("client: decode image load: %w", err)
	}
	return out, nil
}

// LogOptions select what a log stream holds.
type LogOptions struct {
	Follow bool
	// Tail is the number of lines from the end to start with; negative
	// means all.
	Tail int
}

func (o LogOptions) query() string {
	v := url.Values{}
	if o.Follow {
		v.Set("follow", "1")
	}
	if o.Tail >= 0 {
		v.Set("tail", strconv.Itoa(o.Tail))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// ServiceLogs streams the logs of a service's tasks, each line prefixed
// with its task's name. Close the reader when done.
func (c *Client) ServiceLogs(ctx context.Context, ref string, o LogOptions) (io.ReadCloser, error) {
	resp, err := c.request(ctx, http.MethodGet, "/v1/services/"+esc(ref)+"/logs"+o.query(), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// TaskLogs streams one task's log.
func (c *Client) TaskLogs(ctx context.Context, ref string, o LogOptions) (io.ReadCloser, error) {
	resp, err := c.request(ctx, http.MethodGet, "/v1/tasks/"+esc(ref)+"/logs"+o.query(), nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
