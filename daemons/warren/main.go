// Command warren is every Warren daemon in one static binary, chosen by
// subcommand (or by the name it is run as, e.g. warren-manager):
//
//	warren manager --data-dir DIR --api-socket PATH
//	warren agent   --api-socket PATH --containerd-socket PATH --data-dir DIR
//
// Under systemd each daemon takes its sockets from socket activation; run by
// hand it binds them itself. See units/ for how systemd runs them.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/warren-edge/warren/daemons/procs"
	"github.com/warren-edge/warren/daemons/systemd"
)

type command struct {
	run     func(args []string) error
	summary string
}

var commands = map[string]command{
	"manager": {runManager, "the cluster store and API (Raft, bbolt, the local unix socket)"},
	"init":    {runInit, "create a new cluster in a fresh data dir and print its join tokens"},
	"rejoin":  {runRejoin, "join a worker whose certificate lapsed to its cluster again, keeping its ID"},
	"agent":   {runAgent, "this node's containers, networking and published ports"},
	"dns":     {runDNS, "service discovery for containers; other names go upstream"},
	"ingress": {runIngress, "HTTP and HTTPS routing into services, with ACME certificates"},
	"mesh":    {runMesh, "this node's WireGuard mesh interface (kernel or userspace)"},
	"version": {runVersion, "print the version"},
}

func usage() {
	fmt.Fprintf(os.Stderr, "usage: warren COMMAND [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'warren COMMAND --help' for a command's flags.\n")
}

func main() {
	name := filepath.Base(os.Args[0])
	args := os.Args[1:]
	if sub, ok := strings.CutPrefix(name, "warren-"); ok {
		name = sub
	} else if len(args) > 0 {
		name, args = args[0], args[1:]
	} else {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[name]
	if !ok {
		if name == "-h" || name == "--help" || name == "help" {
			usage()
			return
		}
		fmt.Fprintf(os.Stderr, "warren: unknown command %q\n\n", name)
		usage()
		os.Exit(2)
	}
	if err := cmd.run(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "warren %s: %v\n", name, err)
		os.Exit(1)
	}
}

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

func runVersion([]string) error {
	fmt.Println("warren", Version)
	return nil
}

// newLogger logs structured lines to stderr, where journald picks them up;
// under journald the time stamp is left to it.
func newLogger(level string, daemon string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	if os.Getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		}
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts)).With("daemon", daemon), nil
}

// labelsFlag collects repeated --label KEY=VALUE flags.
type labelsFlag map[string]string

func (l labelsFlag) String() string { return "" }

func (l labelsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", s)
	}
	l[k] = v
	return nil
}

// serving tells systemd that the daemon serves, and lets go of the pages of
// the binary that start-up touched: every daemon runs the package
// initialisers of all of them (procs.ReleaseStartupPages).
func serving(log *slog.Logger, status string) {
	systemd.Ready(status)
	n, err := procs.ReleaseStartupPages()
	if err != nil {
		log.Warn("could not release the start-up pages of the binary", "err", err)
		return
	}
	log.Info("released the start-up pages of the binary", "mapped_mb", n>>20)
}
