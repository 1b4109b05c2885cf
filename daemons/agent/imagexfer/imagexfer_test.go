package imagexfer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/warren-edge/warren/daemons/api"
)

func TestParseDigest(t *testing.T) {
	good := digest.FromString("x").String()
	for _, c := range []struct {
		in string
		ok bool
	}{
		{good, true},
		{strings.ToUpper(good), false},
		{strings.TrimPrefix(good, "sha256:"), false},
		{"sha512:" + strings.Repeat("a", 128), false},
		{good[:len(good)-1], false},
		{good + "a", false},
		{"sha256:" + strings.Repeat("g", 64), false},
		{"../../etc/passwd", false},
	} {
		d, err := ParseDigest(c.in)
		if c.ok && (err != nil || d.String() != c.in) || !c.ok && !errors.Is(err, ErrBadDigest) {
			t.Errorf("ParseDigest(%q) = %q, %v; want ok=%v", c.in, d, err, c.ok)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		h    string
		want time.Duration
	}{
		{"", defaultRetryAfter},
		{"3", 3 * time.Second},
		{"junk", defaultRetryAfter},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := retryAfter(c.h, now); got != c.want {
			t.Errorf("retryAfter(%q) = %v, want %v", c.h, got, c.want)
		}
	}
}

// TestHTTPSource: how the source reads the answers of a server.
func TestHTTPSource(t *testing.T) {
	blob := []byte("0123456789abcdef")
	dgst := digest.FromBytes(blob)
	mode := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch mode {
		case "ignores-range":
			w.Write(blob)
		case "wrong-range":
			w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(blob)-1, len(blob)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(blob)
		case "busy":
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(api.Errorf(api.CodeUnavailable, "too many"))
		case "missing":
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(api.Errorf(api.CodeNotFound, "blob is in no image"))
		default:
			http.ServeContent(w, r, "", time.Time{}, strings.NewReader(string(blob)))
		}
	}))
	defer srv.Close()
	src := &HTTPSource{BaseURL: srv.URL + "/", Client: srv.Client()}
	read := func(off int64) (string, error) {
		rc, err := src.Open(context.Background(), dgst, off)
		if err != nil {
			return "", err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		return string(b), err
	}
	for _, m := range []string{"", "ignores-range"} {
		mode = m
		if got, err := read(10); got != "abcdef" || err != nil {
			t.Errorf("%s: Open(offset 10) read %q, %v; want abcdef", m, got, err)
		}
	}
	mode = "wrong-range"
	if _, err := read(10); err == nil || !strings.Contains(err.Error(), "asked for bytes from 10") {
		t.Errorf("a 206 from the wrong offset: %v; want an error", err)
	}
	mode = "busy"
	var busy *BusyError
	if _, err := read(0); !errors.As(err, &busy) || busy.RetryAfter != 7*time.Second || busy.Message != "too many" {
		t.Errorf("a 503 with Retry-After 7: %v; want a BusyError of 7 s saying why", err)
	}
	mode = "missing"
	if _, err := read(0); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "blob is in no image") {
		t.Errorf("a 404: %v; want ErrNotFound with the server's message", err)
	}
}

func TestChooseManifest(t *testing.T) {
	plat := func(arch string) *ocispec.Platform { return &ocispec.Platform{OS: "linux", Architecture: arch} }
	mine, other, none := digest.FromString("mine"), digest.FromString("other"), digest.FromString("none")
	m := func(d digest.Digest, p *ocispec.Platform) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 1, Platform: p}
	}
	otherArch := "s390x"
	if goruntime.GOARCH == "s390x" {
		otherArch = "amd64"
	}
	for _, c := range []struct {
		name string
		idx  []ocispec.Descriptor
		want digest.Digest
	}{
		{"this platform after another", []ocispec.Descriptor{m(other, plat(otherArch)), m(mine, plat(goruntime.GOARCH))}, mine},
		{"a platform before none named", []ocispec.Descriptor{m(none, nil), m(mine, plat(goruntime.GOARCH))}, mine},
		{"none named", []ocispec.Descriptor{m(other, plat(otherArch)), m(none, nil)}, none},
		{"only another", []ocispec.Descriptor{m(other, plat(otherArch))}, ""},
	} {
		got, err := chooseManifest(document{Manifests: c.idx})
		if got.Digest != c.want || (c.want == "") != (err != nil) {
			t.Errorf("chooseManifest(%s) = %s, %v; want %q", c.name, got.Digest, err, c.want)
		}
	}
}

func TestParseDocument(t *testing.T) {
	good := digest.FromString("c").String()
	for _, c := range []struct {
		mt, doc string
		ok      bool
	}{
		{ocispec.MediaTypeImageManifest, `{"config":{"digest":"` + good + `","size":1},"layers":[]}`, true},
		{ocispec.MediaTypeImageManifest, `{"manifests":[{"digest":"` + good + `"}]}`, false},
		{ocispec.MediaTypeImageManifest, `{"layers":[]}`, false},
		{ocispec.MediaTypeImageManifest, `{"config":{"digest":"sha256:../x","size":1}}`, false},
		{ocispec.MediaTypeImageIndex, `{"manifests":[{"digest":"` + good + `","size":2}]}`, true},
		{ocispec.MediaTypeImageIndex, `{"config":{"digest":"` + good + `","size":1}}`, false},
		{ocispec.MediaTypeImageLayerGzip, `{}`, false},
		{ocispec.MediaTypeImageIndex, `not json`, false},
	} {
		_, err := parseDocument(c.mt, []byte(c.doc))
		if (err == nil) != c.ok {
			t.Errorf("parseDocument(%s, %s) = %v; want ok=%v", c.mt, c.doc, err, c.ok)
		}
	}
}
