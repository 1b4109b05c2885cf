package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/netcfg/ipam"
	"github.com/warren-edge/warren/qa/cluster"
	"github.com/warren-edge/warren/qa/testimage"
)

// benchFleet measures issue 10's cluster figures on real processes (qa/
// cluster: a manager and worker hosts, each in a network namespace on a
// shared LAN bridge, with their own containerd, agent and warren mesh on
// the userspace WireGuard device):
//
//   - a published port reached from the LAN through a node that runs no
//     task of the service (forwarded over the mesh), next to the node that
//     runs it: requests per second and p99, a new connection per request;
//   - node join → mesh reachable: from the join's start until an existing
//     node reaches the new node's bridge address through the mesh (a TCP
//     connection refused by it).
func benchFleet(r *report) error {
	if err := cluster.Available(true); err != nil {
		return err
	}
	bin, err := filepath.Abs(binPath("warren"))
	if err != nil {
		return err
	}
	// The registry the peer-to-peer image figure is set against listens on
	// loopback of the machine: qa/cluster's agents pull from there (they
	// run in the machine's own namespace; only their containers' network
	// is the hosts').
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	registry := netip.MustParseAddrPort(l.Addr().String())
	l.Close()
	c, err := cluster.New(cluster.Config{Bin: bin, AgentArgs: []string{"--plain-http-registry", registry.String()}})
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := c.Start(ctx, 1, 2); err != nil {
		return err
	}
	m, w1, w2 := c.Host("m1"), c.Host("w1"), c.Host("w2")
	lan, err := c.AddHost("lan1")
	if err != nil {
		return err
	}
	spec := api.ServiceSpec{Name: "web", Image: "localhost/busybox", Replicas: 1,
		Args:      []string{"sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www"},
		Placement: api.Placement{Constraints: []string{"node.hostname==w2"}},
		Ports:     []api.PortConfig{{Target: 8080, Published: 8080}}}
	if _, err := m.Client.CreateService(ctx, spec); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: lan.DialContext, DisableKeepAlives: true}}
	get := func(h *cluster.Host) error {
		resp, err := hc.Get(fmt.Sprintf("http://%s:8080/", h.IP))
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	}
	deadline := time.Now().Add(time.Minute)
	for get(w1) != nil || get(w2) != nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("the published port does not answer on both workers after a minute")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, x := range []struct {
		h    *cluster.Host
		what string
	}{{w2, "published port, through the node running the task (w2)"}, {w1, "published port, through a node with no task (w1, over the mesh)"}} {
		rate, p50, p99, errs := httpLoad(get, x.h, 8, 5*time.Second)
		r.add(x.what, fmt.Sprintf("%.0f req/s, p50 %s, p99 %s, %d errors (conc 8, new connection each)", rate, ms(p50), ms(p99), errs), "", "")
	}

	// A third worker joins; w1 pings its bridge address through the mesh.
	w3, err := c.AddHost("w3")
	if err != nil {
		return err
	}
	if err := w3.StartContainerd(); err != nil {
		return err
	}
	start := time.Now()
	joined := make(chan error, 1)
	go func() { joined <- c.JoinWorker(ctx, w3) }()
	var gw string
	for gw == "" && time.Since(start) < time.Minute {
		if id := w3.NodeID(); id != "" {
			if n, err := m.Client.Node(ctx, id); err == nil && n.Subnet != "" {
				if p, err := netip.ParsePrefix(n.Subnet); err == nil {
					gw = ipam.GatewayOf(p).String()
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if gw == "" {
		return fmt.Errorf("w3 got no subnet within a minute")
	}
	// A refused connection is an answer from w3's kernel: it came back
	// through the mesh. Until then the dial times out.
	for time.Since(start) < time.Minute {
		dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		conn, err := w1.DialContext(dctx, "tcp", net.JoinHostPort(gw, "9"))
		dcancel()
		if err == nil {
			conn.Close()
			break
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			break
		}
	}
	reach := time.Since(start)
	if err := <-joined; err != nil {
		return err
	}
	r.add("node join → mesh reachable (w1 reaches the new node's bridge address)", ms(reach), "", "userspace WireGuard")
	if err := benchSecretDelivery(ctx, r, m, w1); err != nil {
		return err
	}
	if err := benchImageSpread(ctx, r, c, m, []*cluster.Host{w1, w2, w3}); err != nil {
		return err
	}
	return benchRegistryPull(ctx, r, registry, m, []*cluster.Host{w1, w2, w3})
}

// benchRegistryPull is the same spread from Debian's docker-registry on
// the machine's loopback (plain HTTP): every node pulls the 100 MB image.
func benchRegistryPull(ctx context.Context, r *report, registry netip.AddrPort, m *cluster.Host, hosts []*cluster.Host) error {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		r.add("the same image pulled by all 3 from a local docker-registry", "not measured: docker-registry is not installed (make deps installs it)", "", "")
		return nil
	}
	dir, err := os.MkdirTemp("", "warren-bench-registry-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "config.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), registry)), 0o644)
	reg := exec.Command(bin, "serve", cfg)
	if err := reg.Start(); err != nil {
		return err
	}
	defer func() { reg.Process.Kill(); reg.Wait() }()
	hc := &http.Client{Timeout: time.Minute}
	base := "http://" + registry.String()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := hc.Get(base + "/v2/"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("docker-registry does not answer at %s", registry)
		}
	}
	img, err := testimage.Make(testimage.Options{Name: "localhost/big:2", Padding: 100 << 20})
	if err != nil {
		return err
	}
	if err := img.Push(ctx, hc, base, "big", "2"); err != nil {
		return err
	}
	ref := registry.String() + "/big:2"
	start := time.Now()
	for _, h := range hosts {
		spec := api.ServiceSpec{Name: "reg-" + h.Name, Image: ref, Replicas: 1, Args: []string{"sleep", "100000"},
			Placement: api.Placement{Constraints: []string{"node.hostname==" + h.Name}}}
		if _, err := m.Client.CreateService(ctx, spec); err != nil {
			return err
		}
	}
	var last time.Duration
	for done := map[string]bool{}; len(done) < len(hosts); time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 3*time.Minute {
			return fmt.Errorf("the registry image runs on %d of %d nodes after 3 minutes", len(done), len(hosts))
		}
		for _, h := range hosts {
			ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: "reg-" + h.Name})
			if !done[h.Name] && err == nil && len(ts) > 0 && ts[0].Status.State == api.TaskRunning {
				done[h.Name], last = true, time.Since(start)
			}
		}
	}
	r.add(fmt.Sprintf("the same-size image pulled by all %d from a local docker-registry", len(hosts)),
		fmt.Sprintf("%.1f s", last.Seconds()), "", "Debian docker-registry 2.8 on loopback, plain HTTP")
	return nil
}

// benchImageSpread loads a 100 MB image on the first host only and times a
// global-like service of it (one task pinned to each host) until all run:
// the others fetch it peer to peer, blob by blob, through the node ports.
func benchImageSpread(ctx context.Context, r *report, c *cluster.Cluster, m *cluster.Host, hosts []*cluster.Host) error {
	var img bytes.Buffer
	if err := testimage.Build(&img, testimage.Options{Name: "localhost/big:1", Padding: 100 << 20}); err != nil {
		return err
	}
	size := img.Len()
	if _, err := hosts[0].Client.LoadImage(ctx, &img); err != nil {
		return err
	}
	start := time.Now()
	for _, h := range hosts {
		spec := api.ServiceSpec{Name: "big-" + h.Name, Image: "localhost/big:1", Replicas: 1, Args: []string{"sleep", "100000"},
			Placement: api.Placement{Constraints: []string{"node.hostname==" + h.Name}}}
		if _, err := m.Client.CreateService(ctx, spec); err != nil {
			return err
		}
	}
	running := map[string]time.Duration{}
	for len(running) < len(hosts) {
		if time.Since(start) > 3*time.Minute {
			return fmt.Errorf("the 100 MB image runs on %d of %d nodes after 3 minutes", len(running), len(hosts))
		}
		for _, h := range hosts {
			if _, ok := running[h.Name]; ok {
				continue
			}
			ts, err := m.Client.Tasks(ctx, client.TaskQuery{Service: "big-" + h.Name})
			if err == nil && len(ts) > 0 && ts[0].Status.State == api.TaskRunning {
				running[h.Name] = time.Since(start)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	last := time.Duration(0)
	for _, d := range running {
		last = max(last, d)
	}
	r.add(fmt.Sprintf("a %d MB image loaded on one node → running on all %d (the others fetch it peer to peer)", size>>20, len(hosts)),
		fmt.Sprintf("%.1f s (%s first, the loading node)", last.Seconds(), ms(running[hosts[0].Name])), "", "no registry; node ports over the LAN, TLS")
	return nil
}

// httpLoad runs get against h from conc workers for d.
func httpLoad(get func(*cluster.Host) error, h *cluster.Host, conc int, d time.Duration) (rate float64, p50, p99 time.Duration, errs int) {
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				t0 := time.Now()
				err := get(h)
				mu.Lock()
				if err != nil {
					errs++
				} else {
					lat = append(lat, time.Since(t0))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	p50, p99 = percentiles(lat)
	return float64(len(lat)) / time.Since(start).Seconds(), p50, p99, errs
}
