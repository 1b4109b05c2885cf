package main

import (
	"time"

	"github.com/warren-edge/warren/daemons/scheduler/schedbench"
)

func benchScheduler(r *report) error {
	d, err := schedbench.Bench10k()
	if err != nil {
		return err
	}
	r.add("pure scheduler: 10,000 tasks on 1,000 simulated nodes", d.Round(100*time.Microsecond).String(), "< 1 s", "swarmkit 1.8 s on a laptop")
	return nil
}
