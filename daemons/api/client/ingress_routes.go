package client

import (
	"context"
	"net/http"

	"github.com/warren-edge/warren/daemons/api"
)

// IngressRoutes lists every ingress route of the cluster's services with
// its backends and certificate, as `warrenctl ingress ls` shows them.
func (c *Client) IngressRoutes(ctx context.Context) ([]api.IngressRouteStatus, error) {
	var out []api.IngressRouteStatus
	return out, c.do(ctx, http.MethodGet, "/v1/ingress/routes", nil, &out)
}
