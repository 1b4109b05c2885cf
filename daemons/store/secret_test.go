package store

import (
	"bytes"
	"strings"
	"testing"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/keys"
)

func sealedOf(b string) keys.Sealed {
	return keys.Sealed{Key: "k1", Nonce: []byte("n"), Box: []byte(b)}
}

func (h *harness) putSecret(id, name string, version uint64, box string) any {
	h.t.Helper()
	obj := api.Secret{Meta: api.Meta{ID: id}, Spec: api.SecretSpec{Name: name},
		Versions: []api.SecretVersion{{Version: version, CreatedAt: t0, Size: len(box)}}}
	return h.apply(CmdSecretPut, SecretPut{Secret: obj, Sealed: sealedOf(box), At: t0})
}

func TestSecretVersionsRollConsumersAndPrune(t *testing.T) {
	h := newHarness(t)
	h.registerNode("n1")
	sid := api.NewID()
	if err := asErr(h.putSecret(sid, "db", 1, "BOX-ONE")); err != nil {
		t.Fatalf("create secret db: %v", err)
	}
	if err := asErr(h.putSecret(api.NewID(), "db", 1, "x")); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("a second secret named db: %v, want a conflict", err)
	}
	if err := asErr(h.putSecret(sid, "", 3, "x")); !api.IsCode(err, api.CodeConflict) {
		t.Errorf("version 3 after 1: %v, want a conflict", err)
	}

	// A service that names a secret that does not exist is refused, with
	// the command that makes it.
	bad := spec("api", 1)
	bad.Secrets = []api.FileRef{{Name: "nope", Target: "/run/secrets/nope", Mode: 0o400}}
	err := asErr(h.apply(CmdServiceCreate, ServiceCreate{Service: api.Service{Meta: api.Meta{ID: "svc0"}, Spec: bad}}))
	if !api.NotFound(err) || !strings.Contains(err.Error(), "warrenctl secret create nope") {
		t.Errorf("service with a missing secret: %v, want not found naming warrenctl secret create nope", err)
	}

	s := spec("web", 1)
	s.Secrets = []api.FileRef{{Name: "db", Target: "/run/secrets/db", Mode: 0o400}}
	svc := h.createService("svc1", s)
	if r := svc.Spec.Secrets[0]; r.ID != sid || r.Version != 1 {
		t.Fatalf("service pins %s v%d, want %s v1", r.ID, r.Version, sid)
	}
	t1 := task("t1", "svc1", 1, "")
	t1.Spec, t1.SpecVersion = svc.Spec, svc.SpecVersion
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{t1}, At: t0})
	h.mustApply(CmdTaskPlan, api.TaskPlan{Updates: []api.TaskChange{{ID: "t1", NodeID: "n1", State: api.TaskAssigned}}, At: t0})
	h.view(func(v *View) {
		if !v.NodeHolds(api.KindSecret, "n1", sid, 1) {
			t.Errorf("NodeHolds(n1, db v1) = false with t1 on n1")
		}
		if v.NodeHolds(api.KindSecret, "n2", sid, 1) || v.NodeHolds(api.KindSecret, "n1", sid, 2) {
			t.Errorf("NodeHolds is true for another node or another version")
		}
	})

	// secret update: version 2, the service's pin moves and its spec
	// version with it, so its tasks are outdated.
	if err := asErr(h.putSecret(sid, "", 2, "BOX-TWO")); err != nil {
		t.Fatalf("update secret db: %v", err)
	}
	h.view(func(v *View) {
		got, _ := v.Service("svc1")
		if r := got.Spec.Secrets[0]; r.Version != 2 || got.SpecVersion <= svc.SpecVersion {
			t.Errorf("after secret update: pin v%d spec version %d (was %d), want v2 and a newer spec version", r.Version, got.SpecVersion, svc.SpecVersion)
		}
		if p := v.PrunableVersions(api.KindSecret); len(p[sid]) != 0 {
			t.Errorf("PrunableVersions = %v while t1 holds v1, want none", p)
		}
		sec, _ := v.Secret("db", true)
		if len(sec.Versions) != 2 || len(sec.Versions[0].Tasks) != 1 || sec.Versions[0].Tasks[0] != "web.1" {
			t.Errorf("secret inspect versions %+v, want v1 held by web.1", sec.Versions)
		}
		if len(sec.Services) != 1 || sec.Services[0] != "web" {
			t.Errorf("secret used by %v, want [web]", sec.Services)
		}
	})
	// The prune skips a version still held.
	h.mustApply(CmdSecretRemove, SecretRemove{ID: sid, Versions: []uint64{1}})
	h.view(func(v *View) {
		if _, ok := v.SecretSealed(sid, 1); !ok {
			t.Errorf("v1 was pruned while t1 holds it")
		}
	})
	// t1 ends: v1 goes.
	h.mustApply(CmdTaskStatus, TaskStatus{NodeID: "n1", At: t0, Updates: []api.TaskStatusUpdate{{TaskID: "t1", Status: api.TaskStatus{State: api.TaskShutdown}}}})
	var prune map[string][]uint64
	h.view(func(v *View) { prune = v.PrunableVersions(api.KindSecret) })
	if len(prune[sid]) != 1 || prune[sid][0] != 1 {
		t.Fatalf("PrunableVersions = %v, want %s: [1]", prune, sid)
	}
	h.mustApply(CmdSecretRemove, SecretRemove{ID: sid, Versions: prune[sid]})
	h.view(func(v *View) {
		if _, ok := v.SecretSealed(sid, 1); ok {
			t.Errorf("v1's sealed value is still in the state after the prune")
		}
		var places []string
		v.SealedValues(func(aad string, s keys.Sealed) error { places = append(places, aad); return nil })
		if len(places) != 1 || places[0] != api.SecretAAD(sid, 2) {
			t.Errorf("SealedValues places %v, want [%s]", places, api.SecretAAD(sid, 2))
		}
	})

	// Reseal (the data key rotation's) replaces the value at its place,
	// if it is still under the key it was read under.
	h.mustApply(CmdKeyring, Keyring{Keys: []keys.Wrapped{{ID: "k1"}, {ID: "k2"}}, Active: "k2"})
	again := keys.Sealed{Key: "k2", Nonce: []byte("n"), Box: []byte("BOX-RESEALED")}
	if n := h.mustApply(CmdReseal, Reseal{Items: []ResealItem{{Place: api.SecretAAD(sid, 2), Was: "k0", Value: again}}}); n != 0 {
		t.Errorf("a reseal read under another key changed %v values", n)
	}
	h.mustApply(CmdReseal, Reseal{Items: []ResealItem{{Place: api.SecretAAD(sid, 2), Was: "k1", Value: again}}})
	h.view(func(v *View) {
		if s, _ := v.SecretSealed(sid, 2); !bytes.Equal(s.Box, []byte("BOX-RESEALED")) {
			t.Errorf("after reseal the box is %q", s.Box)
		}
	})

	// rm in use is refused, naming the service; nothing changes.
	err = asErr(h.apply(CmdSecretRemove, SecretRemove{ID: sid}))
	if !api.IsCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "web") {
		t.Errorf("rm of a secret in use: %v, want a conflict naming web", err)
	}
	h.mustApply(CmdServiceDelete, ServiceDelete{ID: "svc1", At: t0})
	h.mustApply(CmdSecretRemove, SecretRemove{ID: sid})
	h.view(func(v *View) {
		if _, err := v.Secret("db", false); !api.NotFound(err) {
			t.Errorf("after rm, Secret(db) = %v, want not found", err)
		}
		n := 0
		v.SealedValues(func(string, keys.Sealed) error { n++; return nil })
		if n != 0 {
			t.Errorf("after rm, %d sealed values remain", n)
		}
	})
}

func TestWorkersDoNotWatchSecrets(t *testing.T) {
	f := Filter{Worker: "n1"}
	for _, k := range []string{api.KindSecret, api.KindConfig} {
		if f.Match(&Change{Kind: k}) {
			t.Errorf("a worker's watch matches a %s change", k)
		}
	}
	if !(&Filter{}).Match(&Change{Kind: api.KindSecret}) {
		t.Errorf("a manager's watch does not match a secret change")
	}
}
