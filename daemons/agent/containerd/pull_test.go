package containerd

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"

	"github.com/warren-edge/warren/daemons/agent/runtime"
	"github.com/warren-edge/warren/qa/testport"
)

// startRegistry runs Debian's docker-registry (distribution 2.8) on a free
// loopback port with a throwaway storage directory and returns its
// host:port. It skips t when the binary is missing.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("docker-registry not installed (apt-get install docker-registry): skipping the pull test")
	}
	addr := testport.Addr(t) // docker-registry binds it itself
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), addr)), 0o644)
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	waitFor(t, 10*time.Second, "docker-registry to serve "+addr, func() bool {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return addr
}

func TestPullFromRegistry(t *testing.T) {
	e := setup(t)
	addr := startRegistry(t)
	ref := addr + "/warren/busybox:1"

	// Push the imported test image with containerd's own pusher.
	ctx := e.r.nsctx(bg)
	img, err := e.r.client.GetImage(ctx, busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.r.client.Push(ctx, ref, img.Target(), containerd.WithResolver(e.r.resolver)); err != nil {
		t.Fatalf("Push(%s): %v", ref, err)
	}
	// Drop the local copy, content included, so the pull must fetch.
	if err := e.r.client.ImageService().Delete(ctx, busybox, images.SynchronousDelete()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := e.r.HasImage(bg, busybox); ok {
		t.Fatalf("%s still present after delete", busybox)
	}

	got, err := e.r.PullImage(bg, ref)
	if err != nil {
		t.Fatalf("PullImage(%s): %v", ref, err)
	}
	if got.Name != ref || got.Digest != img.Target().Digest.String() || got.Size == 0 {
		t.Errorf("PullImage = %+v, want %s at %s", got, ref, img.Target().Digest)
	}
	if ok, err := e.r.HasImage(bg, ref); !ok || err != nil {
		t.Errorf("HasImage(%s) after pull = %v, %v; want unpacked", ref, ok, err)
	}
	s := spec("pulled", "sh", "-c", "echo pulled; exit 2")
	s.Image = ref
	id := e.run(s)
	if ex := e.exits.wait(t, id, 10*time.Second); ex.Code != 2 {
		t.Errorf("container of the pulled image exited %+v", ex)
	}

	missing := addr + "/warren/nope:1"
	_, err = e.r.PullImage(bg, missing)
	if !errors.Is(err, runtime.ErrImageNotFound) || !strings.Contains(err.Error(), missing) {
		t.Errorf("PullImage(%s) = %v; want ErrImageNotFound naming the reference", missing, err)
	}
	t.Logf("missing image: %v", err)
	// A registry that does not answer is also "could not be pulled".
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	if _, err := e.r.PullImage(bg, dead+"/x:1"); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Errorf("PullImage from a dead registry = %v; want ErrImageNotFound", err)
	}
}
