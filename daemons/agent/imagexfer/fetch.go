package imagexfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
)

// FetcherOptions configure NewFetcher.
type FetcherOptions struct {
	// Root is the directory whose file system must hold the image;
	// the store's ContentRoot if empty.
	Root string
	// FreeSpace returns the bytes free at path; statfs's available blocks
	// if nil. Tests replace it.
	FreeSpace func(path string) (int64, error)
	// Attempts is how many times a failing source is tried for one blob
	// before the fetch gives it up for that blob (3 if zero). An attempt
	// that moved bytes before failing (a cut connection) counts as the
	// first again, so a flaky link still finishes.
	Attempts int
	// MaxBusyWait caps how long a busy source's Retry-After is obeyed
	// (1 minute if zero).
	MaxBusyWait time.Duration
	// StallTimeout gives up an attempt whose source sent nothing for that
	// long (a link gone dark without closing the connection); 30 s if zero.
	StallTimeout time.Duration
	Logger       *slog.Logger
}

// Fetcher copies images from other nodes (BlobSources) into this node's
// store, resuming what an earlier attempt left. Safe for concurrent use:
// fetches of the same target wait for each other.
type Fetcher struct {
	store runtime.Content
	opts  FetcherOptions

	mu      sync.Mutex
	running map[digest.Digest]chan struct{}
}

// NewFetcher fetches into store.
func NewFetcher(store runtime.Content, opts FetcherOptions) *Fetcher {
	if opts.FreeSpace == nil {
		opts.FreeSpace = statfsFree
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.MaxBusyWait <= 0 {
		opts.MaxBusyWait = time.Minute
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Fetcher{store: store, opts: opts, running: map[digest.Digest]chan struct{}{}}
}

// Result says what a Fetch did.
type Result struct {
	Image   runtime.Image
	Blobs   int   // blobs fetched, wholly or the rest of them
	Fetched int64 // bytes read from sources
	// Transfer is the time to fetch the blobs; Create the time to name
	// and unpack the image.
	Transfer, Create time.Duration
}

// Fetch makes the image ref, whose index or manifest is target, present
// and unpacked on this node, reading what the node lacks from sources:
// target, the manifest for this node's platform, its config and layers.
// Sources are tried in turn; a busy one is tried again after its
// Retry-After, meanwhile the others. Blobs the node already holds are not
// fetched; a blob an earlier Fetch began (in this process or another) is
// resumed with a Range request. Before writing anything, Fetch checks that
// the blobs it must fetch, and their unpacked size, fit in the free space
// (error wrapping ErrNoSpace otherwise).
func (f *Fetcher) Fetch(ctx context.Context, ref string, target api.Descriptor, sources ...BlobSource) (Result, error) {
	fail := func(err error) (Result, error) {
		return Result{}, fmt.Errorf("imagexfer: fetch %s: %w", ref, err)
	}
	name, err := api.NormalizeImage(ref)
	if err != nil {
		return fail(fmt.Errorf("image reference: %w", err))
	}
	if len(sources) == 0 {
		return fail(errors.New("no node to fetch it from"))
	}
	dgst, err := ParseDigest(target.Digest)
	if err != nil {
		return fail(fmt.Errorf("target: %w", err))
	}
	if !isDocument(target.MediaType) {
		return fail(fmt.Errorf("target %s has media type %q: want an image index or manifest", dgst, target.MediaType))
	}
	if target.Size <= 0 || target.Size > maxDocument {
		return fail(fmt.Errorf("target %s has size %d: want 1 to %d bytes", dgst, target.Size, maxDocument))
	}
	unlock, err := f.lock(ctx, dgst)
	if err != nil {
		return fail(err)
	}
	defer unlock()
	res, err := f.fetch(ctx, name, ocispec.Descriptor{MediaType: target.MediaType, Digest: dgst, Size: target.Size}, sources)
	if err != nil {
		return fail(err)
	}
	return res, nil
}

// lock lets one fetch of a target run at a time.
func (f *Fetcher) lock(ctx context.Context, d digest.Digest) (func(), error) {
	for {
		f.mu.Lock()
		ch, busy := f.running[d]
		if !busy {
			ch = make(chan struct{})
			f.running[d] = ch
			f.mu.Unlock()
			return func() {
				f.mu.Lock()
				delete(f.running, d)
				f.mu.Unlock()
				close(ch)
			}, nil
		}
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// pull is one Fetch under way.
type pull struct {
	f    *Fetcher
	iw   runtime.ImageWriter
	srcs []*source
	next int // the source to try first: the last that worked
	buf  []byte

	blobs   int
	fetched int64
}

type source struct {
	BlobSource
	busyUntil time.Time
}

type fetchedDoc struct {
	desc ocispec.Descriptor
	data []byte
}

func (f *Fetcher) fetch(ctx context.Context, ref string, target ocispec.Descriptor, sources []BlobSource) (Result, error) {
	began := time.Now()
	iw, err := f.store.StartImage(ctx, toRuntime(target))
	if err != nil {
		return Result{}, err
	}
	p := &pull{f: f, iw: iw}
	for _, s := range sources {
		p.srcs = append(p.srcs, &source{BlobSource: s})
	}

	// 1. The target and, through indexes, the manifest for this platform:
	// read into memory (from the node if it has them), not stored yet.
	var docs []fetchedDoc
	var blobs []ocispec.Descriptor
	d := target
	for depth := 0; ; depth++ {
		if depth > maxNesting {
			return Result{}, fmt.Errorf("indexes nested deeper than %d", maxNesting)
		}
		b, present, err := p.document(ctx, d)
		if err != nil {
			return Result{}, err
		}
		if !present {
			docs = append(docs, fetchedDoc{d, b})
		}
		doc, err := parseDocument(d.MediaType, b)
		if err != nil {
			return Result{}, fmt.Errorf("%s: %w", d.Digest, err)
		}
		if isIndex(d.MediaType) {
			m, err := chooseManifest(doc)
			if err != nil {
				return Result{}, fmt.Errorf("index %s: %w", d.Digest, err)
			}
			d = m
			continue
		}
		blobs = append([]ocispec.Descriptor{*doc.Config}, doc.Layers...)
		break
	}

	// 2. What is missing, and whether it fits.
	var missing []ocispec.Descriptor
	var need, unpacked int64
	for _, x := range docs {
		need += x.desc.Size
	}
	seen := map[digest.Digest]bool{}
	for i, b := range blobs {
		if seen[b.Digest] {
			continue
		}
		seen[b.Digest] = true
		st, err := iw.Have(ctx, toRuntime(b))
		if err != nil {
			return Result{}, err
		}
		if st.Present {
			continue
		}
		missing = append(missing, b)
		need += b.Size - min(st.Offset, b.Size)
		if i > 0 { // a layer, not the config
			unpacked += 2 * b.Size
		}
	}
	if err := p.checkSpace(ctx, need, unpacked); err != nil {
		return Result{}, err
	}

	// 3. Store the documents, fetch the rest, make the image.
	for _, x := range docs {
		if err := p.writeDocument(ctx, x); err != nil {
			return Result{}, err
		}
	}
	for _, b := range missing {
		if err := p.fetchBlob(ctx, b); err != nil {
			return Result{}, err
		}
	}
	res := Result{Blobs: p.blobs, Fetched: p.fetched, Transfer: time.Since(began)}
	made := time.Now()
	res.Image, err = iw.Create(ctx, ref)
	if err != nil {
		return Result{}, err
	}
	res.Create = time.Since(made)
	f.opts.Logger.Info("image fetched", "image", res.Image.Name, "digest", target.Digest,
		"blobs", res.Blobs, "bytes", res.Fetched, "transfer", res.Transfer.Round(time.Millisecond),
		"unpack", res.Create.Round(time.Millisecond))
	return res, nil
}

// checkSpace fails with ErrNoSpace when need bytes of blobs and an
// unpacked size of unpacked do not fit in the free space of the root.
func (p *pull) checkSpace(ctx context.Context, need, unpacked int64) error {
	if need+unpacked == 0 {
		return nil
	}
	root := p.f.opts.Root
	if root == "" {
		var err error
		if root, err = p.f.store.ContentRoot(ctx); err != nil {
			return fmt.Errorf("find where images are stored: %w", err)
		}
	}
	free, err := p.f.opts.FreeSpace(root)
	if err != nil {
		return fmt.Errorf("free space in %s: %w", root, err)
	}
	if need+unpacked > free {
		return fmt.Errorf("%w: the image needs about %s (%s of blobs to fetch, and about %s unpacked, "+
			"estimated as twice the compressed size of the layers to fetch) but %s has %s free; free disk space on this node",
			ErrNoSpace, api.FormatBytes(need+unpacked), api.FormatBytes(need), api.FormatBytes(unpacked), root, api.FormatBytes(free))
	}
	return nil
}

// document returns the bytes of an index or manifest: the node's copy if
// it has one (present), else one fetched into memory and checked against
// its digest.
func (p *pull) document(ctx context.Context, d ocispec.Descriptor) ([]byte, bool, error) {
	st, err := p.iw.Have(ctx, toRuntime(d))
	if err != nil {
		return nil, false, err
	}
	if st.Present {
		b, err := readBlob(ctx, p.f.store, d.Digest, d.Size)
		return b, true, err
	}
	var out []byte
	err = p.tryEach(ctx, d, func(src BlobSource) (int64, error) {
		rc, err := p.open(ctx, src, d.Digest, 0)
		if err != nil {
			return 0, err
		}
		defer rc.Close()
		b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
		if err != nil {
			return 0, err
		}
		if int64(len(b)) != d.Size || digest.FromBytes(b) != d.Digest {
			return 0, fmt.Errorf("%w: %s from %v: %d bytes with digest %s", errSourceMismatch, d.Digest, src, len(b), digest.FromBytes(b))
		}
		out = b
		return int64(len(b)), nil
	})
	if err != nil {
		return nil, false, err
	}
	p.fetched += int64(len(out))
	return out, false, nil
}

// writeDocument stores a document fetched into memory.
func (p *pull) writeDocument(ctx context.Context, x fetchedDoc) error {
	w, err := p.iw.Blob(ctx, toRuntime(x.desc))
	if errors.Is(err, runtime.ErrBlobExists) {
		return p.hold(ctx, x.desc)
	}
	if err != nil {
		return err
	}
	defer w.Close()
	if w.Offset() != 0 {
		if err := w.Reset(); err != nil {
			return err
		}
	}
	if _, err := w.Write(x.data); err != nil {
		return err
	}
	return w.Commit(ctx)
}

// hold keeps a blob another fetch committed until this image is made.
func (p *pull) hold(ctx context.Context, d ocispec.Descriptor) error {
	if _, err := p.iw.Have(ctx, toRuntime(d)); err != nil {
		return &localError{err}
	}
	return nil
}

// open opens d at off on src, and gives the attempt up (its reads fail)
// when src sends nothing for StallTimeout.
func (p *pull) open(ctx context.Context, src BlobSource, d digest.Digest, off int64) (io.ReadCloser, error) {
	actx, cancel := context.WithCancelCause(ctx)
	stall := fmt.Errorf("%v sent nothing for %v", src, p.f.opts.StallTimeout)
	timer := time.AfterFunc(p.f.opts.StallTimeout, func() { cancel(stall) })
	rc, err := src.Open(actx, d, off)
	if err != nil {
		timer.Stop()
		cancel(nil)
		if context.Cause(actx) == stall {
			err = stall
		}
		return nil, err
	}
	return &stallReader{rc: rc, ctx: actx, cancel: cancel, timer: timer, after: p.f.opts.StallTimeout}, nil
}

// stallReader cancels its request when no byte came for a while.
type stallReader struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
	after  time.Duration
}

func (r *stallReader) Read(b []byte) (int, error) {
	n, err := r.rc.Read(b)
	if n > 0 {
		r.timer.Reset(r.after)
	}
	if err != nil && err != io.EOF {
		if cause := context.Cause(r.ctx); cause != nil && r.ctx.Err() != nil && !errors.Is(cause, context.Canceled) {
			err = cause
		}
	}
	return n, err
}

func (r *stallReader) Close() error {
	r.timer.Stop()
	r.cancel(nil)
	return r.rc.Close()
}

// errSourceMismatch: what a source sent is not the blob asked for.
var errSourceMismatch = errors.New("the source sent bytes that do not match the digest")

// localError is a failure of this node's store, not of a source: the
// fetch stops.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// fetchBlob stores d, from where an earlier attempt stopped.
func (p *pull) fetchBlob(ctx context.Context, d ocispec.Descriptor) error {
	err := p.tryEach(ctx, d, func(src BlobSource) (int64, error) {
		return p.copyFrom(ctx, src, d)
	})
	if err != nil {
		return err
	}
	p.blobs++
	return nil
}

// copyFrom writes d from src, resuming at the offset the store holds, and
// commits it. It returns the bytes it read.
func (p *pull) copyFrom(ctx context.Context, src BlobSource, d ocispec.Descriptor) (int64, error) {
	w, err := p.iw.Blob(ctx, toRuntime(d))
	if errors.Is(err, runtime.ErrBlobExists) {
		return 0, p.hold(ctx, d) // written by another fetch meanwhile
	}
	if err != nil {
		return 0, &localError{err}
	}
	defer w.Close()
	off := w.Offset()
	if off > d.Size {
		if err := w.Reset(); err != nil {
			return 0, &localError{err}
		}
		off = 0
	}
	var n int64
	if off < d.Size {
		rc, err := p.open(ctx, src, d.Digest, off)
		if err != nil {
			return 0, err
		}
		defer rc.Close()
		var rerr error
		n, rerr, err = p.copy(w, io.LimitReader(rc, d.Size-off))
		p.fetched += n
		if err != nil {
			return n, &localError{err}
		}
		if rerr != nil {
			return n, fmt.Errorf("read %s from %v after %d of %d bytes: %w", d.Digest, src, off+n, d.Size, rerr)
		}
		if off+n < d.Size {
			return n, fmt.Errorf("read %s from %v: it ended after %d of %d bytes: %w", d.Digest, src, off+n, d.Size, io.ErrUnexpectedEOF)
		}
	}
	if err := w.Commit(ctx); err != nil {
		if errors.Is(err, runtime.ErrBlobMismatch) {
			return n, fmt.Errorf("%w: %s from %v: %w", errSourceMismatch, d.Digest, src, err)
		}
		return n, &localError{err}
	}
	return n, nil
}

// copy copies r to w in large writes (each write to containerd is a
// round trip). It returns the bytes copied and the error of either side.
func (p *pull) copy(w io.Writer, r io.Reader) (n int64, rerr, werr error) {
	if p.buf == nil {
		p.buf = make([]byte, readChunk)
	}
	for {
		m, err := io.ReadFull(r, p.buf)
		if m > 0 {
			if _, werr := w.Write(p.buf[:m]); werr != nil {
				return n, nil, werr
			}
			n += int64(m)
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return n, nil, nil
		case err != nil:
			return n, err, nil
		}
	}
}

// tryEach runs attempt with one source after another until one succeeds.
// A busy source is tried again after its Retry-After (capped by
// MaxBusyWait), others meanwhile; a source without the blob, or that sent
// wrong bytes, is given up for it; one that fails otherwise is given up
// after Attempts tries (an attempt that moved bytes resets the count).
// attempt returns the bytes it moved.
func (p *pull) tryEach(ctx context.Context, d ocispec.Descriptor, attempt func(BlobSource) (int64, error)) error {
	failures := make([]int, len(p.srcs))
	errs := make([]error, len(p.srcs))
	for {
		i, wait, ok := p.pick(failures)
		if !ok {
			var msgs []string
			for i, err := range errs {
				msgs = append(msgs, fmt.Sprintf("%v: %v", p.srcs[i].BlobSource, err))
			}
			return fmt.Errorf("no node could send blob %s (%s): %s", d.Digest, api.FormatBytes(d.Size), strings.Join(msgs, "; "))
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			continue
		}
		src := p.srcs[i]
		moved, err := attempt(src.BlobSource)
		if err == nil {
			p.next = i
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var local *localError
		var busy *BusyError
		switch {
		case errors.As(err, &local):
			return local.err
		case errors.As(err, &busy):
			src.busyUntil = time.Now().Add(min(busy.RetryAfter, p.f.opts.MaxBusyWait))
		case errors.Is(err, ErrNotFound), errors.Is(err, errSourceMismatch):
			failures[i] = p.f.opts.Attempts
		default:
			if moved > 0 {
				failures[i] = 1
			} else {
				failures[i]++
			}
			src.busyUntil = time.Now().Add(backoff(failures[i]))
		}
		errs[i] = err
		p.next = i + 1
		p.f.opts.Logger.Debug("blob source failed", "digest", d.Digest, "source", fmt.Sprint(src.BlobSource), "moved", moved, "err", err)
	}
}

// pick chooses the next source to try for a blob, from p.next on: one
// ready now, else the one ready soonest and how long to wait for it; ok is
// false when every source was given up.
func (p *pull) pick(failures []int) (i int, wait time.Duration, ok bool) {
	now := time.Now()
	best := -1
	for k := range p.srcs {
		j := (p.next + k) % len(p.srcs)
		if failures[j] >= p.f.opts.Attempts {
			continue
		}
		w := p.srcs[j].busyUntil.Sub(now)
		if w <= 0 {
			return j, 0, true
		}
		if best < 0 || w < wait {
			best, wait = j, w
		}
	}
	return best, wait, best >= 0
}

// backoff is the pause before trying a failing source again.
func backoff(failures int) time.Duration {
	return min(250*time.Millisecond<<max(failures-1, 0), 5*time.Second)
}

func statfsFree(path string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}
