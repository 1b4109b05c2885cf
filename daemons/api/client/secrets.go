package client

import (
	"context"
	"fmt"

	"github.com/warren-edge/warren/daemons/api"
)

// Secrets and configs: the calls are the same for both; kind is
// api.KindSecret or api.KindConfig.

func filePath(kind string) string { return "/v1/" + kind + "s" }

// Secrets lists the secrets (never their values).
func (c *Client) Secrets(ctx context.Context) ([]api.Secret, error) {
	var out []api.Secret
	return out, c.do(ctx, "GET", filePath(api.KindSecret), nil, &out)
}

// Secret reads one secret, with its versions and the tasks that hold each.
func (c *Client) Secret(ctx context.Context, ref string) (*api.Secret, error) {
	var out api.Secret
	return &out, c.do(ctx, "GET", filePath(api.KindSecret)+"/"+esc(ref), nil, &out)
}

// Configs lists the configs.
func (c *Client) Configs(ctx context.Context) ([]api.Config, error) {
	var out []api.Config
	return out, c.do(ctx, "GET", filePath(api.KindConfig), nil, &out)
}

// Config reads one config; with data, each version's data too.
func (c *Client) Config(ctx context.Context, ref string, data bool) (*api.Config, error) {
	var out api.Config
	q := ""
	if data {
		q = "?data"
	}
	return &out, c.do(ctx, "GET", filePath(api.KindConfig)+"/"+esc(ref)+q, nil, &out)
}

// CreateFile creates a secret or config.
func (c *Client) CreateFile(ctx context.Context, kind string, req api.SecretRequest) (*api.Secret, error) {
	var out api.Secret
	return &out, c.do(ctx, "POST", filePath(kind), req, &out)
}

// UpdateFile gives a secret or config a new version.
func (c *Client) UpdateFile(ctx context.Context, kind, ref string, data []byte) (*api.Secret, error) {
	var out api.Secret
	return &out, c.do(ctx, "PUT", filePath(kind)+"/"+esc(ref), api.SecretRequest{Data: data}, &out)
}

// RemoveFile removes a secret or config (refused while a service uses it).
func (c *Client) RemoveFile(ctx context.Context, kind, ref string) error {
	return c.do(ctx, "DELETE", filePath(kind)+"/"+esc(ref), nil, nil)
}

// NodeFile fetches, for node's task, version of the secret or config id:
// given only to that node, while it runs a task that uses that version.
func (c *Client) NodeFile(ctx context.Context, kind, node, id string, version uint64) (*api.SecretValue, error) {
	var out api.SecretValue
	return &out, c.do(ctx, "GET", fmt.Sprintf("/v1/nodes/%s/%ss/%s/%d", esc(node), kind, esc(id), version), nil, &out)
}
