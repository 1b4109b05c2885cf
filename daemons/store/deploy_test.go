package store

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"

	"github.com/warren-edge/warren/daemons/api"
)

func newService(id string, s api.ServiceSpec) api.Service {
	return api.Service{Meta: api.Meta{ID: id, CreatedAt: t0, UpdatedAt: t0}, Spec: s}
}

func withImage(s api.ServiceSpec, image string) api.ServiceSpec {
	s.Image = image
	return s
}

func (h *harness) service(id string) *api.Service {
	h.t.Helper()
	var s *api.Service
	h.view(func(v *View) {
		var err error
		if s, err = v.Service(id); err != nil {
			h.t.Fatalf("Service(%s): %v", id, err)
		}
	})
	return s
}

// dump is every key and value of the state database but the applied
// index, one line each.
func (h *harness) dump() string {
	var b bytes.Buffer
	h.state.View(func(v *View) error {
		return v.tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			return bk.ForEach(func(k, val []byte) error {
				if bytes.Equal(name, bMeta) && bytes.Equal(k, kAppliedIndex) {
					return nil
				}
				fmt.Fprintf(&b, "%s %q %q\n", name, k, val)
				return nil
			})
		})
	})
	return b.String()
}

func TestDeployRecordsDeploymentOnAll(t *testing.T) {
	h := newHarness(t)
	h.createService("a", spec("web", 1))
	h.createService("c", spec("db", 1))
	res := h.mustApply(CmdDeploy, Deploy{ID: "d1", Name: "shop", At: t0,
		Creates: []api.Service{newService("b", spec("api", 1))},
		Updates: []ServiceUpdate{
			{ID: "a", Spec: withImage(spec("web", 1), "localhost/nginx")},
			{ID: "c", Spec: spec("db", 1)}, // unchanged
		}}).(*DeployResult)
	if got, want := fmt.Sprint(res.Services), "[{b api created} {a web updated} {c db unchanged}]"; got != want {
		t.Errorf("deploy d1 result %s; want %s", got, want)
	}
	for _, id := range []string{"a", "b"} {
		s := h.service(id)
		if s.UpdateStatus == nil || s.UpdateStatus.Deployment != "d1" || s.UpdateStatus.State != api.UpdateUpdating {
			t.Errorf("after deploy d1, service %s has UpdateStatus %+v; want updating, deployment d1", id, s.UpdateStatus)
		}
		if s.SpecVersion != h.index {
			t.Errorf("service %s SpecVersion %d; want the deploy's index %d", id, s.SpecVersion, h.index)
		}
	}
	if s := h.service("c"); s.UpdateStatus != nil {
		t.Errorf("an unchanged service got UpdateStatus %+v; want none", s.UpdateStatus)
	}
	if s := h.service("a"); s.PreviousSpec == nil || s.PreviousSpec.Image != "localhost/busybox" {
		t.Errorf("updated service a keeps PreviousSpec %+v; want the busybox spec", s.PreviousSpec)
	}
}

func TestDeployAllOrNothing(t *testing.T) {
	port := func(p uint16) api.PortConfig { return api.PortConfig{Target: 80, Published: p} }
	for _, tc := range []struct {
		name string
		d    Deploy
		want string
	}{
		{"a create clashes with an existing name", Deploy{
			Creates: []api.Service{newService("n1", spec("new", 1, port(8081))), newService("n2", spec("db", 1))},
			Updates: []ServiceUpdate{{ID: "a", Spec: withImage(spec("web", 1, port(8080)), "localhost/nginx")}},
		}, api.CodeConflict},
		{"two creates publish the same port", Deploy{
			Creates: []api.Service{newService("n1", spec("new", 1, port(9000))), newService("n2", spec("other", 1, port(9000)))},
		}, api.CodeConflict},
		{"an update of a missing service", Deploy{
			Creates: []api.Service{newService("n1", spec("new", 1))},
			Updates: []ServiceUpdate{{ID: "a", Spec: withImage(spec("web", 1, port(8080)), "localhost/nginx")}, {ID: "zz", Spec: spec("zz", 1)}},
			Removes: []string{"db"},
		}, api.CodeNotFound},
		{"an update changes a service's mode", Deploy{
			Updates: []ServiceUpdate{{ID: "a", Spec: api.ServiceSpec{Name: "web", Image: "x", Mode: api.ModeGlobal}}},
		}, api.CodeInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.createService("a", spec("web", 1, port(8080)))
			h.createService("db", spec("db", 1))
			before := h.dump()
			hubBefore := h.hub.Last()
			tc.d.ID, tc.d.At = "d1", t0
			// In one batch with a good command on each side, as Raft may
			// deliver it: those apply, the deployment changes nothing.
			logs := []*raft.Log{
				h.entry(CmdServiceCreate, ServiceCreate{Service: newService("x1", spec("x1", 1))}),
				h.entry(CmdDeploy, tc.d),
				h.entry(CmdServiceDelete, ServiceDelete{ID: "x1", At: t0}),
			}
			res := h.fsm.ApplyBatch(logs)
			if asErr(res[0]) != nil || asErr(res[2]) != nil {
				t.Fatalf("the commands around the deployment: %v, %v; want both applied", res[0], res[2])
			}
			if err := asErr(res[1]); !api.IsCode(err, tc.want) {
				t.Fatalf("deploy = %v; want a %s error", res[1], tc.want)
			}
			if after := h.dump(); after != before {
				t.Errorf("a refused deployment changed the state:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			// The hub saw the create and the delete around it, nothing else.
			ch, _, err := h.hub.Read(hubBefore, &Filter{}, 100, nil)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, c := range ch {
				kinds = append(kinds, c.Op+" "+c.ID)
			}
			if fmt.Sprint(kinds) != "[create x1 delete x1]" {
				t.Errorf("changes published for the batch: %v; want [create x1 delete x1]", kinds)
			}
		})
	}
}

func TestDeployPrunes(t *testing.T) {
	h := newHarness(t)
	h.createService("a", spec("web", 1))
	h.createService("old", spec("old", 1))
	h.mustApply(CmdTaskPlan, api.TaskPlan{Creates: []api.Task{task("t1", "old", 1, "")}, At: t0})
	h.mustApply(CmdDeploy, Deploy{ID: "d1", At: t0, Removes: []string{"old", "gone-already"},
		Updates: []ServiceUpdate{{ID: "a", Spec: withImage(spec("web", 1), "localhost/nginx")}}})
	h.view(func(v *View) {
		if _, err := v.Service("old"); !api.IsCode(err, api.CodeNotFound) {
			t.Errorf("pruned service old: Service() = %v; want not found", err)
		}
		if tk, _ := v.Task("t1"); tk == nil || tk.DesiredState != api.TaskRemove {
			t.Errorf("task of pruned service: %+v; want desired remove", tk)
		}
	})
}

// A plan's rollback of one service of a deployment rolls back the others
// it updated; a service it created has nothing to roll back to and stays.
func TestDeployRollbackRollsBackAll(t *testing.T) {
	h := newHarness(t)
	h.createService("a", spec("web", 1))
	h.createService("b", spec("api", 1))
	h.createService("other", spec("other", 1))
	h.mustApply(CmdDeploy, Deploy{ID: "d1", At: t0,
		Creates: []api.Service{newService("c", spec("new", 1))},
		Updates: []ServiceUpdate{
			{ID: "a", Spec: withImage(spec("web", 1), "localhost/nginx:2")},
			{ID: "b", Spec: withImage(spec("api", 1), "localhost/api:2")},
		}})
	h.mustApply(CmdServiceUpdate, ServiceUpdate{ID: "other", Spec: withImage(spec("other", 1), "localhost/other:2"), At: t0})
	a := h.service("a")
	h.mustApply(CmdTaskPlan, api.TaskPlan{At: t0, Rollbacks: []api.Rollback{{ServiceID: "a", SpecVersion: a.SpecVersion, Reason: "task failed"}}})
	for _, id := range []string{"a", "b"} {
		s := h.service(id)
		if !s.Rolling() || s.Spec.Image != "localhost/busybox" || s.UpdateStatus.Deployment != "d1" || !s.UpdateStatus.Automatic {
			t.Errorf("after a's rollback, service %s: image %s, status %+v; want rolling back to busybox in deployment d1", id, s.Spec.Image, s.UpdateStatus)
		}
	}
	if s := h.service("c"); s.Rolling() || s.UpdateStatus.Deployment != "d1" {
		t.Errorf("created service c: status %+v; want still updating in d1", s.UpdateStatus)
	}
	if s := h.service("other"); s.Rolling() || s.Spec.Image != "localhost/other:2" {
		t.Errorf("service other, outside the deployment: image %s, status %+v; want left alone", s.Spec.Image, s.UpdateStatus)
	}
}
