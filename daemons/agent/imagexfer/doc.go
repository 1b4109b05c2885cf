// Package imagexfer moves images between nodes without a registry:
// content-addressed, resumable blob transfers from a node that holds an
// image to one that needs it.
//
// It owns the HTTP face of a node's images (Server), the client of that
// face (HTTPSource, behind the BlobSource interface), and the fetch of a
// whole image (Fetcher). Storage is the runtime's: runtime.Content, which
// the containerd runtime implements over containerd's content store.
//
//	node A (holds the image)                      node B (needs it)
//	Server: GET/HEAD /v1/blobs/sha256:…   ◀── HTTPSource ◀── Fetcher.Fetch(ref, target, sources…)
//	  only blobs reachable from A's images             │  1. target, this platform's manifest → memory
//	  Range (206), ETag = digest                       │  2. Have? each config/layer; free space check
//	  N at once, else 503 + Retry-After                │  3. write documents; fetch missing blobs,
//	                                                   │     resuming at the stored offset (Range)
//	                                                   └─ 4. ImageWriter.Create: name + unpack
//
// # Serving
//
// A Server serves a blob only if it is reachable from an image of the
// runtime's namespace: an image's target, and, for every index or
// manifest on the node, what it refers to. The set is recomputed when the
// images' targets change (one cheap image list per request tells). The
// digest must be "sha256:" and 64 lowercase hex digits (400 otherwise).
// A GET beyond MaxTransfers at once gets 503 with Retry-After and a
// message saying why; HEAD is free. Ranges, If-Range and HEAD are
// net/http's ServeContent over the blob, read from the store 1 MiB at a
// time.
//
// # Fetching
//
// Fetch reads the target (an index or a manifest) and, through indexes,
// the manifest containerd will unpack on this node (platforms.Default's
// best match) into memory, checked against their digests. It then asks
// the store what it holds of the config and layers, and refuses (ErrNoSpace,
// nothing written) when the bytes still to fetch plus an unpacked size do
// not fit in the free space of the store's root. The unpacked size is
// estimated as twice the compressed size of the layers to fetch: the
// uncompressed size of a layer is not in the manifest; layers already on
// the node are taken to be unpacked already.
//
// Blobs go through ImageWriter.Blob, which resumes an unfinished write at
// its stored offset; the source is asked for a Range from there. The
// store checks size and digest at commit (a mismatch discards the bytes
// and the source is not asked for that blob again). Sources are tried in
// turn, starting with the last that worked: a busy one (503) is skipped
// until its Retry-After (at most MaxBusyWait) and waited for when none is
// free; one without the blob (404) is skipped for it; one that fails
// otherwise is tried up to Attempts times with a backoff, an attempt that
// moved bytes counting as the first again; one that sends nothing for
// StallTimeout is cut. When no source is left the fetch fails, keeping
// what it wrote: a later Fetch of the same target, in this process or
// another, resumes. Fetches of one target run one at a time.
//
// Documents are trusted only once their digest is checked; blobs are
// never trusted before the store's commit checks them.
package imagexfer
