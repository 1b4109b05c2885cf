package fake

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/agent/runtime"
)

var ctx = context.Background()

func recv(t *testing.T, r *Runtime) runtime.Exit {
	t.Helper()
	select {
	case e, ok := <-r.Exits():
		if !ok {
			t.Fatal("Exits closed")
		}
		return e
	case <-time.After(2 * time.Second):
		t.Fatal("no exit on Exits within 2s")
	}
	return runtime.Exit{}
}

func started(t *testing.T, r *Runtime, spec runtime.ContainerSpec) {
	t.Helper()
	if err := r.Create(ctx, spec); err != nil {
		t.Fatalf("Create(%s): %v", spec.ID, err)
	}
	if err := r.Start(ctx, spec.ID); err != nil {
		t.Fatalf("Start(%s): %v", spec.ID, err)
	}
}

func TestLifecycle(t *testing.T) {
	r := New()
	defer r.Close()
	r.AddImage("busybox")
	started(t, r, runtime.ContainerSpec{ID: "t1", Image: "busybox", Labels: map[string]string{"task": "t1"}})

	c, err := r.Inspect(ctx, "t1")
	if err != nil || c.State != runtime.StateRunning || c.Pid == 0 || c.Image != "docker.io/library/busybox:latest" || c.Labels["task"] != "t1" {
		t.Fatalf("Inspect(t1) = %+v, %v; want running busybox with its labels", c, err)
	}
	if err := r.Exit("t1", 3); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, r); e.ID != "t1" || e.Code != 3 || e.OOMKilled {
		t.Errorf("exit = %+v, want t1 code 3", e)
	}
	c, _ = r.Inspect(ctx, "t1")
	if c.State != runtime.StateStopped || c.Exit == nil || c.Exit.Code != 3 {
		t.Errorf("Inspect after exit = %+v", c)
	}
	if e, err := r.Stop(ctx, "t1", time.Second); err != nil || e.Code != 3 {
		t.Errorf("Stop of a stopped container = %+v, %v; want its recorded exit", e, err)
	}
	// Restart the same container, then OOM it.
	if err := r.Start(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := r.OOM("t1"); err != nil {
		t.Fatal(err)
	}
	if e := recv(t, r); e.Code != CodeSIGKILL || !e.OOMKilled {
		t.Errorf("exit after OOM = %+v, want 137 OOMKilled", e)
	}
	if err := r.Delete(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "t1"); err != nil {
		t.Errorf("Delete of a missing container: %v, want nil", err)
	}
	if _, err := r.Inspect(ctx, "t1"); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Inspect after Delete: %v, want ErrNotFound", err)
	}
	want := []string{"Create", "Start", "Inspect", "Inspect", "Stop", "Start", "Delete", "Delete", "Inspect"}
	var got []string
	for _, c := range r.Calls() {
		got = append(got, c.Method)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Calls() = %v, want %v", got, want)
	}
}

func TestStopGrace(t *testing.T) {
	r := New()
	defer r.Close()
	r.AddImage("busybox")
	started(t, r, runtime.ContainerSpec{ID: "polite", Image: "busybox"})
	started(t, r, runtime.ContainerSpec{ID: "stubborn", Image: "busybox"})
	r.SetIgnoresSIGTERM("stubborn", true)
	if e, err := r.Stop(ctx, "polite", time.Hour); err != nil || e.Code != CodeSIGTERM {
		t.Errorf("Stop(polite) = %+v, %v; want code 143", e, err)
	}
	if e, err := r.Stop(ctx, "stubborn", time.Hour); err != nil || e.Code != CodeSIGKILL {
		t.Errorf("Stop(stubborn) = %+v, %v; want code 137", e, err)
	}
	seen := map[string]int{}
	for i := 0; i < 2; i++ {
		e := recv(t, r)
		seen[e.ID] = e.Code
	}
	if seen["polite"] != CodeSIGTERM || seen["stubborn"] != CodeSIGKILL {
		t.Errorf("exits on the channel = %v", seen)
	}
}

func TestErrors(t *testing.T) {
	r := New()
	defer r.Close()
	if err := r.Create(ctx, runtime.ContainerSpec{ID: "a", Image: "nope"}); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Errorf("Create with a missing image: %v, want ErrImageNotFound", err)
	}
	if _, err := r.PullImage(ctx, "nope"); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Errorf("PullImage of an unpullable image: %v, want ErrImageNotFound", err)
	}
	r.SetPullable("nope", true)
	if img, err := r.PullImage(ctx, "nope"); err != nil || img.Name != "docker.io/library/nope:latest" {
		t.Errorf("PullImage of a pullable image = %+v, %v", img, err)
	}
	if ok, _ := r.HasImage(ctx, "docker.io/library/nope"); !ok {
		t.Errorf("HasImage after pull = false")
	}
	if err := r.Create(ctx, runtime.ContainerSpec{ID: "m", Image: "nope", MemoryLimit: 4096}); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("Create with a 4 KiB memory limit: %v, want ErrInvalidSpec", err)
	}
	r.SetCommandMissing("httpd", true)
	r.Create(ctx, runtime.ContainerSpec{ID: "c", Image: "nope", Command: []string{"httpd"}})
	if err := r.Start(ctx, "c"); !errors.Is(err, runtime.ErrCommandNotFound) {
		t.Errorf("Start with a missing command: %v, want ErrCommandNotFound", err)
	}
	r.FailNext("Start", ErrInjected)
	if err := r.Start(ctx, "c"); !errors.Is(err, ErrInjected) {
		t.Errorf("Start after FailNext: %v", err)
	}
	r.SetUnavailable(true)
	if err := r.Ping(ctx); !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("Ping while unavailable: %v", err)
	}
	if _, err := r.List(ctx); !errors.Is(err, runtime.ErrUnavailable) {
		t.Errorf("List while unavailable: %v", err)
	}
	r.SetUnavailable(false)
	if err := r.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestReopenAdopts(t *testing.T) {
	r1 := New()
	r1.AddImage("busybox")
	started(t, r1, runtime.ContainerSpec{ID: "a", Image: "busybox"})
	r2 := r1.Reopen()
	defer r2.Close()
	if err := r1.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-r1.Exits(); ok {
		t.Errorf("Exits of a closed runtime still open")
	}
	cs, err := r2.List(ctx)
	if err != nil || len(cs) != 1 || cs[0].ID != "a" || cs[0].State != runtime.StateRunning {
		t.Fatalf("List after Reopen = %+v, %v; want the running container", cs, err)
	}
	r2.Exit("a", 0)
	if e := recv(t, r2); e.ID != "a" {
		t.Errorf("exit = %+v", e)
	}
}

func TestExec(t *testing.T) {
	r := New()
	defer r.Close()
	r.AddImage("busybox")
	started(t, r, runtime.ContainerSpec{ID: "a", Image: "busybox"})
	r.SetExec(func(id string, args []string) (int, []byte, error) {
		return len(args), []byte(id), nil
	})
	code, out, err := r.Exec(ctx, "a", []string{"x", "y"}, time.Second)
	if err != nil || code != 2 || string(out) != "a" {
		t.Errorf("Exec = %d, %q, %v", code, out, err)
	}
	if _, _, err := r.Exec(ctx, "b", []string{"x"}, time.Second); !errors.Is(err, runtime.ErrNotFound) {
		t.Errorf("Exec in a missing container: %v", err)
	}
}

func TestImportNames(t *testing.T) {
	r := New()
	defer r.Close()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	idx := []byte(`{"manifests":[{"annotations":{"io.containerd.image.name":"localhost/busybox:latest"}}]}`)
	tw.WriteHeader(&tar.Header{Name: "index.json", Mode: 0o644, Size: int64(len(idx))})
	tw.Write(idx)
	tw.Close()
	imgs, err := r.ImportImage(ctx, &buf)
	if err != nil || len(imgs) != 1 || imgs[0].Name != "localhost/busybox:latest" {
		t.Fatalf("ImportImage = %+v, %v", imgs, err)
	}
	if _, err := r.ImportImage(ctx, bytes.NewReader([]byte("not a tar"))); !errors.Is(err, runtime.ErrInvalidSpec) {
		t.Errorf("ImportImage of junk: %v, want ErrInvalidSpec", err)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                        "docker.io/library/busybox:latest",
		"busybox:1.35":                   "docker.io/library/busybox:1.35",
		"me/app":                         "docker.io/me/app:latest",
		"localhost/busybox":              "localhost/busybox:latest",
		"localhost:5000/a/b:v1":          "localhost:5000/a/b:v1",
		"registry.example/app@sha256:ab": "registry.example/app@sha256:ab",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}
