package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
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
	readSocket := fs.String("read-socket", "", "unix socket of the read-only local API, for warren-dns (systemd socket name: read); empty: none")
	ingressSocket := fs.String("ingress-socket", "", "unix socket of warren-ingress's local API: reads, and this node's share of the ingress store (systemd socket name: ingress); empty: none")
	fs.StringVar(&cfg.AgentSocket, "agent-socket", "/run/warren/agent.sock", "this node's agent, which serves images and task logs")
	fs.StringVar(&cfg.ListenAddr, "listen-addr", "", "the node port, HOST:PORT, mTLS between nodes (systemd socket name: node); empty: this node only")
	fs.StringVar(&cfg.AdvertiseAddr, "advertise-addr", "", "HOST:PORT other nodes reach the node port at (default: derived from --listen-addr)")
	fs.StringVar(&cfg.JoinAddr, "join", "", "join a cluster through the manager at HOST:PORT (a fresh data dir only)")
	fs.StringVar(&cfg.JoinToken, "token", "", "the join token (warrenctl join-token worker|manager on a manager); it shows in ps: prefer --token-file")
	tokenFile := fs.String("token-file", "", "a file holding the join token (default: the systemd credential join-token, when there is one)")
	fs.BoolVar(&cfg.ForceNewCluster, "force-new-cluster", false, "recover from a lost quorum: make this manager the only voter, keeping its state")
	fs.StringVar(&cfg.Hostname, "hostname", "", "this node's name in the cluster (default: the host name)")
	fs.Var(labelsFlag(cfg.Labels), "label", "a node label KEY=VALUE, repeatable")
	fs.StringVar(&cfg.ClusterCIDR, "cluster-cidr", "10.240.0.0/12", "range node container subnets come from, for a new cluster")
	fs.IntVar(&cfg.SubnetBits, "subnet-bits", 24, "prefix length of each node's container subnet, for a new cluster; it bounds the containers a node runs (24: 253)")
	fs.DurationVar(&cfg.RescheduleGrace, "reschedule-grace", time.Minute, "how long a down node's tasks wait before moving to other nodes")
	fs.DurationVar(&cfg.NodeTimeout, "node-timeout", 6*time.Second, "silence after which a node is marked down (at least 3 agent heartbeats of 2s)")
	fs.DurationVar(&cfg.CertGrace, "cert-grace", 30*24*time.Hour, "how long after a node's certificate expired (a node cut off that long) the managers still renew it; after it the node joins again with warren rejoin and a token. 0: none. Give every manager the same")
	fs.StringVar(&cfg.RaftLogStore, "raft-log-store", "", "where the Raft log is kept: wal (raft-wal, the default for a new data dir) or bbolt; a data dir keeps the store it started with")
	fs.DurationVar(&cfg.HeartbeatTimeout, "raft-heartbeat-timeout", 0, "Raft's election timeout: a follower that has not heard from the leader for 1-1.5 times this starts an election, and the leader heartbeats every half of it (default 450ms, made for a LAN)")
	fs.DurationVar(&cfg.CommitTimeout, "raft-commit-timeout", 0, "how soon an idle leader tells followers what is committed, which a write through a follower waits for (default 20ms)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `usage: warren manager --data-dir DIR --api-socket PATH [flags]

Runs warren-manager. On a fresh data dir it starts a new cluster (creating
its CA), or with --join and a join token joins one as a manager or a
worker, as the token says. On a worker it keeps the node's replica of the
cluster. The token comes from --token-file, or under systemd from the
credential join-token (LoadCredential=); --token puts it where ps shows it.

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
	if cfg.CertGrace <= 0 {
		cfg.CertGrace = -1 // none (a zero Config field takes the default)
	}
	if cfg.HeartbeatTimeout < 0 || cfg.CommitTimeout < 0 {
		return fmt.Errorf("--raft-heartbeat-timeout and --raft-commit-timeout take a positive duration, such as 450ms")
	}
	token, err := joinToken(cfg.JoinToken, *tokenFile, os.Getenv("CREDENTIALS_DIRECTORY"))
	if err != nil {
		return err
	}
	cfg.JoinToken = token
	if (cfg.JoinAddr == "") != (cfg.JoinToken == "") {
		return fmt.Errorf("--join and a join token (--token-file, or the systemd credential join-token) go together")
	}
	log, err := newLogger(*logLevel, "manager")
	if err != nil {
		return err
	}
	cfg.Logger = log
	manager.Version = Version
	if cfg.JoinAddr != "" {
		if id, err := manager.ReadIdentity(cfg.DataDir); err == nil {
			// Units pass the join token on every start: it joins a fresh
			// data dir only.
			log.Info("the data dir holds a node already: --join and the token are not used (a worker whose certificate lapsed while it was cut off joins again with warren rejoin)", "node", id)
		}
	}

	apiL, err := systemd.UnixListener("api", *apiSocket)
	if err != nil {
		return err
	}
	defer apiL.Close()
	var readL net.Listener
	if *readSocket != "" || systemd.Has("read") {
		if readL, err = systemd.UnixListenerFor("read", *readSocket, "warren-view"); err != nil {
			return err
		}
		defer readL.Close()
	}
	var ingressL net.Listener
	if *ingressSocket != "" || systemd.Has("ingress") {
		if ingressL, err = systemd.UnixListenerFor("ingress", *ingressSocket, "warren-ingress"); err != nil {
			return err
		}
		defer ingressL.Close()
	}
	var nodeL net.Listener
	if cfg.ListenAddr != "" || systemd.Has("node") {
		if nodeL, err = systemd.TCPListener("node", cfg.ListenAddr); err != nil {
			return err
		}
		defer nodeL.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), systemd.Signals...)
	defer stop()

	// A change of role (promotion, demotion) restarts the manager in its
	// new mode on the same sockets.
	for ready := false; ; {
		c := cfg
		if nodeL != nil {
			c.NodePort = keepOpen{nodeL}
		}
		m, err := manager.New(c)
		if err != nil {
			return err
		}
		cfg.JoinAddr, cfg.JoinToken, cfg.ForceNewCluster = "", "", false // once
		// Serve once ready: a client that connects during start-up (socket
		// activation queues it) is answered by a manager that has a leader
		// and its state, not told "no leader".
		readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = m.WaitReady(readyCtx)
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("not ready yet; serving anyway", "err", err)
		}
		serveErr := make(chan error, 3)
		go func() { serveErr <- m.Serve(keepOpen{apiL}) }()
		if readL != nil {
			go func() { serveErr <- m.ServeReadOnly(keepOpen{readL}) }()
		}
		if ingressL != nil {
			go func() { serveErr <- m.ServeIngress(keepOpen{ingressL}) }()
		}
		log.Info("serving", "socket", *apiSocket, "node", m.NodeID(), "data_dir", cfg.DataDir)
		if !ready {
			serving(log, m.Status())
			ready = true
		}
		// The watchdog is fed while the Raft loop (or a worker's replica
		// loop) answers and the API answers through the real socket.
		self, err := client.New("unix://" + apiL.Addr().String())
		if err != nil {
			return err
		}
		wctx, wcancel := context.WithCancel(ctx)
		go systemd.Watchdog(wctx, log, func(ctx context.Context) error {
			if err := m.RaftAlive(ctx); err != nil {
				return err
			}
			_, err := self.Info(ctx)
			return err
		}, m.Status)
		restart := false
		select {
		case <-ctx.Done():
		case <-m.RoleChanged():
			restart = true
		case err := <-serveErr:
			if err != nil && err != http.ErrServerClosed {
				log.Error("API server stopped", "err", err)
			}
		}
		wcancel()
		self.Close()
		if !restart {
			systemd.Stopping()
			log.Info("stopping")
		}
		if err := m.Close(); err != nil {
			return err
		}
		if !restart {
			if !systemd.Has("api") {
				os.Remove(*apiSocket) // a socket unit's file stays for the next start
			}
			if readL != nil && !systemd.Has("read") {
				os.Remove(*readSocket)
			}
			if ingressL != nil && !systemd.Has("ingress") {
				os.Remove(*ingressSocket)
			}
			return nil
		}
		log.Info("restarting in the node's new role")
	}
}

// joinToken is the join token from --token, --token-file or, with
// neither, the systemd credential join-token in credsDir (units pass it
// with LoadCredential=, so it never shows on a command line). An empty
// credential is no token (warren-config always writes one); an empty or
// unreadable --token-file is an error. The token never goes into an
// error message.
func joinToken(flagToken, file, credsDir string) (string, error) {
	var cred string
	if credsDir != "" {
		b, err := os.ReadFile(filepath.Join(credsDir, "join-token"))
		switch {
		case err == nil:
			cred = strings.TrimSpace(string(b))
		case !errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("the systemd credential join-token: %w", err)
		}
	}
	switch {
	case flagToken != "" && file != "":
		return "", errors.New("--token and --token-file: give the join token one way (--token-file keeps it off the command line)")
	case (flagToken != "" || file != "") && cred != "":
		return "", errors.New("a join token in --token or --token-file and in the systemd credential join-token: give it one way")
	case flagToken != "":
		return strings.TrimSpace(flagToken), nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("--token-file %s is empty: put the token that warrenctl join-token worker|manager prints in it", file)
		}
		return t, nil
	}
	return cred, nil
}

// keepOpen lets a manager that restarts in a new role stop accepting on a
// socket the daemon keeps: Close only wakes the Accept in progress (a
// deadline); the next manager clears it.
type keepOpen struct{ net.Listener }

type deadliner interface{ SetDeadline(time.Time) error }

func (k keepOpen) Close() error {
	if d, ok := k.Listener.(deadliner); ok {
		return d.SetDeadline(time.Now())
	}
	return nil
}

func (k keepOpen) SetDeadline(t time.Time) error {
	if d, ok := k.Listener.(deadliner); ok {
		return d.SetDeadline(t)
	}
	return nil
}
