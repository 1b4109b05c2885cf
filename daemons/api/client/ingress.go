package client

import (
	"context"
	"io"
	"net/url"

	"github.com/warren-edge/warren/daemons/api"
)

// The ingress store, its locks and the secrets ingress routes name, for
// warren-ingress on node (its own node's ID: the socket or certificate it
// calls with must be that node's). See api/ingress.go.

func ingressPath(node, what string) string { return "/v1/nodes/" + esc(node) + "/ingress/" + what }

// IngressGet reads key and its value; api.NotFound(err) when there is
// none.
func (c *Client) IngressGet(ctx context.Context, node, key string) (*api.IngressObject, error) {
	var out api.IngressObject
	if err := c.do(ctx, "GET", ingressPath(node, "store")+"?key="+url.QueryEscape(key), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// IngressList lists the keys under prefix ("" for all), without their
// values: those one level down, and a Dir entry for each directory there;
// with recursive, every key under it.
func (c *Client) IngressList(ctx context.Context, node, prefix string, recursive bool) ([]api.IngressObject, error) {
	q := url.Values{"prefix": {prefix}}
	if recursive {
		q.Set("recursive", "1")
	}
	var out []api.IngressObject
	return out, c.do(ctx, "GET", ingressPath(node, "store")+"?"+q.Encode(), nil, &out)
}

// IngressPut sets key to value (at most api.MaxIngressValue bytes).
func (c *Client) IngressPut(ctx context.Context, node, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	resp, err := c.requestRaw(ctx, "PUT", ingressPath(node, "store")+"?key="+url.QueryEscape(key), value, "application/octet-stream")
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// IngressDelete removes key and every key under key/; api.NotFound(err)
// when there is none.
func (c *Client) IngressDelete(ctx context.Context, node, key string) error {
	return c.do(ctx, "DELETE", ingressPath(node, "store")+"?key="+url.QueryEscape(key), nil, nil)
}

// IngressLock takes lock name for req.Holder, or extends it for TTL;
// api.IsCode(err, api.CodeConflict) while another holder has it.
func (c *Client) IngressLock(ctx context.Context, node, name string, req api.IngressLockRequest) (*api.IngressLock, error) {
	var out api.IngressLock
	if err := c.do(ctx, "POST", ingressPath(node, "locks/"+esc(name)), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// IngressUnlock releases lock name, which holder has.
func (c *Client) IngressUnlock(ctx context.Context, node, name, holder string) error {
	return c.do(ctx, "DELETE", ingressPath(node, "locks/"+esc(name))+"?holder="+url.QueryEscape(holder), nil, nil)
}

// IngressSecret reads the newest value of secret name, which an ingress
// route names (its certificate and key, or its basic auth users);
// api.NotFound(err) for any other.
func (c *Client) IngressSecret(ctx context.Context, node, name string) ([]byte, error) {
	var v api.SecretValue
	if err := c.do(ctx, "GET", ingressPath(node, "secrets/"+esc(name)), nil, &v); err != nil {
		return nil, err
	}
	return v.Data, nil
}
