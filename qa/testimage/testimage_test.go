package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

func needBusybox(t *testing.T) {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
}

// readTar returns the entries of a tarball by name, in archive order.
func readTar(t *testing.T, r io.Reader) (map[string][]byte, []*tar.Header) {
	t.Helper()
	tr := tar.NewReader(r)
	files := map[string][]byte{}
	var hdrs []*tar.Header
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s: %v", h.Name, err)
		}
		if _, dup := files[h.Name]; dup {
			t.Errorf("tar has %s twice", h.Name)
		}
		files[h.Name] = b
		hdrs = append(hdrs, h)
	}
	return files, hdrs
}

func checkDeterministicHeaders(t *testing.T, what string, hdrs []*tar.Header) {
	t.Helper()
	names := make([]string, len(hdrs))
	for i, h := range hdrs {
		names[i] = h.Name
		if h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: entry %s has mtime %v owner %d:%d (%q:%q), want epoch and numeric 0:0",
				what, h.Name, h.ModTime, h.Uid, h.Gid, h.Uname, h.Gname)
		}
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("%s: entries not sorted by name: %v", what, names)
	}
}

func blob(t *testing.T, files map[string][]byte, digest string) []byte {
	t.Helper()
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("digest %q is not sha256", digest)
	}
	b, ok := files["blobs/sha256/"+strings.TrimPrefix(digest, "sha256:")]
	if !ok {
		t.Fatalf("blob %s missing from the layout", digest)
	}
	if got := Digest(b); got != digest {
		t.Fatalf("blob %s has digest %s", digest, got)
	}
	return b
}

func TestBuildOCILayout(t *testing.T) {
	needBusybox(t)
	var buf bytes.Buffer
	opts := Options{Name: "localhost/busybox:1.35", Cmd: []string{"httpd", "-f", "-p", "80"}, Env: []string{"PATH=/bin", "A=b"}}
	if err := Build(&buf, opts); err != nil {
		t.Fatalf("Build: %v", err)
	}
	files, hdrs := readTar(t, &buf)
	checkDeterministicHeaders(t, "layout", hdrs)

	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q", got)
	}
	var idx index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != MediaTypeIndex || len(idx.Manifests) != 1 {
		t.Fatalf("index.json = %+v, want one manifest in a v2 OCI index", idx)
	}
	md := idx.Manifests[0]
	if md.MediaType != MediaTypeManifest {
		t.Errorf("index manifest media type %q, want %q", md.MediaType, MediaTypeManifest)
	}
	if got := md.Annotations[AnnotationImageName]; got != "localhost/busybox:1.35" {
		t.Errorf("annotation %s = %q", AnnotationImageName, got)
	}
	if got := md.Annotations[AnnotationRefName]; got != "1.35" {
		t.Errorf("annotation %s = %q, want the tag", AnnotationRefName, got)
	}
	if md.Platform == nil || md.Platform.OS != "linux" || md.Platform.Architecture == "" {
		t.Errorf("index manifest platform = %+v", md.Platform)
	}
	mb := blob(t, files, md.Digest)
	if int64(len(mb)) != md.Size {
		t.Errorf("manifest size %d, index says %d", len(mb), md.Size)
	}
	var m manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if m.MediaType != MediaTypeManifest || m.Config.MediaType != MediaTypeConfig || len(m.Layers) != 1 || m.Layers[0].MediaType != MediaTypeLayer {
		t.Fatalf("manifest = %+v", m)
	}
	cb := blob(t, files, m.Config.Digest)
	lb := blob(t, files, m.Layers[0].Digest)
	if int64(len(cb)) != m.Config.Size || int64(len(lb)) != m.Layers[0].Size {
		t.Errorf("sizes: config %d/%d layer %d/%d", len(cb), m.Config.Size, len(lb), m.Layers[0].Size)
	}
	var cfg imageConfig
	if err := json.Unmarshal(cb, &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	if strings.Join(cfg.Config.Cmd, " ") != "httpd -f -p 80" || strings.Join(cfg.Config.Env, ",") != "PATH=/bin,A=b" {
		t.Errorf("config = %+v, want the Cmd and Env of the options", cfg.Config)
	}
	zr, err := gzip.NewReader(bytes.NewReader(lb))
	if err != nil {
		t.Fatalf("layer is not gzip: %v", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip layer: %v", err)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != Digest(raw) {
		t.Errorf("rootfs.diff_ids = %v, want [%s] (sha256 of the uncompressed layer)", cfg.RootFS.DiffIDs, Digest(raw))
	}
	checkRootfs(t, raw)
}

func checkRootfs(t *testing.T, layer []byte) {
	t.Helper()
	files, hdrs := readTar(t, bytes.NewReader(layer))
	checkDeterministicHeaders(t, "layer", hdrs)
	byName := map[string]*tar.Header{}
	for _, h := range hdrs {
		byName[h.Name] = h
	}
	bb, err := os.ReadFile(DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	if h := byName["bin/busybox"]; h == nil || h.Mode&0o111 == 0 || !bytes.Equal(files["bin/busybox"], bb) {
		t.Errorf("bin/busybox missing, not executable or not the host's busybox")
	}
	for _, a := range []string{"sh", "httpd", "sleep", "cat", "echo", "wget", "nc", "ls", "head", "tr"} {
		h := byName["bin/"+a]
		if h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s = %+v, want a symlink to busybox", a, h)
		}
	}
	if !strings.Contains(string(files["etc/passwd"]), "root:x:0:0:") || !strings.Contains(string(files["etc/passwd"]), "nobody:x:65534:65534:") {
		t.Errorf("etc/passwd = %q, want root and nobody", files["etc/passwd"])
	}
	if !strings.Contains(string(files["etc/group"]), "nobody:x:65534:") {
		t.Errorf("etc/group = %q, want root and nobody", files["etc/group"])
	}
	if h := byName["tmp/"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode&0o1777 != 0o1777 {
		t.Errorf("tmp/ = %+v, want a directory with mode 1777", h)
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	needBusybox(t)
	var a, b bytes.Buffer
	if err := Build(&a, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := Build(&b, Options{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("two Builds with the same options differ (%d and %d bytes)", a.Len(), b.Len())
	}
	var c bytes.Buffer
	if err := Build(&c, Options{Name: "localhost/other"}); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Errorf("Builds with different names are identical")
	}
}

func TestBuildDockerArchive(t *testing.T) {
	needBusybox(t)
	var buf bytes.Buffer
	if err := BuildDockerArchive(&buf, Options{Name: "busybox"}); err != nil {
		t.Fatalf("BuildDockerArchive: %v", err)
	}
	files, hdrs := readTar(t, &buf)
	checkDeterministicHeaders(t, "docker archive", hdrs)
	var mf []dockerManifest
	if err := json.Unmarshal(files["manifest.json"], &mf); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(mf) != 1 || len(mf[0].RepoTags) != 1 || mf[0].RepoTags[0] != "busybox:latest" || len(mf[0].Layers) != 1 {
		t.Fatalf("manifest.json = %+v, want one image tagged busybox:latest with one layer", mf)
	}
	cb, ok := files[mf[0].Config]
	if !ok {
		t.Fatalf("config %s missing", mf[0].Config)
	}
	if got := Digest(cb); got != "sha256:"+strings.TrimSuffix(mf[0].Config, ".json") {
		t.Errorf("config file %s has digest %s", mf[0].Config, got)
	}
	layer, ok := files[mf[0].Layers[0]]
	if !ok {
		t.Fatalf("layer %s missing", mf[0].Layers[0])
	}
	var cfg imageConfig
	if err := json.Unmarshal(cb, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != Digest(layer) {
		t.Errorf("diff_ids %v, want [%s]", cfg.RootFS.DiffIDs, Digest(layer))
	}
	checkRootfs(t, layer)
}

func TestAppletsExistInBusybox(t *testing.T) {
	needBusybox(t)
	out, err := exec.Command(DefaultBusybox, "--list").Output()
	if err != nil {
		t.Skipf("busybox --list: %v", err)
	}
	have := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		have[l] = true
	}
	for _, a := range DefaultApplets {
		if !have[a] {
			t.Errorf("applet %q is in DefaultApplets but not in %s", a, DefaultBusybox)
		}
	}
}

func TestBadInput(t *testing.T) {
	needBusybox(t)
	for _, o := range []Options{
		{Name: "/abs/path"},
		{Name: "has space"},
		{Applets: []string{"../etc"}},
		{Busybox: "/nonexistent/busybox"},
	} {
		if err := Build(io.Discard, o); err == nil {
			t.Errorf("Build(%+v) succeeded, want an error", o)
		}
	}
}

func TestNames(t *testing.T) {
	for _, c := range []struct{ in, repo, tag string }{
		{"busybox:latest", "busybox", "latest"},
		{"localhost:5000/busybox", "localhost:5000/busybox", "latest"},
		{"localhost:5000/busybox:1", "localhost:5000/busybox", "1"},
	} {
		repo, tag := splitName(c.in)
		if repo != c.repo || tag != c.tag {
			t.Errorf("splitName(%q) = %q, %q; want %q, %q", c.in, repo, tag, c.repo, c.tag)
		}
	}
	if got := withDefaults(Options{Name: "localhost:5000/busybox"}).Name; got != "localhost:5000/busybox:latest" {
		t.Errorf("default tag: got %q", got)
	}
}
