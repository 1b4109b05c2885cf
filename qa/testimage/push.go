package testimage

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Push uploads the image to a registry at base (e.g. "http://10.0.0.5:5000")
// as repo:tag through the registry HTTP API (distribution's v2): each blob
// in one monolithic upload, then the manifest. It is for tests and figures
// against Debian's docker-registry, where no pusher is installed.
func (img *Image) Push(ctx context.Context, hc *http.Client, base, repo, tag string) error {
	for _, b := range []struct {
		digest string
		data   []byte
	}{{img.LayerDigest, img.Layer}, {img.ConfigDigest, img.Config}} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("testimage: push: start upload: %w", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusAccepted || loc == "" {
			return fmt.Errorf("testimage: push: start upload: %s", resp.Status)
		}
		if !strings.HasPrefix(loc, "http") {
			loc = base + loc
		}
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		req, _ = http.NewRequestWithContext(ctx, http.MethodPut, loc+sep+"digest="+b.digest, bytes.NewReader(b.data))
		req.Header.Set("Content-Type", "application/octet-stream")
		if resp, err = hc.Do(req); err != nil {
			return fmt.Errorf("testimage: push blob %s: %w", b.digest, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("testimage: push blob %s: %s", b.digest, resp.Status)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(img.Manifest))
	req.Header.Set("Content-Type", MediaTypeManifest)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("testimage: push manifest: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("testimage: push manifest: %s", resp.Status)
	}
	return nil
}
