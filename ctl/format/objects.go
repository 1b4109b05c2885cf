package format

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/warren-edge/warren/daemons/api"
)

// Ports writes published ports as docker does: "*:8080->80/tcp",
// "127.0.0.1:53->53/udp", "[::1]:8080->80/tcp"; a host-mode port (only the
// nodes that run a task answer it) ends in " (host)": "*:8080->80/tcp (host)".
func Ports(ps []api.PortConfig) string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		host := "*"
		if p.HostAddr != "" {
			host = p.HostAddr
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
		}
		pub := p.Published
		if pub == 0 {
			pub = p.Target
		}
		s := fmt.Sprintf("%s:%d->%d/%s", host, pub, p.Target, p.Proto())
		if !p.Ingress() {
			s += " (host)"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

// Mode is a spec's mode with its default.
func Mode(s *api.ServiceSpec) string {
	if s.IsGlobal() {
		return api.ModeGlobal
	}
	return api.ModeReplicated
}

// Replicas counts a service's tasks the way service ls shows them: tasks
// running out of tasks wanted. A replicated service wants its replica
// count; a global one wants the tasks its nodes should run.
func Replicas(s *api.Service, tasks []api.Task) (running, desired int) {
	for i := range tasks {
		t := &tasks[i]
		if t.ServiceID != s.ID || t.DesiredState != api.TaskRunning {
			continue
		}
		if t.Status.State == api.TaskRunning {
			running++
		}
		if s.Spec.IsGlobal() && !t.Status.State.Terminal() {
			desired++
		}
	}
	if !s.Spec.IsGlobal() {
		desired = int(s.Spec.Replicas)
	}
	return running, desired
}

// ServiceTable writes service ls: ID NAME MODE REPLICAS IMAGE PORTS, by name.
func ServiceTable(w io.Writer, services []api.Service, tasks []api.Task) error {
	services = slices.Clone(services)
	slices.SortFunc(services, func(a, b api.Service) int { return cmp.Compare(a.Spec.Name, b.Spec.Name) })
	rows := make([][]string, 0, len(services))
	for i := range services {
		s := &services[i]
		run, want := Replicas(s, tasks)
		replicas := fmt.Sprintf("%d/%d", run, want)
		if st := s.UpdateStatus; st != nil && st.State != api.UpdateCompleted && st.State != "" {
			replicas += " (" + st.State + ")"
		}
		rows = append(rows, []string{ShortID(s.ID), s.Spec.Name, Mode(&s.Spec), replicas, s.Spec.Image, Ports(s.Spec.Ports)})
	}
	return WriteTable(w, []string{"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"}, rows)
}

// SortTasks orders tasks as service ps shows them: by service, slot (or
// node, for global services), then newest first.
func SortTasks(tasks []api.Task) {
	slices.SortStableFunc(tasks, func(a, b api.Task) int {
		return cmp.Or(
			cmp.Compare(a.ServiceName, b.ServiceName),
			cmp.Compare(a.Slot, b.Slot),
			cmp.Compare(a.NodeID, b.NodeID),
			b.CreatedAt.Compare(a.CreatedAt),
			cmp.Compare(a.ID, b.ID))
	})
}

// TaskError is what the ERROR column says: the task's error or, for a
// pending task, why it waits.
func TaskError(t *api.Task) string {
	if t.Status.Err != "" {
		return t.Status.Err
	}
	if t.Status.State == api.TaskPending && t.Status.Message != "" {
		return t.Status.Message
	}
	return ""
}

// TaskTable writes service ps: ID NAME IMAGE NODE DESIRED STATE CURRENT
// STATE ERROR. Older tasks of a slot are shown under the newest as
// " \_ web.1", as docker does. hostnames maps node IDs to hostnames.
func TaskTable(w io.Writer, tasks []api.Task, hostnames map[string]string, now time.Time, noTrunc bool) error {
	tasks = slices.Clone(tasks)
	SortTasks(tasks)
	rows := make([][]string, 0, len(tasks))
	prev := ""
	for i := range tasks {
		t := &tasks[i]
		name := t.Name()
		if t.ServiceID+name == prev {
			name = ` \_ ` + name
		}
		prev = t.ServiceID + t.Name()
		id, image, errText := ShortID(t.ID), t.Spec.Image, TaskError(t)
		node := hostnames[t.NodeID]
		if node == "" {
			node = ShortID(t.NodeID)
		}
		if !noTrunc {
			image, _, _ = strings.Cut(image, "@")
			errText = Truncate(errText, 60)
		} else {
			id = t.ID
		}
		state := StateAgo(string(t.Status.State), t.Status.Timestamp, now)
		if o := t.Status.Offline.String(); o != "" {
			// What the node did on its own while cut off (api.OfflineRun).
			state += " (" + o + ")"
		}
		desired := Title(string(t.DesiredState))
		if t.Standby && t.DesiredState == api.TaskRunning {
			// A blue/green set that gets no traffic (api.Task.Standby).
			desired += " (standby)"
		}
		rows = append(rows, []string{id, name, image, node, desired, state, errText})
	}
	return WriteTable(w, []string{"ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR"}, rows)
}

// ManagerStatus is the MANAGER STATUS column: Leader, Reachable,
// Unreachable, or empty for a worker; ", disk full" follows for a manager
// that stopped Raft for lack of space.
func ManagerStatus(n *api.Node) string {
	if n.Manager == nil {
		return ""
	}
	st := Title(n.Manager.Reachability)
	if n.Manager.Leader {
		st = "Leader"
	}
	if n.Manager.DiskFull {
		st += ", disk full"
	}
	if n.Manager.Locked {
		st += ", locked"
	}
	return st
}

// DiskFree is the DISK FREE column: the space free on the node's Warren
// data partition and its share, "low" when the node takes no new task
// for lack of it, empty when the node did not report it.
func DiskFree(d *api.NodeDisk) string {
	if d == nil || d.TotalBytes <= 0 {
		return ""
	}
	s := fmt.Sprintf("%s (%d%%)", freeBytes(d.FreeBytes), max(d.FreeBytes, 0)*100/d.TotalBytes)
	if d.Low() {
		s += " low"
	}
	return s
}

// freeBytes writes an amount of free space, "0B" when there is none.
func freeBytes(n int64) string {
	if n <= 0 {
		return "0B"
	}
	return api.FormatBytes(n)
}

// NodeTable writes node ls: ID HOSTNAME STATUS AVAILABILITY MANAGER
// STATUS DISK FREE ENGINE VERSION MESSAGE, by hostname; self (the node
// warrenctl talks to) is marked with "*" after its ID. MESSAGE says when a
// node's certificate has expired (CertMessage, with the managers' grace; a
// negative grace: not known).
func NodeTable(w io.Writer, nodes []api.Node, self string, now time.Time, grace time.Duration) error {
	nodes = slices.Clone(nodes)
	slices.SortFunc(nodes, func(a, b api.Node) int {
		return cmp.Or(cmp.Compare(a.Description.Hostname, b.Description.Hostname), cmp.Compare(a.ID, b.ID))
	})
	rows := make([][]string, 0, len(nodes))
	for i := range nodes {
		n := &nodes[i]
		id := n.ID
		if id == self {
			id += " *"
		}
		rows = append(rows, []string{id, n.Description.Hostname, Title(n.Status.State), Title(n.Spec.Availability),
			ManagerStatus(n), DiskFree(n.Description.Disk), n.Description.EngineVersion, CertMessage(n, now, grace)})
	}
	return WriteTable(w, []string{"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "DISK FREE", "ENGINE VERSION", "MESSAGE"}, rows)
}

// CertExpired says whether worker n's certificate, as the managers last
// signed it, has expired at now (a manager signs its own: never).
func CertExpired(n *api.Node, now time.Time) bool {
	c := n.Description.Certificate
	return c != nil && n.Spec.Role == api.RoleWorker && now.After(c.NotAfter)
}

// CertMessage says what a worker whose certificate has expired needs, ""
// for any other node: within the managers' grace it renews by itself
// once it is back; after it, it joins again with a token. A negative
// grace is one not known (the date alone is said).
func CertMessage(n *api.Node, now time.Time, grace time.Duration) string {
	if !CertExpired(n, now) {
		return ""
	}
	end := n.Description.Certificate.NotAfter
	msg := "certificate expired on " + end.UTC().Format(time.DateOnly)
	switch {
	case grace < 0:
		return msg
	case grace == 0:
		return msg + ": re-join with a token (warren rejoin on the node)"
	case now.Before(end.Add(grace)):
		return msg + ": it renews once the node is back, until " + end.Add(grace).UTC().Format(time.DateOnly)
	}
	return msg + ", beyond the " + graceString(grace) + " grace: re-join with a token (warren rejoin on the node)"
}

// graceString is a grace for a sentence: "30-day".
func graceString(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d-day", d/(24*time.Hour))
	}
	return d.String()
}

// VolumeTable writes volume ls: NAME NODE LABELS, by name; NODE is the
// hostname of the node the volume lives on, "-" while it has none.
func VolumeTable(w io.Writer, vols []api.Volume, hostnames map[string]string) error {
	vols = slices.Clone(vols)
	slices.SortFunc(vols, func(a, b api.Volume) int { return cmp.Compare(a.Spec.Name, b.Spec.Name) })
	rows := make([][]string, 0, len(vols))
	for _, v := range vols {
		node := "-"
		if v.NodeID != "" {
			node = cmp.Or(hostnames[v.NodeID], ShortID(v.NodeID))
		}
		var labels []string
		for _, k := range slices.Sorted(maps.Keys(v.Spec.Labels)) {
			labels = append(labels, k+"="+v.Spec.Labels[k])
		}
		rows = append(rows, []string{v.Spec.Name, node, strings.Join(labels, ",")})
	}
	return WriteTable(w, []string{"NAME", "NODE", "LABELS"}, rows)
}
