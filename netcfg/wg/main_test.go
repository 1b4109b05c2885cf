package wg

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/warren-edge/warren/netcfg/internal/nstest"
)

// serveEnv makes the test binary play warren mesh: it runs the interface
// named by the variable until it is told to stop.
const serveEnv = "WARREN_WG_TEST_SERVE"

func TestMain(m *testing.M) {
	if name := os.Getenv(serveEnv); name != "" {
		os.Exit(serveForTest(name))
	}
	nstest.Main(m)
}

func serveForTest(name string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	d, err := Open(name, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready", d.Mode)
	err = d.Wait(ctx)
	d.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
