package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"

	"github.com/warren-edge/warren/daemons/systemd"
	"github.com/warren-edge/warren/netcfg/wg"
)

// runMesh owns the node's mesh interface: a kernel WireGuard link where
// the kernel has WireGuard, the embedded userspace implementation
// otherwise. warren-agent configures it (key, peers, address, routes)
// through wgctrl; this process holds no key, so an agent restart leaves
// the interface and its sessions alone, and a restart of this process
// brings back an empty interface the agent fills again.
func runMesh(args []string) error {
	fs := flag.NewFlagSet("warren mesh", flag.ContinueOnError)
	iface := fs.String("iface", wg.DefaultIface, "the mesh interface")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warren mesh [--iface NAME]\n\nRuns the node's WireGuard mesh interface (kernel, or userspace when the kernel has no WireGuard); warren-agent configures it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	log, err := newLogger(*logLevel, "mesh")
	if err != nil {
		return err
	}
	// wireguard-go's buffer pools grow without bound under load (64 KiB
	// buffers with offload): 170-430 MB after seconds at full speed here.
	// 64 MiB keeps a gigabit link at 96 % of the underlay and caps the
	// process; throughput above about 1.7 Gbit/s on a 2-core device pays
	// for it. GOMEMLIMIT overrides.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(64 << 20)
	}
	ctx, stop := signal.NotifyContext(context.Background(), systemd.Signals...)
	defer stop()
	d, err := wg.Open(*iface, log)
	if err != nil {
		return err
	}
	defer d.Close()
	status := func() string { return fmt.Sprintf("%s: %s WireGuard", d.Name, d.Mode) }
	log.Info("ready", "iface", d.Name, "mode", d.Mode)
	serving(log, status())
	go systemd.Watchdog(ctx, log, func(context.Context) error { return nil }, status)
	err = d.Wait(ctx)
	systemd.Stopping()
	return err
}
