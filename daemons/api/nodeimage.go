package api

import "strings"

// NodeImage is one image a node holds, as its agent lists it for the
// managers: enough to tell which nodes hold an image and to fetch it from
// one of them (the agent's imagexfer.Fetcher takes Ref and Target).
type NodeImage struct {
	// Ref is the image's normalized reference,
	// e.g. docker.io/library/busybox:latest.
	Ref string `json:"ref"`
	// Target is the image's index or manifest: the root of its content.
	Target Descriptor `json:"target"`
	// Size is the bytes of the image's content on the node (all its blobs
	// for the node's platform, compressed): about what a transfer moves.
	Size int64 `json:"size"`
}

// Descriptor names a content-addressed blob, as in the OCI image spec.
type Descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"` // "sha256:" and 64 hex digits
	Size      int64  `json:"size"`   // bytes of the blob itself
}

// ValidateDigest checks that s is a blob digest Warren moves between
// nodes: "sha256:" and 64 lowercase hex digits.
func ValidateDigest(s string) error {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return Errorf(CodeInvalid, "digest %q: want sha256: followed by 64 lowercase hex digits", s)
	}
	return nil
}

// PrestageResult is one node's answer to an image prestage: the image as
// it now holds it, whether it held it already, and how long fetching took.
type PrestageResult struct {
	Node    string    `json:"node"`
	Image   NodeImage `json:"image"`
	Already bool      `json:"already,omitempty"`
	Took    Duration  `json:"took,omitempty"`
}
