package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warren-edge/warren/daemons/agent"
	ctrd "github.com/warren-edge/warren/daemons/agent/containerd"
	"github.com/warren-edge/warren/daemons/agent/imagexfer"
	wapi "github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/systemd"
	"github.com/warren-edge/warren/netcfg/wg"
)

func runAgent(args []string) error {
	fs := flag.NewFlagSet("warren agent", flag.ContinueOnError)
	apiSocket := fs.String("api-socket", "/run/warren/api.sock", "unix socket of this node's warren-manager")
	containerdSocket := fs.String("containerd-socket", "/run/containerd/containerd.sock", "containerd's gRPC socket")
	ociRuntime := fs.String("oci-runtime", ctrd.OCIRuntimeAuto, "what the containerd shim runs containers with: runc, crun, or auto (crun where it is installed and the cgroups allow it, else runc)")
	namespace := fs.String("containerd-namespace", "warren", "containerd namespace of Warren's containers and images")
	dataDir := fs.String("data-dir", "/var/lib/warren/agent", "directory for container logs, network files and the address pool")
	agentSocket := fs.String("agent-socket", "/run/warren/agent.sock", "unix socket of the agent's local API (systemd socket name: agent)")
	secretsDir := fs.String("secrets-dir", agent.DefaultSecretsDir, "where each task's secrets get a tmpfs of their own")
	netnsDir := fs.String("netns-dir", "/run/warren/netns", "where task network namespaces are mounted")
	bridge := fs.String("bridge", "warren0", "the container bridge")
	hostNetNS := fs.String("host-netns", "", "network namespace that plays this node (tests); default: the agent's own")
	noNetwork := fs.Bool("no-network", false, "give containers an empty network namespace instead of the bridge (no published ports)")
	hostname := fs.String("hostname", "", "this node's name (default: the host name)")
	clusterDNS := fs.Bool("cluster-dns", true, "containers resolve through warren-dns on the node's bridge address")
	clusterDomain := fs.String("cluster-domain", "warren.internal", "the domain warren-dns answers for")
	mesh := fs.Bool("mesh", true, "join the fleet's WireGuard mesh (warren-mesh runs the interface)")
	meshIface := fs.String("mesh-iface", wg.DefaultIface, "the mesh interface warren-mesh runs")
	meshPort := fs.Int("mesh-port", 51820, "UDP port of this node's end of the mesh")
	meshStatus := fs.String("mesh-status", wapi.MeshStatusFile, "file telling warren-dns which nodes the mesh does not reach now")
	maxBlobTransfers := fs.Int("max-blob-transfers", 4, "image blobs this node serves to other nodes at once (more wait)")
	fetchLimit := fs.Duration("image-fetch-timeout", 30*time.Minute, "how long fetching an image from other nodes may take")
	var plainHTTP registriesFlag
	var allowBind allowBindFlag
	fs.Var(&allowBind, "allow-bind", "a host folder that bind mounts (--mount type=bind) may come from, repeatable; none by default: every bind is refused")
	fs.Var(&plainHTTP, "plain-http-registry", "a registry HOST:PORT pulled over plain HTTP (a local one on a trusted LAN), repeatable")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: warren agent --api-socket PATH --containerd-socket PATH --data-dir DIR [flags]\n\nRuns warren-agent: this node's containers through containerd, their network and published ports.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	log, err := newLogger(*logLevel, "agent")
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), systemd.Signals...)
	defer stop()

	l, err := systemd.UnixListener("agent", *agentSocket)
	if err != nil {
		return err
	}
	defer l.Close()
	ociBinary, why, err := ctrd.ChooseOCIBinary(*ociRuntime, "")
	if err != nil {
		return err
	}
	log.Info("OCI runtime", "use", why)
	rt, err := ctrd.New(ctx, ctrd.Options{Socket: *containerdSocket, Namespace: *namespace, PlainHTTPRegistries: plainHTTP, OCIBinary: ociBinary})
	if err != nil {
		return fmt.Errorf("%w: is containerd running at %s?", err, *containerdSocket)
	}
	defer rt.Close()
	engine := "containerd"
	if v, err := rt.Client().Version(ctx); err == nil {
		engine = "containerd " + v.Version
	}
	if ociBinary != "" {
		engine += ", " + filepath.Base(ociBinary)
	}
	api, err := client.New("unix://" + *apiSocket)
	if err != nil {
		return err
	}
	cfg := agent.Config{API: api, Runtime: rt, DataDir: *dataDir, Hostname: *hostname, EngineVersion: engine, Logger: log,
		ClusterDNS: *clusterDNS && !*noNetwork, ClusterDomain: *clusterDomain, SecretsDir: *secretsDir,
		AllowBind: allowBind}
	if !*noNetwork {
		hn := &agent.HostNetwork{Bridge: *bridge, NetNSPath: *hostNetNS, NetnsDir: *netnsDir, StateDir: *dataDir}
		defer hn.Close()
		cfg.Network = hn
		if *mesh {
			m, err := wg.NewMesh(wg.MeshConfig{Iface: *meshIface, KeyFile: filepath.Join(*dataDir, "mesh.key"), Port: *meshPort, NetNSPath: *hostNetNS})
			if err != nil {
				return err
			}
			defer m.Close()
			cfg.Mesh, cfg.MeshStatusFile = m, *meshStatus
		}
	}
	// A node that needs an image it does not hold fetches it from a node
	// that does, with no registry.
	fetcher := imagexfer.NewFetcher(rt, imagexfer.FetcherOptions{Logger: log})
	var a *agent.Agent
	cfg.FetchImage = agent.FleetFetch(api, func() string { return a.NodeID() }, fetcher, *fetchLimit)
	cfg.MaxBlobTransfers = *maxBlobTransfers
	a, err = agent.New(cfg)
	if err != nil {
		return err
	}
	// The break-glass routes journal who called by the peer's credentials.
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, ConnContext: agent.PeerContext}
	go srv.Serve(l)
	defer srv.Close()

	var wg sync.WaitGroup
	runErr := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); runErr <- a.Run(ctx) }()
	select {
	case <-a.Ready():
		log.Info("ready", "socket", *agentSocket, "node", a.NodeID())
		serving(log, a.Status())
	case err := <-runErr:
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	case <-ctx.Done():
	}
	go systemd.Watchdog(ctx, log, a.Healthy, a.Status)
	<-ctx.Done()
	systemd.Stopping()
	log.Info("stopping; containers keep running")
	wg.Wait()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if !systemd.Has("agent") {
		os.Remove(*agentSocket) // a socket unit's file stays for the next start
	}
	return nil
}

// allowBindFlag collects repeated --allow-bind PATH flags: absolute
// paths without "..".
type allowBindFlag []string

func (a *allowBindFlag) String() string { return strings.Join(*a, ",") }

func (a *allowBindFlag) Set(s string) error {
	if !filepath.IsAbs(s) || slices.Contains(strings.Split(s, "/"), "..") {
		return fmt.Errorf("%q: want an absolute host path without '..', such as /srv/data", s)
	}
	*a = append(*a, filepath.Clean(s))
	return nil
}

// registriesFlag collects repeated --plain-http-registry HOST:PORT flags.
type registriesFlag []string

func (r *registriesFlag) String() string { return strings.Join(*r, ",") }

func (r *registriesFlag) Set(s string) error {
	if _, port, err := net.SplitHostPort(s); err != nil || port == "" || strings.ContainsAny(s, "/ ") {
		return fmt.Errorf("%q: want a registry as HOST:PORT, such as 192.168.1.5:5000", s)
	}
	*r = append(*r, s)
	return nil
}
