package acme

import (
	"context"
	"errors"
	"io/fs"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

func TestStorageFiles(t *testing.T) {
	ctx := context.Background()
	s := NewStorage(newFakeStore(), "node-a", 0, nil)

	if _, err := s.Load(ctx, "certificates/x/a.crt"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := s.Stat(ctx, "certificates"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := s.List(ctx, "certificates", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("List(missing) = %v, want fs.ErrNotExist", err)
	}
	for _, k := range []string{"certificates/ca/a/a.crt", "certificates/ca/a/a.key", "certificates/ca/b/b.crt", "acme/ca/users/x.json"} {
		if err := s.Store(ctx, k, []byte("v:"+k)); err != nil {
			t.Fatalf("Store(%s): %v", k, err)
		}
	}
	if b, err := s.Load(ctx, "certificates/ca/a/a.key"); err != nil || string(b) != "v:certificates/ca/a/a.key" {
		t.Errorf("Load(a.key) = %q, %v", b, err)
	}
	if fi, err := s.Stat(ctx, "certificates/ca/a/a.crt"); err != nil || !fi.IsTerminal || fi.Size != int64(len("v:certificates/ca/a/a.crt")) {
		t.Errorf("Stat(a.crt) = %+v, %v; want a terminal key of its size", fi, err)
	}
	if fi, err := s.Stat(ctx, "certificates/ca"); err != nil || fi.IsTerminal {
		t.Errorf("Stat(certificates/ca) = %+v, %v; want a directory", fi, err)
	}
	if !s.Exists(ctx, "certificates") || s.Exists(ctx, "certificates/c") || s.Exists(ctx, "certif") {
		t.Errorf("Exists: certificates %v, certificates/c %v, certif %v; want true, false, false",
			s.Exists(ctx, "certificates"), s.Exists(ctx, "certificates/c"), s.Exists(ctx, "certif"))
	}
	got, err := s.List(ctx, "certificates/ca", false)
	if want := []string{"certificates/ca/a", "certificates/ca/b"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("List(certificates/ca, one level) = %v, %v; want %v", got, err, want)
	}
	got, err = s.List(ctx, "certificates", true)
	if want := []string{"certificates/ca/a/a.crt", "certificates/ca/a/a.key", "certificates/ca/b/b.crt"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("List(certificates, recursive) = %v, %v; want %v", got, err, want)
	}
	if err := s.Delete(ctx, "certificates/ca/a"); err != nil {
		t.Fatalf("Delete(dir): %v", err)
	}
	if s.Exists(ctx, "certificates/ca/a/a.crt") || !s.Exists(ctx, "certificates/ca/b/b.crt") {
		t.Errorf("after Delete(certificates/ca/a): a.crt exists %v, b.crt exists %v; want false, true",
			s.Exists(ctx, "certificates/ca/a/a.crt"), s.Exists(ctx, "certificates/ca/b/b.crt"))
	}
	if err := s.Delete(ctx, "nothing/here"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
	if err := s.Store(ctx, "big", make([]byte, api.MaxIngressValue+1)); err == nil {
		t.Errorf("Store(%d bytes) succeeded, want an error", api.MaxIngressValue+1)
	}
}

// A lock held by one node blocks another for as long as it is held, even
// far past its TTL (the lease is renewed), and passes on at Unlock.
func TestStorageLockHeldAndRenewed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeStore()
		a := NewStorage(f, "node-a", time.Minute, nil)
		b := NewStorage(f, "node-b", time.Minute, nil)
		ctx := context.Background()
		if err := a.Lock(ctx, "issue_cert_*.shop.example"); err != nil {
			t.Fatalf("a.Lock: %v", err)
		}
		got := make(chan error, 1)
		go func() { got <- b.Lock(ctx, "issue_cert_*.shop.example") }()

		time.Sleep(10 * time.Minute)
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("b.Lock returned (%v) while a held the lock, 10 TTLs in", err)
		default:
		}
		if h := f.holderOf(lockName("issue_cert_*.shop.example")); h != a.Holder() {
			t.Fatalf("holder after 10 TTLs = %q, want %q (renewed)", h, a.Holder())
		}
		if err := a.Unlock(ctx, "issue_cert_*.shop.example"); err != nil {
			t.Fatalf("a.Unlock: %v", err)
		}
		if err := <-got; err != nil {
			t.Fatalf("b.Lock after a.Unlock: %v", err)
		}
		if h := f.holderOf(lockName("issue_cert_*.shop.example")); h != b.Holder() {
			t.Errorf("holder = %q, want %q", h, b.Holder())
		}
		if err := b.Unlock(ctx, "issue_cert_*.shop.example"); err != nil {
			t.Fatalf("b.Unlock: %v", err)
		}
	})
}

// The lease of a holder that went away (no renewal) ends after its TTL
// and the waiting node takes it.
func TestStorageLockOfDeadHolderExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeStore()
		ctx := context.Background()
		if _, err := f.IngressLock(ctx, "node-x", lockName("n"), api.IngressLockRequest{Holder: "node-x/dead", TTL: api.Duration(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		b := NewStorage(f, "node-b", time.Minute, nil)
		start := time.Now()
		if err := b.Lock(ctx, "n"); err != nil {
			t.Fatalf("Lock: %v", err)
		}
		if waited := time.Since(start); waited < time.Minute || waited > time.Minute+lockPollMax {
			t.Errorf("Lock took the dead holder's lease after %s, want between its TTL and TTL + the longest poll", waited)
		}
		if err := b.Unlock(ctx, "n"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStorageLockContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeStore()
		a := NewStorage(f, "node-a", time.Minute, nil)
		b := NewStorage(f, "node-b", time.Minute, nil)
		if err := a.Lock(context.Background(), "n"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Lock(ctx, "n"); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Lock with a context that ends = %v, want context.DeadlineExceeded", err)
		}
		if ok, err := b.TryLock(context.Background(), "n"); ok || err != nil {
			t.Errorf("TryLock while held = %v, %v; want false, nil", ok, err)
		}
		if err := a.Unlock(context.Background(), "n"); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.TryLock(context.Background(), "n"); !ok || err != nil {
			t.Errorf("TryLock when free = %v, %v; want true, nil", ok, err)
		}
		b.Close()
		if h := f.holderOf(lockName("n")); h != "" {
			t.Errorf("after Close the lock is held by %q, want nobody", h)
		}
	})
}

// Two goroutines of one process are one holder for the store: the
// Storage itself makes the second wait.
func TestStorageLockSameProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewStorage(newFakeStore(), "node-a", time.Minute, nil)
		ctx := context.Background()
		if err := s.Lock(ctx, "n"); err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() { got <- s.Lock(ctx, "n") }()
		time.Sleep(time.Hour)
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("second Lock in one process returned (%v) while the first held it", err)
		default:
		}
		if err := s.Unlock(ctx, "n"); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err != nil {
			t.Fatalf("second Lock: %v", err)
		}
		if err := s.Unlock(ctx, "n"); err != nil {
			t.Fatal(err)
		}
	})
}

// A store error other than a conflict is returned, not waited out.
func TestStorageLockForbidden(t *testing.T) {
	s := NewStorage(forbidden{newFakeStore()}, "node-a", time.Minute, nil)
	if err := s.Lock(context.Background(), "n"); !api.IsCode(err, api.CodeForbidden) {
		t.Errorf("Lock on a node without the ingress label = %v, want the forbidden error", err)
	}
}

type forbidden struct{ *fakeStore }

func (forbidden) IngressLock(context.Context, string, string, api.IngressLockRequest) (*api.IngressLock, error) {
	return nil, api.Errorf(api.CodeForbidden, "node is not an ingress node")
}

// Close and certmagic may release one lock at once; the second does
// nothing.
func TestStorageUnlockTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeStore()
		s := NewStorage(f, "node-a", time.Minute, nil)
		ctx := context.Background()
		if err := s.Lock(ctx, "n"); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 2)
		go func() { errs <- s.Unlock(ctx, "n") }()
		go func() { s.Close(); errs <- nil }()
		for range 2 {
			if err := <-errs; err != nil {
				t.Errorf("Unlock beside Close: %v", err)
			}
		}
		if err := s.Unlock(ctx, "n"); err != nil {
			t.Errorf("a third Unlock: %v", err)
		}
		if h := f.holderOf(lockName("n")); h != "" {
			t.Errorf("lock held by %q after Unlock and Close, want nobody", h)
		}
		if err := s.Lock(ctx, "n"); err != nil {
			t.Fatalf("Lock again: %v", err)
		}
		if err := s.Unlock(ctx, "n"); err != nil {
			t.Fatal(err)
		}
	})
}
