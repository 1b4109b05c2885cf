package imagexfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/warren-edge/warren/daemons/api"
)

// Errors of this package; others wrap them.
var (
	// ErrBadDigest: a digest that is not "sha256:" and 64 lowercase hex digits.
	ErrBadDigest = errors.New("imagexfer: invalid blob digest")
	// ErrNotFound: the source does not serve that blob (it holds no image
	// that refers to it).
	ErrNotFound = errors.New("imagexfer: blob not found")
	// ErrNoSpace: the image does not fit in the free disk space.
	ErrNoSpace = errors.New("imagexfer: not enough free disk space")
)

// BlobSource is where a fetch reads blobs: a node that holds the image.
type BlobSource interface {
	// Open returns the blob's bytes from offset to its end. It returns an
	// error wrapping ErrNotFound when the source does not have the blob,
	// and a *BusyError when it serves too many transfers now. The bytes are
	// not trusted: the fetcher checks the blob's digest.
	Open(ctx context.Context, dgst digest.Digest, offset int64) (io.ReadCloser, error)
}

// BusyError is a source's answer when it already serves as many
// transfers as it allows: try again after RetryAfter, or elsewhere.
type BusyError struct {
	RetryAfter time.Duration
	Message    string
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("imagexfer: source busy (retry after %v): %s", e.RetryAfter, e.Message)
}

// BlobPath is where a source serves blobs: BlobPath + digest.
const BlobPath = "/v1/blobs/"

// HTTPSource reads blobs from a Server at BaseURL (BaseURL + BlobPath +
// digest), with a Range request to resume. It is the source over a
// node-to-node route: give it the route's prefix and its *http.Client.
type HTTPSource struct {
	// BaseURL has no trailing slash, e.g. "http://agent" or
	// "https://10.0.0.2:4243/v1/nodes/abc/agent".
	BaseURL string
	// Client makes the requests; http.DefaultClient if nil.
	Client *http.Client
}

func (s *HTTPSource) String() string { return s.BaseURL }

// Open implements BlobSource. A source that ignores the Range header (200
// instead of 206) is read from the start and the first offset bytes are
// skipped.
func (s *HTTPSource) Open(ctx context.Context, dgst digest.Digest, offset int64) (io.ReadCloser, error) {
	if offset < 0 {
		return nil, fmt.Errorf("imagexfer: open %s at offset %d", dgst, offset)
	}
	url := strings.TrimSuffix(s.BaseURL, "/") + BlobPath + dgst.String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("imagexfer: %w", err)
	}
	if offset > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("imagexfer: GET %s: %w", url, err)
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != offset {
			resp.Body.Close()
			return nil, fmt.Errorf("imagexfer: GET %s: asked for bytes from %d, got Content-Range %q", url, offset, resp.Header.Get("Content-Range"))
		}
		return resp.Body, nil
	case http.StatusOK:
		if offset > 0 {
			if _, err := io.CopyN(io.Discard, resp.Body, offset); err != nil {
				resp.Body.Close()
				return nil, fmt.Errorf("imagexfer: GET %s: skip to offset %d: %w", url, offset, err)
			}
		}
		return resp.Body, nil
	}
	defer resp.Body.Close()
	msg := errorMessage(resp)
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: GET %s: %s", ErrNotFound, url, msg)
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		return nil, &BusyError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()), Message: msg}
	}
	return nil, fmt.Errorf("imagexfer: GET %s: %s: %s", url, resp.Status, msg)
}

// errorMessage reads the api.Error a Server answers with, or the start of
// whatever body another server sent.
func errorMessage(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		return e.Message
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return resp.Status
}

// rangeStart reads the first byte position of "bytes START-END/SIZE".
func rangeStart(cr string) (int64, bool) {
	rest, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

// defaultRetryAfter is the wait after a busy answer that gave none.
const defaultRetryAfter = time.Second

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return defaultRetryAfter
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return defaultRetryAfter
}
