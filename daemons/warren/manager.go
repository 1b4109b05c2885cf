package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager"
	"github.com/warren-edge/warren/daemons/systemd"
)

func runManager(args []string) error {
	fs := flag.NewFlagSet("warren manager", flag.ContinueOnError)
	cfg := manager.Config{Labels: labelsFlag{}}
	fs.StringVar(&cfg.DataDir, "data-dir", "/var/lib/warren/manager", "directory for the Raft log, snapshots, state and node identity")
	apiSocket := fs.String("api-socket", "/run/warren/api.sock", "unix socket of the local API (systemd socket name: api)")
	fs.StringVar(&cfg.AgentSocket, "agent-socket", "/run/warren/agent.sock", "this node's agent, which serves images and task logs")
	fs.StringVar(&cfg.Hostname, "hostname", "", "this node's name in the cluster (default: the host name)")
	fs.Var(labelsFlag(cfg.Labels), "label", "a node label KEY=VALUE, repeatable")
	fs.StringVar(&cfg.ClusterCIDR, "cluster-cidr", "10.240.0.0/12", "range node container subnets come from, for a new cluster")
	fs.IntVar(&cfg.SubnetBits, "subnet-bits", 24, "prefix length of each node's container subnet")
	fs.DurationVar(&cfg.RescheduleGrace, "reschedule-grace", time.Minute, "how long a down node's tasks wait before moving to other nodes")
	fs.DurationVar(&cfg.NodeTimeout, "node-timeout", 6*time.Second, "silence after which a node is marked down")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warren manager --data-dir DIR --api-socket PATH [flags]\n\nRuns warren-manager: the Raft store and the API on a unix socket.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	log, err := newLogger(*logLevel, "manager")
	if err != nil {
		return err
	}
	cfg.Logger = log
	manager.Version = Version

	l, err := systemd.UnixListener("api", *apiSocket)
	if err != nil {
		return err
	}
	m, err := manager.New(cfg)
	if err != nil {
		l.Close()
		return err
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- m.Serve(l) }()

	ctx, stop := signal.NotifyContext(context.Background(), systemd.Signals...)
	defer stop()
	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = m.WaitReady(readyCtx)
	cancel()
	if err != nil && ctx.Err() == nil {
		log.Warn("not ready yet; serving anyway", "err", err)
	}
	log.Info("serving", "socket", *apiSocket, "node", m.NodeID(), "data_dir", cfg.DataDir)
	systemd.Ready(m.Status())

	// The watchdog is fed while the Raft loop answers and the API answers
	// through the real socket (its bound path, which under systemd is the
	// socket unit's).
	self, err := client.New("unix://" + l.Addr().String())
	if err != nil {
		return err
	}
	go systemd.Watchdog(ctx, log, func(ctx context.Context) error {
		if err := m.RaftAlive(ctx); err != nil {
			return err
		}
		_, err := self.Info(ctx)
		return err
	}, m.Status)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		if err != nil && err != http.ErrServerClosed {
			log.Error("API server stopped", "err", err)
		}
	}
	systemd.Stopping()
	log.Info("stopping")
	if err := m.Close(); err != nil {
		return err
	}
	os.Remove(*apiSocket)
	return nil
}
