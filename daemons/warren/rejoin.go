package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/warren-edge/warren/daemons/manager/membership"
	"github.com/warren-edge/warren/daemons/systemd"
)

// runRejoin joins a worker whose certificate expired beyond the managers'
// grace (it was cut off that long) to its cluster again, keeping its node
// ID, its record and its tasks, then exits.
func runRejoin(args []string) error {
	fs := flag.NewFlagSet("warren rejoin", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "/var/lib/warren/manager", "the worker's data directory (warren manager's)")
	join := fs.String("join", "", "a manager's node port, HOST:PORT")
	flagToken := fs.String("token", "", "a worker join token (warrenctl join-token worker on a manager); it shows in ps: prefer --token-file")
	tokenFile := fs.String("token-file", "", "a file holding the worker join token")
	advertise := fs.String("advertise-addr", "", "HOST:PORT other nodes reach this node's node port at, if it changed (default: as recorded)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: warren rejoin --join HOST:PORT --token-file FILE [--data-dir DIR]

Joins this worker to its cluster again, keeping its node ID, its record
and its tasks: for a worker cut off for longer than its certificate's
life and the managers' grace after it (warrenctl node ls says "certificate
expired ... re-join with a token"; within the grace the node renews by
itself once it is back). The node shows it is itself with its old
certificate and key; the managers refuse a node that was removed or whose
role changed meanwhile (join such a device as a new node, with a fresh
data dir). Its containers keep running throughout:

  systemctl stop warren-manager
  warren rejoin --join MANAGER:4242 --token-file /root/worker.token
  systemctl start warren-manager

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	token, err := joinToken(*flagToken, *tokenFile, os.Getenv("CREDENTIALS_DIRECTORY"))
	if err != nil {
		return err
	}
	if *join == "" || token == "" {
		return fmt.Errorf("give a manager's address (--join HOST:PORT) and a worker join token (--token-file FILE)")
	}
	log, err := newLogger("info", "rejoin")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), systemd.Signals...)
	defer stop()
	id, err := membership.Rejoin(ctx, membership.Config{DataDir: *dataDir, AdvertiseAddr: *advertise}, *join, token, log)
	if err != nil {
		return err
	}
	fmt.Printf("Node %s joined cluster %s again. Start its manager: systemctl start warren-manager\n", id.NodeID, id.ClusterID)
	return nil
}
