package main

import (
	"context"

	"github.com/warren-edge/warren/qa/nspawn"
)

// benchAppliance measures issue 4's figures: the image, a booted host.
// It builds the image tree if it is missing (a few minutes).
func benchAppliance(r *report) error {
	figs, err := nspawn.Bench(context.Background())
	for _, f := range figs {
		r.add(f.Name, f.Display(), f.Budget, f.Note)
	}
	return err
}
