package main

import (
	"context"
	"time"

	"github.com/warren-edge/warren/daemons/dns/dnsbench"
)

// benchDNS measures issue 6's figures: warren-dns against a real manager.
// An interrupt cancels the run and waits for it to return: dnsbench's own
// deferred stops end its warren dns child and manager and remove its dir.
func benchDNS(r *report) error {
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	done := stopOnInterrupt(func() {
		cancel()
		select {
		case <-returned:
		case <-time.After(15 * time.Second): // its child dies with ctx anyway (exec.CommandContext)
		}
	})
	figs, err := dnsbench.Run(ctx, dnsbench.Config{Binary: binPath("warren")})
	close(returned)
	done()
	if err != nil {
		return err
	}
	for _, f := range figs {
		r.add(f.Name, f.Value, f.Budget, f.Reference)
	}
	return nil
}
