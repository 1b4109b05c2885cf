package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/qa/cluster"
)

// benchSecretDelivery: from a secret's create (or update) on the manager
// until its value is read inside a running task on a worker: the value
// sealed into Raft, the task placed (or rolled), the worker's agent
// fetching it over mTLS onto the task's tmpfs, the container started.
func benchSecretDelivery(ctx context.Context, r *report, m, w *cluster.Host) error {
	read := func(service, path string) string {
		ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: service})
		if err != nil {
			return ""
		}
		for _, t := range ts {
			if t.DesiredState != api.TaskRunning || t.Status.State != api.TaskRunning {
				continue
			}
			var out bytes.Buffer
			if code, err := m.Client.Exec(ctx, t.ID, api.ExecRequest{Cmd: []string{"cat", path}}, client.ExecStreams{Stdout: &out}); err == nil && code == 0 {
				return strings.TrimSpace(out.String())
			}
		}
		return ""
	}
	wait := func(service, path, want string) error {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if read(service, path) == want {
				return nil
			}
		}
		return fmt.Errorf("%s: %s never held the value", service, path)
	}
	const runs = 5
	var created, updated []time.Duration
	for i := range runs {
		name := fmt.Sprintf("deliver-%d", i)
		start := time.Now()
		if _, err := m.Client.CreateFile(ctx, api.KindSecret, api.SecretRequest{Name: name, Data: []byte("first " + name)}); err != nil {
			return err
		}
		spec := api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: 1, Args: []string{"sleep", "100000"},
			Placement: api.Placement{Constraints: []string{"node.hostname==" + w.Name}},
			Secrets:   []api.FileRef{{Name: name}}, UpdateConfig: api.UpdateConfig{Order: "start-first"}}
		if _, err := m.Client.CreateService(ctx, spec); err != nil {
			return err
		}
		if err := wait(name, "/run/secrets/"+name, "first "+name); err != nil {
			return err
		}
		created = append(created, time.Since(start))
		start = time.Now()
		if _, err := m.Client.UpdateFile(ctx, api.KindSecret, name, []byte("second "+name)); err != nil {
			return err
		}
		if err := wait(name, "/run/secrets/"+name, "second "+name); err != nil {
			return err
		}
		updated = append(updated, time.Since(start))
	}
	p50, p99 := percentiles(created)
	r.add(fmt.Sprintf("secret create + a service using it → value read in its task on %s (%d runs)", w.Name, runs), "p50 "+ms(p50)+", p99 "+ms(p99), "", "incl. the container's start")
	p50, p99 = percentiles(updated)
	r.add(fmt.Sprintf("secret update → new value read in the rolled task on %s (%d runs)", w.Name, runs), "p50 "+ms(p50)+", p99 "+ms(p99), "", "start-first roll")
	return nil
}
