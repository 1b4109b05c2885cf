package imagexfer

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/daemons/api"
)

// Media types of the documents that refer to other blobs.
const (
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// maxDocument bounds an index or manifest read into memory (a registry
// refuses larger manifests too).
const maxDocument = 4 << 20

// maxNesting bounds indexes within indexes.
const maxNesting = 4

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerList
}

func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == mediaTypeDockerManifest
}

// isDocument says whether blobs of this media type refer to other blobs.
func isDocument(mt string) bool { return isIndex(mt) || isManifest(mt) }

// ParseDigest checks that s is a blob digest this package moves: "sha256:"
// and 64 lowercase hex digits. The error wraps ErrBadDigest and says so.
func ParseDigest(s string) (digest.Digest, error) {
	if err := api.ValidateDigest(s); err != nil {
		return "", fmt.Errorf("%w %q: want sha256: followed by 64 lowercase hex digits", ErrBadDigest, s)
	}
	return digest.Digest(s), nil
}

// document is the part of an index or manifest this package reads.
type document struct {
	MediaType string               `json:"mediaType,omitempty"`
	Manifests []ocispec.Descriptor `json:"manifests,omitempty"`
	Config    *ocispec.Descriptor  `json:"config,omitempty"`
	Layers    []ocispec.Descriptor `json:"layers,omitempty"`
}

// parseDocument reads an index or a manifest of media type mt and checks
// that it is what mt says and that every blob it names has a valid digest.
func parseDocument(mt string, b []byte) (document, error) {
	var d document
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("%s is not valid JSON: %w", mt, err)
	}
	switch {
	case isIndex(mt):
		if d.Config != nil || len(d.Layers) > 0 || isManifest(d.MediaType) {
			return d, fmt.Errorf("expected an index (%s) but found a manifest", mt)
		}
	case isManifest(mt):
		if len(d.Manifests) > 0 || isIndex(d.MediaType) {
			return d, fmt.Errorf("expected a manifest (%s) but found an index", mt)
		}
		if d.Config == nil {
			return d, fmt.Errorf("manifest (%s) has no config", mt)
		}
	default:
		return d, fmt.Errorf("media type %q is neither an image index nor a manifest", mt)
	}
	for _, c := range d.children() {
		if _, err := ParseDigest(c.Digest.String()); err != nil {
			return d, fmt.Errorf("%s refers to a blob with an unusable digest: %w", mt, err)
		}
		if c.Size < 0 {
			return d, fmt.Errorf("%s refers to blob %s with size %d", mt, c.Digest, c.Size)
		}
	}
	return d, nil
}

// children lists every blob the document refers to.
func (d document) children() []ocispec.Descriptor {
	out := append([]ocispec.Descriptor{}, d.Manifests...)
	if d.Config != nil {
		out = append(out, *d.Config)
	}
	return append(out, d.Layers...)
}

// chooseManifest picks the entry of an index that containerd unpacks on
// this node: of the entries for a platform the node runs (or naming none),
// the best by platforms.Default's order, the index's order breaking ties
// (containerd's images.LimitManifests(…, 1) over images.FilterPlatforms).
func chooseManifest(idx document) (ocispec.Descriptor, error) {
	m := platforms.Default()
	var cands []ocispec.Descriptor
	for _, d := range idx.Manifests {
		if !isDocument(d.MediaType) {
			continue
		}
		if d.Platform == nil || m.Match(*d.Platform) {
			cands = append(cands, d)
		}
	}
	if len(cands) == 0 {
		return ocispec.Descriptor{}, fmt.Errorf("the index has no manifest for this node's platform (%s)", platforms.DefaultString())
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].Platform == nil {
			return false
		}
		if cands[j].Platform == nil {
			return true
		}
		return m.Less(*cands[i].Platform, *cands[j].Platform)
	})
	return cands[0], nil
}

func toRuntime(d ocispec.Descriptor) runtime.Descriptor {
	return runtime.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
}

func toOCI(d runtime.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
}
