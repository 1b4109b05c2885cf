package main

import (
	"context"

	"github.com/warren-edge/warren/daemons/dns/dnsbench"
)

// benchDNS measures issue 6's figures: warren-dns against a real manager.
func benchDNS(r *report) error {
	figs, err := dnsbench.Run(context.Background(), dnsbench.Config{Binary: binPath("warren")})
	if err != nil {
		return err
	}
	for _, f := range figs {
		r.add(f.Name, f.Value, f.Budget, f.Reference)
	}
	return nil
}
