package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"

	"github.com/warren-edge/warren/daemons/agent/runtime"
)

// NormalizeRef returns the full form of an image reference:
// "busybox" becomes "docker.io/library/busybox:latest".
func NormalizeRef(ref string) (string, error) {
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		return "", fmt.Errorf("containerd: image reference %q: %w: %w", ref, runtime.ErrInvalidSpec, err)
	}
	return n.String(), nil
}

// ImportImage loads an OCI image layout or `docker save` tarball, names
// its images by their normalized references and unpacks them.
func (r *Runtime) ImportImage(ctx context.Context, rd io.Reader) ([]runtime.Image, error) {
	ctx = r.nsctx(ctx)
	imgs, err := r.client.Import(ctx, rd,
		containerd.WithImportPlatform(platforms.Default()),
		containerd.WithImageRefTranslator(ociRefName))
	if err != nil {
		return nil, wrap("import image", err)
	}
	if len(imgs) == 0 {
		return nil, fmt.Errorf("containerd: import image: the tarball names no image "+
			"(an OCI layout needs the annotation %s or a full reference in %s): %w",
			images.AnnotationImageName, "org.opencontainers.image.ref.name", runtime.ErrInvalidSpec)
	}
	out := make([]runtime.Image, 0, len(imgs))
	for _, img := range imgs {
		img, err := r.renameNormalized(ctx, img)
		if err != nil {
			return nil, err
		}
		ci := containerd.NewImage(r.client, img)
		if err := ci.Unpack(ctx, r.opts.Snapshotter); err != nil {
			return nil, wrap("unpack "+img.Name, err)
		}
		out = append(out, r.describe(ctx, ci))
	}
	return out, nil
}

// ociRefName keeps an OCI ref.name annotation only when it is a full
// reference; a bare tag ("latest") names no repository.
func ociRefName(name string) string {
	if !strings.ContainsAny(name, "/:") {
		return ""
	}
	n, err := reference.ParseDockerRef(name)
	if err != nil {
		return ""
	}
	return n.String()
}

// renameNormalized stores img under its normalized name if it is not
// already.
func (r *Runtime) renameNormalized(ctx context.Context, img images.Image) (images.Image, error) {
	n, err := NormalizeRef(img.Name)
	if err != nil || n == img.Name {
		return img, nil // leave names that do not parse as they are
	}
	is := r.client.ImageService()
	renamed := images.Image{Name: n, Target: img.Target, Labels: img.Labels}
	out, err := is.Update(ctx, renamed, "target")
	if errdefs.IsNotFound(err) {
		out, err = is.Create(ctx, renamed)
	}
	if err != nil {
		return img, wrap("name image "+n, err)
	}
	if err := is.Delete(ctx, img.Name); err != nil && !errdefs.IsNotFound(err) {
		return img, wrap("remove image name "+img.Name, err)
	}
	return out, nil
}

func (r *Runtime) describe(ctx context.Context, img containerd.Image) runtime.Image {
	size, _ := img.Size(ctx)
	return runtime.Image{Name: img.Name(), Digest: img.Target().Digest.String(), Size: size}
}

// PullImage fetches ref (normalized) from its registry and unpacks it.
// Registries on localhost and in Options.PlainHTTPRegistries are reached
// over plain HTTP. Any failure to fetch wraps runtime.ErrImageNotFound.
func (r *Runtime) PullImage(ctx context.Context, ref string) (runtime.Image, error) {
	n, err := NormalizeRef(ref)
	if err != nil {
		return runtime.Image{}, err
	}
	ctx = r.nsctx(ctx)
	img, err := r.client.Pull(ctx, n,
		containerd.WithPullUnpack,
		containerd.WithPullSnapshotter(r.opts.Snapshotter),
		containerd.WithResolver(r.resolver))
	if err != nil {
		switch {
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			return runtime.Image{}, fmt.Errorf("containerd: pull %s: %w", n, err)
		case errdefs.IsNotFound(err):
			return runtime.Image{}, fmt.Errorf("containerd: pull %s: the registry has no such image: %w: %w", n, runtime.ErrImageNotFound, err)
		default:
			return runtime.Image{}, fmt.Errorf("containerd: pull %s: %w: %w", n, runtime.ErrImageNotFound, err)
		}
	}
	return r.describe(ctx, img), nil
}

// ListImages lists the images in the namespace.
func (r *Runtime) ListImages(ctx context.Context) ([]runtime.Image, error) {
	ctx = r.nsctx(ctx)
	imgs, err := r.client.ListImages(ctx)
	if err != nil {
		return nil, wrap("list images", err)
	}
	out := make([]runtime.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, r.describe(ctx, img))
	}
	return out, nil
}

// HasImage reports whether ref (normalized) is present and unpacked.
func (r *Runtime) HasImage(ctx context.Context, ref string) (bool, error) {
	n, err := NormalizeRef(ref)
	if err != nil {
		return false, err
	}
	ctx = r.nsctx(ctx)
	img, err := r.client.GetImage(ctx, n)
	if errdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, wrap("get image "+n, err)
	}
	ok, err := img.IsUnpacked(ctx, r.opts.Snapshotter)
	if err != nil {
		return false, wrap("check image "+n, err)
	}
	return ok, nil
}

// getImage returns ref (normalized) or an error wrapping ErrImageNotFound;
// what names the operation for error messages.
func (r *Runtime) getImage(ctx context.Context, what, ref string) (containerd.Image, string, error) {
	n, err := reference.ParseDockerRef(ref)
	if err != nil {
		return nil, "", fmt.Errorf("containerd: %s: image reference %q: %w: %w", what, ref, runtime.ErrInvalidSpec, err)
	}
	img, err := r.client.GetImage(ctx, n.String())
	if errdefs.IsNotFound(err) {
		return nil, n.String(), fmt.Errorf("containerd: %s: image %s is not on this node (pull or import it first): %w", what, n, runtime.ErrImageNotFound)
	}
	if err != nil {
		return nil, n.String(), wrap(what+": get image "+n.String(), err)
	}
	return img, n.String(), nil
}
