package acme

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/warren-edge/warren/daemons/api"
)

// Store is what the package needs of the cluster's ingress store, through
// the local warren-manager (*client.Client implements it). node is this
// node's ID; every call is made for it.
type Store interface {
	// IngressGet returns one key with its value; api.NotFound(err) when
	// absent.
	IngressGet(ctx context.Context, node, key string) (*api.IngressObject, error)
	// IngressList returns the keys under prefix (without values): one
	// level, with Dir set on entries that are prefixes of other keys, or
	// all of them.
	IngressList(ctx context.Context, node, prefix string, recursive bool) ([]api.IngressObject, error)
	IngressPut(ctx context.Context, node, key string, value []byte) error
	// IngressDelete removes key and everything under key/; api.NotFound
	// when there was nothing.
	IngressDelete(ctx context.Context, node, key string) error
	// IngressLock takes or extends a lease; api.IsCode(err,
	// api.CodeConflict) while another holder has it.
	IngressLock(ctx context.Context, node, name string, req api.IngressLockRequest) (*api.IngressLock, error)
	IngressUnlock(ctx context.Context, node, name, holder string) error
	// IngressSecret returns the value of a secret a route names.
	IngressSecret(ctx context.Context, node, name string) ([]byte, error)
}

// Storage is a certmagic.Storage (with its Locker, TryLocker and
// LockLeaseRenewer) over the ingress store, so that every ingress node
// shares the ACME account, the certificates and the challenge tokens, and
// a lock of the store is a lease in Raft.
//
// A lock is a lease of LockTTL, renewed in the background every third of
// it while held, so that an issuance that takes long (certmagic retries
// with backoff while it holds the lock) keeps it, and a node that dies
// loses it after at most LockTTL.
type Storage struct {
	store  Store
	node   string
	holder string // node ID + an instance ID: two processes of one node are two holders
	ttl    time.Duration
	log    *slog.Logger

	mu    sync.Mutex
	local map[string]chan struct{} // name → a token channel: one holder per name in this process
	held  map[string]*heldLock
}

type heldLock struct {
	stop chan struct{}
	done chan struct{}
}

// DefaultLockTTL is the lease of a lock of the ingress store.
const DefaultLockTTL = 2 * time.Minute

// Lock polling backoff: from lockPollMin doubling to lockPollMax, with
// jitter.
const (
	lockPollMin = 250 * time.Millisecond
	lockPollMax = 10 * time.Second
)

// NewStorage returns a Storage for node over store. ttl 0 means
// DefaultLockTTL.
func NewStorage(store Store, node string, ttl time.Duration, log *slog.Logger) *Storage {
	if ttl <= 0 {
		ttl = DefaultLockTTL
	}
	if ttl > time.Duration(api.MaxIngressLock) {
		ttl = time.Duration(api.MaxIngressLock)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var id [6]byte
	if _, err := cryptoRead(id[:]); err != nil {
		panic("acme: no randomness: " + err.Error())
	}
	return &Storage{
		store:  store,
		node:   node,
		holder: node + "/" + hex.EncodeToString(id[:]),
		ttl:    ttl,
		log:    log,
		local:  make(map[string]chan struct{}),
		held:   make(map[string]*heldLock),
	}
}

var cryptoRead = crand.Read

// Holder is the lock holder this Storage takes leases as.
func (s *Storage) Holder() string { return s.holder }

func (s *Storage) String() string { return "warren ingress store (" + s.holder + ")" }

// notExist wraps fs.ErrNotExist, as certmagic expects of a missing key.
func notExist(key string) error {
	return fmt.Errorf("acme: ingress store: %s: %w", key, fs.ErrNotExist)
}

// Store puts value at key.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	if len(value) > api.MaxIngressValue {
		return fmt.Errorf("acme: ingress store: %s: %d bytes, more than %d", key, len(value), api.MaxIngressValue)
	}
	if err := s.store.IngressPut(ctx, s.node, key, value); err != nil {
		return fmt.Errorf("acme: ingress store: put %s: %w", key, err)
	}
	return nil
}

// Load returns the value at key; fs.ErrNotExist when absent.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	obj, err := s.store.IngressGet(ctx, s.node, key)
	if api.NotFound(err) {
		return nil, notExist(key)
	}
	if err != nil {
		return nil, fmt.Errorf("acme: ingress store: get %s: %w", key, err)
	}
	return obj.Value, nil
}

// Delete removes key and every key under it; a missing key is no error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	err := s.store.IngressDelete(ctx, s.node, key)
	if err != nil && !api.NotFound(err) {
		return fmt.Errorf("acme: ingress store: delete %s: %w", key, err)
	}
	return nil
}

// Exists says whether key is a file or a directory.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	_, err := s.Stat(ctx, key)
	return err == nil
}

// List returns the keys under path: its children, or every key below it
// when recursive. fs.ErrNotExist when there is none.
func (s *Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	objs, err := s.store.IngressList(ctx, s.node, path, recursive)
	if api.NotFound(err) {
		return nil, notExist(path)
	}
	if err != nil {
		return nil, fmt.Errorf("acme: ingress store: list %s: %w", path, err)
	}
	if len(objs) == 0 {
		return nil, notExist(path)
	}
	keys := make([]string, len(objs))
	for i, o := range objs {
		keys[i] = o.Key
	}
	return keys, nil
}

// Stat describes key: a file (IsTerminal) or a directory, the prefix of
// other keys.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	obj, err := s.store.IngressGet(ctx, s.node, key)
	if err == nil {
		size := obj.Size
		if size == 0 {
			size = int64(len(obj.Value))
		}
		return certmagic.KeyInfo{Key: key, Modified: obj.Modified, Size: size, IsTerminal: true}, nil
	}
	if !api.NotFound(err) {
		return certmagic.KeyInfo{}, fmt.Errorf("acme: ingress store: stat %s: %w", key, err)
	}
	objs, err := s.store.IngressList(ctx, s.node, key, false)
	if err != nil && !api.NotFound(err) {
		return certmagic.KeyInfo{}, fmt.Errorf("acme: ingress store: stat %s: %w", key, err)
	}
	if len(objs) == 0 {
		return certmagic.KeyInfo{}, notExist(key)
	}
	var modified time.Time
	for _, o := range objs {
		if o.Modified.After(modified) {
			modified = o.Modified
		}
	}
	return certmagic.KeyInfo{Key: key, Modified: modified, IsTerminal: false}, nil
}

// lockName is the store's name for certmagic's lock: certmagic's names
// hold domain names, wildcards included ("issue_cert_*.example.com"); the
// store's are one path segment of its API.
func lockName(name string) string { return "certmagic-" + certmagic.StorageKeys.Safe(name) }

// Lock takes the lease name, blocking (polling with backoff) while another
// holder has it, until ctx ends.
func (s *Storage) Lock(ctx context.Context, name string) error {
	tok, err := s.localAcquire(ctx, name)
	if err != nil {
		return err
	}
	wait := lockPollMin
	for {
		ok, err := s.take(ctx, name)
		if ok {
			s.startRenewal(name)
			return nil
		}
		if err != nil {
			s.localRelease(name, tok)
			return err
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			s.localRelease(name, tok)
			return fmt.Errorf("acme: lock %s: %w", name, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, lockPollMax)
	}
}

// TryLock takes the lease name if nobody has it, without waiting.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	s.mu.Lock()
	tok, busy := s.local[name]
	if !busy {
		tok = make(chan struct{})
		s.local[name] = tok
	}
	s.mu.Unlock()
	if busy {
		return false, nil
	}
	ok, err := s.take(ctx, name)
	if ok {
		s.startRenewal(name)
		return true, nil
	}
	s.localRelease(name, tok)
	return false, err
}

// take asks the store for the lease once: (true, nil) taken; (false, nil)
// another holder has it or the store is between leaders (try again);
// (false, err) give up.
func (s *Storage) take(ctx context.Context, name string) (bool, error) {
	_, err := s.store.IngressLock(ctx, s.node, lockName(name), api.IngressLockRequest{Holder: s.holder, TTL: api.Duration(s.ttl)})
	switch {
	case err == nil:
		return true, nil
	case api.IsCode(err, api.CodeConflict), api.IsCode(err, api.CodeNotLeader), api.IsCode(err, api.CodeUnavailable):
		return false, nil
	case ctx.Err() != nil:
		return false, fmt.Errorf("acme: lock %s: %w", name, ctx.Err())
	default:
		return false, fmt.Errorf("acme: lock %s: %w", name, err)
	}
}

// localAcquire waits until no goroutine of this process holds name: the
// store's lease is per holder, and two goroutines here are one holder.
func (s *Storage) localAcquire(ctx context.Context, name string) (chan struct{}, error) {
	for {
		s.mu.Lock()
		cur, busy := s.local[name]
		if !busy {
			tok := make(chan struct{})
			s.local[name] = tok
			s.mu.Unlock()
			return tok, nil
		}
		s.mu.Unlock()
		select {
		case <-cur:
		case <-ctx.Done():
			return nil, fmt.Errorf("acme: lock %s: %w", name, ctx.Err())
		}
	}
}

func (s *Storage) localRelease(name string, tok chan struct{}) {
	s.mu.Lock()
	if s.local[name] == tok {
		delete(s.local, name)
	}
	s.mu.Unlock()
	close(tok)
}

// startRenewal extends the lease every third of its TTL until Unlock.
func (s *Storage) startRenewal(name string) {
	h := &heldLock{stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	s.held[name] = h
	s.mu.Unlock()
	go func() {
		defer close(h.done)
		t := time.NewTicker(s.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.ttl/3)
			ok, err := s.take(ctx, name)
			cancel()
			switch {
			case err != nil:
				s.log.Warn("acme: renewing a lock of the ingress store", "lock", name, "err", err)
			case !ok:
				s.log.Warn("acme: could not renew a lock of the ingress store (another holder has it, or no leader)", "lock", name)
			}
		}
	}()
}

// RenewLockLease extends the lease name now (certmagic calls it before
// each retry); the background renewal keeps it after that.
func (s *Storage) RenewLockLease(ctx context.Context, name string, _ time.Duration) error {
	ok, err := s.take(ctx, name)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("acme: lock %s: held by another node", name)
	}
	return nil
}

// Unlock releases the lease name. It uses its own timeout, not ctx alone:
// certmagic unlocks with the context of an operation that may just have
// been canceled, and a lease left behind would stall every node for its
// TTL. Unlocking a name this Storage does not hold (any more) does
// nothing: Close and certmagic may both release one lock.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h, held := s.held[name]
	delete(s.held, name)
	tok := s.local[name]
	s.mu.Unlock()
	if !held {
		return nil
	}
	close(h.stop)
	<-h.done
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := s.store.IngressUnlock(ctx, s.node, lockName(name), s.holder)
	if tok != nil {
		s.localRelease(name, tok)
	}
	if err != nil && !api.NotFound(err) {
		return fmt.Errorf("acme: unlock %s: %w", name, err)
	}
	return nil
}

// Close stops renewing the leases still held and releases them.
func (s *Storage) Close() {
	s.mu.Lock()
	names := make([]string, 0, len(s.held))
	for n := range s.held {
		names = append(names, n)
	}
	s.mu.Unlock()
	var errs []error
	for _, n := range names {
		errs = append(errs, s.Unlock(context.Background(), n))
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Warn("acme: releasing locks", "err", err)
	}
}

var (
	_ certmagic.Storage          = (*Storage)(nil)
	_ certmagic.TryLocker        = (*Storage)(nil)
	_ certmagic.LockLeaseRenewer = (*Storage)(nil)
)
