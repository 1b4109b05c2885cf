package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/warren-edge/warren/daemons/manager"
	"github.com/warren-edge/warren/daemons/store"
	"github.com/warren-edge/warren/netcfg/nodesubnet"
)

// runInit starts a new cluster on a fresh data dir (its ID and CA), prints
// its join tokens and exits; warren manager then serves it. (warren
// manager on a fresh data dir does the same by itself.)
func runInit(args []string) error {
	fs := flag.NewFlagSet("warren init", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "/var/lib/warren/manager", "the new manager's data directory (must be fresh)")
	cidr := fs.String("cluster-cidr", "10.240.0.0/12", "range node container subnets come from")
	subnetBits := fs.Int("subnet-bits", 24, "prefix length of each node's container subnet, which bounds the containers a node runs (24: 253); fixed for the cluster's life")
	hostname := fs.String("hostname", "", "this node's name (default: the host name)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warren init [--data-dir DIR] [--cluster-cidr CIDR] [--subnet-bits N]\n\nCreates a new cluster (its ID and CA) in a fresh data dir and prints its join tokens.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	nodes, err := store.CheckNodeSubnets(*cidr, *subnetBits)
	if err != nil {
		return err
	}
	if _, err := manager.ReadIdentity(*dataDir); err == nil {
		return fmt.Errorf("%s already holds a node: start it with warren manager, or give a fresh --data-dir", *dataDir)
	}
	m, err := manager.New(manager.Config{DataDir: *dataDir, ClusterCIDR: *cidr, SubnetBits: *subnetBits, Hostname: *hostname,
		RaftLogLevel: "error", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.WaitReady(ctx); err != nil {
		return err
	}
	info, toks, err := m.InitInfo(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("Cluster %s created; this node (%s) is its first manager.\n\n", info.ClusterID, info.NodeID)
	fmt.Printf("%s\n\n", subnetsLine(*cidr, *subnetBits, nodes))
	fmt.Printf("Start it:  warren manager --data-dir %s --listen-addr 0.0.0.0:4242\n\n", *dataDir)
	for _, t := range toks {
		fmt.Printf("Join a %s:  warren manager --join THIS-NODE:4242 --token %s\n", t.Kind, t.Token)
	}
	return nil
}

// subnetsLine says what --cluster-cidr and --subnet-bits allow.
func subnetsLine(cidr string, bits, nodes int) string {
	containers := nodesubnet.Capacity(netip.PrefixFrom(netip.IPv4Unspecified(), bits))
	return fmt.Sprintf("Each node gets a /%d of %s for its containers: up to %d nodes of %d containers each.", bits, cidr, nodes, containers)
}
