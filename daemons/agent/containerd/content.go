package containerd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/warren-edge/warren/daemons/agent/runtime"
)

var _ runtime.Content = (*Runtime)(nil)

// Image transfers (runtime.Content): what StartImage writes is held by a
// lease named after the image's target, so containerd's garbage collector
// keeps the blobs and the unfinished writes ("ingests", each under a ref
// named after its digest) until Create has named the image. The lease
// expires after transferLease if Create never comes.
const (
	transferLeasePrefix = "warren-xfer-"
	transferLease       = 24 * time.Hour
	ingestPrefix        = "warren-xfer-"
)

// ImageRecords lists the images of the namespace with their targets.
func (r *Runtime) ImageRecords(ctx context.Context) ([]runtime.ImageRecord, error) {
	imgs, err := r.client.ImageService().List(r.nsctx(ctx))
	if err != nil {
		return nil, wrap("list images", err)
	}
	out := make([]runtime.ImageRecord, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, runtime.ImageRecord{Name: img.Name, Target: fromOCI(img.Target)})
	}
	return out, nil
}

// OpenBlob opens a committed blob of the namespace.
func (r *Runtime) OpenBlob(ctx context.Context, dgst digest.Digest) (runtime.BlobReader, error) {
	ra, err := r.client.ContentStore().ReaderAt(r.nsctx(ctx), ocispec.Descriptor{Digest: dgst})
	if errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("containerd: blob %s: %w", dgst, runtime.ErrBlobNotFound)
	}
	if err != nil {
		return nil, wrap("open blob "+dgst.String(), err)
	}
	return ra, nil
}

// ContentRoot asks containerd where its content store keeps blobs (the
// "root" its content plugin exports).
func (r *Runtime) ContentRoot(ctx context.Context) (string, error) {
	resp, err := r.client.IntrospectionService().Plugins(r.nsctx(ctx), `type=="io.containerd.content.v1"`)
	if err != nil {
		return "", wrap("find the content store", err)
	}
	for _, p := range resp.Plugins {
		if root := p.Exports["root"]; root != "" {
			return root, nil
		}
	}
	return "", errors.New("containerd: the content plugin does not say where it keeps blobs")
}

// StartImage creates (or finds) the lease that holds what is written for
// target.
func (r *Runtime) StartImage(ctx context.Context, target runtime.Descriptor) (runtime.ImageWriter, error) {
	ctx = r.nsctx(ctx)
	ls := r.client.LeasesService()
	id := transferLeasePrefix + target.Digest.Encoded()
	l, err := ls.Create(ctx, leases.WithID(id), leases.WithExpiration(transferLease))
	if errdefs.IsAlreadyExists(err) {
		l, err = r.reuseLease(ctx, id)
	}
	if err != nil {
		return nil, wrap("lease for image "+target.Digest.String(), err)
	}
	return &imageWriter{r: r, target: toOCI(target), lease: l}, nil
}

// reuseLease takes up the lease of an earlier transfer, unless it is about
// to expire (the collector could then remove blobs under our feet): that
// one is replaced, and what it held may go.
func (r *Runtime) reuseLease(ctx context.Context, id string) (leases.Lease, error) {
	ls := r.client.LeasesService()
	found, err := ls.List(ctx, `id==`+id)
	if err != nil {
		return leases.Lease{}, err
	}
	for _, l := range found {
		exp, err := time.Parse(time.RFC3339, l.Labels["containerd.io/gc.expire"])
		if err == nil && time.Until(exp) > time.Hour {
			return l, nil
		}
		if err := ls.Delete(ctx, l); err != nil && !errdefs.IsNotFound(err) {
			return leases.Lease{}, err
		}
	}
	return ls.Create(ctx, leases.WithID(id), leases.WithExpiration(transferLease))
}

type imageWriter struct {
	r      *Runtime
	target ocispec.Descriptor
	lease  leases.Lease
}

// ctx is ctx in the namespace, under the transfer's lease.
func (w *imageWriter) ctx(ctx context.Context) context.Context {
	return leases.WithLease(w.r.nsctx(ctx), w.lease.ID)
}

func ingestRef(d digest.Digest) string { return ingestPrefix + d.String() }

func (w *imageWriter) Have(ctx context.Context, d runtime.Descriptor) (runtime.BlobState, error) {
	ctx = w.ctx(ctx)
	cs := w.r.client.ContentStore()
	_, err := cs.Info(ctx, d.Digest)
	if err == nil {
		// Held by the lease: another image's blob stays until ours is made.
		err = w.r.client.LeasesService().AddResource(ctx, w.lease, leases.Resource{ID: d.Digest.String(), Type: "content"})
		if err != nil {
			return runtime.BlobState{}, wrap("hold blob "+d.Digest.String(), err)
		}
		return runtime.BlobState{Present: true}, nil
	}
	if !errdefs.IsNotFound(err) {
		return runtime.BlobState{}, wrap("blob "+d.Digest.String(), err)
	}
	st, err := cs.Status(ctx, ingestRef(d.Digest))
	if errdefs.IsNotFound(err) {
		return runtime.BlobState{}, nil
	}
	if err != nil {
		return runtime.BlobState{}, wrap("status of blob "+d.Digest.String(), err)
	}
	return runtime.BlobState{Offset: st.Offset}, nil
}

func (w *imageWriter) Blob(ctx context.Context, d runtime.Descriptor) (runtime.BlobWriter, error) {
	ctx = w.ctx(ctx)
	cs := w.r.client.ContentStore()
	ref := ingestRef(d.Digest)
	cw, err := content.OpenWriter(ctx, cs, content.WithRef(ref), content.WithDescriptor(toOCI(d)))
	if errdefs.IsAlreadyExists(err) {
		return nil, fmt.Errorf("containerd: blob %s: %w", d.Digest, runtime.ErrBlobExists)
	}
	if err != nil {
		return nil, wrap("write blob "+d.Digest.String(), err)
	}
	st, err := cw.Status()
	if err != nil {
		cw.Close()
		return nil, wrap("status of blob "+d.Digest.String(), err)
	}
	return &blobWriter{cw: cw, cs: cs, ref: ref, desc: d, off: st.Offset}, nil
}

type blobWriter struct {
	cw   content.Writer
	cs   content.Store
	ref  string
	desc runtime.Descriptor
	off  int64
}

func (b *blobWriter) Write(p []byte) (int, error) {
	n, err := b.cw.Write(p)
	b.off += int64(n)
	if err != nil {
		return n, wrap("write blob "+b.desc.Digest.String(), err)
	}
	return n, nil
}

func (b *blobWriter) Offset() int64 { return b.off }

func (b *blobWriter) Reset() error {
	if err := b.cw.Truncate(0); err != nil {
		return wrap("reset blob "+b.desc.Digest.String(), err)
	}
	b.off = 0
	return nil
}

// Commit has containerd check the size and digest. On a mismatch the
// ingest is aborted, so the next attempt starts from nothing.
func (b *blobWriter) Commit(ctx context.Context) error {
	err := b.cw.Commit(ctx, b.desc.Size, b.desc.Digest)
	switch {
	case err == nil, errdefs.IsAlreadyExists(err):
		return nil
	case errdefs.IsFailedPrecondition(err) || strings.Contains(err.Error(), "unexpected digest") || strings.Contains(err.Error(), "unexpected size"):
		// The stream is closed by the failed commit; a new one aborts.
		if aerr := b.cs.Abort(context.WithoutCancel(ctx), b.ref); aerr != nil && !errdefs.IsNotFound(aerr) {
			err = errors.Join(err, aerr)
		}
		return fmt.Errorf("containerd: commit blob %s (%d bytes): %w: %w", b.desc.Digest, b.desc.Size, runtime.ErrBlobMismatch, err)
	default:
		return wrap("commit blob "+b.desc.Digest.String(), err)
	}
}

func (b *blobWriter) Close() error { return b.cw.Close() }

// Create labels the image's documents with their children for the garbage
// collector, names the image, unpacks it and lets go of the lease.
func (w *imageWriter) Create(ctx context.Context, name string) (runtime.Image, error) {
	n, err := NormalizeRef(name)
	if err != nil {
		return runtime.Image{}, err
	}
	lctx := w.ctx(ctx)
	cs := w.r.client.ContentStore()
	// The same choice of manifest as Unpack's (and as the fetcher's):
	// this platform's best, one only.
	m := platforms.Default()
	children := images.LimitManifests(images.FilterPlatforms(images.ChildrenHandler(cs), m), m, 1)
	if err := images.Walk(lctx, images.SetChildrenLabels(cs, children), w.target); err != nil {
		return runtime.Image{}, wrap("label the blobs of "+n, err)
	}
	is := w.r.client.ImageService()
	img := images.Image{Name: n, Target: w.target}
	if _, err := is.Create(lctx, img); errdefs.IsAlreadyExists(err) {
		_, err = is.Update(lctx, img, "target")
		if err != nil {
			return runtime.Image{}, wrap("name image "+n, err)
		}
	} else if err != nil {
		return runtime.Image{}, wrap("name image "+n, err)
	}
	ci := containerd.NewImage(w.r.client, img)
	if err := ci.Unpack(lctx, w.r.opts.Snapshotter); err != nil {
		return runtime.Image{}, wrap("unpack "+n, err)
	}
	if err := w.r.client.LeasesService().Delete(w.r.nsctx(ctx), w.lease); err != nil && !errdefs.IsNotFound(err) {
		return runtime.Image{}, wrap("release the transfer lease of "+n, err)
	}
	return w.r.describe(w.r.nsctx(ctx), ci), nil
}

func toOCI(d runtime.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
}

func fromOCI(d ocispec.Descriptor) runtime.Descriptor {
	return runtime.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
}
