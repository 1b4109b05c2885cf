package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	wapi "github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	wdns "github.com/warren-edge/warren/daemons/dns"
	"github.com/warren-edge/warren/daemons/systemd"
)

// upstreamsFlag collects repeated --upstream ADDR flags.
type upstreamsFlag []netip.AddrPort

func (u *upstreamsFlag) String() string { return fmt.Sprint([]netip.AddrPort(*u)) }

func (u *upstreamsFlag) Set(s string) error {
	ap, err := wdns.ParseUpstream(s)
	if err != nil {
		return err
	}
	*u = append(*u, ap)
	return nil
}

func runDNS(args []string) error {
	fs := flag.NewFlagSet("warren dns", flag.ContinueOnError)
	apiSocket := fs.String("api-socket", "/run/warren/api.sock", "unix socket of the local manager's API")
	listen := fs.String("listen", "", "ADDR:PORT to answer on, UDP and TCP, when systemd passes no sockets (named dns and dns-tcp), e.g. the bridge address 10.240.1.1:53")
	domain := fs.String("domain", wdns.DefaultDomain, "the cluster domain")
	ttl := fs.Duration("ttl", wdns.DefaultTTL, "TTL of answers and of NXDOMAIN/NODATA (whole seconds)")
	var upstreams upstreamsFlag
	fs.Var(&upstreams, "upstream", "an upstream resolver ADDR or ADDR:PORT, repeatable (default: the nameservers of --resolv-conf)")
	resolvConf := fs.String("resolv-conf", "/etc/resolv.conf", "the host's resolver configuration, followed as it changes, when no --upstream is given")
	readyTimeout := fs.Duration("ready-timeout", 5*time.Second, "report ready after this long even if the replica has not synced with the manager yet")
	metricsListen := fs.String("metrics-listen", "", "ADDR:PORT to serve Prometheus /metrics on (default: none)")
	meshStatus := fs.String("mesh-status", wapi.MeshStatusFile, "the agent's file of the nodes this node's mesh does not reach now (their tasks are left out of answers); a missing file leaves none out")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warren dns --api-socket PATH --listen ADDR:PORT [flags]\n\nRuns warren-dns: answers names under the cluster domain from the local\nmanager's state and forwards the rest to the host's resolvers.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *ttl < time.Second {
		return fmt.Errorf("--ttl %s: use at least 1s", *ttl)
	}
	if _, ok := dnsName(*domain); !ok {
		return fmt.Errorf("--domain %q is not a domain name", *domain)
	}
	log, err := newLogger(*logLevel, "dns")
	if err != nil {
		return err
	}
	// The names systemd passes, read before package systemd clears them.
	passed := activatedNames()
	if *listen == "" && !(passed["dns"] && passed["dns-tcp"]) {
		return errors.New("--listen ADDR:PORT is required when systemd passes no sockets named dns and dns-tcp")
	}

	ctx, stop := signal.NotifyContext(context.Background(), systemd.Signals...)
	defer stop()

	pc, l, err := bindDNS(ctx, log, *listen)
	if err != nil {
		return err
	}
	socks := []wdns.Socket{wdns.SocketOf(pc.LocalAddr(), pc.(syscall.Conn)), wdns.SocketOf(l.Addr(), l.(syscall.Conn))}

	api, err := client.New("unix://" + *apiSocket)
	if err != nil {
		return err
	}
	replica := wdns.NewReplica(wdns.ReplicaConfig{API: api, Table: wdns.TableOptions{Domain: *domain, TTL: *ttl}, Logger: log})

	fwd := wdns.NewForwarder(wdns.ForwarderConfig{Logger: log})
	var rc *wdns.ResolvConf
	if len(upstreams) > 0 {
		kept, dropped := wdns.SelfFilterOf(socks...)(upstreams)
		if len(dropped) > 0 {
			log.Warn("skipping --upstream resolvers that are this server", "skipped", dropped)
		}
		if len(kept) == 0 {
			return fmt.Errorf("%w: every --upstream (%v) is this server", wdns.ErrNoUpstream, []netip.AddrPort(upstreams))
		}
		fwd.SetUpstreams(kept)
	} else {
		rc = &wdns.ResolvConf{Path: *resolvConf, Filter: wdns.SelfFilterOf(socks...), Logger: log}
		if _, _, err := rc.Load(fwd); err != nil {
			log.Error("names outside the cluster domain will get SERVFAIL until this is fixed", "err", err)
		}
	}

	srv := wdns.NewServer(wdns.ServerConfig{
		Handler:    wdns.Guard(wdns.Zone(replica, fwd)),
		PacketConn: pc, Listener: l, Logger: log,
	})
	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(serveCtx) }()
	replicaDone := make(chan struct{})
	go func() { replica.Run(ctx); close(replicaDone) }()
	go followMeshStatus(ctx, log, *meshStatus, replica)
	if rc != nil {
		go rc.Follow(ctx, fwd, 5*time.Second)
	}
	if *metricsListen != "" {
		if err := serveMetrics(ctx, log, *metricsListen, wdns.Collector{Server: srv, Forwarder: fwd, Replica: replica}); err != nil {
			return err
		}
	}

	status := func() string {
		ss, fs := srv.Stats(), fwd.Stats()
		return fmt.Sprintf("%s; %d queries, %d forwarded to %v (%d failed)",
			replica.Status(), ss.Queries, fs.Forwarded, fwd.Upstreams(), fs.Failed+fs.Shed)
	}
	select {
	case <-srv.Started():
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	select {
	case <-replica.Synced():
	case <-time.After(*readyTimeout):
		log.Warn("the manager has not sent the cluster state yet; serving what there is", "api_socket", *apiSocket)
	case <-ctx.Done():
	}
	log.Info("serving", "udp", socks[0], "tcp", socks[1], "domain", *domain, "upstreams", fwd.Upstreams())
	serving(log, status())

	// The watchdog is fed while the server answers its own probe over UDP
	// and TCP and the watch loop is alive (waiting for an absent manager
	// counts: DNS must keep answering then).
	go systemd.Watchdog(ctx, log, func(ctx context.Context) error {
		if err := replica.Alive(time.Minute); err != nil {
			return err
		}
		for i, network := range []string{"udp", "tcp"} {
			if ap, ok := socks[i].ProbeAddr(); ok {
				if err := wdns.Probe(ctx, network, ap, *domain); err != nil {
					return err
				}
			}
		}
		return nil
	}, status)

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		log.Error("DNS server stopped", "err", err)
	}
	systemd.Stopping()
	log.Info("stopping")
	stopServing()
	stop()
	<-replicaDone
	if err == nil {
		err = <-serveErr
	}
	api.Close()
	return err
}

// activatedNames are the socket names systemd passed to this process.
func activatedNames() map[string]bool {
	names := map[string]bool{}
	if os.Getenv("LISTEN_PID") != fmt.Sprint(os.Getpid()) {
		return names
	}
	for n := range strings.SplitSeq(os.Getenv("LISTEN_FDNAMES"), ":") {
		names[n] = true
	}
	return names
}

// bindDNS takes the sockets from systemd or binds addr, waiting while the
// address does not exist yet (the agent makes the bridge).
func bindDNS(ctx context.Context, log *slog.Logger, addr string) (net.PacketConn, net.Listener, error) {
	logged := false
	for {
		pc, err := systemd.PacketConn("dns", addr)
		if err == nil {
			l, err := systemd.TCPListener("dns-tcp", addr)
			if err == nil {
				return pc, l, nil
			}
			pc.Close()
			if !errors.Is(err, syscall.EADDRNOTAVAIL) {
				return nil, nil, err
			}
		} else if !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, nil, err
		}
		if !logged {
			log.Warn("waiting for the listen address to exist (warren-agent makes the bridge)", "listen", addr)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func serveMetrics(ctx context.Context, log *slog.Logger, addr string, cs ...prometheus.Collector) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))...)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); hs.Close() }()
	go func() {
		if err := hs.Serve(l); err != nil && err != http.ErrServerClosed {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return nil
}

// dnsName checks a domain name and returns it as an FQDN.
func dnsName(s string) (string, bool) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if s == "" || len(s) > 200 {
		return "", false
	}
	labels := strings.Split(s, ".")
	ok := !slices.ContainsFunc(labels, func(l string) bool {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return true
		}
		return strings.IndexFunc(l, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
		}) >= 0
	})
	return s + ".", ok
}
