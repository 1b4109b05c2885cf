package runtime

import (
	"context"
	"errors"
	"io"

	"github.com/opencontainers/go-digest"
)

// Content is offered by a runtime that keeps images as content-addressed
// blobs (containerd does), so that an image can be copied from one node to
// another blob by blob, without a registry (package imagexfer). It is
// optional: the agent asks for it with a type assertion, and the fake
// runtime lacks it.
type Content interface {
	// ImageRecords lists the images' names and targets, cheaply (no sizes).
	ImageRecords(ctx context.Context) ([]ImageRecord, error)
	// OpenBlob opens a committed blob for reading, or returns an error
	// wrapping ErrBlobNotFound.
	OpenBlob(ctx context.Context, dgst digest.Digest) (BlobReader, error)
	// ContentRoot is the directory the engine keeps blobs in, for a check
	// of free disk space before a transfer.
	ContentRoot(ctx context.Context) (string, error)
	// StartImage begins (or takes up again) writing the image whose target
	// (index or manifest) is target. Blobs written for it are kept until
	// ImageWriter.Create names the image, or for a day if it never does, so
	// a later StartImage with the same target resumes where this one
	// stopped, even in another process.
	StartImage(ctx context.Context, target Descriptor) (ImageWriter, error)
}

// Blob errors. Implementations wrap them.
var (
	// ErrBlobNotFound: no committed blob with that digest.
	ErrBlobNotFound = errors.New("runtime: blob not found")
	// ErrBlobExists: the blob was committed meanwhile; nothing to write.
	ErrBlobExists = errors.New("runtime: blob already present")
	// ErrBlobMismatch: the bytes written do not have the blob's size and
	// digest. What was written is discarded.
	ErrBlobMismatch = errors.New("runtime: blob does not match its digest")
)

// Descriptor names a blob: what it is, its digest and its size in bytes.
type Descriptor struct {
	MediaType string
	Digest    digest.Digest
	Size      int64
}

// ImageRecord is an image's name and target.
type ImageRecord struct {
	Name   string // normalized reference
	Target Descriptor
}

// BlobReader reads a committed blob.
type BlobReader interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// BlobState is what the node holds of a blob.
type BlobState struct {
	Present bool  // committed
	Offset  int64 // bytes of an unfinished write, kept from an earlier attempt
}

// ImageWriter writes the blobs of one image, then names and unpacks it.
type ImageWriter interface {
	// Have reports what the node holds of d. A blob present is kept until
	// Create, whatever else lets go of it meanwhile.
	Have(ctx context.Context, d Descriptor) (BlobState, error)
	// Blob opens d for writing, at the offset an earlier attempt left
	// (BlobWriter.Offset). It returns an error wrapping ErrBlobExists when
	// d is already present.
	Blob(ctx context.Context, d Descriptor) (BlobWriter, error)
	// Create names the image (a reference, normalized here) with the
	// target given to StartImage, and unpacks it for this node's platform.
	// The blobs of the image for this platform must all be present.
	Create(ctx context.Context, name string) (Image, error)
}

// BlobWriter writes one blob. Bytes written are kept when it is closed
// without Commit: a later ImageWriter.Blob of the same descriptor resumes
// after them.
type BlobWriter interface {
	io.Writer
	// Offset is how many bytes the blob holds so far.
	Offset() int64
	// Reset discards what was written: the next Write is at offset 0.
	Reset() error
	// Commit checks the size and digest and stores the blob. A mismatch
	// returns an error wrapping ErrBlobMismatch and discards the bytes.
	Commit(ctx context.Context) error
	Close() error
}
