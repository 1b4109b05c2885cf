package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	wapi "github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/ingress"
	"github.com/warren-edge/warren/daemons/ingress/acme"
	"github.com/warren-edge/warren/daemons/systemd"
)

// prefixesFlag collects CIDRs, repeated or comma-separated.
type prefixesFlag []netip.Prefix

func (p *prefixesFlag) String() string { return fmt.Sprint([]netip.Prefix(*p)) }

func (p *prefixesFlag) Set(s string) error {
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		pf, err := netip.ParsePrefix(part)
		if err != nil {
			a, aerr := netip.ParseAddr(part)
			if aerr != nil {
				return fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8) nor an address", part)
			}
			pf = netip.PrefixFrom(a, a.BitLen())
		}
		*p = append(*p, pf.Masked())
	}
	return nil
}

func runIngress(args []string) error {
	fs := flag.NewFlagSet("warren ingress", flag.ContinueOnError)
	apiSocket := fs.String("api-socket", "/run/warren/ingress.sock", "unix socket of the local manager's API for warren-ingress")
	httpListen := fs.String("http-listen", "", "ADDR:PORT for plain HTTP when systemd passes no socket named http (e.g. :80)")
	httpsListen := fs.String("https-listen", "", "ADDR:PORT for HTTPS when systemd passes no socket named https (e.g. :443); empty: no HTTPS")
	var behindLB, trustedProxies prefixesFlag
	fs.Var(&behindLB, "proxy-protocol-from", "CIDRs of the load balancers in front of this node: connections from them may open with a PROXY protocol header (v1 or v2), on both listeners, whose client address is then the request's; a PROXY header from anyone else is refused (repeatable or comma-separated)")
	fs.Var(&trustedProxies, "trusted-proxies", "CIDRs of the hops whose X-Forwarded-For, -Proto and -Host are believed (repeatable or comma-separated; default none: they are replaced)")
	acmeCA := fs.String("acme-ca", "", "ACME directory URL of the CA routes with TLS source acme get certificates from (empty: none; such routes serve plain HTTP only)")
	acmeRoots := fs.String("acme-ca-roots", "", "PEM file of the roots to trust for the CA's HTTPS (default: the system's)")
	acmeEmail := fs.String("acme-email", "", "contact address of the ACME account")
	renewCheck := fs.Duration("acme-renew-check", acme.DefaultRenewCheck, "how often certificates are checked for renewal (each is renewed two thirds into its lifetime)")
	cleanEvery := fs.Duration("acme-clean-every", acme.DefaultCleanEvery, "how often the cluster's store is cleaned of expired certificates (one ingress node cleans per period)")
	expiredGrace := fs.Duration("acme-expired-grace", acme.DefaultExpiredGrace, "how long a certificate that no route renews any more stays in the store after it expires")
	dnsHook := fs.String("dns-hook", "", "command that publishes dns-01 TXT records: run as HOOK present|cleanup FQDN VALUE")
	localOnly := fs.Bool("local-only", false, "balance over this node's tasks only (no mesh between the nodes' container networks)")
	meshStatus := fs.String("mesh-status", wapi.MeshStatusFile, "the agent's file of the nodes this node's mesh does not reach now (their tasks are left out)")
	sample := fs.Float64("access-log-sample", 0.01, "share of requests in the access log, 0 to 1 (5xx and upstream errors are always logged)")
	metricsListen := fs.String("metrics-listen", "", "ADDR:PORT to serve Prometheus /metrics on (default: none)")
	drain := fs.Duration("drain-timeout", 20*time.Second, fmt.Sprintf("at a stop, how long open requests may take to finish; upgraded connections (WebSocket) get up to %v of it to end, then are closed (keep it under the unit's TimeoutStopSec)", ingress.DefaultUpgradeDrain))
	readyTimeout := fs.Duration("ready-timeout", 5*time.Second, "report ready after this long even if the routes have not come from the manager yet")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warren ingress [--http-listen ADDR:PORT] [--https-listen ADDR:PORT] [flags]\n\nRuns warren-ingress: routes HTTP and HTTPS by host and path to the tasks\nof the services that name routes (warrenctl service create --ingress), with\ncertificates from ACME or from secrets. Only on nodes labelled %s=true.\n\nFlags:\n", wapi.LabelIngress)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *sample < 0 || *sample > 1 {
		return fmt.Errorf("--access-log-sample %v: use a share from 0 to 1", *sample)
	}
	for name, v := range map[string]string{"--acme-ca-roots": *acmeRoots, "--acme-email": *acmeEmail, "--dns-hook": *dnsHook} {
		if v != "" && *acmeCA == "" {
			return fmt.Errorf("%s needs --acme-ca (the ACME directory URL)", name)
		}
	}
	for name, d := range map[string]time.Duration{"--drain-timeout": *drain, "--acme-renew-check": *renewCheck, "--acme-clean-every": *cleanEvery, "--acme-expired-grace": *expiredGrace} {
		if d <= 0 {
			return fmt.Errorf("%s %v: give a duration above zero, such as 10m", name, d)
		}
	}
	if *dnsHook != "" && !filepath.IsAbs(*dnsHook) {
		return fmt.Errorf("--dns-hook %q: give the command's absolute path", *dnsHook)
	}
	log, err := newLogger(*logLevel, "ingress")
	if err != nil {
		return err
	}
	passed := activatedNames()
	if *httpListen == "" && !passed["http"] {
		return errors.New("--http-listen ADDR:PORT is required when systemd passes no socket named http")
	}

	ctx, stop := signal.NotifyContext(context.Background(), systemd.Signals...)
	defer stop()
	httpL, err := systemd.TCPListener("http", *httpListen)
	if err != nil {
		return err
	}
	var httpsL net.Listener
	if *httpsListen != "" || passed["https"] {
		if httpsL, err = systemd.TCPListener("https", *httpsListen); err != nil {
			return err
		}
	}

	api, err := client.New("unix://" + *apiSocket)
	if err != nil {
		return err
	}
	defer api.Close()
	nodeID, err := ingressNode(ctx, log, api)
	if err != nil {
		return err
	}

	// Certificates: from ACME (--acme-ca) or from secrets, the same on
	// every ingress node through the cluster's ingress store.
	certs, err := acme.New(acme.Config{Store: api, NodeID: nodeID, CA: *acmeCA, CARootsFile: *acmeRoots,
		Email: *acmeEmail, DNSHook: *dnsHook, Logger: log.With("part", "acme"),
		HTTPPort: portOf(httpL.Addr()), TLSPort: portOf(addrOf(httpsL)),
		RenewCheckInterval: *renewCheck, CleanEvery: *cleanEvery, ExpiredGrace: *expiredGrace})
	if err != nil {
		return err
	}
	defer certs.Close()
	pcfg := ingress.Config{Logger: log, TrustedProxies: trustedProxies,
		DrainTimeout: *drain,
		AccessLog:    ingress.AccessLog{SampleRate: *sample, Writer: os.Stdout},
		Challenge:    certs.HTTPChallengeHandler(),
		Secret: func(name string) ([]byte, error) {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return api.IngressSecret(sctx, nodeID, name)
		}}
	if httpsL != nil {
		// Plain HTTP is redirected to HTTPS where a certificate is at hand.
		pcfg.HasCert, pcfg.HTTPSPort = certs.HasCert, portOf(httpsL.Addr())
	}
	proxy := ingress.New(pcfg)

	var routesMu sync.Mutex
	var lastRoutes int
	// Only an ingress node routes: elsewhere every request gets 404 and
	// no certificate is asked for, until the label comes.
	replica := ingress.NewReplica(ingress.ReplicaConfig{API: api, Logger: log,
		Table:           ingress.TableOptions{NodeID: nodeID, LocalOnly: *localOnly},
		OnlyIngressNode: true,
		OnTable: func(t *ingress.Table, routes []wapi.IngressRoute) {
			proxy.SetTable(t)
			certs.SetRoutes(routes)
			routesMu.Lock()
			lastRoutes = len(routes)
			routesMu.Unlock()
		}})
	replicaDone := make(chan struct{})
	go func() { replica.Run(ctx); close(replicaDone) }()
	go followMeshStatus(ctx, log, *meshStatus, replica)

	serveCtx, stopServing := context.WithCancel(context.Background())
	defer stopServing()
	serveErr := make(chan error, 2)
	servers := 1
	go func() { serveErr <- ingress.ServePlain(serveCtx, httpL, proxy, len(behindLB) > 0, behindLB) }()
	if httpsL != nil {
		servers++
		go func() {
			serveErr <- ingress.ServeTLS(serveCtx, httpsL, proxy, certs.TLSConfig(), len(behindLB) > 0, behindLB)
		}()
	}
	if *metricsListen != "" {
		if err := serveMetrics(ctx, log, *metricsListen, proxy.Collector(), certs); err != nil {
			return err
		}
	}

	status := func() string {
		routesMu.Lock()
		n := lastRoutes
		routesMu.Unlock()
		return fmt.Sprintf("%d routes; %s", n, replica.Status())
	}
	select {
	case <-replica.Synced():
	case <-time.After(*readyTimeout):
		log.Warn("the manager has not sent the routes yet; serving what there is", "api_socket", *apiSocket)
	case <-ctx.Done():
	}
	log.Info("serving", "http", httpL.Addr(), "https", addrOf(httpsL), "node", nodeID, "acme_ca", *acmeCA)
	serving(log, status())

	// The watchdog is fed while the watch loop is alive (waiting for an
	// absent manager counts: routing goes on from the last state) and the
	// plain listener answers a request of its own.
	probe := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go systemd.Watchdog(ctx, log, func(ctx context.Context) error {
		if err := replica.Alive(time.Minute); err != nil {
			return err
		}
		return probeSelf(ctx, probe, httpL.Addr())
	}, status)

	select {
	case <-ctx.Done():
	case err = <-serveErr:
		log.Error("ingress server stopped", "err", err)
		servers--
	}
	systemd.Stopping()
	log.Info("stopping: draining open requests", "bound", *drain)
	stopServing()
	// The table stays as it is while the servers drain.
	for ; servers > 0; servers-- {
		if derr := <-serveErr; derr != nil {
			log.Warn("drain", "err", derr)
		}
	}
	stop()
	<-replicaDone
	return err
}

// ingressNode asks the local manager for this node's ID, and says at
// once if this is not an ingress node (the replica follows the label
// after), waiting for the manager to answer (systemd may start ingress
// first).
func ingressNode(ctx context.Context, log *slog.Logger, api *client.Client) (id string, err error) {
	logged := false
	for {
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := api.Info(ictx)
		if err == nil {
			var n *wapi.Node
			if n, err = api.Node(ictx, info.NodeID); err == nil {
				cancel()
				if !n.IsIngressNode() {
					log.Warn(ingress.NotIngressNode, "fix", fmt.Sprintf("warrenctl node update --label-add %s=true %s", wapi.LabelIngress, info.NodeID))
				}
				return info.NodeID, nil
			}
		}
		cancel()
		if !logged {
			log.Warn("waiting for the local manager", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// probeSelf sends the plain listener a request for a name no route may
// have: any answer (404) means it serves.
func probeSelf(ctx context.Context, hc *http.Client, addr net.Addr) error {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return nil // not an IP listener: nothing to probe
	}
	if ap.Addr().IsUnspecified() {
		ap = netip.AddrPortFrom(netip.IPv6Loopback(), ap.Port())
		if addr.(*net.TCPAddr).IP.To4() != nil {
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), ap.Port())
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ap.String()+"/", nil)
	if err != nil {
		return err
	}
	req.Host = "watchdog.warren.invalid"
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("ingress: the plain HTTP listener does not answer: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

func addrOf(l net.Listener) net.Addr {
	if l == nil {
		return nil
	}
	return l.Addr()
}

func portOf(a net.Addr) int {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.Port
	}
	return 0
}
