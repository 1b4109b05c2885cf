package store

import (
	"bytes"
	"slices"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"
	bolt "go.etcd.io/bbolt"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
)

// The ingress store: a small key/value store for what warren-ingress
// shares between ingress nodes (ACME account keys, certificates and their
// keys, challenge tokens), and leases on names as locks (api/ingress.go).
//
// Each value is sealed like a secret's, by the leader that takes the
// call, at PlaceIngress(key): it opens only where it was put, and takes
// part in the data key rotation. Nothing of the store is published to
// watchers or to workers' replicas: ingress nodes read it from the leader.
//
// A lock's lease ends TTL after the time the leader put in the command
// (never the FSM's clock, which differs between managers and on replay):
// taking it succeeds when it is free, its lease ended, or the same holder
// has it (a renewal).
//
//	bucket ingress        key → ingressRecord (the sealed value, its size, when)
//	bucket ingress_locks  name → api.IngressLock
//	meta   ingress_totals how many keys and bytes the store holds (its cap)

// The ingress store's bounds, beside api.MaxIngressKeyLen and
// api.MaxIngressValue.
const (
	MaxIngressKeys  = 4096
	MaxIngressBytes = 64 << 20
	MaxIngressLocks = 4096
	// maxLockHolder bounds a lock holder's name.
	maxLockHolder = 256
)

var (
	bIngress       = []byte("ingress")
	bIngressLocks  = []byte("ingress_locks")
	kIngressTotals = []byte("ingress_totals")
)

// PlaceIngress is where an ingress store value is sealed.
func PlaceIngress(key string) string { return "ingress:" + key }

// IngressPut sets key to a value, sealed at PlaceIngress(Key); Size is
// the value's length in the clear.
type IngressPut struct {
	Key    string      `json:"key"`
	Sealed keys.Sealed `json:"sealed"`
	Size   int64       `json:"size"`
	At     time.Time   `json:"at"`
}

// IngressDelete removes a key and every key under Key/.
type IngressDelete struct {
	Key string    `json:"key"`
	At  time.Time `json:"at"`
}

// IngressLockTake takes or renews a lock for TTL from At (the leader's
// clock).
type IngressLockTake struct {
	Name   string       `json:"name"`
	Holder string       `json:"holder"`
	TTL    api.Duration `json:"ttl"`
	At     time.Time    `json:"at"`
}

// IngressLockRelease lets go of a lock its holder has.
type IngressLockRelease struct {
	Name   string    `json:"name"`
	Holder string    `json:"holder"`
	At     time.Time `json:"at"`
}

type ingressRecord struct {
	Sealed   keys.Sealed `json:"sealed"`
	Size     int64       `json:"size"`
	Modified time.Time   `json:"modified"`
}

type ingressTotals struct {
	Keys  int   `json:"keys"`
	Bytes int64 `json:"bytes"`
}

// ValidateIngressKey checks a key of the ingress store, or a lock's name:
// slash-separated segments of printable ASCII, no empty segment (so no
// leading or trailing slash), no "." or "..", at most
// api.MaxIngressKeyLen bytes.
func ValidateIngressKey(what, key string) error {
	if key == "" {
		return api.Errorf(api.CodeInvalid, "the %s is empty", what)
	}
	if len(key) > api.MaxIngressKeyLen {
		return api.Errorf(api.CodeInvalid, "the %s is %d bytes long, more than %d", what, len(key), api.MaxIngressKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c > '~' {
			return api.Errorf(api.CodeInvalid, "the %s %q has the byte 0x%02x: use printable ASCII, no spaces", what, key, c)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		switch seg {
		case "":
			return api.Errorf(api.CodeInvalid, "the %s %q has an empty segment: no leading, trailing or double slash", what, key)
		case ".", "..":
			return api.Errorf(api.CodeInvalid, "the %s %q has a segment %q", what, key, seg)
		}
	}
	return nil
}

// ValidateIngressLock checks a lock request: its name, its holder, and a
// TTL of at most api.MaxIngressLock.
func ValidateIngressLock(name string, req api.IngressLockRequest) error {
	if err := ValidateIngressKey("lock name", name); err != nil {
		return err
	}
	if err := validHolder(req.Holder); err != nil {
		return err
	}
	if req.TTL <= 0 || req.TTL > api.Duration(api.MaxIngressLock) {
		return api.Errorf(api.CodeInvalid, "a lock's TTL is more than 0 and at most %s, not %s", time.Duration(api.MaxIngressLock), req.TTL)
	}
	return nil
}

func validHolder(h string) error {
	if h == "" || len(h) > maxLockHolder {
		return api.Errorf(api.CodeInvalid, "a lock's holder is 1 to %d characters, not %d", maxLockHolder, len(h))
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c < ' ' || c > '~' {
			return api.Errorf(api.CodeInvalid, "the lock holder %q has the byte 0x%02x: use printable ASCII", h, c)
		}
	}
	return nil
}

func (v *View) ingressTotals() ingressTotals {
	var t ingressTotals
	if b := v.tx.Bucket(bMeta).Get(kIngressTotals); b != nil {
		mustDecode(b, &t)
	}
	return t
}

func (w *wtx) putIngressTotals(t ingressTotals) {
	b, _ := json.Marshal(t)
	w.must(w.tx.Bucket(bMeta).Put(kIngressTotals, b))
}

func applyIngressPut(w *wtx, c *IngressPut) any {
	if err := ValidateIngressKey("key", c.Key); err != nil {
		return err
	}
	if c.Size < 0 || c.Size > api.MaxIngressValue || c.Sealed.IsZero() {
		return api.Errorf(api.CodeInvalid, "a value of the ingress store is sealed and at most %d bytes, not %d", api.MaxIngressValue, c.Size)
	}
	b := w.tx.Bucket(bIngress)
	tot := w.view().ingressTotals()
	if old := b.Get([]byte(c.Key)); old != nil {
		var r ingressRecord
		mustDecode(old, &r)
		tot.Keys--
		tot.Bytes -= r.Size
	}
	if tot.Keys+1 > MaxIngressKeys || tot.Bytes+c.Size > MaxIngressBytes {
		return api.Errorf(api.CodeTooLarge, "the ingress store is full (%d keys, %d bytes; at most %d keys and %d bytes): "+
			"remove what it no longer needs (old certificates) or fewer hosts", tot.Keys, tot.Bytes, MaxIngressKeys, MaxIngressBytes)
	}
	// A key may not also be a directory of others, nor sit under a key
	// (certmagic's storage is a file tree).
	if hasChildren(b, c.Key) {
		return api.Errorf(api.CodeConflict, "%q is a directory of other keys in the ingress store", c.Key)
	}
	for p := c.Key; ; {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
		if b.Get([]byte(p)) != nil {
			return api.Errorf(api.CodeConflict, "%q is a key of the ingress store, not a directory: %q cannot go under it", p, c.Key)
		}
	}
	raw, _ := json.Marshal(ingressRecord{Sealed: c.Sealed, Size: c.Size, Modified: c.At.UTC()})
	w.must(b.Put([]byte(c.Key), raw))
	tot.Keys++
	tot.Bytes += c.Size
	w.putIngressTotals(tot)
	return nil
}

func hasChildren(b *bolt.Bucket, key string) bool {
	pre := []byte(key + "/")
	k, _ := b.Cursor().Seek(pre)
	return k != nil && bytes.HasPrefix(k, pre)
}

func applyIngressDelete(w *wtx, c *IngressDelete) any {
	if err := ValidateIngressKey("key", c.Key); err != nil {
		return err
	}
	b := w.tx.Bucket(bIngress)
	tot := w.view().ingressTotals()
	var gone [][]byte
	if raw := b.Get([]byte(c.Key)); raw != nil {
		gone = append(gone, []byte(c.Key))
	}
	pre := []byte(c.Key + "/")
	cur := b.Cursor()
	for k, _ := cur.Seek(pre); k != nil && bytes.HasPrefix(k, pre); k, _ = cur.Next() {
		gone = append(gone, clone(k))
	}
	if len(gone) == 0 {
		return api.Errorf(api.CodeNotFound, "no key %q in the ingress store", c.Key)
	}
	for _, k := range gone {
		var r ingressRecord
		mustDecode(b.Get(k), &r)
		tot.Keys--
		tot.Bytes -= r.Size
		w.must(b.Delete(k))
	}
	w.putIngressTotals(tot)
	return len(gone)
}

func applyIngressLockTake(w *wtx, c *IngressLockTake) any {
	if err := ValidateIngressLock(c.Name, api.IngressLockRequest{Holder: c.Holder, TTL: c.TTL}); err != nil {
		return err
	}
	b := w.tx.Bucket(bIngressLocks)
	if raw := b.Get([]byte(c.Name)); raw != nil {
		var cur api.IngressLock
		mustDecode(raw, &cur)
		if cur.Holder != c.Holder && c.At.Before(cur.Until) {
			return api.Errorf(api.CodeConflict, "the lock %q is held by %s until %s", c.Name, cur.Holder, cur.Until.UTC().Format(time.RFC3339))
		}
	} else if b.Stats().KeyN >= MaxIngressLocks {
		// Make room: the locks whose leases ended are gone anyway.
		var ended [][]byte
		b.ForEach(func(k, raw []byte) error {
			var l api.IngressLock
			mustDecode(raw, &l)
			if !c.At.Before(l.Until) {
				ended = append(ended, clone(k))
			}
			return nil
		})
		for _, k := range ended {
			w.must(b.Delete(k))
		}
		if len(ended) == 0 {
			return api.Errorf(api.CodeTooLarge, "the ingress store holds %d locks, none of them free: release some", MaxIngressLocks)
		}
	}
	l := api.IngressLock{Name: c.Name, Holder: c.Holder, Until: c.At.Add(c.TTL.D()).UTC()}
	raw, _ := json.Marshal(l)
	w.must(b.Put([]byte(c.Name), raw))
	return &l
}

func applyIngressLockRelease(w *wtx, c *IngressLockRelease) any {
	if err := ValidateIngressKey("lock name", c.Name); err != nil {
		return err
	}
	if err := validHolder(c.Holder); err != nil {
		return err
	}
	b := w.tx.Bucket(bIngressLocks)
	raw := b.Get([]byte(c.Name))
	if raw == nil {
		return nil // released already, or its lease ended and it was taken and released
	}
	var cur api.IngressLock
	mustDecode(raw, &cur)
	if cur.Holder != c.Holder {
		if c.At.Before(cur.Until) {
			return api.Errorf(api.CodeConflict, "the lock %q is held by %s, not %s", c.Name, cur.Holder, c.Holder)
		}
		return nil
	}
	w.must(b.Delete([]byte(c.Name)))
	return nil
}

// IngressGet is the key's entry (without its value) and its sealed value.
func (v *View) IngressGet(key string) (api.IngressObject, keys.Sealed, bool) {
	raw := v.tx.Bucket(bIngress).Get([]byte(key))
	if raw == nil {
		return api.IngressObject{}, keys.Sealed{}, false
	}
	var r ingressRecord
	mustDecode(raw, &r)
	return api.IngressObject{Key: key, Size: r.Size, Modified: r.Modified}, r.Sealed, true
}

// IngressList is the keys under prefix ("" for all), sorted, without
// their values: those directly under it and, for the ones further down,
// a Dir entry for each directory directly under it; with recursive, every
// key under it.
func (v *View) IngressList(prefix string, recursive bool) []api.IngressObject {
	out := []api.IngressObject{}
	pre := ""
	if prefix != "" {
		pre = prefix + "/"
	}
	c := v.tx.Bucket(bIngress).Cursor()
	k, raw := c.Seek([]byte(pre))
	for k != nil && bytes.HasPrefix(k, []byte(pre)) {
		rest := string(k[len(pre):])
		if i := strings.IndexByte(rest, '/'); i >= 0 && !recursive {
			dir := pre + rest[:i]
			out = append(out, api.IngressObject{Key: dir, Dir: true})
			// Skip the directory's keys: the first key past them all
			// sorts at or after dir + "0" ('0' follows '/').
			k, raw = c.Seek([]byte(dir + "0"))
			continue
		}
		var r ingressRecord
		mustDecode(raw, &r)
		out = append(out, api.IngressObject{Key: string(k), Size: r.Size, Modified: r.Modified})
		k, raw = c.Next()
	}
	// Byte order puts "a.txt" before the keys of directory "a": sort
	// by the names listed.
	slices.SortStableFunc(out, func(a, b api.IngressObject) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// IngressLock is the lock name, if some holder took it (its lease may
// have ended).
func (v *View) IngressLock(name string) (api.IngressLock, bool) {
	raw := v.tx.Bucket(bIngressLocks).Get([]byte(name))
	if raw == nil {
		return api.IngressLock{}, false
	}
	var l api.IngressLock
	mustDecode(raw, &l)
	return l, true
}

// IngressUsage is how many keys and bytes (in the clear) the ingress
// store holds.
func (v *View) IngressUsage() (keys int, bytes int64) {
	t := v.ingressTotals()
	return t.Keys, t.Bytes
}

// The ingress store's values take part in the data key rotation
// (keyring.go).
func init() {
	sealedWalkers = append(sealedWalkers, func(v *View, fn func(SealedValue) error) error {
		return v.tx.Bucket(bIngress).ForEach(func(k, raw []byte) error {
			var r ingressRecord
			mustDecode(raw, &r)
			return fn(SealedValue{Place: PlaceIngress(string(k)), Value: r.Sealed})
		})
	})
	resealers["ingress:"] = func(w *wtx, place, was string, s keys.Sealed) bool {
		key := strings.TrimPrefix(place, "ingress:")
		b := w.tx.Bucket(bIngress)
		raw := b.Get([]byte(key))
		if raw == nil {
			return false
		}
		var r ingressRecord
		mustDecode(raw, &r)
		if r.Sealed.Key != was {
			return false
		}
		r.Sealed = s
		nb, _ := json.Marshal(r)
		w.must(b.Put([]byte(key), nb))
		return true
	}
}

// RouteSecrets is the secrets an ingress route names: its certificate's
// (source secret) and its basic auth users'.
func RouteSecrets(rt *api.IngressRoute) []string {
	var out []string
	if rt.TLS != nil && rt.TLS.Source == api.TLSSecret && rt.TLS.Secret != "" {
		out = append(out, rt.TLS.Secret)
	}
	if rt.BasicAuth != nil && rt.BasicAuth.Secret != "" {
		out = append(out, rt.BasicAuth.Secret)
	}
	return out
}

// IngressNamesSecret says whether some service's ingress route names the
// secret name: what an ingress node must show to be given its value.
func (v *View) IngressNamesSecret(name string) bool {
	return len(v.IngressSecretUsers(name)) > 0
}

// IngressSecretUsers is the services (by name, sorted) whose ingress
// routes name the secret name.
func (v *View) IngressSecretUsers(name string) []string {
	var out []string
	for _, s := range v.Services() {
		for i := range s.Spec.Ingress {
			if slices.Contains(RouteSecrets(&s.Spec.Ingress[i]), name) {
				out = append(out, s.Spec.Name)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// CheckRouteSecrets refuses a spec whose ingress routes name a secret
// that does not exist (a route would answer with no certificate, or
// refuse every user), saying which and how to make it.
func (v *View) CheckRouteSecrets(spec *api.ServiceSpec) error {
	for i := range spec.Ingress {
		rt := &spec.Ingress[i]
		for _, name := range RouteSecrets(rt) {
			if v.tx.Bucket(secretKind.names).Get([]byte(name)) == nil {
				return api.Errorf(api.CodeNotFound, "service %q: the ingress route %s names secret %q, which does not exist: create it first with warrenctl secret create %s FILE",
					spec.Name, rt.Host+rt.Path, name, name)
			}
		}
	}
	return nil
}
