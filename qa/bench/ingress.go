package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/qa/testimage"
)

// benchIngress measures warren-ingress (issue 14) on a real node: requests
// a second and latency through it to one busybox httpd task, side by side
// with nginx proxying to the same task in the same run (wrk drives both,
// in the node's namespace, with the same connections); TLS handshakes a
// second; its resident memory idle and under load.
func benchIngress(r *report) error {
	for _, tool := range []string{"wrk", "nginx"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing (make deps installs it)", tool)
		}
	}
	ingressSock := filepath.Join(os.TempDir(), fmt.Sprintf("warren-bench-ingress-%d.sock", os.Getpid()))
	n, err := startBenchNode("--ingress-socket", ingressSock)
	if err != nil {
		return err
	}
	defer n.close()
	ctx := context.Background()
	c := n.c
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	node, err := c.Node(ctx, info.NodeID)
	if err != nil {
		return err
	}
	spec := node.Spec
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	spec.Labels[api.LabelIngress] = "true"
	// The agent updates the node too: no version check.
	if _, err := c.UpdateNodeSpec(ctx, info.NodeID, spec, 0); err != nil {
		return err
	}

	// The certificate of the HTTPS route: a secret, so that no CA is
	// involved in the handshake figure.
	pemBytes, err := selfSigned("bench.example")
	if err != nil {
		return err
	}
	if _, err := c.CreateFile(ctx, api.KindSecret, api.SecretRequest{Name: "bench-tls", Data: pemBytes}); err != nil {
		return err
	}
	// Two backends: busybox httpd (forks a process per connection, so it
	// is the bottleneck) and hello, a small static Go server, which lets
	// the proxies be what is measured.
	hello, err := helloImage(n.dir)
	if err != nil {
		return err
	}
	if _, err := c.LoadImage(ctx, bytes.NewReader(hello)); err != nil {
		return err
	}
	redirect := false
	none := &api.IngressTLS{Source: api.TLSNone}
	for _, spec := range []api.ServiceSpec{
		{Name: "web", Image: "localhost/busybox", Replicas: 1,
			Args: []string{"sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www"},
			Ingress: []api.IngressRoute{
				{Host: "bench.example", Port: 8080, HTTPSRedirect: &redirect, TLS: &api.IngressTLS{Source: api.TLSSecret, Secret: "bench-tls"}},
			}},
		{Name: "fast", Image: "localhost/hello", Replicas: 1, Command: []string{"/bin/hello", ":8080"},
			Ingress: []api.IngressRoute{{Host: "fast.example", Port: 8080, TLS: none}}},
	} {
		if _, err := c.CreateService(ctx, spec); err != nil {
			return err
		}
	}
	backends := map[string]string{}
	for _, svc := range []string{"web", "fast"} {
		if err := waitRunning(ctx, c, svc, 1, time.Minute); err != nil {
			return err
		}
		ts, err := c.Tasks(ctx, client.TaskQuery{Service: svc})
		if err != nil || len(ts) != 1 {
			return fmt.Errorf("the %s task: %v (%d tasks)", svc, err, len(ts))
		}
		backends[svc] = net.JoinHostPort(ts[0].RunningAddr().String(), "8080")
	}

	// warren-ingress in the node's namespace, where the tasks' addresses are.
	ing := exec.Command("ip", "netns", "exec", n.ns, binPath("warren"), "ingress",
		"--api-socket", ingressSock,
		"--http-listen", "127.0.0.1:8081", "--https-listen", "127.0.0.1:8443",
		"--access-log-sample", "0", "--log-level", "warn")
	ing.Stderr = daemonLog("ingress")
	if err := ing.Start(); err != nil {
		return err
	}
	defer func() { ing.Process.Signal(os.Interrupt); ing.Wait() }()
	for _, host := range []string{"bench.example", "fast.example"} {
		if err := waitHTTP(n.ns, "http://127.0.0.1:8081/", host, 30*time.Second); err != nil {
			return fmt.Errorf("warren-ingress: %w", err)
		}
	}
	pid := ing.Process.Pid // ip netns exec execs it: the same process
	time.Sleep(time.Second)
	r.add("warren-ingress resident memory, idle (2 routes)", fmt.Sprintf("%.1f MB (%.1f MB of it anonymous; the rest is the binary's pages, shared with the node's other daemons)",
		rssMB(pid), statusMB(pid, "RssAnon")), "< 24 MB", "")

	// nginx, proxying to the same tasks with keep-alive upstream
	// connections, as warren-ingress does: 8082 to web, 8084 to fast.
	ngDir := filepath.Join(n.dir, "nginx")
	os.MkdirAll(ngDir, 0o755)
	conf := fmt.Sprintf(`worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s; proxy_temp_path %[1]s; fastcgi_temp_path %[1]s; uwsgi_temp_path %[1]s; scgi_temp_path %[1]s;
  upstream web { server %[2]s; keepalive 64; }
  upstream fast { server %[3]s; keepalive 64; }
  server {
    listen 127.0.0.1:8082;
    location / { proxy_pass http://web; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; }
  }
  server {
    listen 127.0.0.1:8084;
    location / { proxy_pass http://fast; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; }
  }
}
`, ngDir, backends["web"], backends["fast"])
	if err := os.WriteFile(filepath.Join(ngDir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return err
	}
	ng := exec.Command("ip", "netns", "exec", n.ns, "nginx", "-c", filepath.Join(ngDir, "nginx.conf"), "-g", "daemon off;")
	ng.Stderr = daemonLog("nginx")
	if err := ng.Start(); err != nil {
		return err
	}
	defer func() { ng.Process.Signal(os.Interrupt); ng.Wait() }()
	for _, port := range []string{"8082", "8084"} {
		if err := waitHTTP(n.ns, "http://127.0.0.1:"+port+"/", "bench.example", 10*time.Second); err != nil {
			return fmt.Errorf("nginx: %w", err)
		}
	}

	var peak float64
	for _, b := range []struct{ what, svc, host, nginx string }{
		{"busybox httpd", "web", "bench.example", "8082"},
		{"a static Go server", "fast", "fast.example", "8084"},
	} {
		direct, err := runWrk(n.ns, "http://"+backends[b.svc]+"/", b.host)
		if err != nil {
			return fmt.Errorf("wrk to the %s task: %w", b.svc, err)
		}
		r.add(b.what+" task alone, wrk 2 threads × 32 connections, 10 s", direct.String(), "", "")
		// Twice each, interleaved, so that neither gets the quieter moment.
		var wi, wn []wrkResult
		for range 2 {
			stop := sampleRSS(pid, &peak)
			w, err := runWrk(n.ns, "http://127.0.0.1:8081/", b.host)
			stop()
			if err != nil {
				return fmt.Errorf("wrk through warren-ingress: %w", err)
			}
			wi = append(wi, w)
			if w, err = runWrk(n.ns, "http://127.0.0.1:"+b.nginx+"/", b.host); err != nil {
				return fmt.Errorf("wrk through nginx: %w", err)
			}
			wn = append(wn, w)
		}
		bi, bn := best(wi), best(wn)
		r.add("  warren-ingress → that task, same wrk", bi.String(), "≥ nginx", "")
		r.add("  nginx (Debian) → that task, same wrk, same run", bn.String(), "", "")
		r.add("  warren-ingress / nginx, requests per second", fmt.Sprintf("%.2f", bi.rate/bn.rate), "≥ 1.00", "")
	}
	r.add("warren-ingress resident memory, under those loads (peak)", fmt.Sprintf("%.1f MB", peak), "", "")
	// Idle again: what the loads left mapped (the proxy's code and the
	// heap the runtime has not given back yet).
	time.Sleep(time.Second)
	r.add("warren-ingress resident memory, idle again after those loads", fmt.Sprintf("%.1f MB (%.1f MB anonymous)", rssMB(pid), statusMB(pid, "RssAnon")), "", "")

	// TLS handshakes: a new connection and a full handshake each (no
	// session resumption), 8 at a time, for 5 s.
	hs, err := handshakeRate(n.ns, "127.0.0.1:8443", "bench.example", 8, 5*time.Second)
	if err != nil {
		return fmt.Errorf("TLS handshakes: %w", err)
	}
	r.add("warren-ingress TLS handshakes (ECDSA P-256, TLS 1.3, concurrency 8)", fmt.Sprintf("%.0f /s", hs), "", "")

	// ACME: pebble (Debian's test CA) issuing over http-01, from a route
	// appearing to its certificate served (the acme package's benchmark:
	// certmagic and the package's storage, over an in-memory store).
	if _, err := exec.LookPath("pebble"); err != nil {
		r.add("time to first certificate from pebble", "not measured: pebble is missing (make deps)", "", "")
		return nil
	}
	out, err := exec.Command("go", "test", "-run", "^$", "-bench", "BenchmarkFirstCertificate", "-benchtime", "5x", "./daemons/ingress/acme/").CombinedOutput()
	m := regexp.MustCompile(`BenchmarkFirstCertificate\S*\s+\d+\s+(\d+) ns/op`).FindSubmatch(out)
	if err != nil || m == nil {
		return fmt.Errorf("BenchmarkFirstCertificate: %v: %s", err, out)
	}
	ns, _ := strconv.ParseInt(string(m[1]), 10, 64)
	r.add("time to first certificate from pebble (http-01, mean of 5)", time.Duration(ns).Round(time.Millisecond).String(), "", "")
	return nil
}

// waitHTTP waits until url answers hello, from inside namespace ns, with
// Host host.
func waitHTTP(ns, url, host string, d time.Duration) error {
	deadline := time.Now().Add(d)
	var out []byte
	var err error
	for time.Now().Before(deadline) {
		out, err = exec.Command("ip", "netns", "exec", ns, "curl", "-sS", "-m", "2", "-H", "Host: "+host, url).CombinedOutput()
		if err == nil && strings.Contains(string(out), "hello") {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer hello in %s: %v: %s", url, d, err, out)
}

type wrkResult struct {
	rate     float64
	p50, p99 time.Duration
	errors   string // wrk's socket errors and non-2xx answers, if any
}

func (w wrkResult) String() string {
	s := fmt.Sprintf("%.0f req/s, p50 %s, p99 %s", w.rate, w.p50, w.p99)
	if w.errors != "" {
		s += " (" + w.errors + ")"
	}
	return s
}

func best(ws []wrkResult) wrkResult {
	b := ws[0]
	for _, w := range ws[1:] {
		if w.rate > b.rate {
			b = w
		}
	}
	return b
}

var (
	wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPct  = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
)

// runWrk runs wrk in namespace ns against url with Host host.
func runWrk(ns, url, host string) (wrkResult, error) {
	out, err := exec.Command("ip", "netns", "exec", ns, "wrk", "-t2", "-c32", "-d10s", "--latency",
		"-H", "Host: "+host, url).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("%v: %s", err, out)
	}
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		return wrkResult{}, fmt.Errorf("no rate in wrk's output: %s", out)
	}
	var w wrkResult
	w.rate, _ = strconv.ParseFloat(string(m[1]), 64)
	for _, p := range wrkPct.FindAllSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(string(p[2]), 64)
		unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(p[3])]
		d := time.Duration(v * float64(unit))
		if string(p[1]) == "50" {
			w.p50 = d.Round(time.Microsecond)
		} else {
			w.p99 = d.Round(time.Microsecond)
		}
	}
	var errs []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "Non-2xx") || strings.HasPrefix(l, "Socket errors") {
			errs = append(errs, l)
		}
	}
	w.errors = strings.Join(errs, "; ")
	return w, nil
}

// sampleRSS records the peak resident memory of pid until stop is called.
func sampleRSS(pid int, peak *float64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			*peak = max(*peak, rssMB(pid))
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// handshakeRate counts full TLS handshakes with addr in namespace ns for
// d, conc at once.
func handshakeRate(ns, addr, name string, conc int, d time.Duration) (float64, error) {
	h, err := netns.GetFromName(ns)
	if err != nil {
		return 0, err
	}
	defer h.Close()
	var n atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Dials from this goroutine's thread, moved into ns: locked and
			// never unlocked, so the runtime discards the thread after.
			runtime.LockOSThread()
			if err := netns.Set(h); err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			cfg := &tls.Config{ServerName: name, InsecureSkipVerify: true} // a self-signed bench certificate
			for time.Now().Before(deadline) {
				conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				conn.Close()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok && n.Load() == 0 {
		return 0, err
	}
	return float64(n.Load()) / d.Seconds(), nil
}

// selfSigned is a PEM certificate for name followed by its key, the
// format of a route's TLS secret.
func selfSigned(name string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return append(out, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})...), nil
}

// helloImage builds qa/testimage/hello (static) into dir and returns the
// image localhost/hello: busybox with /bin/hello.
func helloImage(dir string) ([]byte, error) {
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-o", bin, "./qa/testimage/hello")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build hello: %v: %s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var img bytes.Buffer
	if err := testimage.Build(&img, testimage.Options{Name: "localhost/hello:latest", Extra: map[string][]byte{"bin/hello": b}}); err != nil {
		return nil, err
	}
	return img.Bytes(), nil
}
