package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

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

// PrestageImage makes image present on node (ID or hostname) ahead of a
// rollout: fetched from a node that holds it, or pulled.
func (c *Client) PrestageImage(ctx context.Context, node, image string) (*api.PrestageResult, error) {
	var out api.PrestageResult
	path := "/v1/nodes/" + url.PathEscape(node) + "/agent/v1/images/prestage?ref=" + url.QueryEscape(image)
	if err := c.do(ctx, http.MethodPost, path, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
