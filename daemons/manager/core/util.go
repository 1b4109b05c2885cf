package core

import (
	"context"
	"time"

	"github.com/warren-edge/warren/daemons/wake"
)

// Sleep waits d, or until ctx ends (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error { return wake.For(ctx, d) }
