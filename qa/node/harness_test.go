package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/manager/managertest"
	"github.com/warren-edge/warren/netcfg/link"
	"github.com/warren-edge/warren/qa/containerdtest"
	"github.com/warren-edge/warren/qa/testimage"
)

// warrenBin is the warren binary built for these tests.
var warrenBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 || containerdtest.Available() != nil || testimage.Available() != nil {
		// Each test skips with the reason.
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "warren-node-")
	if err != nil {
		panic(err)
	}
	warrenBin = filepath.Join(dir, "warren")
	build := exec.Command("go", "build", "-o", warrenBin, "github.com/warren-edge/warren/daemons/warren")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build warren:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	nodeAddr  = "192.168.77.1"
	nodeAddr2 = "192.168.77.3"
	clientIP  = "192.168.77.2"
	bridge    = "wq0"
)

// node is one Warren node under test.
type node struct {
	t        *testing.T
	ctx      context.Context
	ctrd     *containerdtest.Daemon
	m        *managertest.Manager
	c        *client.Client
	hostNS   string // "ip netns" names
	clientNS string
	dataDir  string
	netnsDir string
	sockDir  string
	agent    *exec.Cmd
	agentLog *bytes.Buffer
	// agentArgs are more flags for the agent (startNodeWith).
	agentArgs []string
}

func skipUnlessRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: containerd, network namespaces and nftables")
	}
	if err := containerdtest.Available(); err != nil {
		t.Skip(err)
	}
	if err := testimage.Available(); err != nil {
		t.Skip(err)
	}
}

func randName(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// startNode brings up containerd, the manager, the network namespaces and
// the agent, and loads the busybox image.
func startNode(t *testing.T) *node {
	t.Helper()
	return startNodeWith(t)
}

// startNodeWith is startNode with more flags for the agent.
func startNodeWith(t *testing.T, agentArgs ...string) *node {
	t.Helper()
	skipUnlessRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	n := &node{t: t, ctx: ctx, hostNS: randName("wqn"), clientNS: randName("wqc"), dataDir: t.TempDir(), agentArgs: agentArgs}
	var err error
	n.sockDir, err = os.MkdirTemp("", "wq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(n.sockDir) })
	n.netnsDir = filepath.Join(n.sockDir, "netns")

	// The node's and the client's namespaces, joined by a veth.
	ipCmd(t, "netns", "add", n.hostNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.hostNS).Run() })
	ipCmd(t, "netns", "add", n.clientNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.clientNS).Run() })
	ipCmd(t, "link", "add", "wqh0", "netns", n.hostNS, "type", "veth", "peer", "name", "wqc0", "netns", n.clientNS)
	ipCmd(t, "-n", n.hostNS, "addr", "add", nodeAddr+"/24", "dev", "wqh0")
	ipCmd(t, "-n", n.hostNS, "addr", "add", nodeAddr2+"/24", "dev", "wqh0")
	ipCmd(t, "-n", n.clientNS, "addr", "add", clientIP+"/24", "dev", "wqc0")
	for _, ns := range []string{n.hostNS, n.clientNS} {
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	}
	ipCmd(t, "-n", n.hostNS, "link", "set", "wqh0", "up")
	ipCmd(t, "-n", n.clientNS, "link", "set", "wqc0", "up")
	t.Cleanup(n.cleanupSandboxes)

	n.ctrd = containerdtest.Start(t)
	n.m = managertest.Start(t, managertest.Options{AgentSocket: n.agentSocket()})
	n.c = n.m.Client
	n.startAgent()
	n.loadImage()
	return n
}

func (n *node) agentSocket() string { return filepath.Join(n.sockDir, "agent.sock") }

// startAgent runs the warren-agent binary for this node.
func (n *node) startAgent() {
	n.t.Helper()
	n.agentLog = &bytes.Buffer{}
	cmd := exec.Command(warrenBin, "agent", "--api-socket", n.m.Socket, "--containerd-socket", n.ctrd.Socket,
		"--data-dir", n.dataDir, "--agent-socket", n.agentSocket(), "--netns-dir", n.netnsDir,
		"--bridge", bridge, "--host-netns", "/run/netns/"+n.hostNS, "--hostname", "node-1", "--mesh=false", "--log-level", "debug")
	cmd.Args = append(cmd.Args, n.agentArgs...)
	cmd.Stdout, cmd.Stderr = n.agentLog, n.agentLog
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.agent = cmd
	n.t.Cleanup(func() {
		n.stopAgent(syscall.SIGTERM)
		if n.t.Failed() {
			n.t.Logf("agent log:\n%s", n.agentLog)
		}
	})
	// Ready once its local socket answers and the node is ready.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		nd, err := n.c.Node(n.ctx, n.m.NodeID())
		if err == nil && nd.Status.State == api.NodeReady {
			if c, err := net.Dial("unix", n.agentSocket()); err == nil {
				c.Close()
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("the agent did not get ready; log:\n%s", n.agentLog)
}

// stopAgent stops the agent process with sig (SIGKILL is kill -9).
func (n *node) stopAgent(sig syscall.Signal) {
	if n.agent == nil {
		return
	}
	n.agent.Process.Signal(sig)
	done := make(chan struct{})
	go func() { n.agent.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		n.agent.Process.Kill()
		<-done
	}
	n.agent = nil
}

func (n *node) loadImage() {
	n.t.Helper()
	var buf bytes.Buffer
	if err := testimage.Build(&buf, testimage.Options{Name: "localhost/busybox:latest"}); err != nil {
		n.t.Fatal(err)
	}
	imgs, err := n.c.LoadImage(n.ctx, &buf)
	if err != nil {
		n.t.Fatalf("image load: %v", err)
	}
	if len(imgs) != 1 || imgs[0].Name != "localhost/busybox:latest" {
		n.t.Fatalf("image load returned %+v, want localhost/busybox:latest", imgs)
	}
}

// cleanupSandboxes removes task namespaces a failed test left mounted.
func (n *node) cleanupSandboxes() {
	entries, _ := os.ReadDir(n.netnsDir)
	for _, e := range entries {
		p := filepath.Join(n.netnsDir, e.Name())
		syscall.Unmount(p, syscall.MNT_DETACH)
		os.Remove(p)
	}
	syscall.Unmount(n.netnsDir, syscall.MNT_DETACH)
}

// waitTasks polls the service's tasks until cond holds.
func (n *node) waitTasks(service, what string, cond func([]api.Task) bool) []api.Task {
	n.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var ts []api.Task
	for time.Now().Before(deadline) {
		var err error
		ts, err = n.c.Tasks(n.ctx, client.TaskQuery{Service: service})
		if err == nil && cond(ts) {
			return ts
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("tasks of %s never got %s; last seen:\n%s\nagent log:\n%s", service, what, describe(ts), n.agentLog)
	return nil
}

func describe(ts []api.Task) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "  %s %s desired=%s state=%s addr=%s err=%q\n", t.Name(), t.ID, t.DesiredState, t.Status.State, t.Status.Addr, t.Status.Err)
	}
	return b.String()
}

func running(ts []api.Task) []api.Task {
	var out []api.Task
	for _, t := range ts {
		if t.DesiredState == api.TaskRunning && t.Status.State == api.TaskRunning {
			out = append(out, t)
		}
	}
	return out
}

func countRunning(k int) func([]api.Task) bool {
	return func(ts []api.Task) bool { return len(running(ts)) == k }
}

// web is a service whose tasks answer HTTP on port 80 with their hostname.
func web(name string, replicas uint64, ports ...api.PortConfig) api.ServiceSpec {
	return api.ServiceSpec{Name: name, Image: "localhost/busybox", Replicas: replicas, Ports: ports,
		Command:         []string{"sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 80 -h /www"},
		RestartPolicy:   api.RestartPolicy{Delay: api.Duration(100 * time.Millisecond)},
		StopGracePeriod: api.Duration(2 * time.Second),
		Resources:       api.Resources{Limits: api.ResourceAmounts{MemoryBytes: 32 << 20}}}
}

// inNS runs fn on a thread inside the named network namespace.
func inNS(t *testing.T, name string, fn func() error) error {
	t.Helper()
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	return link.Do(h, fn)
}

// httpGet fetches http://addr/path from inside the named namespace. The
// connection is made on a thread in that namespace (a socket belongs to the
// namespace it was made in); only then is it handed to the HTTP client,
// whose own goroutines would otherwise dial from the test's namespace.
func httpGet(t *testing.T, ns, addr, path string) (string, error) {
	var conn net.Conn
	err := inNS(t, ns, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	})
	if err != nil {
		return "", err
	}
	used := false
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil,
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			if used {
				return nil, fmt.Errorf("one connection per request")
			}
			used = true
			return conn, nil
		}}
	c := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + path)
	if err != nil {
		conn.Close()
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s", resp.Status)
	}
	return string(b), nil
}

// eventually retries fn until it succeeds or the deadline passes.
func eventually(t *testing.T, what string, d time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// nsOutput runs a command inside the node's namespace.
func (n *node) nsOutput(args ...string) string {
	out, _ := exec.Command("ip", append([]string{"netns", "exec", n.hostNS}, args...)...).CombinedOutput()
	return string(out)
}

// ctrdOutput runs ctr against the private containerd in Warren's namespace.
func (n *node) ctrdOutput(args ...string) string {
	out, _ := exec.Command("ctr", append([]string{"--address", n.ctrd.Socket, "--namespace", "warren"}, args...)...).CombinedOutput()
	return string(out)
}

// startDNS runs warren-dns inside the node's namespace on the bridge
// address, where the agent points the containers' resolv.conf.
func (n *node) startDNS() {
	n.t.Helper()
	log := &bytes.Buffer{}
	cmd := exec.Command("ip", "netns", "exec", n.hostNS, warrenBin, "dns", "--api-socket", n.m.Socket,
		"--listen", "10.240.0.1:53", "--upstream", "127.0.0.1:1", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		if n.t.Failed() {
			n.t.Logf("dns log:\n%s", log)
		}
	})
}

// exec runs a command in a task's container.
func (n *node) exec(taskID string, args ...string) string {
	return n.ctrdOutput(append([]string{"task", "exec", "--exec-id", randName("x"), taskID}, args...)...)
}
