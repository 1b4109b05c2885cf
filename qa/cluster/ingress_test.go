package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
)

// ingressClient sends requests from h (a host on the LAN) to whatever
// address the URL names, with Host set by the caller; no keep-alive, so
// that each request is a new connection through the proxy's listener.
// Over HTTPS it asks for sni (the URL names an address).
func ingressClient(h *Host, timeout time.Duration, sni ...string) *http.Client {
	cfg := &tls.Config{InsecureSkipVerify: true} // checked by hand where it matters
	if len(sni) > 0 {
		cfg.ServerName = sni[0]
	}
	return &http.Client{Timeout: timeout,
		Transport:     &http.Transport{DialContext: h.DialContext, DisableKeepAlives: true, TLSClientConfig: cfg},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// hostGet GETs url with Host host through hc: status and trimmed body.
func hostGet(ctx context.Context, hc *http.Client, url, host string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// labelIngress makes h an ingress node (api.LabelIngress).
func labelIngress(t *testing.T, ctx context.Context, m, h *Host) {
	t.Helper()
	setIngressLabel(t, ctx, m, h, "true")
}

// setIngressLabel sets h's api.LabelIngress to value ("": none).
func setIngressLabel(t *testing.T, ctx context.Context, m, h *Host, value string) {
	t.Helper()
	n, err := m.Client.Node(ctx, h.NodeID())
	if err != nil {
		t.Fatal(err)
	}
	spec := n.Spec
	spec.Labels = maps.Clone(spec.Labels)
	if spec.Labels == nil {
		spec.Labels = map[string]string{}
	}
	if value == "" {
		delete(spec.Labels, api.LabelIngress)
	} else {
		spec.Labels[api.LabelIngress] = value
	}
	// The node changes under us (its agent): no version check.
	if _, err := m.Client.UpdateNodeSpec(ctx, h.NodeID(), spec, 0); err != nil {
		t.Fatal(err)
	}
}

// slowCGI is a busybox httpd whose /cgi-bin/slow answers "done" after 4 s
// (a long request), and / answers its text.
func slowCGI(name, text string) api.ServiceSpec {
	return api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: 1,
		Args: []string{"sh", "-c", "mkdir -p /www/cgi-bin && echo " + text + " > /www/index.html && " +
			`printf '#!/bin/sh\necho Content-Type: text/plain\necho\nsleep 4\necho done\n' > /www/cgi-bin/slow && chmod +x /www/cgi-bin/slow && ` +
			`httpd -f -p 8080 -h /www & pid=$!; trap 'kill $pid; exit 0' TERM; wait`},
		Placement:       api.Placement{Constraints: []string{"node.role==worker"}},
		StopGracePeriod: api.Duration(2 * time.Second)}
}

// TestIngressAcrossNodes (issue 14): warren-ingress on two workers routes
// HTTP by host and path to a service's real containers on both nodes;
// an unknown host gets 404; a route's deny list refuses the LAN host; a
// route change during a long request does not break it; a route that
// conflicts with another service's is refused at write time and changes
// nothing.
func TestIngressAcrossNodes(t *testing.T) {
	c := startCluster(t, 1, 2)
	ctx := ctxFor(t, 6*time.Minute)
	m, w1, w2 := c.Host("m1"), c.Host("w1"), c.Host("w2")
	lan, err := c.AddHost("lan1")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []*Host{w1, w2} {
		labelIngress(t, ctx, m, h)
		if err := h.StartIngress(); err != nil {
			t.Fatal(err)
		}
	}
	shop := WebService("shop", 2, 0, "")
	shop.Ports = nil
	shop.Ingress = []api.IngressRoute{{Host: "shop.example", Port: 8080, TLS: &api.IngressTLS{Source: api.TLSNone}}}
	if _, err := m.Client.CreateService(ctx, shop); err != nil {
		t.Fatal(err)
	}
	slow := slowCGI("slow", "slow-root")
	slow.Ingress = []api.IngressRoute{{Host: "shop.example", Path: "/cgi-bin", Port: 8080, TLS: &api.IngressTLS{Source: api.TLSNone}}}
	if _, err := m.Client.CreateService(ctx, slow); err != nil {
		t.Fatal(err)
	}
	hc := ingressClient(lan, 10*time.Second)

	// Both tasks answer through each node's ingress: the proxy balances
	// over the tasks of every node.
	for _, h := range []*Host{w1, w2} {
		url := fmt.Sprintf("http://%s/", h.IP)
		seen := map[string]bool{}
		eventually(t, 2*time.Minute, "both shop tasks answering through "+h.Name, func() error {
			for range 20 {
				code, body, err := hostGet(ctx, hc, url, "shop.example")
				if err != nil {
					return err
				}
				if code != http.StatusOK {
					return fmt.Errorf("%d %q", code, body)
				}
				seen[body] = true
			}
			if len(seen) < 2 {
				return fmt.Errorf("answers so far: %v", seen)
			}
			return nil
		})
		t.Logf("%s: answers %v", h.Name, seen)
	}
	if code, body, err := hostGet(ctx, hc, fmt.Sprintf("http://%s/", w1.IP), "nobody.example"); err != nil || code != http.StatusNotFound {
		t.Errorf("an unknown host: %d %q %v; want 404", code, body, err)
	}

	// The label is followed through the worker's own watch: without it
	// w2 routes nothing (404), with it again it routes at once.
	setIngressLabel(t, ctx, m, w2, "")
	w2url := fmt.Sprintf("http://%s/", w2.IP)
	eventually(t, 30*time.Second, "w2 unlabelled answers 404", func() error {
		if code, body, err := hostGet(ctx, hc, w2url, "shop.example"); err != nil || code != http.StatusNotFound {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	labelIngress(t, ctx, m, w2)
	eventually(t, 30*time.Second, "w2 labelled again routes", func() error {
		if code, body, err := hostGet(ctx, hc, w2url, "shop.example"); err != nil || code != http.StatusOK {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})

	// A conflicting route is refused at write time, and nothing changes.
	other := slowCGI("other", "other")
	other.Ingress = []api.IngressRoute{{Host: "shop.example", Path: "/", Port: 8080}}
	if _, err := m.Client.CreateService(ctx, other); !api.IsCode(err, api.CodeConflict) || !strings.Contains(err.Error(), "shop") {
		t.Errorf("a service claiming shop.example/ again: %v; want a conflict naming shop", err)
	}

	// A long request keeps going while the routes change under it.
	url := fmt.Sprintf("http://%s/cgi-bin/slow", w1.IP)
	var wg sync.WaitGroup
	var code int
	var body string
	var lerr error
	wg.Add(1)
	started := time.Now()
	go func() {
		defer wg.Done()
		code, body, lerr = hostGet(ctx, hc, url, "shop.example")
	}()
	time.Sleep(time.Second)
	svc, err := m.Client.Service(ctx, "slow", client.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := svc.Spec
	spec.Ingress = append(spec.Ingress, api.IngressRoute{Host: "slow.example", Port: 8080, TLS: &api.IngressTLS{Source: api.TLSNone}})
	if _, err := m.Client.UpdateService(ctx, "slow", spec, svc.Version); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the new route answering", func() error {
		code, body, err := hostGet(ctx, hc, fmt.Sprintf("http://%s/", w1.IP), "slow.example")
		if err != nil || code != http.StatusOK || body != "slow-root" {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	wg.Wait()
	if lerr != nil || code != http.StatusOK || body != "done" {
		t.Errorf("the long request across a route change: %d %q %v after %s; want 200 done", code, body, lerr, time.Since(started))
	}
	if ts, _ := m.Client.Tasks(ctx, client.TaskQuery{Service: "slow"}); len(liveTasks(ts)) != 1 || liveTasks(ts)[0].Status.State != api.TaskRunning {
		t.Errorf("a route change touched the tasks: %s", describeTasks(ts))
	}

	// A deny list with the LAN host refuses it (403); elsewhere it is let in.
	svc, _ = m.Client.Service(ctx, "shop", client.ReadOptions{})
	spec = svc.Spec
	spec.Ingress[0].Deny = []string{lan.IP.String() + "/32"}
	if _, err := m.Client.UpdateService(ctx, "shop", spec, svc.Version); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the LAN host refused", func() error {
		code, body, err := hostGet(ctx, hc, fmt.Sprintf("http://%s/", w2.IP), "shop.example")
		if err != nil || code != http.StatusForbidden {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})

	// The routes and their backends, as an operator lists them.
	routes, err := m.Client.IngressRoutes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range routes {
		lines = append(lines, fmt.Sprintf("%s %s%s → %d backends, cert %s", r.Service, r.Route.Host, r.Route.Path, len(r.Backends), r.Cert.State))
	}
	t.Logf("routes:\n%s", strings.Join(lines, "\n"))
	if len(routes) != 3 {
		t.Errorf("%d routes listed, want 3", len(routes))
	}
	for _, h := range []*Host{w1, w2} {
		if n := h.Ingress.CountLog(`"host":"shop.example"`); n == 0 {
			t.Errorf("%s's access log has no line for shop.example", h.Name)
		}
	}

	// A stop drains: a long request open when w1's ingress is told to
	// stop finishes, and the daemon exits after it, cleanly.
	wg.Add(1)
	started = time.Now()
	go func() {
		defer wg.Done()
		code, body, lerr = hostGet(ctx, hc, url, "shop.example")
	}()
	time.Sleep(time.Second)
	if err := w1.Ingress.Signal(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Error(err)
	}
	wg.Wait()
	if lerr != nil || code != http.StatusOK || body != "done" {
		t.Errorf("a long request open at the stop: %d %q %v after %s; want 200 done", code, body, lerr, time.Since(started))
	}
	if w1.Ingress.CountLog("stopping: draining open requests") != 1 {
		t.Error("w1's ingress did not log its drain")
	}
}

// pebbleTLS writes a CA and a certificate for ip, which pebble serves its
// directory with; roots is the CA's PEM file, for warren-ingress.
func pebbleTLS(t *testing.T, dir string, ip netip.Addr) (roots, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "qa pebble CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip.String()},
		IPAddresses: []net.IP{ip.AsSlice()}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(leafKey)
	roots, cert, key = filepath.Join(dir, "roots.pem"), filepath.Join(dir, "pebble.pem"), filepath.Join(dir, "pebble.key")
	for f, b := range map[string][]byte{
		roots: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		cert:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		key:   pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	} {
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return roots, cert, key
}

// startPebble runs pebble and its test DNS server (pebble-challtestsrv) on
// host ca: every A query is answered with answerIP, so that the CA
// validates challenges against that node's ingress, whichever node asked.
// Its certificates last validity (0: pebble's default, 5 years). It
// returns the directory URL, the roots file and pebble's process.
func startPebble(t *testing.T, ca *Host, answerIP netip.Addr, validity time.Duration) (dirURL, roots string, p *Proc) {
	t.Helper()
	dir := filepath.Join(ca.Dir, "pebble")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	roots, cert, key := pebbleTLS(t, dir, ca.IP)
	cfg := fmt.Sprintf(`{"pebble": {"listenAddress": "0.0.0.0:14000", "managementListenAddress": "0.0.0.0:15000",
  "certificate": %q, "privateKey": %q, "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "",
  "externalAccountBindingRequired": false, "certificateValidityPeriod": %d}}`, cert, key, uint64(validity/time.Second))
	cfgPath := filepath.Join(dir, "pebble.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	dns, err := startProc("challtestsrv", filepath.Join(dir, "challtestsrv.log"), []string{"ip", "netns", "exec", ca.NS,
		"pebble-challtestsrv", "-defaultIPv4", answerIP.String(), "-defaultIPv6", "", "-dns01", "127.0.0.1:8053",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-management", "127.0.0.1:8055"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Stop(2 * time.Second) })
	p, err = startProc("pebble", filepath.Join(dir, "pebble.log"), []string{"ip", "netns", "exec", ca.NS,
		"env", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0",
		"pebble", "-config", cfgPath, "-dnsserver", "127.0.0.1:8053"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- pebble log:\n%s", p.LogTail(40))
		}
		p.Stop(2 * time.Second)
	})
	return fmt.Sprintf("https://%s:14000/dir", ca.IP), roots, p
}

// acmeCluster is a cluster of one manager and two ingress workers that
// get certificates from a pebble on host "ca", whose validations reach
// w1, with a host "lan1" to ask from.
type acmeCluster struct {
	ctx       context.Context
	m, w1, w2 *Host
	lan       *Host
	pebble    *Proc
}

// startACME starts an acmeCluster whose pebble issues certificates of
// the given lifetime (0: its default), the ingress daemons started with
// extra flags; the test's context ends after d.
func startACME(t *testing.T, d, validity time.Duration, extra ...string) *acmeCluster {
	t.Helper()
	if _, err := exec.LookPath("pebble"); err != nil {
		t.Skip("pebble is not installed (make deps installs it)")
	}
	c := startCluster(t, 1, 2)
	ac := &acmeCluster{ctx: ctxFor(t, d), m: c.Host("m1"), w1: c.Host("w1"), w2: c.Host("w2")}
	var err error
	if ac.lan, err = c.AddHost("lan1"); err != nil {
		t.Fatal(err)
	}
	ca, err := c.AddHost("ca")
	if err != nil {
		t.Fatal(err)
	}
	dirURL, roots, pebble := startPebble(t, ca, ac.w1.IP, validity)
	ac.pebble = pebble
	for _, h := range []*Host{ac.w1, ac.w2} {
		labelIngress(t, ac.ctx, ac.m, h)
		if err := h.StartIngress(append([]string{"--acme-ca", dirURL, "--acme-ca-roots", roots}, extra...)...); err != nil {
			t.Fatal(err)
		}
	}
	return ac
}

// presented returns the certificate each ingress worker presents for
// host, by the worker's name.
func (ac *acmeCluster) presented(host string) (map[string]*x509.Certificate, error) {
	out := map[string]*x509.Certificate{}
	for _, h := range []*Host{ac.w1, ac.w2} {
		conn, err := ac.lan.DialContext(ac.ctx, "tcp", netip.AddrPortFrom(h.IP, 443).String())
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: true})
		if err := tc.HandshakeContext(ac.ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		out[h.Name] = tc.ConnectionState().PeerCertificates[0]
		tc.Close()
	}
	return out, nil
}

// TestIngressACME (issue 14): two ingress nodes serve one certificate
// for a route's host, which pebble issued over HTTP-01 from one order:
// only one node asked the CA, and the CA's validation went to w1's
// ingress whichever node started the order. HTTPS answers over HTTP/1.1
// and HTTP/2; plain HTTP is then redirected to HTTPS.
func TestIngressACME(t *testing.T) {
	ac := startACME(t, 6*time.Minute, 0, "--acme-email", "ops@shop.example")
	ctx, m, w1, w2, lan, pebble := ac.ctx, ac.m, ac.w1, ac.w2, ac.lan, ac.pebble
	shop := WebService("shop", 2, 0, "")
	shop.Ports = nil
	shop.Ingress = []api.IngressRoute{{Host: "shop.example", Port: 8080}}
	start := time.Now()
	if _, err := m.Client.CreateService(ctx, shop); err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*time.Minute, "the certificate of shop.example valid", func() error {
		routes, err := m.Client.IngressRoutes(ctx)
		if err != nil {
			return err
		}
		if len(routes) != 1 {
			return fmt.Errorf("%d routes listed, want 1", len(routes))
		}
		if r := routes[0]; r.Route.Host != "shop.example" || r.Cert.State != "valid" {
			return fmt.Errorf("route %s, cert %+v", r.Route.Host, r.Cert)
		}
		return nil
	})
	t.Logf("certificate valid %.1f s after the service was created", time.Since(start).Seconds())

	// Both nodes present the same certificate, issued by pebble.
	serials := map[string]string{}
	eventually(t, time.Minute, "both nodes presenting the certificate", func() error {
		leaves, err := ac.presented("shop.example")
		if err != nil {
			return err
		}
		for name, leaf := range leaves {
			if !strings.Contains(leaf.Issuer.String(), "Pebble") || !slices.Contains(leaf.DNSNames, "shop.example") {
				return fmt.Errorf("%s presents %v issued by %s", name, leaf.DNSNames, leaf.Issuer)
			}
			serials[name] = leaf.SerialNumber.String()
		}
		return nil
	})
	if serials["w1"] != serials["w2"] {
		t.Errorf("w1 and w2 present different certificates: %v", serials)
	}
	if n := pebble.CountLog("/order-plz"); n != 1 {
		t.Errorf("pebble got %d new orders; want 1 (one node asks, the other reuses its certificate)", n)
	}

	// Through HTTPS the route answers, once its tasks serve (the
	// certificate may come first); plain HTTP is redirected.
	hc := ingressClient(lan, 10*time.Second, "shop.example")
	eventually(t, time.Minute, "HTTPS through w1 and w2 answering 200", func() error {
		for _, h := range []*Host{w1, w2} {
			if code, body, err := hostGet(ctx, hc, fmt.Sprintf("https://%s/", h.IP), "shop.example"); err != nil || code != http.StatusOK {
				return fmt.Errorf("%s: %d %q %v", h.Name, code, body, err)
			}
		}
		return nil
	})
	// HTTP/2 over TLS (ALPN h2), verified against the CA's chain this time.
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: lan.DialContext,
		ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{ServerName: "shop.example", InsecureSkipVerify: true}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://%s/", w1.IP), nil)
	req.Host = "shop.example"
	if resp, err := h2.Do(req); err != nil {
		t.Errorf("HTTP/2 through w1: %v", err)
	} else {
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
			t.Errorf("HTTP/2 through w1: %s %s; want HTTP/2.0 200", resp.Proto, resp.Status)
		}
	}
	if code, _, err := hostGet(ctx, hc, fmt.Sprintf("http://%s/", w2.IP), "shop.example"); err != nil || code != http.StatusPermanentRedirect {
		t.Errorf("plain HTTP through w2: %d %v; want 308 to HTTPS", code, err)
	}
}

// TestIngressACMERenewal (issue 14): with 20-second certificates, two
// ingress nodes on the real Raft store renew a route's certificate before
// it expires and both present the new one, from one order to the CA. When
// no route names a host any more, its certificate is cleaned out of the
// cluster's store once expired for the grace.
func TestIngressACMERenewal(t *testing.T) {
	ac := startACME(t, 4*time.Minute, 20*time.Second, "--acme-renew-check", "1s", "--acme-clean-every", "2s", "--acme-expired-grace", "1s")
	ctx, m, w2, pebble := ac.ctx, ac.m, ac.w2, ac.pebble
	leaves := ac.presented
	shop := WebService("shop", 1, 0, "")
	shop.Ports = nil
	shop.Ingress = []api.IngressRoute{{Host: "shop.example", Port: 8080}}
	sv, err := m.Client.CreateService(ctx, shop)
	if err != nil {
		t.Fatal(err)
	}
	var first *x509.Certificate
	eventually(t, 2*time.Minute, "both nodes presenting pebble's certificate of shop.example", func() error {
		ls, err := leaves("shop.example")
		if err != nil {
			return err
		}
		if !strings.Contains(ls["w1"].Issuer.String(), "Pebble") || ls["w1"].SerialNumber.Cmp(ls["w2"].SerialNumber) != 0 {
			return fmt.Errorf("w1 presents %s from %s, w2 %s", ls["w1"].SerialNumber, ls["w1"].Issuer, ls["w2"].SerialNumber)
		}
		first = ls["w1"]
		return nil
	})
	if life := first.NotAfter.Sub(first.NotBefore); life > time.Minute {
		t.Fatalf("pebble issued a certificate for %s; want 20s", life)
	}
	eventually(t, time.Minute, "both nodes presenting a renewed certificate", func() error {
		ls, err := leaves("shop.example")
		if err != nil {
			return err
		}
		for name, l := range ls {
			if l.SerialNumber.Cmp(first.SerialNumber) == 0 {
				return fmt.Errorf("%s still presents the first certificate", name)
			}
		}
		if ls["w1"].SerialNumber.Cmp(ls["w2"].SerialNumber) != 0 {
			return fmt.Errorf("w1 presents %s, w2 %s", ls["w1"].SerialNumber, ls["w2"].SerialNumber)
		}
		return nil
	})
	if now := time.Now(); !now.Before(first.NotAfter) {
		t.Errorf("both nodes presented the renewed certificate at %s, after the first expired (%s)", now, first.NotAfter)
	}
	if n := pebble.CountLog("/order-plz"); n != 2 {
		t.Errorf("pebble got %d new orders; want 2 (the issuance, then one renewal for both nodes)", n)
	}

	// The route moves to another host: the old host's certificate is no
	// longer renewed, and once expired for the grace it leaves the store.
	store, err := client.New("unix://" + w2.IngressSocket)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	certKeys := func(host string) ([]string, error) {
		objs, err := store.IngressList(ctx, w2.NodeID(), "certificates", true)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, o := range objs {
			if strings.Contains(o.Key, "/"+host+"/") {
				out = append(out, o.Key)
			}
		}
		return out, nil
	}
	if keys, err := certKeys("shop.example"); err != nil || len(keys) != 3 {
		t.Fatalf("the store holds %v for shop.example (%v); want its .crt, .key and .json", keys, err)
	}
	ls, err := leaves("shop.example")
	if err != nil {
		t.Fatal(err)
	}
	last := ls["w1"]
	validations := func() int { return pebble.CountLog(`Value:"shop.example"`) }
	before := validations()
	shop.Ingress = []api.IngressRoute{{Host: "new.example", Port: 8080}}
	if _, err := m.Client.UpdateService(ctx, "shop", shop, sv.Version); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "the certificate of shop.example cleaned out of the store", func() error {
		keys, err := certKeys("shop.example")
		if err != nil || len(keys) > 0 {
			return fmt.Errorf("%v (%v)", keys, err)
		}
		return nil
	})
	if now := time.Now(); now.Before(last.NotAfter.Add(time.Second)) {
		t.Errorf("cleaned at %s, before the last certificate had been expired for the grace (it ends %s)", now, last.NotAfter)
	}
	// One renewal may have been on its way when the route moved; none
	// after it.
	if n := validations() - before; n > 1 {
		t.Errorf("pebble validated shop.example %d times after no route named it; want at most 1", n)
	}
	if keys, err := certKeys("new.example"); err != nil || len(keys) != 3 {
		t.Errorf("the store holds %v for new.example, routed (%v); want its .crt, .key and .json", keys, err)
	}
}
