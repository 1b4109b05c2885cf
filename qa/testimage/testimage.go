// Package testimage builds tiny container images for tests, offline.
//
// The image holds one layer: /bin/busybox copied from the host's
// busybox-static (Debian's /bin/busybox), symlinks in /bin for the applets
// tests use (sh, httpd, sleep, cat, wget, nc, ...), /etc/passwd and
// /etc/group with root and nobody, and an empty /tmp. Build writes it as an
// OCI image-layout tarball; BuildDockerArchive writes the same image in the
// format `docker save` produces. Both are loadable by containerd's
// client.Import, `ctr image import` and `docker load`.
//
// The output is deterministic: entries are sorted by name, every mtime is
// the epoch, owners are numeric (0:0), and the gzip header carries no name
// or time, so the same busybox and Options give the same digests.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	goruntime "runtime"
	"sort"
	"strings"
	"time"
)

// Media types and annotations written by Build.
const (
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"

	// AnnotationImageName is containerd's annotation for the full image name.
	AnnotationImageName = "io.containerd.image.name"
	// AnnotationRefName is the OCI annotation for the reference (its tag).
	AnnotationRefName = "org.opencontainers.image.ref.name"
)

// DefaultBusybox is where Debian's busybox-static installs its binary.
const DefaultBusybox = "/bin/busybox"

// DefaultName is the image name used when Options.Name is empty.
const DefaultName = "localhost/busybox:latest"

// DefaultApplets are the commands linked to /bin/busybox in the image.
var DefaultApplets = []string{
	"[", "awk", "cat", "chmod", "cp", "cut", "date", "dd", "df", "du", "echo",
	"env", "false", "find", "free", "grep", "head", "hostname", "httpd", "id",
	"ifconfig", "ip", "kill", "ln", "ls", "mkdir", "mv", "nc", "nslookup",
	"ping", "printf", "ps", "pwd", "rm", "sed", "seq", "sh", "sleep", "sort",
	"stat", "tail", "tee", "test", "timeout", "top", "touch", "tr", "true",
	"uname", "wc", "wget", "whoami", "xargs", "yes",
}

// DefaultEnv is the image's environment when Options.Env is nil.
var DefaultEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// Options shape the image. The zero value builds DefaultName for the host's
// architecture with `sh` as its command.
type Options struct {
	// Name is the image reference recorded in the tarball,
	// e.g. "localhost/busybox:latest". A name without a tag gets ":latest".
	Name string
	// Entrypoint and Cmd are the image's defaults; Cmd defaults to ["sh"]
	// when both are nil.
	Entrypoint []string
	Cmd        []string
	// Env defaults to DefaultEnv when nil.
	Env []string
	// WorkingDir defaults to "/".
	WorkingDir string
	// Busybox is the static busybox binary to copy; DefaultBusybox if empty.
	Busybox string
	// Applets are linked to busybox in /bin; DefaultApplets if nil.
	Applets []string
	// Architecture is the OCI architecture; the Go runtime's GOARCH if empty.
	Architecture string
	// Padding adds /padding, a file of this many random bytes (which gzip
	// cannot shrink): an image of a given size, for transfer figures.
	Padding int
	// Extra are more executable files, by path in the image without a
	// leading slash, in directories the image has (e.g. "bin/hello").
	Extra map[string][]byte
}

// Image is a built image held in memory: its blobs and their digests.
// Digests are "sha256:<hex>".
type Image struct {
	Name           string
	Layer          []byte // gzip-compressed layer tar
	LayerDigest    string
	DiffID         string // digest of the uncompressed layer tar
	Config         []byte
	ConfigDigest   string
	Manifest       []byte
	ManifestDigest string
	uncompressed   []byte
}

// Build writes opts' image to w as an OCI image-layout tarball.
func Build(w io.Writer, opts Options) error {
	img, err := Make(opts)
	if err != nil {
		return err
	}
	return img.WriteOCILayout(w)
}

// BuildDockerArchive writes opts' image to w in the format of `docker save`
// (manifest.json, the config as <hex>.json and an uncompressed layer tar).
func BuildDockerArchive(w io.Writer, opts Options) error {
	img, err := Make(opts)
	if err != nil {
		return err
	}
	return img.WriteDockerArchive(w)
}

// Make builds the image in memory without writing a tarball, for callers
// that push its blobs elsewhere (a registry, a content store).
func Make(opts Options) (*Image, error) {
	opts = withDefaults(opts)
	if err := checkName(opts.Name); err != nil {
		return nil, err
	}
	bb, err := os.ReadFile(opts.Busybox)
	if err != nil {
		return nil, fmt.Errorf("testimage: read busybox (install busybox-static): %w", err)
	}
	if err := checkStatic(opts.Busybox, bb); err != nil {
		return nil, err
	}
	layerTar, err := rootfsTar(bb, opts.Applets, opts.Padding, opts.Extra)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("testimage: gzip: %w", err)
	}
	if _, err := zw.Write(layerTar); err != nil {
		return nil, fmt.Errorf("testimage: gzip layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("testimage: gzip layer: %w", err)
	}

	img := &Image{
		Name:         opts.Name,
		Layer:        gz.Bytes(),
		LayerDigest:  Digest(gz.Bytes()),
		DiffID:       Digest(layerTar),
		uncompressed: layerTar,
	}

	img.Config, err = json.Marshal(imageConfig{
		Created:      time.Unix(0, 0).UTC(),
		Architecture: opts.Architecture,
		OS:           "linux",
		Config: containerConfig{
			Env:        opts.Env,
			Entrypoint: opts.Entrypoint,
			Cmd:        opts.Cmd,
			WorkingDir: opts.WorkingDir,
		},
		RootFS: rootFS{Type: "layers", DiffIDs: []string{img.DiffID}},
	})
	if err != nil {
		return nil, fmt.Errorf("testimage: encode config: %w", err)
	}
	img.ConfigDigest = Digest(img.Config)

	img.Manifest, err = json.Marshal(manifest{
		SchemaVersion: 2,
		MediaType:     MediaTypeManifest,
		Config:        descriptor{MediaType: MediaTypeConfig, Digest: img.ConfigDigest, Size: int64(len(img.Config))},
		Layers:        []descriptor{{MediaType: MediaTypeLayer, Digest: img.LayerDigest, Size: int64(len(img.Layer))}},
	})
	if err != nil {
		return nil, fmt.Errorf("testimage: encode manifest: %w", err)
	}
	img.ManifestDigest = Digest(img.Manifest)
	return img, nil
}

// WriteOCILayout writes the image as an OCI image-layout tarball.
func (img *Image) WriteOCILayout(w io.Writer) error {
	arch := ""
	var cfg imageConfig
	if err := json.Unmarshal(img.Config, &cfg); err == nil {
		arch = cfg.Architecture
	}
	index, err := json.Marshal(index{
		SchemaVersion: 2,
		MediaType:     MediaTypeIndex,
		Manifests: []descriptor{{
			MediaType: MediaTypeManifest,
			Digest:    img.ManifestDigest,
			Size:      int64(len(img.Manifest)),
			Annotations: map[string]string{
				AnnotationImageName: img.Name,
				AnnotationRefName:   tagOf(img.Name),
			},
			Platform: &platform{Architecture: arch, OS: "linux"},
		}},
	})
	if err != nil {
		return fmt.Errorf("testimage: encode index: %w", err)
	}
	files := []file{
		{name: "blobs/", dir: true},
		{name: "blobs/sha256/", dir: true},
		{name: blobPath(img.ConfigDigest), data: img.Config},
		{name: blobPath(img.LayerDigest), data: img.Layer},
		{name: blobPath(img.ManifestDigest), data: img.Manifest},
		{name: "index.json", data: index},
		{name: "oci-layout", data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
	}
	return writeTar(w, files)
}

// WriteDockerArchive writes the image in `docker save` format.
func (img *Image) WriteDockerArchive(w io.Writer) error {
	cfgName := hexOf(img.ConfigDigest) + ".json"
	layerDir := hexOf(img.DiffID)
	mf, err := json.Marshal([]dockerManifest{{
		Config:   cfgName,
		RepoTags: []string{img.Name},
		Layers:   []string{layerDir + "/layer.tar"},
	}})
	if err != nil {
		return fmt.Errorf("testimage: encode manifest.json: %w", err)
	}
	repo, tag := splitName(img.Name)
	repos, err := json.Marshal(map[string]map[string]string{repo: {tag: layerDir}})
	if err != nil {
		return fmt.Errorf("testimage: encode repositories: %w", err)
	}
	files := []file{
		{name: layerDir + "/", dir: true},
		{name: layerDir + "/VERSION", data: []byte("1.0")},
		{name: layerDir + "/layer.tar", data: img.uncompressed},
		{name: cfgName, data: img.Config},
		{name: "manifest.json", data: mf},
		{name: "repositories", data: repos},
	}
	return writeTar(w, files)
}

// Digest returns the "sha256:<hex>" digest of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func withDefaults(o Options) Options {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if !hasTagOrDigest(o.Name) {
		o.Name += ":latest"
	}
	if o.Entrypoint == nil && o.Cmd == nil {
		o.Cmd = []string{"sh"}
	}
	if o.Env == nil {
		o.Env = DefaultEnv
	}
	if o.WorkingDir == "" {
		o.WorkingDir = "/"
	}
	if o.Busybox == "" {
		o.Busybox = DefaultBusybox
	}
	if o.Applets == nil {
		o.Applets = DefaultApplets
	}
	if o.Architecture == "" {
		o.Architecture = goruntime.GOARCH
	}
	return o
}

func checkName(name string) error {
	if strings.ContainsAny(name, " \t\n") || strings.HasPrefix(name, "/") || strings.Contains(name, "@") {
		return fmt.Errorf("testimage: bad image name %q: want repository[:tag], e.g. localhost/busybox:latest", name)
	}
	return nil
}

// checkStatic refuses a dynamically linked busybox (Debian's "busybox"
// package rather than "busybox-static"): it would not run in the image.
func checkStatic(path string, b []byte) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("testimage: %s is not an ELF binary: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("testimage: %s is dynamically linked; install busybox-static", path)
		}
	}
	return nil
}

// hasTagOrDigest reports whether the last path element of name has a tag.
func hasTagOrDigest(name string) bool {
	last := name[strings.LastIndex(name, "/")+1:]
	return strings.Contains(last, ":") || strings.Contains(last, "@")
}

func splitName(name string) (repo, tag string) {
	i := strings.LastIndex(name, ":")
	if i < 0 || strings.Contains(name[i:], "/") {
		return name, "latest"
	}
	return name[:i], name[i+1:]
}

func tagOf(name string) string {
	_, tag := splitName(name)
	return tag
}

func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

func blobPath(digest string) string { return "blobs/sha256/" + hexOf(digest) }

// file is one tar entry.
type file struct {
	name    string
	data    []byte
	mode    int64
	dir     bool
	symlink string
}

// rootfsTar returns the uncompressed layer: busybox, its applet links,
// passwd and group, and the usual empty directories.
func rootfsTar(busybox []byte, applets []string, padding int, extra map[string][]byte) ([]byte, error) {
	files := []file{
		{name: "bin/", dir: true, mode: 0o755},
		{name: "bin/busybox", data: busybox, mode: 0o755},
		{name: "dev/", dir: true, mode: 0o755},
		{name: "etc/", dir: true, mode: 0o755},
		{name: "etc/group", data: []byte("root:x:0:\nnobody:x:65534:\n"), mode: 0o644},
		{name: "etc/passwd", data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), mode: 0o644},
		{name: "proc/", dir: true, mode: 0o755},
		{name: "root/", dir: true, mode: 0o700},
		{name: "sys/", dir: true, mode: 0o755},
		{name: "tmp/", dir: true, mode: 0o1777},
		{name: "var/", dir: true, mode: 0o755},
		{name: "var/www/", dir: true, mode: 0o755},
	}
	seen := map[string]bool{"busybox": true}
	for _, a := range applets {
		if a == "" || strings.Contains(a, "/") {
			return nil, fmt.Errorf("testimage: bad applet name %q", a)
		}
		if seen[a] {
			continue
		}
		seen[a] = true
		files = append(files, file{name: "bin/" + a, symlink: "busybox", mode: 0o777})
	}
	if padding > 0 {
		pad := make([]byte, padding)
		if _, err := rand.Read(pad); err != nil {
			return nil, fmt.Errorf("testimage: padding: %w", err)
		}
		files = append(files, file{name: "padding", data: pad, mode: 0o644})
	}
	for name, data := range extra {
		if name == "" || strings.HasPrefix(name, "/") || strings.Contains("/"+name+"/", "/../") || seen[path.Base(name)] && path.Dir(name) == "bin" {
			return nil, fmt.Errorf("testimage: bad extra file name %q", name)
		}
		files = append(files, file{name: name, data: data, mode: 0o755})
	}
	var buf bytes.Buffer
	if err := writeTar(&buf, files); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeTar writes files sorted by name with epoch mtimes and owner 0:0.
func writeTar(w io.Writer, files []file) error {
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	for _, f := range files {
		h := &tar.Header{
			Name:    f.name,
			ModTime: epoch,
			Mode:    f.mode,
			Format:  tar.FormatUSTAR,
		}
		switch {
		case f.dir:
			h.Typeflag = tar.TypeDir
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		case f.symlink != "":
			h.Typeflag = tar.TypeSymlink
			h.Linkname = f.symlink
		default:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(f.data))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("testimage: tar %s: %w", f.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.data); err != nil {
				return fmt.Errorf("testimage: tar %s: %w", f.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("testimage: tar: %w", err)
	}
	return nil
}

// The JSON shapes below follow the OCI image spec and docker's save format.
// They are spelled out here so this package needs only the standard library.

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type imageConfig struct {
	Created      time.Time       `json:"created"`
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Config       containerConfig `json:"config"`
	RootFS       rootFS          `json:"rootfs"`
}

type containerConfig struct {
	Env        []string `json:"Env,omitempty"`
	Entrypoint []string `json:"Entrypoint,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// ErrNoBusybox is returned by Available when the busybox binary is missing.
var ErrNoBusybox = errors.New("testimage: busybox-static is not installed (/bin/busybox missing)")

// Available reports whether Build can run on this machine.
func Available() error {
	if _, err := os.Stat(DefaultBusybox); err != nil {
		return ErrNoBusybox
	}
	return nil
}
