package client

import (
	"context"
	"net/http"

	"github.com/warren-edge/warren/daemons/api"
)

// Unlock gives an autolocked manager the unlock key.
func (c *Client) Unlock(ctx context.Context, key string) error {
	return c.do(ctx, http.MethodPost, "/v1/unlock", api.UnlockRequest{Key: key}, nil)
}

// UnlockKey shows the cluster's unlock key (empty with autolock off).
func (c *Client) UnlockKey(ctx context.Context) (*api.UnlockKeyInfo, error) {
	var out api.UnlockKeyInfo
	return &out, c.do(ctx, http.MethodGet, "/v1/unlock-key", nil, &out)
}

// RotateUnlockKey makes a new unlock key and shows it.
func (c *Client) RotateUnlockKey(ctx context.Context) (*api.UnlockKeyInfo, error) {
	var out api.UnlockKeyInfo
	return &out, c.do(ctx, http.MethodPost, "/v1/unlock-key/rotate", struct{}{}, &out)
}

// SetAutolock turns autolock on (the answer holds the unlock key) or off.
func (c *Client) SetAutolock(ctx context.Context, on bool) (*api.UnlockKeyInfo, error) {
	var out api.UnlockKeyInfo
	q := "false"
	if on {
		q = "true"
	}
	return &out, c.do(ctx, http.MethodPut, "/v1/autolock?enabled="+q, struct{}{}, &out)
}

// Keys describes the cluster's data keys.
func (c *Client) Keys(ctx context.Context) (*api.KeysInfo, error) {
	var out api.KeysInfo
	return &out, c.do(ctx, http.MethodGet, "/v1/keys", nil, &out)
}

// RotateDataKey starts a data key rotation.
func (c *Client) RotateDataKey(ctx context.Context) (*api.KeysInfo, error) {
	var out api.KeysInfo
	return &out, c.do(ctx, http.MethodPost, "/v1/keys/rotate", struct{}{}, &out)
}

// CheckKeys opens every sealed value on the manager asked.
func (c *Client) CheckKeys(ctx context.Context) (*api.KeyCheck, error) {
	var out api.KeyCheck
	return &out, c.do(ctx, http.MethodGet, "/v1/keys/check", nil, &out)
}
