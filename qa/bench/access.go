package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/pki"
)

// benchFirstWrite: how soon after `warren manager` starts does the first
// write succeed, timed from its API socket appearing. A client that
// connects during start-up waits (the manager serves once it has a
// leader) instead of being told "no leader".
func benchFirstWrite(r *report) error {
	const runs = 5
	var lat []time.Duration
	firstTry := 0
	for i := range runs {
		dir, err := os.MkdirTemp("", "warren-bench-first-")
		if err != nil {
			return err
		}
		sock := filepath.Join(dir, "api.sock")
		cmd := exec.Command(binPath("warren"), "manager", "--data-dir", filepath.Join(dir, "data"), "--api-socket", sock, "--log-level", "warn")
		cmd.Stderr = daemonLog("manager")
		if err := cmd.Start(); err != nil {
			os.RemoveAll(dir)
			return err
		}
		p := newProc(cmd, dir)
		var appeared time.Time
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Microsecond) {
			if _, err := os.Stat(sock); err == nil {
				appeared = time.Now()
				break
			}
		}
		if appeared.IsZero() {
			p.stop()
			return errors.New("the API socket never appeared")
		}
		c, _ := client.New("unix://" + sock)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		tries := 0
		for {
			tries++
			_, err = c.CreateService(ctx, api.ServiceSpec{Name: fmt.Sprintf("first-%d", i), Image: "localhost/busybox"})
			if err == nil || ctx.Err() != nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		took := time.Since(appeared)
		cancel()
		c.Close()
		p.stop()
		if err != nil {
			return fmt.Errorf("no write succeeded within 10 s of the socket appearing: %v", err)
		}
		if tries == 1 {
			firstTry++
		}
		lat = append(lat, took)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r.add("first successful write after warren manager starts, from the API socket appearing",
		fmt.Sprintf("median %s, max %s; %d of %d succeeded on the first try", ms(lat[len(lat)/2]), ms(lat[len(lat)-1]), firstTry, runs), "", "")
	return nil
}

// benchNodePort: a GET through a manager's node port with an operator's
// certificate (mutual TLS, the caller's record looked up on every
// request), beside the same GET on the unix socket.
func benchNodePort(r *report) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	l.Close()
	p, c, err := startManager("--listen-addr", addr, "--advertise-addr", addr)
	if err != nil {
		return err
	}
	defer p.stop()
	ctx := context.Background()
	tlsDir := filepath.Join(p.dir, "operator")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return err
	}
	key, keyPEM, err := pki.NewKey()
	if err != nil {
		return err
	}
	csr, err := pki.NewCSR(key, "bench")
	if err != nil {
		return err
	}
	op, err := c.AddOperator(ctx, api.OperatorRequest{Name: "bench", Role: "viewer", CSR: csr})
	if err != nil {
		return err
	}
	for name, b := range map[string][]byte{client.OperatorKeyFile: keyPEM, client.OperatorCertFile: []byte(op.CertPEM), client.OperatorCAFile: []byte(op.BundlePEM)} {
		if err := os.WriteFile(filepath.Join(tlsDir, name), b, 0o600); err != nil {
			return err
		}
	}
	remote, err := client.NewTLS("https://"+addr, tlsDir)
	if err != nil {
		return err
	}
	defer remote.Close()
	s, err := c.CreateService(ctx, api.ServiceSpec{Name: "np", Image: "localhost/busybox"})
	if err != nil {
		return err
	}
	measure := func(cl *client.Client) (p50, p99 time.Duration, err error) {
		var lat []time.Duration
		for i := 0; i < 3000; i++ {
			t0 := time.Now()
			if _, err := cl.Service(ctx, s.ID, client.ReadOptions{}); err != nil {
				return 0, 0, err
			}
			if i >= 200 { // after the connections are made
				lat = append(lat, time.Since(t0))
			}
		}
		p50, p99 = percentiles(lat)
		return p50, p99, nil
	}
	lp50, lp99, err := measure(c)
	if err != nil {
		return err
	}
	np50, np99, err := measure(remote)
	if err != nil {
		return fmt.Errorf("through the node port: %w", err)
	}
	r.add("GET /v1/services/{id} on the node port, operator certificate (viewer), mTLS 1.3, one at a time",
		"p50 "+ms(np50)+", p99 "+ms(np99)+" (unix socket, same run: p50 "+ms(lp50)+", p99 "+ms(lp99)+")", "", "")
	return nil
}
