// Package dnsbench measures warren-dns for make bench (DESIGN.md §8 and
// issue 6): queries per second and latency on loopback, the time from a
// task turning healthy (its status written through the API) to its
// address in the answers, and the daemon's resident memory. qa/bench calls
// Run and prints the figures; nothing is asserted.
//
// It runs a real manager in this process with a stand-in agent (a
// heartbeat and status writes, so tasks get addresses without containers)
// and bin/warren dns as a child process, queried over UDP by a Go load
// generator in this process (so on a 2-core machine the two share it).
package dnsbench

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	wdns "github.com/warren-edge/warren/daemons/dns"
	"github.com/warren-edge/warren/daemons/dns/internal/loopback"
	"github.com/warren-edge/warren/daemons/manager"
	"github.com/warren-edge/warren/qa/testport"
)

// Figure is one line of the bench table.
type Figure struct {
	Name      string
	Value     string
	Budget    string // e.g. "< 24 MB"; empty when there is none
	Reference string // what others measure, for comparison
}

// Config tunes Run; zero values take the defaults.
type Config struct {
	// Binary is bin/warren, run as `warren dns` (default $WARREN_BIN/warren,
	// else bin/warren). Without it the server runs in this process and
	// the memory figure is left out.
	Binary string
	// Duration of the query load (default 5s).
	Duration time.Duration
	// Clients is the number of concurrent UDP clients, each with one query
	// outstanding (default 16).
	Clients int
	// Tasks is the healthy task count of the service queried (default 10).
	Tasks int
	// Rounds of the healthy-to-answered measurement (default 20).
	Rounds int
	Logger *slog.Logger
}

const domain = "warren.internal."

// Run measures and returns the figures.
func Run(ctx context.Context, cfg Config) ([]Figure, error) {
	if cfg.Binary == "" {
		cfg.Binary = filepath.Join("bin", "warren")
		if dir := os.Getenv("WARREN_BIN"); dir != "" {
			cfg.Binary = filepath.Join(dir, "warren")
		}
	}
	if cfg.Duration == 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Clients == 0 {
		cfg.Clients = 16
	}
	if cfg.Tasks == 0 {
		cfg.Tasks = 10
	}
	if cfg.Rounds == 0 {
		cfg.Rounds = 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	dir, err := os.MkdirTemp("", "warren-dnsbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	m, c, sock, err := startManager(ctx, dir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	defer c.Close()
	go heartbeat(ctx, c, m.NodeID())
	tasks, err := runningTasks(ctx, c, m.NodeID(), cfg.Tasks)
	if err != nil {
		return nil, err
	}

	d, err := startDNS(ctx, cfg, sock, dir)
	if err != nil {
		return nil, err
	}
	defer d.stop()
	if err := waitAnswers(ctx, d.addr, cfg.Tasks, 20*time.Second); err != nil {
		return nil, err
	}
	var figs []Figure
	idleRSS, idleAnon := d.rss(), d.status("RssAnon:")

	cpu0 := d.cpu()
	n, lat, errs := load(ctx, d.addr, cfg.Clients, cfg.Duration)
	cpu := d.cpu() - cpu0
	if n == 0 {
		return nil, fmt.Errorf("dnsbench: no answer in %s of load (%d errors)", cfg.Duration, errs)
	}
	where := "child process"
	if d.cmd == nil {
		where = "in process: no " + cfg.Binary
	}
	figs = append(figs,
		Figure{Name: fmt.Sprintf("warren-dns queries/s, loopback UDP, %d clients, A of a %d-task service (%s)", cfg.Clients, cfg.Tasks, where),
			Value: fmt.Sprintf("%.0f/s (%d lost)", float64(n)/cfg.Duration.Seconds(), errs), Reference: "CoreDNS: tens of thousands per core"},
		Figure{Name: "warren-dns query latency under that load, p50 / p99",
			Value: fmt.Sprintf("%s / %s", pct(lat, 50), pct(lat, 99))})
	if d.cmd != nil && cpu > 0 {
		figs = append(figs, Figure{Name: "warren-dns CPU time per query under that load (queries per core-second)",
			Value: fmt.Sprintf("%.1fµs (%.0f/s)", cpu.Seconds()*1e6/float64(n), float64(n)/cpu.Seconds()), Reference: "CoreDNS: tens of thousands per core"})
	}

	// Light load: one client, for the latency of one query.
	n1, lat1, _ := load(ctx, d.addr, 1, cfg.Duration/2)
	figs = append(figs, Figure{Name: "warren-dns query latency, one client, p50 / p99",
		Value: fmt.Sprintf("%s / %s (%.0f/s)", pct(lat1, 50), pct(lat1, 99), float64(n1)/(cfg.Duration/2).Seconds())})

	hl, err := healthyToAnswered(ctx, c, d.addr, tasks, cfg.Rounds)
	if err != nil {
		return figs, err
	}
	figs = append(figs, Figure{Name: fmt.Sprintf("task healthy (status write through the API) → in warren-dns answers, p50 / max of %d", len(hl)),
		Value: fmt.Sprintf("%s / %s", pct(hl, 50), pct(hl, 100))})

	if d.cmd != nil {
		figs = append(figs, Figure{Name: fmt.Sprintf("warren-dns resident memory, %d tasks, idle / after the load; of it anonymous (the rest is pages of the warren binary, shared)", cfg.Tasks),
			Value: fmt.Sprintf("%.1f MB / %.1f MB; anon %.1f MB / %.1f MB", idleRSS, d.rss(), idleAnon, d.status("RssAnon:")), Budget: "< 24 MB"})
	} else {
		figs = append(figs, Figure{Name: "warren-dns resident memory", Value: "not measured: " + cfg.Binary + " not found (make build)", Budget: "< 24 MB"})
	}
	return figs, nil
}

func startManager(ctx context.Context, dir string, log *slog.Logger) (*manager.Manager, *client.Client, string, error) {
	m, err := manager.New(manager.Config{DataDir: filepath.Join(dir, "manager"), Hostname: "bench-node",
		NodeTimeout: time.Minute, RescheduleGrace: time.Hour, RaftLogLevel: "error", Logger: log})
	if err != nil {
		return nil, nil, "", err
	}
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		m.Close()
		return nil, nil, "", err
	}
	go m.Serve(l)
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := m.WaitReady(rctx); err != nil {
		m.Close()
		return nil, nil, "", fmt.Errorf("dnsbench: manager not ready: %w", err)
	}
	c, err := client.New("unix://" + sock)
	if err != nil {
		m.Close()
		return nil, nil, "", err
	}
	return m, c, sock, nil
}

// heartbeat stands in for the node's agent, so the node is ready and
// takes tasks.
func heartbeat(ctx context.Context, c *client.Client, node string) {
	for {
		c.Heartbeat(ctx, node, api.Heartbeat{Description: api.NodeDescription{Hostname: "bench-node", NanoCPUs: 4e9, MemoryBytes: 4 << 30}})
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// runningTasks creates service web with n replicas and, once they are
// assigned, reports them running and healthy with addresses, as an agent
// would.
func runningTasks(ctx context.Context, c *client.Client, node string, n int) ([]api.Task, error) {
	if _, err := c.CreateService(ctx, api.ServiceSpec{Name: "web", Image: "localhost/busybox", Replicas: uint64(n),
		Ports: []api.PortConfig{{Target: 80, Published: 8080}}}); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ts, err := c.Tasks(ctx, client.TaskQuery{Service: "web"})
		if err != nil {
			return nil, err
		}
		assigned := ts[:0]
		for _, t := range ts {
			if t.NodeID == node && !t.Status.State.Before(api.TaskAssigned) && t.DesiredState == api.TaskRunning {
				assigned = append(assigned, t)
			}
		}
		if len(assigned) == n {
			var ups []api.TaskStatusUpdate
			for i := range assigned {
				assigned[i].Status = api.TaskStatus{State: api.TaskRunning, Message: "started", Addr: taskAddr(assigned[i]), Health: "healthy"}
				ups = append(ups, api.TaskStatusUpdate{TaskID: assigned[i].ID, Status: assigned[i].Status})
			}
			if _, err := c.ReportTaskStatus(ctx, node, ups); err != nil {
				return nil, err
			}
			return assigned, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("dnsbench: %d of %d tasks assigned after 20s", len(assigned), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func taskAddr(t api.Task) string { return fmt.Sprintf("10.240.%d.%d", t.Slot/200, t.Slot%200+10) }

// dnsProc is the server under measure.
type dnsProc struct {
	addr string
	cmd  *exec.Cmd
	stop func()
}

func startDNS(ctx context.Context, cfg Config, sock, dir string) (*dnsProc, error) {
	if _, err := os.Stat(cfg.Binary); err == nil {
		// The binary binds the port itself: one below the ephemeral
		// range, which no outgoing connection of a test beside can take.
		addr, err := testport.Free("tcp4", "udp4")
		if err != nil {
			return nil, fmt.Errorf("dnsbench: %w", err)
		}
		cmd := exec.CommandContext(ctx, cfg.Binary, "dns", "--api-socket", sock, "--listen", addr,
			"--upstream", "127.0.0.1:9", "--log-level", "warn")
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("dnsbench: start %s dns: %w", cfg.Binary, err)
		}
		return &dnsProc{addr: addr, cmd: cmd, stop: func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}}, nil
	}
	// In process, without the binary.
	c, err := client.New("unix://" + sock)
	if err != nil {
		return nil, err
	}
	pc, l, err := loopback.ListenPair()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("dnsbench: %w", err)
	}
	addr := pc.LocalAddr().String()
	sctx, cancel := context.WithCancel(ctx)
	r := wdns.NewReplica(wdns.ReplicaConfig{API: c, Logger: cfg.Logger})
	srv := wdns.NewServer(wdns.ServerConfig{Handler: wdns.Guard(wdns.Zone(r, wdns.NewForwarder(wdns.ForwarderConfig{Logger: cfg.Logger}))),
		PacketConn: pc, Listener: l, Logger: cfg.Logger})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); r.Run(sctx) }()
	go func() { defer wg.Done(); srv.Serve(sctx) }()
	return &dnsProc{addr: addr, stop: func() { cancel(); wg.Wait(); c.Close() }}, nil
}

// cpu is the CPU time the process used so far (user and system).
func (d *dnsProc) cpu() time.Duration {
	if d.cmd == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

// rss is the process's resident memory in MB (10^6 bytes).
func (d *dnsProc) rss() float64 { return d.status("VmRSS:") }

func (d *dnsProc) status(field string) float64 {
	if d.cmd == nil {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb * 1024 / 1e6
		}
	}
	return -1
}

// addrs asks web's A records once.
func addrs(addr string) ([]string, error) {
	q := new(dns.Msg)
	q.SetQuestion("web."+domain, dns.TypeA)
	q.SetEdns0(1232, false)
	resp, _, err := (&dns.Client{Timeout: time.Second}).Exchange(q, addr)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range resp.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out, nil
}

func waitAnswers(ctx context.Context, addr string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var got []string
	var err error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if got, err = addrs(addr); err == nil && len(got) == n {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("dnsbench: warren-dns at %s answered %d addresses for web (err %v); want %d", addr, len(got), err, n)
}

// load runs clients that each keep one query for web A outstanding, for d.
func load(ctx context.Context, addr string, clients int, d time.Duration) (n int, lat []time.Duration, lost int) {
	q := new(dns.Msg)
	q.SetQuestion("web."+domain, dns.TypeA)
	q.SetEdns0(1232, false)
	wire, _ := q.Pack()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("udp", addr)
			if err != nil {
				return
			}
			defer conn.Close()
			buf := make([]byte, 2048)
			pkt := slices.Clone(wire)
			var mine []time.Duration
			bad := 0
			for id := uint16(i << 10); ctx.Err() == nil; id++ {
				binary.BigEndian.PutUint16(pkt, id)
				start := time.Now()
				if _, err := conn.Write(pkt); err != nil {
					bad++
					continue
				}
				conn.SetReadDeadline(time.Now().Add(time.Second))
				for {
					k, err := conn.Read(buf)
					if err != nil {
						bad++
						break
					}
					if k < 12 || binary.BigEndian.Uint16(buf) != id {
						continue // a late answer to an earlier query
					}
					if buf[3]&0xf != 0 || binary.BigEndian.Uint16(buf[6:]) == 0 {
						bad++
					} else {
						mine = append(mine, time.Since(start))
					}
					break
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			lost += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	return len(lat), lat, lost
}

// healthyToAnswered turns tasks unhealthy and healthy again, measuring
// from the status write until warren-dns answers the address.
func healthyToAnswered(ctx context.Context, c *client.Client, addr string, tasks []api.Task, rounds int) ([]time.Duration, error) {
	var out []time.Duration
	for i := range rounds {
		t := tasks[i%len(tasks)]
		for _, health := range []string{"unhealthy", "healthy"} {
			st := t.Status
			st.Health = health
			start := time.Now()
			if _, err := c.ReportTaskStatus(ctx, t.NodeID, []api.TaskStatusUpdate{{TaskID: t.ID, Status: st}}); err != nil {
				return out, err
			}
			want := health == "healthy"
			for {
				got, err := addrs(addr)
				if err == nil && slices.Contains(got, st.Addr) == want {
					break
				}
				if time.Since(start) > 10*time.Second {
					return out, fmt.Errorf("dnsbench: task %s %s: warren-dns still answers %v after 10s", t.Name(), health, got)
				}
				time.Sleep(100 * time.Microsecond)
			}
			if want {
				out = append(out, time.Since(start))
			}
		}
	}
	return out, nil
}

// pct is the p-th percentile of ds (100: the maximum), rounded for print.
func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "n/a"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := min(len(s)-1, len(s)*p/100)
	d := s[i]
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
}
