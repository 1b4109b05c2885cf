package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	json "github.com/segmentio/encoding/json"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
)

// Secrets and configs: one object per name (api.Secret's shape for both),
// and each version's value in a bucket of its own, keyed by ID and
// version. A secret's value is keys.Sealed (sealed by the manager that
// took the API call, before Raft); a config's is its data. Objects are
// published to watchers, but never to a worker (Filter.Match): a worker
// learns of its tasks' secrets from their specs' references, and fetches
// the values on its own route.

// SecretPut creates a secret (its ID is new: Secret holds its name, labels
// and version 1) or gives one a new version (Secret holds its ID and the
// new version, which must follow on from the newest). Sealed is the
// value, sealed at api.SecretAAD(ID, version).
type SecretPut struct {
	Secret api.Secret  `json:"secret"`
	Sealed keys.Sealed `json:"sealed"`
	At     time.Time   `json:"at"`
}

// ConfigPut is SecretPut for a config, whose data is kept as it is.
type ConfigPut struct {
	Config api.Config `json:"config"`
	Data   []byte     `json:"data"`
	At     time.Time  `json:"at"`
}

// SecretRemove removes a secret, refused while a service uses it; with
// Versions, only those versions, skipping any a service pins or a task
// that has not ended holds (the leader's prune of old versions).
type SecretRemove struct {
	ID       string   `json:"id"`
	Versions []uint64 `json:"versions,omitempty"`
}

// ConfigRemove is SecretRemove for a config.
type ConfigRemove = SecretRemove

// fileKind is where one of the two kinds lives.
type fileKind struct {
	kind                   string
	objects, names, values []byte
}

var (
	secretKind = fileKind{api.KindSecret, bSecrets, bSecretNames, bSecretValues}
	configKind = fileKind{api.KindConfig, bConfigs, bConfigNames, bConfigValues}
)

func valueKey(id string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(id), 0), version)
}

func applySecretPut(w *wtx, c *SecretPut) any {
	raw, err := json.Marshal(c.Sealed)
	if err != nil {
		return fmt.Errorf("store: secret: %w", err)
	}
	return w.putFile(secretKind, c.Secret, raw, c.At)
}

func applyConfigPut(w *wtx, c *ConfigPut) any {
	res := w.putFile(configKind, api.Secret(c.Config), c.Data, c.At)
	if s, ok := res.(*api.Secret); ok {
		return (*api.Config)(s)
	}
	return res
}

// putFile creates obj or adds its one version to the stored object, with
// value; a new version moves the pin of every service that uses the
// object, which makes their tasks outdated: the rolling update replaces
// them under each service's update config.
func (w *wtx) putFile(k fileKind, obj api.Secret, value []byte, at time.Time) any {
	if len(obj.Versions) != 1 {
		return api.Errorf(api.CodeInvalid, "a %s put carries one version, not %d", k.kind, len(obj.Versions))
	}
	nv := obj.Versions[0]
	cur := w.view().fileByID(k, obj.ID)
	if cur == nil {
		if id := w.tx.Bucket(k.names).Get([]byte(obj.Spec.Name)); id != nil {
			return api.Errorf(api.CodeConflict, "a %s named %q exists: choose another name, or give it a new version with warrenctl %s update", k.kind, obj.Spec.Name, k.kind)
		}
		if nv.Version != 1 {
			return api.Errorf(api.CodeInvalid, "a new %s starts at version 1, not %d", k.kind, nv.Version)
		}
		obj.CreatedAt, obj.UpdatedAt = at, at
		w.must(w.tx.Bucket(k.names).Put([]byte(obj.Spec.Name), []byte(obj.ID)))
		cur = &obj
	} else {
		if want := cur.Latest().Version + 1; nv.Version != want {
			return api.Errorf(api.CodeConflict, "%s %q changed meanwhile (its next version is %d, not %d): retry", k.kind, cur.Spec.Name, want, nv.Version)
		}
		cur.Versions = append(cur.Versions, nv)
		cur.UpdatedAt = at
		w.bumpPins(k, cur.ID, nv.Version, at)
	}
	w.must(w.tx.Bucket(k.values).Put(valueKey(cur.ID, nv.Version), value))
	w.putFileObject(k, cur, api.OpUpdate)
	return cur
}

// bumpPins moves every service's pin of object id to version.
func (w *wtx) bumpPins(k fileKind, id string, version uint64, at time.Time) {
	for _, s := range w.view().Services() {
		refs := s.Spec.FileRefs(k.kind)
		changed := false
		for i := range refs {
			if refs[i].ID == id && refs[i].Version != version {
				refs[i].Version, changed = version, true
			}
		}
		if !changed {
			continue
		}
		s.SpecVersion = w.index
		s.UpdateStatus = &api.UpdateStatus{State: api.UpdateUpdating, StartedAt: at.UTC().Format(timeLayout),
			Message: fmt.Sprintf("%s %s version %d", k.kind, id, version)}
		s.UpdatedAt = at
		w.putService(s, api.OpUpdate)
	}
}

func (w *wtx) putFileObject(k fileKind, obj *api.Secret, op string) {
	obj.Version = w.index
	obj.Services = nil
	for i := range obj.Versions {
		obj.Versions[i].Tasks, obj.Versions[i].Data = nil, nil
	}
	if k.kind == api.KindSecret {
		w.secretEvents(w.tx.Bucket(k.objects).Get([]byte(obj.ID)), obj)
	}
	raw := w.put(k.objects, obj.ID, obj)
	w.record(op, k.kind, obj.ID, "", "", raw, nil)
}

func applySecretRemove(w *wtx, c *SecretRemove) any { return w.removeFile(secretKind, c) }
func applyConfigRemove(w *wtx, c *ConfigRemove) any { return w.removeFile(configKind, c) }

func (w *wtx) removeFile(k fileKind, c *SecretRemove) any {
	v := w.view()
	obj := v.fileByID(k, c.ID)
	if obj == nil {
		return api.Errorf(api.CodeNotFound, "no %s %q", k.kind, c.ID)
	}
	if len(c.Versions) == 0 {
		if users := v.fileUsers(k, obj.ID); len(users) > 0 {
			return api.Errorf(api.CodeConflict, "%s %q is in use by service %s: remove it from them first (warrenctl service update --%s-rm %s SERVICE)",
				k.kind, obj.Spec.Name, strings.Join(users, ", "), k.kind, obj.Spec.Name)
		}
		for _, ver := range obj.Versions {
			w.must(w.tx.Bucket(k.values).Delete(valueKey(obj.ID, ver.Version)))
		}
		w.must(w.tx.Bucket(k.objects).Delete([]byte(obj.ID)))
		w.must(w.tx.Bucket(k.names).Delete([]byte(obj.Spec.Name)))
		raw, _ := json.Marshal(obj)
		w.record(api.OpDelete, k.kind, obj.ID, "", "", raw, nil)
		return nil
	}
	held := v.heldVersions(k, obj.ID)
	latest := obj.Latest().Version
	kept := obj.Versions[:0]
	for _, ver := range obj.Versions {
		if ver.Version != latest && !held[ver.Version] && slices.Contains(c.Versions, ver.Version) {
			w.must(w.tx.Bucket(k.values).Delete(valueKey(obj.ID, ver.Version)))
			continue
		}
		kept = append(kept, ver)
	}
	if len(kept) == len(obj.Versions) {
		return obj
	}
	obj.Versions = kept
	w.putFileObject(k, obj, api.OpUpdate)
	return obj
}

func (v *View) fileByID(k fileKind, id string) *api.Secret {
	raw := v.tx.Bucket(k.objects).Get([]byte(id))
	if raw == nil {
		return nil
	}
	var s api.Secret
	mustDecode(raw, &s)
	return &s
}

// fileUsers is the names of the services that use object id, sorted.
func (v *View) fileUsers(k fileKind, id string) []string {
	var out []string
	for _, s := range v.Services() {
		if s.Spec.UsesVersion(k.kind, id, 0) {
			out = append(out, s.Spec.Name)
		}
	}
	sort.Strings(out)
	return out
}

// heldVersions is the versions of object id that a service pins or a
// task that has not ended holds.
func (v *View) heldVersions(k fileKind, id string) map[uint64]bool {
	held := map[uint64]bool{}
	for _, s := range v.Services() {
		for _, r := range s.Spec.FileRefs(k.kind) {
			if r.ID == id {
				held[r.Version] = true
			}
		}
	}
	v.eachTask(func(t *api.Task) {
		if t.Status.State.Terminal() {
			return
		}
		for _, r := range t.Spec.FileRefs(k.kind) {
			if r.ID == id {
				held[r.Version] = true
			}
		}
	})
	return held
}

func (v *View) eachTask(fn func(t *api.Task)) {
	v.tx.Bucket(bTasks).ForEach(func(_, raw []byte) error {
		var t api.Task
		mustDecode(raw, &t)
		fn(&t)
		return nil
	})
}

func (v *View) file(k fileKind, ref string) (*api.Secret, error) {
	raw, err := v.lookup(k.objects, k.names, k.kind, ref)
	if err != nil {
		return nil, err
	}
	var s api.Secret
	mustDecode(raw, &s)
	return &s, nil
}

func (v *View) files(k fileKind) []*api.Secret {
	var out []*api.Secret
	v.tx.Bucket(k.names).ForEach(func(_, id []byte) error {
		if s := v.fileByID(k, string(id)); s != nil {
			out = append(out, s)
		}
		return nil
	})
	return out
}

// withUsage fills in which services use obj and which tasks (not ended)
// hold each of its versions.
func (v *View) withUsage(k fileKind, obj *api.Secret) {
	obj.Services = v.fileUsers(k, obj.ID)
	v.eachTask(func(t *api.Task) {
		if t.Status.State.Terminal() {
			return
		}
		for _, r := range t.Spec.FileRefs(k.kind) {
			if r.ID != obj.ID {
				continue
			}
			for i := range obj.Versions {
				if obj.Versions[i].Version == r.Version {
					obj.Versions[i].Tasks = append(obj.Versions[i].Tasks, t.Name())
				}
			}
		}
	})
	for i := range obj.Versions {
		sort.Strings(obj.Versions[i].Tasks)
	}
}

// Secret returns a secret by name, ID or ID prefix; with usage, which
// services use it and which tasks hold each version.
func (v *View) Secret(ref string, usage bool) (*api.Secret, error) {
	s, err := v.file(secretKind, ref)
	if err == nil && usage {
		v.withUsage(secretKind, s)
	}
	return s, err
}

// Secrets returns every secret, sorted by name.
func (v *View) Secrets() []*api.Secret { return v.files(secretKind) }

// Config returns a config by name, ID or ID prefix; with usage, as Secret.
func (v *View) Config(ref string, usage bool) (*api.Config, error) {
	s, err := v.file(configKind, ref)
	if err != nil {
		return nil, err
	}
	if usage {
		v.withUsage(configKind, s)
	}
	return (*api.Config)(s), nil
}

// Configs returns every config, sorted by name.
func (v *View) Configs() []*api.Config {
	var out []*api.Config
	for _, s := range v.files(configKind) {
		out = append(out, (*api.Config)(s))
	}
	return out
}

// SecretSealed is the sealed value of version of secret id.
func (v *View) SecretSealed(id string, version uint64) (keys.Sealed, bool) {
	raw := v.tx.Bucket(bSecretValues).Get(valueKey(id, version))
	if raw == nil {
		return keys.Sealed{}, false
	}
	var s keys.Sealed
	mustDecode(raw, &s)
	return s, true
}

// ConfigData is the data of version of config id.
func (v *View) ConfigData(id string, version uint64) ([]byte, bool) {
	raw := v.tx.Bucket(bConfigValues).Get(valueKey(id, version))
	return clone(raw), raw != nil
}

// SealedValues calls fn with every sealed value the state holds and the
// place (aad) it was sealed at, for key rotation: reseal each with
// CmdReseal (keyring.go).
func (v *View) SealedValues(fn func(aad string, s keys.Sealed) error) error {
	c := v.tx.Bucket(bSecretValues).Cursor()
	for k, raw := c.First(); k != nil; k, raw = c.Next() {
		i := bytes.IndexByte(k, 0)
		if i < 0 || len(k) != i+9 {
			continue
		}
		var s keys.Sealed
		mustDecode(raw, &s)
		if err := fn(api.SecretAAD(string(k[:i]), binary.BigEndian.Uint64(k[i+1:])), s); err != nil {
			return err
		}
	}
	return nil
}

// NodeHolds says whether node runs a task (assigned to it, meant to run,
// not ended) that uses version of the secret (kind KindSecret) or config
// id: what a node must show to be given the value.
func (v *View) NodeHolds(kind, node, id string, version uint64) bool {
	found := false
	v.TasksRaw(TaskFilter{NodeID: node}, func(raw []byte) error {
		var t api.Task
		mustDecode(raw, &t)
		if t.NodeID == node && t.Live() && t.Spec.UsesVersion(kind, id, version) {
			found = true
		}
		return nil
	})
	return found
}

// ResolveFileRefs pins each secret and config spec names: to the version
// it pins already if the object (by name) still has it, else to the
// newest. A name that is no secret or config is refused, with the command
// that makes one.
func (v *View) ResolveFileRefs(spec *api.ServiceSpec) error {
	for _, k := range []fileKind{secretKind, configKind} {
		refs := spec.FileRefs(k.kind)
		for i := range refs {
			r := &refs[i]
			id := v.tx.Bucket(k.names).Get([]byte(r.Name))
			var obj *api.Secret
			if id != nil {
				obj = v.fileByID(k, string(id))
			}
			if obj == nil {
				return api.Errorf(api.CodeNotFound, "service %q uses %s %q, which does not exist: create it first with warrenctl %s create %s FILE",
					spec.Name, k.kind, r.Name, k.kind, r.Name)
			}
			if r.ID != obj.ID || !obj.HasVersion(r.Version) {
				r.ID, r.Version = obj.ID, obj.Latest().Version
			}
		}
	}
	return nil
}

// PrunableVersions is, for each secret and config, the versions that no
// service pins and no task that has not ended holds, but the newest: what
// the leader removes (CmdSecretRemove, CmdConfigRemove with Versions).
func (v *View) PrunableVersions(kind string) map[string][]uint64 {
	k := secretKind
	if kind == api.KindConfig {
		k = configKind
	}
	out := map[string][]uint64{}
	for _, obj := range v.files(k) {
		if len(obj.Versions) < 2 {
			continue
		}
		held := v.heldVersions(k, obj.ID)
		for _, ver := range obj.Versions[:len(obj.Versions)-1] {
			if !held[ver.Version] {
				out[obj.ID] = append(out[obj.ID], ver.Version)
			}
		}
	}
	return out
}

// Secrets' values take part in the data key rotation (keyring.go): the
// walk that finds every sealed value, and the reseal that puts one back.
func init() {
	sealedWalkers = append(sealedWalkers, func(v *View, fn func(SealedValue) error) error {
		return v.SealedValues(func(aad string, s keys.Sealed) error { return fn(SealedValue{Place: aad, Value: s}) })
	})
	resealers["secret/"] = func(w *wtx, place, was string, s keys.Sealed) bool {
		id, version, ok := parseSecretAAD(place)
		if !ok {
			return false
		}
		cur, found := w.view().SecretSealed(id, version)
		if !found || cur.Key != was {
			return false
		}
		raw, _ := json.Marshal(s)
		w.must(w.tx.Bucket(bSecretValues).Put(valueKey(id, version), raw))
		return true
	}
}

// parseSecretAAD reads api.SecretAAD's place back.
func parseSecretAAD(place string) (string, uint64, bool) {
	rest, ok := strings.CutPrefix(place, "secret/")
	if !ok {
		return "", 0, false
	}
	id, v, ok := strings.Cut(rest, "/")
	n, err := strconv.ParseUint(v, 10, 64)
	if !ok || err != nil || api.ValidateID(id) != nil {
		return "", 0, false
	}
	return id, n, true
}
