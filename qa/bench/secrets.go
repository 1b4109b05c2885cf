package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// benchSecrets: what secrets cost on the write path, one manager: service
// creates with and without a secret in the spec, and secret creates (each
// value sealed by the manager before it goes into Raft).
func benchSecrets(r *report) error {
	p, c, err := startManager()
	if err != nil {
		return err
	}
	defer p.stop()
	ctx := context.Background()
	if _, err := c.CreateFile(ctx, api.KindSecret, api.SecretRequest{Name: "bench-secret", Data: []byte("a password of some length")}); err != nil {
		return err
	}
	const n, conc = 1000, 8
	plain, err := createMany(ctx, c, "plain", n, conc, 0)
	if err != nil {
		return err
	}
	withSecret, err := createMany(ctx, c, "secret", n, conc, 0, func(s *api.ServiceSpec) {
		s.Secrets = []api.FileRef{{Name: "bench-secret"}}
	})
	if err != nil {
		return err
	}
	r.add("service creates/s, 1 manager, concurrency 8, no secret", fmt.Sprintf("%.0f/s", n/plain.Seconds()), "", "")
	r.add("service creates/s, 1 manager, concurrency 8, one secret in the spec", fmt.Sprintf("%.0f/s", n/withSecret.Seconds()), "", "")

	// Secret creates: each sealed (AES-256-GCM) before Raft.
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= n; i = next.Add(1) {
				if _, err := c.CreateFile(ctx, api.KindSecret, api.SecretRequest{Name: fmt.Sprintf("s-%d", i), Data: []byte("a password of some length")}); err != nil {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		return fmt.Errorf("%d secret creates failed", failed.Load())
	}
	r.add("secret creates/s (sealed before Raft), 1 manager, concurrency 8", fmt.Sprintf("%.0f/s", n/time.Since(start).Seconds()), "", "")
	return benchRotation(ctx, r, c)
}

// benchRotation: a data key rotation of 10,000 secrets, from the call to
// the old key's drop (every value opened and sealed again by the leader,
// a batch per Raft entry).
func benchRotation(ctx context.Context, r *report, c *client.Client) error {
	const total = 10000
	have, err := c.Secrets(ctx)
	if err != nil {
		return err
	}
	for i := len(have); i < total; i++ {
		if _, err := c.CreateFile(ctx, api.KindSecret, api.SecretRequest{Name: fmt.Sprintf("rot-%d", i), Data: []byte("a password of some length")}); err != nil {
			return err
		}
	}
	start := time.Now()
	if _, err := c.RotateDataKey(ctx); err != nil {
		return err
	}
	for {
		k, err := c.Keys(ctx)
		if err != nil {
			return err
		}
		if !k.Rotating && len(k.Keys) == 1 {
			el := time.Since(start)
			values := k.Keys[0].Values
			r.add(fmt.Sprintf("data key rotation, %d sealed values, 1 manager (to the old key's drop)", values),
				fmt.Sprintf("%.0f values/s (%.1f s)", float64(values)/el.Seconds(), el.Seconds()), "", "")
			break
		}
		if time.Since(start) > 5*time.Minute {
			return fmt.Errorf("the rotation did not finish in 5 minutes: %+v", k)
		}
		time.Sleep(20 * time.Millisecond)
	}
	chk, err := c.CheckKeys(ctx)
	if err != nil {
		return err
	}
	if chk.Readable != chk.Checked {
		return fmt.Errorf("after the rotation %d of %d values open", chk.Readable, chk.Checked)
	}
	return nil
}
