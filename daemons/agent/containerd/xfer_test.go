package containerd

// Image transfers between two private containerds: A holds images and
// serves their blobs (imagexfer.Server, through the agent's handler); B
// fetches them (imagexfer.Fetcher) and runs them.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/warren-edge/warren/daemons/agent"
	"github.com/warren-edge/warren/daemons/agent/imagexfer"
	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/qa/containerdtest"
	"github.com/warren-edge/warren/qa/testimage"
)

// emptyEnv is a private containerd with no image, and a Runtime over it.
func emptyEnv(t testing.TB) *env {
	t.Helper()
	if err := testimage.Available(); err != nil {
		t.Skip(err)
	}
	e := &env{t: t, d: containerdtest.Start(t)}
	e.r = e.newRuntime()
	e.exits = watchExits(e.r)
	return e
}

// blobReq is one request a source answered.
type blobReq struct {
	Method, Digest, Range string
	Status                int
}

// reqLog records the requests of a test server.
type reqLog struct {
	mu   sync.Mutex
	reqs []blobReq
}

func (l *reqLog) take() []blobReq {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.reqs
	l.reqs = nil
	return out
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// serve runs h on a loopback HTTP server that logs every request.
func serve(t testing.TB, h http.Handler) (*httptest.Server, *reqLog) {
	l := &reqLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		l.mu.Lock()
		l.reqs = append(l.reqs, blobReq{r.Method, strings.TrimPrefix(r.URL.Path, imagexfer.BlobPath), r.Header.Get("Range"), sw.status})
		l.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, l
}

// agentOn is a warren agent over e's runtime, not running: its Handler
// and Images are what a test needs.
func agentOn(t testing.TB, e *env, maxTransfers int) *agent.Agent {
	t.Helper()
	c, err := client.New("unix://" + filepath.Join(t.TempDir(), "no-manager.sock"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{API: c, Runtime: e.r, DataDir: t.TempDir(), MaxBlobTransfers: maxTransfers})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// nodeImage finds ref in what a's agent lists.
func nodeImage(t testing.TB, a *agent.Agent, ref string) api.NodeImage {
	t.Helper()
	imgs, err := a.Images(bg)
	if err != nil {
		t.Fatalf("Images: %v", err)
	}
	for _, i := range imgs {
		if i.Ref == ref {
			return i
		}
	}
	t.Fatalf("Images() = %+v; want %s among them", imgs, ref)
	return api.NodeImage{}
}

// digests lists the digests of reqs.
func digests(reqs []blobReq) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.Digest)
	}
	return out
}

// runs proves e can run ref: a container that finds busybox's files in
// its root file system exits 7.
func (e *env) runs(ref string) {
	e.t.Helper()
	s := spec("xfer", "sh", "-c", "grep -q nobody /etc/passwd && test -x /bin/busybox && exit 7")
	s.Image = ref
	e.run(s)
	if ex := e.exits.wait(e.t, s.ID, 20*time.Second); ex.Code != 7 {
		e.t.Fatalf("container of %s exited %d, want 7 (its root file system is not the image's)", ref, ex.Code)
	}
	if err := e.r.Delete(bg, s.ID); err != nil {
		e.t.Fatal(err)
	}
}

// collect has containerd collect garbage now (deleting a lease with
// SynchronousDelete runs the collector before it returns).
func (e *env) collect() {
	e.t.Helper()
	ctx := e.r.nsctx(bg)
	ls := e.r.client.LeasesService()
	l, err := ls.Create(ctx, leases.WithRandomID())
	if err != nil {
		e.t.Fatal(err)
	}
	if err := ls.Delete(ctx, l, leases.SynchronousDelete); err != nil {
		e.t.Fatal(err)
	}
}

// blobsAndIngests lists the content and unfinished writes in e's namespace.
func (e *env) blobsAndIngests() (blobs []string, ingests []content.Status) {
	e.t.Helper()
	ctx := e.r.nsctx(bg)
	cs := e.r.client.ContentStore()
	if err := cs.Walk(ctx, func(i content.Info) error {
		blobs = append(blobs, i.Digest.String())
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	ingests, err := cs.ListStatuses(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return blobs, ingests
}

// indexImage is busybox behind an image index that also names a
// manifest for another platform, whose blobs the archive lacks.
type indexImage struct {
	*testimage.Image
	Index, Other digest.Digest
	tar          []byte
}

func makeIndexImage(t testing.TB, name string) indexImage {
	t.Helper()
	img, err := testimage.Make(testimage.Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	other := digest.FromString("a manifest for s390x, not in the archive")
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageManifest, Digest: other, Size: 1234,
			Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}},
		{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest(img.ManifestDigest), Size: int64(len(img.Manifest)),
			Platform: &ocispec.Platform{OS: "linux", Architecture: goruntime.GOARCH}},
	}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	blobs := map[string][]byte{img.LayerDigest: img.Layer, img.ConfigDigest: img.Config, img.ManifestDigest: img.Manifest, digest.FromBytes(ib).String(): ib}
	tb := ociLayout(t, name, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(ib), Size: int64(len(ib))}, blobs)
	return indexImage{Image: img, Index: digest.FromBytes(ib), Other: other, tar: tb}
}

// ociLayout writes an OCI image layout tarball whose index.json names
// root as the image name.
func ociLayout(t testing.TB, name string, root ocispec.Descriptor, blobs map[string][]byte) []byte {
	t.Helper()
	root.Annotations = map[string]string{testimage.AnnotationImageName: name}
	top := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{root}}
	top.SchemaVersion = 2
	ij, _ := json.Marshal(top)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", ij)
	for _, d := range slices.Sorted(func(yield func(string) bool) {
		for d := range blobs {
			if !yield(d) {
				return
			}
		}
	}) {
		add("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), blobs[d])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImageTransfer: B fetches from A an image whose target is an index
// (only this platform's manifest), runs it, and keeps it after garbage
// collection; then an image whose blobs B already holds costs no request.
func TestImageTransfer(t *testing.T) {
	a, b := setup(t), emptyEnv(t)
	const multi = "localhost/multi:1"
	mi := makeIndexImage(t, multi)
	if _, err := a.r.ImportImage(bg, bytes.NewReader(mi.tar)); err != nil {
		t.Fatalf("ImportImage(index image) on A: %v", err)
	}
	agentA := agentOn(t, a, 0)
	srv, log := serve(t, agentA.Handler())
	src := &imagexfer.HTTPSource{BaseURL: srv.URL, Client: srv.Client()}
	f := imagexfer.NewFetcher(b.r, imagexfer.FetcherOptions{})

	want := nodeImage(t, agentA, multi)
	if want.Target.MediaType != ocispec.MediaTypeImageIndex || want.Target.Digest != mi.Index.String() || want.Target.Size == 0 || want.Size == 0 {
		t.Fatalf("A's agent lists %+v; want the index %s with its media type and sizes", want, mi.Index)
	}
	res, err := f.Fetch(bg, multi, want.Target, src)
	if err != nil {
		t.Fatalf("Fetch(%s) from A: %v", multi, err)
	}
	got := digests(log.take())
	wantReqs := []string{mi.Index.String(), mi.ManifestDigest, mi.ConfigDigest, mi.LayerDigest}
	if !slices.Equal(got, wantReqs) {
		t.Errorf("Fetch(%s) asked A for %v; want index, this platform's manifest, config, layer: %v (never the s390x manifest %s)", multi, got, wantReqs, mi.Other)
	}
	if res.Image.Name != multi || res.Image.Digest != mi.Index.String() || res.Blobs != 2 {
		t.Errorf("Fetch(%s) = %+v; want the image named with the index digest, 2 blobs fetched besides the documents", multi, res)
	}
	if ok, err := b.r.HasImage(bg, multi); err != nil || !ok {
		t.Fatalf("after Fetch, B's HasImage(%s) = %v, %v; want it present and unpacked", multi, ok, err)
	}
	// The transfer's lease is gone, and the collector keeps the image.
	ls, _ := b.r.client.LeasesService().List(b.r.nsctx(bg))
	for _, l := range ls {
		if strings.HasPrefix(l.ID, transferLeasePrefix) {
			t.Errorf("lease %s left after the image was made", l.ID)
		}
	}
	b.collect()
	blobs, ingests := b.blobsAndIngests()
	slices.Sort(blobs)
	wantBlobs := []string{mi.Index.String(), mi.ManifestDigest, mi.ConfigDigest, mi.LayerDigest}
	slices.Sort(wantBlobs)
	if !slices.Equal(blobs, wantBlobs) || len(ingests) != 0 {
		t.Errorf("after garbage collection B holds %v and ingests %v; want %v and none", blobs, ingests, wantBlobs)
	}
	b.runs(multi)

	// busybox on A is the same manifest: B holds every blob already.
	bb := nodeImage(t, agentA, busybox)
	res, err = f.Fetch(bg, busybox, bb.Target, src)
	if err != nil {
		t.Fatalf("Fetch(%s): %v", busybox, err)
	}
	if reqs := log.take(); len(reqs) != 0 || res.Fetched != 0 {
		t.Errorf("Fetch(%s), whose blobs B holds, fetched %d bytes with requests %v; want none", busybox, res.Fetched, reqs)
	}
	b.runs(busybox)

	// B's agent lists both, as A's does.
	imgs, err := agentOn(t, b, 0).Images(bg)
	if err != nil || len(imgs) != 2 || imgs[0].Ref != busybox || imgs[1].Ref != multi || imgs[1].Target != want.Target {
		t.Errorf("B's agent Images() = %+v, %v; want %s and %s (%+v)", imgs, err, busybox, multi, want.Target)
	}
	if root, err := b.r.ContentRoot(bg); err != nil || !strings.HasPrefix(root, b.d.Dir+"/") {
		t.Errorf("ContentRoot() = %q, %v; want a directory under %s", root, err, b.d.Dir)
	}
}

// cutSource passes a blob through until after bytes of it were read; then
// the link is down: the read fails and so does every later Open.
type cutSource struct {
	imagexfer.BlobSource
	dgst  digest.Digest
	after int64

	mu   sync.Mutex
	sent int64
	down bool
}

func (c *cutSource) Open(ctx context.Context, d digest.Digest, off int64) (io.ReadCloser, error) {
	c.mu.Lock()
	down := c.down
	c.mu.Unlock()
	if down {
		return nil, errors.New("dial: connection refused (the test cut the link)")
	}
	rc, err := c.BlobSource.Open(ctx, d, off)
	if err != nil || d != c.dgst {
		return rc, err
	}
	return &cutReader{ReadCloser: rc, c: c}, nil
}

type cutReader struct {
	io.ReadCloser
	c *cutSource
}

func (r *cutReader) Read(p []byte) (int, error) {
	r.c.mu.Lock()
	left := r.c.after - r.c.sent
	if left <= 0 {
		r.c.down = true
		r.c.mu.Unlock()
		return 0, errors.New("read: connection reset by peer (the test cut the link)")
	}
	r.c.mu.Unlock()
	n, err := r.ReadCloser.Read(p[:min(int64(len(p)), left)])
	r.c.mu.Lock()
	r.c.sent += int64(n)
	r.c.mu.Unlock()
	return n, err
}

// TestImageTransferResumes: the link is cut halfway through the layer; a
// fetch by a new process (new client, new fetcher) asks only for the rest
// of the layer, with a Range from where the first stopped.
func TestImageTransferResumes(t *testing.T) {
	a, b := setup(t), emptyEnv(t)
	img, err := testimage.Make(testimage.Options{Name: busybox})
	if err != nil {
		t.Fatal(err)
	}
	agentA := agentOn(t, a, 0)
	srv, log := serve(t, agentA.Handler())
	target := nodeImage(t, agentA, busybox).Target
	half := int64(len(img.Layer) / 2)
	cut := &cutSource{BlobSource: &imagexfer.HTTPSource{BaseURL: srv.URL}, dgst: digest.Digest(img.LayerDigest), after: half}

	_, err = imagexfer.NewFetcher(b.r, imagexfer.FetcherOptions{}).Fetch(bg, busybox, target, cut)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Fetch over a link cut after %d bytes of the layer = %v; want an error saying the source failed", half, err)
	}
	_, ingests := b.blobsAndIngests()
	if len(ingests) != 1 || ingests[0].Offset != half || ingests[0].Ref != ingestRef(digest.Digest(img.LayerDigest)) {
		t.Fatalf("after the cut B's ingests are %+v; want the layer's, at offset %d", ingests, half)
	}
	if ok, _ := b.r.HasImage(bg, busybox); ok {
		t.Fatal("B has the image after a failed fetch")
	}
	log.take()

	// A restarted agent: a new containerd client and a new fetcher.
	b2 := b.newRuntime()
	res, err := imagexfer.NewFetcher(b2, imagexfer.FetcherOptions{}).Fetch(bg, busybox, target, &imagexfer.HTTPSource{BaseURL: srv.URL})
	if err != nil {
		t.Fatalf("Fetch after the cut: %v", err)
	}
	reqs := log.take()
	want := []blobReq{{"GET", img.LayerDigest, fmt.Sprintf("bytes=%d-", half), http.StatusPartialContent}}
	if !slices.Equal(reqs, want) {
		t.Errorf("the second Fetch made requests %+v; want only the rest of the layer: %+v (manifest and config were complete)", reqs, want)
	}
	if res.Fetched != int64(len(img.Layer))-half || res.Blobs != 1 {
		t.Errorf("the second Fetch = %+v; want %d bytes of 1 blob", res, int64(len(img.Layer))-half)
	}
	b.runs(busybox)
}

// TestImageTransferBusySources: a source that answers 503 is tried again
// after its Retry-After, or another is used meanwhile.
func TestImageTransferBusySources(t *testing.T) {
	a, b := setup(t), emptyEnv(t)
	const two = "localhost/busybox:two"
	var buf bytes.Buffer
	if err := testimage.Build(&buf, testimage.Options{Name: two, Cmd: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.r.ImportImage(bg, &buf); err != nil {
		t.Fatal(err)
	}
	agentA := agentOn(t, a, 0)
	good, goodLog := serve(t, agentA.Handler())
	busy, busyLog := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	var once sync.Once
	busyOnce, onceLog := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refused := false
		once.Do(func() {
			refused = true
			w.Header().Set("Retry-After", "1")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		})
		if !refused {
			agentA.Handler().ServeHTTP(w, r)
		}
	}))

	// A source busy for 30 s and a free one: all from the free one, at once.
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	f := imagexfer.NewFetcher(b.r, imagexfer.FetcherOptions{})
	_, err := f.Fetch(ctx, busybox, nodeImage(t, agentA, busybox).Target,
		&imagexfer.HTTPSource{BaseURL: busy.URL}, &imagexfer.HTTPSource{BaseURL: good.URL})
	if err != nil {
		t.Fatalf("Fetch from a busy source and a free one: %v", err)
	}
	if n, g := len(busyLog.take()), goodLog.take(); n != 1 || len(g) != 3 {
		t.Errorf("the busy source was asked %d times and the free one %v; want once (then 30 s of rest) and the 3 blobs", n, g)
	}

	// One source, busy once for 1 s: asked again after it.
	_, err = f.Fetch(ctx, two, nodeImage(t, agentA, two).Target, &imagexfer.HTTPSource{BaseURL: busyOnce.URL})
	if err != nil {
		t.Fatalf("Fetch from a source busy once: %v", err)
	}
	reqs := onceLog.take()
	if len(reqs) != 3 || reqs[0].Status != 503 || reqs[1].Digest != reqs[0].Digest || reqs[1].Status != 200 {
		t.Errorf("a source busy once got %+v; want 503, the same blob again (200), then the config", reqs)
	}
	b.runs(two)

	// A source that accepts the request and then sends nothing is given
	// up after StallTimeout, for another.
	const three = "localhost/busybox:three"
	buf.Reset()
	if err := testimage.Build(&buf, testimage.Options{Name: three, Cmd: []string{"false"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.r.ImportImage(bg, &buf); err != nil {
		t.Fatal(err)
	}
	dark, darkLog := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	f = imagexfer.NewFetcher(b.r, imagexfer.FetcherOptions{StallTimeout: 300 * time.Millisecond})
	_, err = f.Fetch(ctx, three, nodeImage(t, agentA, three).Target,
		&imagexfer.HTTPSource{BaseURL: dark.URL}, &imagexfer.HTTPSource{BaseURL: good.URL})
	if err != nil {
		t.Fatalf("Fetch from a dark source and a good one: %v", err)
	}
	if n, g := len(darkLog.take()), goodLog.take(); n != 1 || len(g) != 2 {
		t.Errorf("the dark source was asked %d times and the good one %v; want once, and the manifest and config", n, g)
	}
}

// TestImageTransferNoSpace: an image larger than the free space is not
// fetched, and the error says the sizes and the free space.
func TestImageTransferNoSpace(t *testing.T) {
	a, b := setup(t), emptyEnv(t)
	agentA := agentOn(t, a, 0)
	srv, log := serve(t, agentA.Handler())
	var asked string
	f := imagexfer.NewFetcher(b.r, imagexfer.FetcherOptions{FreeSpace: func(path string) (int64, error) {
		asked = path
		return 512 << 10, nil
	}})
	target := nodeImage(t, agentA, busybox).Target
	_, err := f.Fetch(bg, busybox, target, &imagexfer.HTTPSource{BaseURL: srv.URL})
	if !errors.Is(err, imagexfer.ErrNoSpace) || !strings.Contains(err.Error(), "512KiB free") || !strings.Contains(err.Error(), "unpacked") {
		t.Fatalf("Fetch with 512 KiB free = %v; want ErrNoSpace naming the sizes and the free space", err)
	}
	if !strings.HasPrefix(asked, b.d.Dir+"/") {
		t.Errorf("free space was asked of %q; want containerd's content root under %s", asked, b.d.Dir)
	}
	blobs, ingests := b.blobsAndIngests()
	if len(blobs) != 0 || len(ingests) != 0 {
		t.Errorf("after a refused fetch B holds %v and ingests %+v; want nothing", blobs, ingests)
	}
	if reqs := log.take(); len(reqs) != 1 || reqs[0].Digest != target.Digest {
		t.Errorf("a refused fetch asked A for %+v; want only the manifest (to learn the sizes)", reqs)
	}
}

// gatedStore holds every read of one blob until open is closed.
type gatedStore struct {
	*Runtime
	dgst    digest.Digest
	open    chan struct{}
	entered chan struct{}
}

func (g *gatedStore) OpenBlob(ctx context.Context, d digest.Digest) (runtime.BlobReader, error) {
	br, err := g.Runtime.OpenBlob(ctx, d)
	if err != nil || d != g.dgst {
		return br, err
	}
	g.entered <- struct{}{}
	return &gatedReader{BlobReader: br, open: g.open}, nil
}

type gatedReader struct {
	runtime.BlobReader
	open chan struct{}
}

func (r *gatedReader) ReadAt(p []byte, off int64) (int, error) {
	<-r.open
	return r.BlobReader.ReadAt(p, off)
}

// TestBlobServer: what a source serves, and refuses.
func TestBlobServer(t *testing.T) {
	a := setup(t)
	img, err := testimage.Make(testimage.Options{Name: busybox})
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedStore{Runtime: a.r, dgst: digest.Digest(img.LayerDigest), open: make(chan struct{}), entered: make(chan struct{}, 10)}
	mux := http.NewServeMux()
	mux.Handle(imagexfer.BlobPattern, imagexfer.NewServer(g, imagexfer.ServerOptions{MaxTransfers: 2, RetryAfter: 2 * time.Second}))
	srv, _ := serve(t, mux)
	get := func(method, dgst, rng string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+imagexfer.BlobPath+dgst, nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}

	// Bad digests; digests of no image, including a blob in the store
	// that no image refers to.
	stray := []byte("a blob no image refers to")
	sctx, done, err := a.r.client.WithLease(a.r.nsctx(bg))
	if err != nil {
		t.Fatal(err)
	}
	defer done(context.WithoutCancel(sctx))
	if err := content.WriteBlob(sctx, a.r.client.ContentStore(), "stray", bytes.NewReader(stray),
		ocispec.Descriptor{Digest: digest.FromBytes(stray), Size: int64(len(stray))}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dgst string
		code int
		msg  string
	}{
		{"sha256:xyz", 400, "64 lowercase hex digits"},
		{"md5:" + strings.Repeat("a", 32), 400, "64 lowercase hex digits"},
		{strings.ToUpper(img.LayerDigest[7:]), 400, "sha256:"},
		{digest.FromString("nothing").String(), 404, "in no image on this node"},
		{digest.FromBytes(stray).String(), 404, "in no image on this node"},
	} {
		resp, body := get("GET", c.dgst, "")
		var e api.Error
		json.Unmarshal(body, &e)
		if resp.StatusCode != c.code || !strings.Contains(e.Message, c.msg) {
			t.Errorf("GET %s = %d %q; want %d saying %q", c.dgst, resp.StatusCode, e.Message, c.code, c.msg)
		}
	}

	// Documents are served whole, layers by range.
	close(g.open)
	if resp, body := get("GET", img.ManifestDigest, ""); resp.StatusCode != 200 || !bytes.Equal(body, img.Manifest) ||
		resp.Header.Get("Content-Type") != ocispec.MediaTypeImageManifest {
		t.Errorf("GET manifest = %d %s (%d bytes); want 200, the manifest and its media type", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	if resp, body := get("GET", img.LayerDigest, "bytes=100-199"); resp.StatusCode != 206 || !bytes.Equal(body, img.Layer[100:200]) ||
		resp.Header.Get("ETag") != `"`+img.LayerDigest+`"` {
		t.Errorf("GET layer bytes=100-199 = %d, %d bytes, ETag %s; want 206 and those bytes", resp.StatusCode, len(body), resp.Header.Get("ETag"))
	}
	if resp, body := get("GET", img.LayerDigest, fmt.Sprintf("bytes=%d-", len(img.Layer)-10)); resp.StatusCode != 206 || !bytes.Equal(body, img.Layer[len(img.Layer)-10:]) {
		t.Errorf("GET the last 10 bytes of the layer = %d, %d bytes; want 206 and those", resp.StatusCode, len(body))
	}
	for range 2 {
		<-g.entered
	}

	// Two transfers at a time: a third GET waits its turn.
	g.open = make(chan struct{})
	results := make(chan []byte, 2)
	for range 2 {
		go func() {
			resp, body := get("GET", img.LayerDigest, "")
			if resp.StatusCode != 200 {
				body = nil
			}
			results <- body
		}()
	}
	<-g.entered
	<-g.entered
	resp, body := get("GET", img.LayerDigest, "")
	var e api.Error
	json.Unmarshal(body, &e)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" || !strings.Contains(e.Message, "already sending 2 image blobs") {
		t.Errorf("a third GET while 2 run = %d, Retry-After %q, %q; want 503, Retry-After 2 and why", resp.StatusCode, resp.Header.Get("Retry-After"), e.Message)
	}
	if resp, _ := get("HEAD", img.LayerDigest, ""); resp.StatusCode != 200 || resp.ContentLength != int64(len(img.Layer)) {
		t.Errorf("HEAD while 2 GETs run = %d, length %d; want 200 and %d (HEAD sends no blob)", resp.StatusCode, resp.ContentLength, len(img.Layer))
	}
	close(g.open)
	for range 2 {
		if b := <-results; !bytes.Equal(b, img.Layer) {
			t.Errorf("a GET held while the limit was reached got %d bytes; want the layer's %d", len(b), len(img.Layer))
		}
	}
	if resp, body := get("GET", img.LayerDigest, ""); resp.StatusCode != 200 || !bytes.Equal(body, img.Layer) {
		t.Errorf("GET once the others ended = %d; want 200 and the layer", resp.StatusCode)
	}
}

// BenchmarkImageTransfer fetches an image of about 100 MB (busybox and a
// layer of 100 MiB of random bytes, gzipped: incompressible) from A to a
// fresh B over loopback HTTP, and reports the transfer rate and the time
// to unpack.
//
//	go test -run '^$' -bench ImageTransfer -benchtime 3x ./daemons/agent/containerd/
func BenchmarkImageTransfer(b *testing.B) {
	a := setup(b)
	const big = "localhost/big:1"
	tarball, size := bigImage(b, big, 100<<20)
	if _, err := a.r.ImportImage(bg, bytes.NewReader(tarball)); err != nil {
		b.Fatal(err)
	}
	agentA := agentOn(b, a, 0)
	srv, _ := serve(b, agentA.Handler())
	target := nodeImage(b, agentA, big).Target
	var transfer, unpack time.Duration
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst := emptyEnv(b)
		f := imagexfer.NewFetcher(dst.r, imagexfer.FetcherOptions{})
		b.StartTimer()
		res, err := f.Fetch(bg, big, target, &imagexfer.HTTPSource{BaseURL: srv.URL})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		transfer += res.Transfer
		unpack += res.Create
		if err := dst.d.Stop(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/1e6/(transfer.Seconds()/float64(b.N)), "MB/s-transfer")
	b.ReportMetric(unpack.Seconds()/float64(b.N), "s-unpack")
}

// bigImage is busybox plus a layer holding one file of n random bytes, as
// an OCI layout tarball; size is the bytes of all its blobs.
func bigImage(t testing.TB, name string, n int) (tarball []byte, size int64) {
	t.Helper()
	img, err := testimage.Make(testimage.Options{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/dev/urandom")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "random", Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
	if _, err := io.CopyN(tw, f, int64(n)); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(raw.Bytes())
	zw.Close()
	layer := gz.Bytes()

	var cfg ocispec.Image
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(raw.Bytes()))
	cb, _ := json.Marshal(cfg)
	var m ocispec.Manifest
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))}
	m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(layer), Size: int64(len(layer))})
	mb, _ := json.Marshal(m)
	blobs := map[string][]byte{img.LayerDigest: img.Layer, digest.FromBytes(layer).String(): layer,
		digest.FromBytes(cb).String(): cb, digest.FromBytes(mb).String(): mb}
	for _, b := range blobs {
		size += int64(len(b))
	}
	return ociLayout(t, name, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(mb), Size: int64(len(mb))}, blobs), size
}
