// Command warrenctl is the command line of a Warren cluster: it deploys
// and inspects services and nodes through a manager's API. The commands
// live in ctl/cli; this file only wires them to the process.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/warren-edge/warren/ctl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
