package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warren-edge/warren/daemons/api"
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
	return nil
}
