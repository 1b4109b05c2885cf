package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/vishvananda/netns"

	"github.com/warren-edge/warren/daemons/api"
	"github.com/warren-edge/warren/daemons/api/client"
	"github.com/warren-edge/warren/daemons/wake"
	"github.com/warren-edge/warren/netcfg/link"
	"github.com/warren-edge/warren/qa/containerdtest"
)

// Host is one machine of the cluster: a network namespace on the LAN and
// the processes that play its daemons.
type Host struct {
	Name string
	NS   string // its `ip netns` name
	IP   netip.Addr
	Addr string // its node port, IP:PORT
	Dir  string
	Role string // api.RoleManager or api.RoleWorker once started

	Socket string // its manager's unix socket
	// IngressSocket is its manager's socket for warren-ingress.
	IngressSocket string
	AgentSocket   string         // its agent's unix socket
	Client        *client.Client // on Socket

	Manager   *Proc
	Agent     *Proc
	Mesh      *Proc  // warren mesh, the host's WireGuard interface
	Ingress   *Proc  // warren ingress, once StartIngress ran
	MeshIface string // its name: each host has its own, since the
	// userspace devices' control sockets share /run/wireguard
	Containerd *containerdtest.Daemon

	c      *Cluster
	link   string // its veth's end on the LAN bridge
	mu     sync.Mutex
	nodeID string
	cut    bool
}

// managerArgv is the manager's command line; extra comes last.
func (h *Host) managerArgv(extra ...string) []string {
	argv := []string{"ip", "netns", "exec", h.NS, h.c.cfg.Bin, "manager",
		"--data-dir", filepath.Join(h.Dir, "data"), "--api-socket", h.Socket, "--agent-socket", h.AgentSocket,
		"--ingress-socket", h.IngressSocket,
		"--listen-addr", h.Addr, "--hostname", h.Name, "--log-level", "info"}
	argv = append(argv, h.c.cfg.ManagerArgs...)
	return append(argv, extra...)
}

// StartManager runs `warren manager` inside the host's namespace with the
// cluster's manager flags and extra (e.g. --join ADDR --token T). It does
// not wait; see WaitHealthy.
func (h *Host) StartManager(extra ...string) error {
	if h.Manager != nil && h.Manager.Running() {
		return fmt.Errorf("cluster: %s: the manager runs already", h.Name)
	}
	p, err := startProc("manager", filepath.Join(h.Dir, "manager.log"), h.managerArgv(extra...))
	if err != nil {
		return err
	}
	h.Manager = p
	return nil
}

// RestartManager starts the manager again on its data dir (no join flags:
// the node has its identity).
func (h *Host) RestartManager(ctx context.Context) error {
	if err := h.StartManager(); err != nil {
		return err
	}
	return h.WaitHealthy(ctx)
}

// KillManager kills the manager with SIGKILL.
func (h *Host) KillManager() error {
	if h.Manager == nil {
		return nil
	}
	return h.Manager.Kill()
}

// ManagerRunning says whether the host's manager process runs.
func (h *Host) ManagerRunning() bool { return h.Manager != nil && h.Manager.Running() }

// WaitHealthy waits until the manager answers /v1/health (a manager: it
// knows a leader and is registered; a worker: it serves its replica). It
// fails at once, with the log's tail, if the process exits.
func (h *Host) WaitHealthy(ctx context.Context) error {
	if h.Manager == nil {
		return fmt.Errorf("cluster: %s: no manager started", h.Name)
	}
	var last error
	for {
		if exited, err := h.Manager.Exited(); exited {
			return fmt.Errorf("cluster: %s: the manager exited (%v):\n%s", h.Name, err, h.Manager.LogTail(15))
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		last = h.Client.Health(cctx)
		if last == nil {
			var info *api.Info
			info, last = h.Client.Info(cctx)
			if last == nil {
				h.mu.Lock()
				h.nodeID = info.NodeID
				h.mu.Unlock()
				cancel()
				return nil
			}
		}
		cancel()
		if wake.For(ctx, 20*time.Millisecond) != nil {
			return fmt.Errorf("cluster: %s: manager not healthy: %v", h.Name, last)
		}
	}
}

// WaitVoter waits until the manager is healthy and a Raft voter.
func (h *Host) WaitVoter(ctx context.Context) error {
	if err := h.WaitHealthy(ctx); err != nil {
		return err
	}
	var last string
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		info, err := h.Client.Info(cctx)
		cancel()
		if err == nil && info.RaftVoter {
			return nil
		}
		last = fmt.Sprint(info, err)
		if wake.For(ctx, 20*time.Millisecond) != nil {
			return fmt.Errorf("cluster: %s: not a voter: %s", h.Name, last)
		}
	}
}

// NodeID is the host's node ID, as its manager said once healthy.
func (h *Host) NodeID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nodeID
}

// Cut drops every frame to and from the host on the LAN: its processes
// keep running, unreachable.
func (h *Host) Cut() error {
	if err := h.lanSet("add", "cut", "cut off the LAN"); err != nil {
		return err
	}
	h.mu.Lock()
	h.cut = true
	h.mu.Unlock()
	return nil
}

// Heal undoes Cut.
func (h *Host) Heal() error {
	if err := h.lanSet("delete", "cut", "back on the LAN"); err != nil {
		return err
	}
	h.mu.Lock()
	h.cut = false
	h.mu.Unlock()
	return nil
}

// lanSet adds the host's LAN port to a set of the LAN's wcut table, or
// deletes it (op "add" or "delete"; set "cut", "hold" or "nomesh"), and
// logs what it did (said).
func (h *Host) lanSet(op, set, said string) error {
	if err := h.c.nft("", op, "element", "bridge", "wcut", set, "{ "+strconv.Quote(h.link)+" }"); err != nil {
		return err
	}
	h.c.logf("%s: %s", h.Name, said)
	return nil
}

// Hold keeps what the managers send from reaching the host (its watches,
// the answers to its calls), and what it sends them, until Release; its
// other traffic flows. A worker held for a moment is one whose watch lags.
func (h *Host) Hold() error { return h.lanSet("add", "hold", "held from the managers") }

// Release undoes Hold.
func (h *Host) Release() error { return h.lanSet("delete", "hold", "released") }

// MeshCut drops the host's WireGuard traffic on the LAN until MeshHeal:
// the other nodes' containers cannot reach its containers, nor it theirs,
// while it and the managers still hear each other.
func (h *Host) MeshCut() error { return h.lanSet("add", "nomesh", "mesh cut") }

// MeshHeal undoes MeshCut.
func (h *Host) MeshHeal() error { return h.lanSet("delete", "nomesh", "mesh healed") }

// IsCut says whether the host is cut off.
func (h *Host) IsCut() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cut
}

// DialContext connects from inside the host's namespace (the socket
// belongs to the namespace it was made in; only the connect runs there).
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ns, err := netns.GetFromName(h.NS)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", h.NS, err)
	}
	defer ns.Close()
	var conn net.Conn
	err = link.Do(ns, func() error {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// StartContainerd starts the host's private containerd (in the machine's
// namespace: see the package doc).
func (h *Host) StartContainerd() error {
	d, err := containerdtest.StartDaemon(filepath.Join(h.Dir, "ctrd"))
	if err != nil {
		return fmt.Errorf("cluster: %s: %w", h.Name, err)
	}
	h.Containerd = d
	return nil
}

// StartAgent runs `warren agent` for the host: its network inside the
// host's namespace (--host-netns), its containers in the host's
// containerd.
func (h *Host) StartAgent() error {
	if h.Containerd == nil {
		return fmt.Errorf("cluster: %s: start containerd first", h.Name)
	}
	if h.Mesh == nil || !h.Mesh.Running() {
		if err := h.StartMesh(); err != nil {
			return err
		}
	}
	argv := []string{h.c.cfg.Bin, "agent", "--api-socket", h.Socket, "--containerd-socket", h.Containerd.Socket,
		"--mesh-iface", h.MeshIface, "--mesh-status", filepath.Join(h.Dir, "mesh-status.json"),
		"--data-dir", filepath.Join(h.Dir, "agent"), "--agent-socket", h.AgentSocket,
		"--netns-dir", filepath.Join(h.Dir, "netns"), "--secrets-dir", filepath.Join(h.Dir, "secrets"), "--host-netns", "/run/netns/" + h.NS,
		"--hostname", h.Name, "--cluster-dns=false", "--log-level", "debug"}
	argv = append(argv, h.c.cfg.AgentArgs...)
	p, err := startProc("agent", filepath.Join(h.Dir, "agent.log"), argv)
	if err != nil {
		return err
	}
	h.Agent = p
	// Serving once its socket answers.
	return h.waitUp(p, "the agent", 30*time.Second, "does not serve on "+h.AgentSocket, func() bool {
		c, err := net.Dial("unix", h.AgentSocket)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// waitUp waits up to d until up says p, which plays what, is up; it fails
// at once, with p's log, if p exits, and after d saying notUp.
func (h *Host) waitUp(p *Proc, what string, d time.Duration, notUp string, up func() bool) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if exited, err := p.Exited(); exited {
			return fmt.Errorf("cluster: %s: %s exited (%v):\n%s", h.Name, what, err, p.LogTail(15))
		}
		if up() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("cluster: %s: %s %s:\n%s", h.Name, what, notUp, p.LogTail(15))
}

// StartMesh runs warren mesh in the host's namespace, as its unit does:
// the userspace WireGuard device here (the kernel has no module).
func (h *Host) StartMesh() error {
	argv := []string{"ip", "netns", "exec", h.NS, h.c.cfg.Bin, "mesh", "--iface", h.MeshIface, "--log-level", "debug"}
	p, err := startProc("mesh", filepath.Join(h.Dir, "mesh.log"), argv)
	if err != nil {
		return err
	}
	h.Mesh = p
	return h.waitUp(p, "warren mesh", 10*time.Second, "made no control socket", func() bool {
		_, err := os.Stat("/run/wireguard/" + h.MeshIface + ".sock")
		return err == nil
	})
}

// LoadImage loads the busybox test image (localhost/busybox:latest) into
// the host's containerd through its own manager.
func (h *Host) LoadImage(ctx context.Context) error {
	img, err := h.c.testImage()
	if err != nil {
		return err
	}
	if _, err := h.Client.LoadImage(ctx, bytes.NewReader(img)); err != nil {
		return fmt.Errorf("cluster: %s: image load: %w", h.Name, err)
	}
	return nil
}

// Container is a container in the host's containerd, as Warren's agent
// made it.
type Container struct {
	ID      string
	Task    string // the Warren task ID
	Service string // the service's name
	Slot    string
	Running bool
	PID     uint32
}

// Containers lists the containers of Warren's containerd namespace.
func (h *Host) Containers(ctx context.Context) ([]Container, error) {
	if h.Containerd == nil {
		return nil, nil
	}
	cc, err := containerd.New(h.Containerd.Socket, containerd.WithTimeout(2*time.Second))
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: containerd: %w", h.Name, err)
	}
	defer cc.Close()
	ctx = namespaces.WithNamespace(ctx, "warren")
	ctrs, err := cc.Containers(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: list containers: %w", h.Name, err)
	}
	var out []Container
	for _, ctr := range ctrs {
		labels, err := ctr.Labels(ctx)
		if err != nil {
			continue // removed meanwhile
		}
		c := Container{ID: ctr.ID(), Task: labels["warren.task.id"], Service: labels["warren.service.name"], Slot: labels["warren.task.slot"]}
		if task, err := ctr.Task(ctx, nil); err == nil {
			if st, err := task.Status(ctx); err == nil && st.Status == containerd.Running {
				c.Running, c.PID = true, task.Pid()
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// Alive says whether a process lives (a container's init, seen from the
// machine).
func Alive(pid uint32) bool {
	return pid > 0 && syscall.Kill(int(pid), 0) == nil
}

// StartIngress runs `warren ingress` in the host's namespace on its
// manager's ingress socket, plain HTTP on port 80 and HTTPS on 443 of its
// LAN address, with extra flags last; it waits until port 80 accepts.
func (h *Host) StartIngress(extra ...string) error {
	argv := []string{"ip", "netns", "exec", h.NS, h.c.cfg.Bin, "ingress", "--api-socket", h.IngressSocket,
		"--http-listen", netip.AddrPortFrom(h.IP, 80).String(), "--https-listen", netip.AddrPortFrom(h.IP, 443).String(),
		"--access-log-sample", "1", "--log-level", "debug"}
	p, err := startProc("ingress", filepath.Join(h.Dir, "ingress.log"), append(argv, extra...))
	if err != nil {
		return err
	}
	h.Ingress = p
	return h.waitUp(p, "warren ingress", 30*time.Second, "does not accept on port 80", func() bool {
		c, err := h.DialContext(context.Background(), "tcp", netip.AddrPortFrom(h.IP, 80).String())
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// close stops the host's processes: ingress, the agent, the manager, then
// containerd with every container it ran.
func (h *Host) close() error {
	var errs []error
	if h.Ingress != nil {
		if err := h.Ingress.Stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if h.Agent != nil {
		if err := h.Agent.Stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if h.Manager != nil {
		if err := h.Manager.Stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if h.Mesh != nil {
		if err := h.Mesh.Stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
		// Its control socket, if it could not remove it itself.
		os.Remove("/run/wireguard/" + h.MeshIface + ".sock")
	}
	if h.Client != nil {
		h.Client.Close()
	}
	if h.Containerd != nil {
		if err := h.Containerd.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.Name, err))
		}
	}
	return errors.Join(errs...)
}
