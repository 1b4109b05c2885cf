package agent

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/agent/imagexfer"
	rt "github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// Images moving between nodes (package imagexfer): this node serves the
// blobs of its images on the agent socket (GET /v1/blobs/{digest}, for
// the managers' node-to-node route), lists what it holds for the managers
// (Images), and asks Config.FetchImage for an image a task needs and the
// node lacks.

// newBlobServer serves the runtime's blobs, if it keeps images as blobs.
func newBlobServer(cfg Config) http.Handler {
	c, ok := cfg.Runtime.(rt.Content)
	if !ok {
		return nil
	}
	return imagexfer.NewServer(c, imagexfer.ServerOptions{MaxTransfers: cfg.MaxBlobTransfers, Logger: cfg.Logger})
}

// Images lists the images this node holds, by reference, for the managers
// to know which nodes hold which images.
func (a *Agent) Images(ctx context.Context) ([]api.NodeImage, error) {
	imgs, err := a.rt.ListImages(ctx)
	if err != nil {
		return nil, fmt.Errorf("agent: list images: %w", err)
	}
	targets := map[string]rt.Descriptor{}
	if c, ok := a.rt.(rt.Content); ok {
		recs, err := c.ImageRecords(ctx)
		if err != nil {
			return nil, fmt.Errorf("agent: list images: %w", err)
		}
		for _, r := range recs {
			targets[r.Name] = r.Target
		}
	}
	out := make([]api.NodeImage, 0, len(imgs))
	for _, i := range imgs {
		t := targets[i.Name]
		out = append(out, api.NodeImage{Ref: i.Name, Size: i.Size,
			Target: api.Descriptor{MediaType: t.MediaType, Digest: i.Digest, Size: t.Size}})
	}
	slices.SortFunc(out, func(x, y api.NodeImage) int { return strings.Compare(x.Ref, y.Ref) })
	return out, nil
}

// obtainImage makes an image a task needs present: from another node
// through Config.FetchImage first (the copy the operator loaded, over the
// fleet's own links), then from the image's registry.
func (a *Agent) obtainImage(ctx context.Context, image string) error {
	var fetchErr error
	if a.cfg.FetchImage != nil {
		if fetchErr = a.cfg.FetchImage(ctx, image); fetchErr == nil {
			a.imagesChanged() // a source for the next node that needs it
			return nil
		}
		a.log.Info("image not fetched from another node; trying its registry", "image", image, "err", fetchErr)
	}
	_, pullErr := a.rt.PullImage(ctx, image)
	switch {
	case pullErr == nil:
		a.imagesChanged()
		return nil
	case a.cfg.FetchImage == nil:
		return fmt.Errorf("image %s is not on this node and could not be pulled (%v): load it with warrenctl image load FILE.tar", image, pullErr)
	default:
		return fmt.Errorf("image %s is on no reachable node (%v) and could not be pulled (%v): load it with warrenctl image load FILE.tar", image, fetchErr, pullErr)
	}
}

// FleetFetch is a Config.FetchImage that fetches an image from the nodes
// that hold it, as their records say: its blobs come through this node's
// manager (api), which passes each request on to the holder's manager over
// the node port as this node, and that node's agent serves them. self is
// this node (never a source). The whole fetch may take up to limit.
func FleetFetch(cl *client.Client, self func() string, f *imagexfer.Fetcher, limit time.Duration) func(ctx context.Context, ref string) error {
	hc, base := cl.HTTP()
	return func(ctx context.Context, ref string) error {
		nodes, err := cl.Nodes(ctx, client.ReadOptions{})
		if err != nil {
			return fmt.Errorf("which nodes hold it: %w", err)
		}
		target, holders := fetchTarget(nodes, ref, self())
		var srcs []imagexfer.BlobSource
		for _, id := range holders {
			srcs = append(srcs, &imagexfer.HTTPSource{BaseURL: base + "/v1/nodes/" + id + "/agent", Client: hc})
		}
		if len(srcs) == 0 {
			return fmt.Errorf("no ready node holds image %s", ref)
		}
		ctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		_, err = f.Fetch(ctx, ref, target, srcs...)
		return err
	}
}

// fetchTarget picks which content the image ref names, and the ready nodes
// (not self) that hold it. A node's record lists what its own agent says
// it holds, so a node whose certificate was stolen could offer other
// content under a name: the content a manager holds wins, then the one
// most nodes hold. (Blobs are checked against the digests, so a source
// cannot change content once the target is chosen.)
func fetchTarget(nodes []api.Node, ref, self string) (api.Descriptor, []string) {
	type cand struct {
		d        api.Descriptor
		managers int
		holders  []string
	}
	var cands []*cand
	for _, n := range nodes {
		if n.ID == self || n.Status.State != api.NodeReady {
			continue
		}
		for _, img := range n.Description.Images {
			if img.Ref != ref {
				continue
			}
			var c *cand
			for _, x := range cands {
				if x.d.Digest == img.Target.Digest {
					c = x
				}
			}
			if c == nil {
				c = &cand{d: img.Target}
				cands = append(cands, c)
			}
			c.holders = append(c.holders, n.ID)
			if n.Spec.Role == api.RoleManager {
				c.managers++
			}
		}
	}
	var best *cand
	for _, c := range cands {
		if best == nil || c.managers > best.managers || c.managers == best.managers && len(c.holders) > len(best.holders) {
			best = c
		}
	}
	if best == nil {
		return api.Descriptor{}, nil
	}
	return best.d, best.holders
}
