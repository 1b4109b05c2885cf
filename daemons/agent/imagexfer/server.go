package imagexfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
)

// BlobPattern is the route a Server serves, for an http.ServeMux (GET
// patterns match HEAD too).
const BlobPattern = "GET " + BlobPath + "{digest}"

// ServerOptions configure NewServer.
type ServerOptions struct {
	// MaxTransfers bounds the blob bodies sent at once
	// (DefaultMaxTransfers if zero); over it a GET gets 503 with
	// Retry-After. HEAD is not counted.
	MaxTransfers int
	// RetryAfter is what a refused request is told to wait (1 s if zero).
	RetryAfter time.Duration
	Logger     *slog.Logger
}

// DefaultMaxTransfers is ServerOptions.MaxTransfers when unset.
const DefaultMaxTransfers = 4

// Server serves the blobs of the images a node holds, by digest, with
// HTTP Range support: GET and HEAD BlobPath + "sha256:…". Only blobs
// reachable from the images of the runtime's namespace are served (their
// targets, and what those refer to), never other content of the store.
type Server struct {
	store runtime.Content
	opts  ServerOptions
	slots chan struct{}

	mu    sync.Mutex
	key   string                   // the image targets reach was computed for
	reach map[digest.Digest]string // blob → media type ("" when not known)
}

// NewServer serves store's blobs.
func NewServer(store runtime.Content, opts ServerOptions) *Server {
	if opts.MaxTransfers <= 0 {
		opts.MaxTransfers = DefaultMaxTransfers
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Server{store: store, opts: opts, slots: make(chan struct{}, opts.MaxTransfers)}
}

// ServeHTTP serves one blob. The digest is the {digest} path value of
// BlobPattern, or what follows BlobPath in the URL.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeErr(w, http.StatusMethodNotAllowed, api.Errorf(api.CodeInvalid, "%s of a blob: only GET and HEAD", r.Method))
		return
	}
	raw := r.PathValue("digest")
	if raw == "" {
		_, raw, _ = strings.Cut(r.URL.Path, BlobPath)
	}
	dgst, err := ParseDigest(raw)
	if err != nil {
		writeErr(w, http.StatusBadRequest, api.Errorf(api.CodeInvalid, "%v", err))
		return
	}
	mediaType, ok, err := s.reachable(r.Context(), dgst)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, api.Errorf(api.CodeUnavailable, "list this node's images: %v", err))
		return
	}
	if !ok {
		writeErr(w, http.StatusNotFound, api.Errorf(api.CodeNotFound, "blob %s is in no image on this node", dgst))
		return
	}
	if r.Method == http.MethodGet {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		default:
			secs := int((s.opts.RetryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeErr(w, http.StatusServiceUnavailable, api.Errorf(api.CodeUnavailable,
				"this node is already sending %d image blobs, the most it sends at once: retry after %d s or fetch from another node",
				s.opts.MaxTransfers, secs))
			return
		}
	}
	br, err := s.store.OpenBlob(r.Context(), dgst)
	if errors.Is(err, runtime.ErrBlobNotFound) {
		writeErr(w, http.StatusNotFound, api.Errorf(api.CodeNotFound, "blob %s of an image on this node is not on this node (the image is incomplete)", dgst))
		return
	}
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, api.Errorf(api.CodeUnavailable, "open blob %s: %v", dgst, err))
		return
	}
	defer br.Close()
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("ETag", `"`+dgst.String()+`"`)
	w.Header().Set("Docker-Content-Digest", dgst.String())
	began := time.Now()
	http.ServeContent(w, r, "", time.Time{}, newBlobReadSeeker(br))
	if r.Method == http.MethodGet {
		s.opts.Logger.Debug("blob sent", "digest", dgst, "range", r.Header.Get("Range"),
			"took", time.Since(began).Round(time.Millisecond), "client_gone", r.Context().Err() != nil)
	}
}

// reachable says whether dgst is reachable from an image of the node, and
// its media type. The set is recomputed when the images' targets change.
func (s *Server) reachable(ctx context.Context, dgst digest.Digest) (string, bool, error) {
	recs, err := s.store.ImageRecords(ctx)
	if err != nil {
		return "", false, err
	}
	targets := make([]string, 0, len(recs))
	for _, r := range recs {
		targets = append(targets, r.Target.Digest.String())
	}
	slices.Sort(targets)
	key := strings.Join(slices.Compact(targets), ",")

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reach == nil || key != s.key {
		reach := map[digest.Digest]string{}
		for _, r := range recs {
			if err := s.walk(ctx, toOCI(r.Target), reach, 0); err != nil {
				return "", false, err
			}
		}
		s.key, s.reach = key, reach
	}
	mt, ok := s.reach[dgst]
	return mt, ok, nil
}

// walk adds d and, when it is an index or manifest on the node, what it
// refers to, to reach. Blobs missing from the node (an index's entries
// for other platforms) are added without their children.
func (s *Server) walk(ctx context.Context, d ocispec.Descriptor, reach map[digest.Digest]string, depth int) error {
	if _, seen := reach[d.Digest]; seen {
		return nil
	}
	reach[d.Digest] = d.MediaType
	if !isDocument(d.MediaType) || depth > maxNesting {
		return nil
	}
	b, err := readBlob(ctx, s.store, d.Digest, d.Size)
	if errors.Is(err, runtime.ErrBlobNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	doc, err := parseDocument(d.MediaType, b)
	if err != nil {
		// Not an image this package can move; serve the document alone.
		s.opts.Logger.Debug("image document not walked", "digest", d.Digest, "err", err)
		return nil
	}
	for _, c := range doc.children() {
		if err := s.walk(ctx, c, reach, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// readBlob reads a whole small blob (an index or manifest) from store.
func readBlob(ctx context.Context, store runtime.Content, dgst digest.Digest, size int64) ([]byte, error) {
	if size > maxDocument {
		return nil, fmt.Errorf("imagexfer: document %s is %d bytes, over the limit of %d", dgst, size, maxDocument)
	}
	br, err := store.OpenBlob(ctx, dgst)
	if err != nil {
		return nil, err
	}
	defer br.Close()
	if br.Size() > maxDocument {
		return nil, fmt.Errorf("imagexfer: document %s is %d bytes, over the limit of %d", dgst, br.Size(), maxDocument)
	}
	b := make([]byte, br.Size())
	if _, err := br.ReadAt(b, 0); err != nil && !(errors.Is(err, io.EOF)) {
		return nil, fmt.Errorf("imagexfer: read %s: %w", dgst, err)
	}
	return b, nil
}

func writeErr(w http.ResponseWriter, code int, e *api.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(e)
}

// readChunk is how much a blobReadSeeker reads from the store at once: a
// containerd ReaderAt makes one gRPC stream per ReadAt, so http's 32 KiB
// copies would cost one stream each.
const readChunk = 1 << 20

// blobReadSeeker is an io.ReadSeeker over a BlobReader that reads the
// store in readChunk pieces.
type blobReadSeeker struct {
	br        runtime.BlobReader
	off, size int64
	buf       []byte
	bufOff    int64 // offset of buf[0] in the blob
	bufLen    int
}

func newBlobReadSeeker(br runtime.BlobReader) *blobReadSeeker {
	return &blobReadSeeker{br: br, size: br.Size()}
}

func (r *blobReadSeeker) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	if r.off < r.bufOff || r.off >= r.bufOff+int64(r.bufLen) {
		if r.buf == nil {
			r.buf = make([]byte, readChunk)
		}
		n := int(min(int64(len(r.buf)), r.size-r.off))
		m, err := r.br.ReadAt(r.buf[:n], r.off)
		if m < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			r.bufLen = 0
			return 0, err
		}
		r.bufOff, r.bufLen = r.off, m
	}
	n := copy(p, r.buf[r.off-r.bufOff:r.bufLen])
	r.off += int64(n)
	return n, nil
}

func (r *blobReadSeeker) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("imagexfer: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("imagexfer: seek before the start of a blob")
	}
	r.off = offset
	return offset, nil
}
