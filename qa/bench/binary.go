package main

import (
	"fmt"
	"os"
)

func benchBinary(r *report) error {
	fi, err := os.Stat(binPath("warren"))
	if err != nil {
		return fmt.Errorf("%w (run make build first)", err)
	}
	r.add("bin/warren size, stripped, amd64", fmt.Sprintf("%.1f MB", float64(fi.Size())/1e6), "< 30 MB", "")
	return nil
}
