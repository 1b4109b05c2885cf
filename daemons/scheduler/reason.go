package scheduler

import (
	"fmt"
	"strings"

	"github.com/warren-edge/warren/daemons/api"
)

// noNodes is the reason when the cluster has no node at all.
const noNodes = "no nodes in the cluster"

// adjectives name the kinds that refuse a node whatever the task.
var adjectives = [mismatch]string{
	drained:  "drained",
	paused:   "paused",
	inactive: "not active",
	down:     "down",
	notReady: "not ready",
	lowDisk:  "low on disk",
}

// why gathers, for one group, why each node refused it. Every node is
// counted once, under the first check it fails, so the counts add up to the
// number of nodes.
type why struct {
	f    *filter
	need *need
	low  *lowDisks
	// portsInUse counts, per port of need, the nodes where it is the first
	// port in use.
	portsInUse                 []int
	noCPU, noMem               int
	lackCPU, lackMem, lackAddr int
	// cpuFree and memFree are the most free among the nodes that lack it.
	cpuFree, memFree int64
	// addrCap is the most tasks a subnet holds among the nodes that lack
	// addresses.
	addrCap int64
}

// add counts node n as refused for kind k (port in use or resources); pi
// is the index of the port in use.
func (w *why) add(k kind, pi int, n *node) {
	switch k {
	case portInUse:
		w.portsInUse[pi]++
	case noCPUInfo:
		w.noCPU++
	case noMemInfo:
		w.noMem++
	case lackCPU:
		w.cpuFree = max(w.cpuFree, n.cpuCap-n.cpuUsed)
		w.lackCPU++
	case lackMem:
		w.memFree = max(w.memFree, n.memCap-n.memUsed)
		w.lackMem++
	case lackAddr:
		w.addrCap = max(w.addrCap, n.addrCap)
		w.lackAddr++
	}
}

// String is the reason: "no suitable node (N nodes: PHRASE, PHRASE...)".
func (w *why) String(total int) string {
	var parts []string
	for k := drained; k < mismatch; k++ {
		c := w.f.refused[k]
		switch {
		case c == 0:
		case k == lowDisk && c == 1:
			parts = append(parts, fmt.Sprintf("1 low on disk: %s free, under the %s it keeps free", bytes(w.low.free), bytes(w.low.reserve)))
		case k == lowDisk:
			parts = append(parts, fmt.Sprintf("%d low on disk: at most %s free, under the %s or %d%% each keeps free",
				c, bytes(w.low.free), bytes(api.MinDiskFreeBytes), api.MinDiskFreePercent))
		default:
			parts = append(parts, fmt.Sprintf("%d %s", c, adjectives[k]))
		}
	}
	for ci, c := range w.f.mismatched {
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s %s", c, verb(c, "does", "do")+" not match", w.f.cons[ci]))
		}
	}
	for pi, c := range w.portsInUse {
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%d %s port %s in use", c, verb(c, "has", "have"), w.need.ports[pi]))
		}
	}
	if w.noCPU > 0 {
		parts = append(parts, fmt.Sprintf("%d did not report CPU capacity", w.noCPU))
	}
	if w.noMem > 0 {
		parts = append(parts, fmt.Sprintf("%d did not report memory capacity", w.noMem))
	}
	if w.lackCPU > 0 {
		parts = append(parts, fmt.Sprintf("%d %s CPU: needs %s, %s%s free",
			w.lackCPU, verb(w.lackCPU, "lacks", "lack"), cpus(int64(w.need.res.NanoCPUs)), atMost(w.lackCPU), cpus(w.cpuFree)))
	}
	if w.lackMem > 0 {
		parts = append(parts, fmt.Sprintf("%d %s memory: needs %s, %s%s free",
			w.lackMem, verb(w.lackMem, "lacks", "lack"), bytes(int64(w.need.res.MemoryBytes)), atMost(w.lackMem), bytes(w.memFree)))
	}
	if w.lackAddr > 0 {
		parts = append(parts, fmt.Sprintf("%d %s container addresses: %s %s%d %s",
			w.lackAddr, verb(w.lackAddr, "lacks", "lack"), verb(w.lackAddr, "its subnet holds", "their subnets hold"), atMost(w.lackAddr), w.addrCap, verb(int(w.addrCap), "task", "tasks")))
	}
	return fmt.Sprintf("no suitable node (%d %s: %s)", total, verb(total, "node", "nodes"), strings.Join(parts, ", "))
}

// pinnedReason says why node n cannot take a task pinned to it.
// For a mismatch, i is the index of the constraint in cons; for a port in
// use, of the port in nd.ports.
func pinnedReason(n *node, k kind, cons []api.Constraint, i int, nd *need) string {
	name := "node " + nodeName(n.n)
	switch k {
	case mismatch:
		return fmt.Sprintf("%s does not match %s", name, cons[i])
	case portInUse:
		return fmt.Sprintf("%s has port %s in use", name, nd.ports[i])
	case noCPUInfo:
		return name + " did not report CPU capacity"
	case noMemInfo:
		return name + " did not report memory capacity"
	case lackCPU:
		return fmt.Sprintf("%s lacks CPU: needs %s, %s free", name, cpus(int64(nd.res.NanoCPUs)), cpus(n.cpuCap-n.cpuUsed))
	case lackMem:
		return fmt.Sprintf("%s lacks memory: needs %s, %s free", name, bytes(int64(nd.res.MemoryBytes)), bytes(n.memCap-n.memUsed))
	case lackAddr:
		return fmt.Sprintf("%s lacks container addresses: its subnet %s holds %d %s", name, n.n.Subnet, n.addrCap, verb(int(n.addrCap), "task", "tasks"))
	case lowDisk:
		d := n.n.Description.Disk
		return fmt.Sprintf("%s is low on disk: %s free of %s on %s, under the %s it keeps free", name, bytes(d.FreeBytes), bytes(d.TotalBytes), d.Path, bytes(api.DiskReserve(d.TotalBytes)))
	default:
		return name + " is " + adjectives[k]
	}
}

// nodeName is "HOSTNAME (SHORTID)", or "SHORTID" for a node that has not
// said its hostname.
func nodeName(n *api.Node) string {
	if h := n.Description.Hostname; h != "" && h != n.ID {
		return h + " (" + shortID(n.ID) + ")"
	}
	return shortID(n.ID)
}

// shortID is the 12-character prefix of an ID, which api.NewID makes unique
// in practice (as Docker Swarm's).
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func atMost(n int) string {
	if n == 1 {
		return ""
	}
	return "at most "
}

// cpus writes nano-CPUs as "1 CPU", "0.5 CPUs"; a negative amount (placed
// tasks reserve more than the node has) is written as 0.
func cpus(n int64) string {
	n = max(n, 0)
	if n == 1e9 {
		return "1 CPU"
	}
	return api.FormatCPUs(n) + " CPUs"
}

// bytes writes an amount of memory as "512MiB"; a negative amount is
// written as 0.
func bytes(n int64) string {
	if n <= 0 {
		return "0B"
	}
	return api.FormatBytes(n)
}
