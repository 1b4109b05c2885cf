package acme

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// fakeStore is an in-memory ingress store with the semantics of the
// manager's: keys as slash-separated paths, listing one level (with Dir
// entries) or all keys, delete of a key and everything under it, leases
// that another holder cannot take until they end or are released. It
// records lock calls.
type fakeStore struct {
	mu      sync.Mutex
	objs    map[string]api.IngressObject
	locks   map[string]api.IngressLock
	secrets map[string][]byte

	lockCalls, conflicts int
}

func newFakeStore() *fakeStore {
	return &fakeStore{
		objs:    make(map[string]api.IngressObject),
		locks:   make(map[string]api.IngressLock),
		secrets: make(map[string][]byte),
	}
}

func (f *fakeStore) IngressGet(_ context.Context, _, key string) (*api.IngressObject, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	o, ok := f.objs[key]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "no key %s", key)
	}
	o.Value = append([]byte(nil), o.Value...)
	return &o, nil
}

func under(prefix, key string) (rest string, ok bool) {
	if prefix == "" {
		return key, true
	}
	p := strings.TrimSuffix(prefix, "/") + "/"
	if !strings.HasPrefix(key, p) {
		return "", false
	}
	return key[len(p):], true
}

func (f *fakeStore) IngressList(_ context.Context, _, prefix string, recursive bool) ([]api.IngressObject, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	seen := make(map[string]api.IngressObject)
	for k, o := range f.objs {
		rest, ok := under(prefix, k)
		if !ok {
			continue
		}
		if recursive {
			seen[k] = api.IngressObject{Key: k, Size: o.Size, Modified: o.Modified}
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			dir := k[:len(k)-len(rest)+i]
			d := seen[dir]
			d.Key, d.Dir = dir, true
			if o.Modified.After(d.Modified) {
				d.Modified = o.Modified
			}
			seen[dir] = d
			continue
		}
		seen[k] = api.IngressObject{Key: k, Size: o.Size, Modified: o.Modified}
	}
	out := make([]api.IngressObject, 0, len(seen))
	for _, o := range seen {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (f *fakeStore) IngressPut(_ context.Context, _, key string, value []byte) error {
	if key == "" || len(key) > api.MaxIngressKeyLen {
		return api.Errorf(api.CodeInvalid, "bad key %q", key)
	}
	if len(value) > api.MaxIngressValue {
		return api.Errorf(api.CodeTooLarge, "value too large")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objs[key] = api.IngressObject{Key: key, Value: append([]byte(nil), value...), Size: int64(len(value)), Modified: time.Now()}
	return nil
}

func (f *fakeStore) IngressDelete(_ context.Context, _, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k := range f.objs {
		if _, ok := under(key, k); ok || k == key {
			delete(f.objs, k)
			n++
		}
	}
	if n == 0 {
		return api.Errorf(api.CodeNotFound, "no key %s", key)
	}
	return nil
}

func (f *fakeStore) IngressLock(_ context.Context, _, name string, req api.IngressLockRequest) (*api.IngressLock, error) {
	if name == "" || strings.Contains(name, "/") || req.Holder == "" || req.TTL <= 0 || req.TTL.D() > time.Duration(api.MaxIngressLock) {
		return nil, api.Errorf(api.CodeInvalid, "bad lock request %s %+v (the name is one path segment of the API)", name, req)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lockCalls++
	now := time.Now()
	if l, ok := f.locks[name]; ok && l.Holder != req.Holder && now.Before(l.Until) {
		f.conflicts++
		return nil, api.Errorf(api.CodeConflict, "lock %s is held by %s", name, l.Holder)
	}
	l := api.IngressLock{Name: name, Holder: req.Holder, Until: now.Add(req.TTL.D())}
	f.locks[name] = l
	return &l, nil
}

func (f *fakeStore) IngressUnlock(_ context.Context, _, name, holder string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.locks[name]
	if !ok {
		return api.Errorf(api.CodeNotFound, "no lock %s", name)
	}
	if l.Holder != holder {
		return api.Errorf(api.CodeConflict, "lock %s is held by %s", name, l.Holder)
	}
	delete(f.locks, name)
	return nil
}

func (f *fakeStore) IngressSecret(_ context.Context, _, name string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.secrets[name]
	if !ok {
		return nil, api.Errorf(api.CodeNotFound, "no secret %s", name)
	}
	return b, nil
}

// holderOf is who holds lock name now ("" if nobody).
func (f *fakeStore) holderOf(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.locks[name]
	if !ok || !time.Now().Before(l.Until) {
		return ""
	}
	return l.Holder
}

var _ Store = (*fakeStore)(nil)

// keys lists the store's keys, sorted.
func (f *fakeStore) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.objs))
}
