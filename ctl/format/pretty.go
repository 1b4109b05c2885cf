package format

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	units "github.com/docker/go-units"

	"github.com/warren-edge/warren/daemons/api"
)

// pretty collects "Key:\tvalue" lines for tabwriter; sub-items are
// indented by one space per level, as docker's --pretty is. Values and
// items are sanitized as one line each.
type pretty struct{ lines []string }

func (p *pretty) kv(indent int, key string, val any) {
	p.lines = append(p.lines, fmt.Sprintf("%s%s:\t%s", strings.Repeat(" ", indent), key, Sanitize(fmt.Sprint(val), false)))
}

func (p *pretty) kvIf(indent int, key string, val string) {
	if val != "" {
		p.kv(indent, key, val)
	}
}

func (p *pretty) head(indent int, key string) {
	p.lines = append(p.lines, strings.Repeat(" ", indent)+key+":")
}

func (p *pretty) item(indent int, s string) {
	p.lines = append(p.lines, strings.Repeat(" ", indent)+Sanitize(s, false))
}

func (p *pretty) labels(indent int, l map[string]string) {
	if len(l) == 0 {
		return
	}
	p.head(indent, "Labels")
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p.item(indent+1, "- "+k+"="+l[k])
	}
}

// write aligns every value in one column, as docker's --pretty does.
func (p *pretty) write(w io.Writer) error {
	width := 0
	for _, l := range p.lines {
		if k, _, ok := strings.Cut(l, "\t"); ok {
			width = max(width, len(k))
		}
	}
	var b strings.Builder
	for _, l := range p.lines {
		if k, v, ok := strings.Cut(l, "\t"); ok {
			l = k + strings.Repeat(" ", width-len(k)+1) + v
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func quoteWords(ws []string) string {
	out := make([]string, len(ws))
	for i, w := range ws {
		if w == "" || strings.ContainsAny(w, " \t\"'\\$") {
			w = strconv.Quote(w)
		}
		out[i] = w
	}
	return strings.Join(out, " ")
}

func amounts(p *pretty, indent int, name string, a api.ResourceAmounts) {
	if a.NanoCPUs == 0 && a.MemoryBytes == 0 {
		return
	}
	p.head(indent, name)
	if a.NanoCPUs != 0 {
		p.kv(indent+1, "CPU", api.FormatCPUs(int64(a.NanoCPUs)))
	}
	if a.MemoryBytes != 0 {
		p.kv(indent+1, "Memory", api.FormatBytes(int64(a.MemoryBytes)))
	}
}

// PrettyService writes service inspect --pretty.
func PrettyService(w io.Writer, s *api.Service, now time.Time) error {
	var p pretty
	sp := &s.Spec
	p.kv(0, "ID", s.ID)
	p.kv(0, "Name", sp.Name)
	p.labels(0, sp.Labels)
	p.kv(0, "Created", Ago(now, s.CreatedAt))
	p.kv(0, "Updated", Ago(now, s.UpdatedAt))
	p.kv(0, "Service Mode", Title(Mode(sp)))
	if !sp.IsGlobal() {
		p.kv(1, "Replicas", sp.Replicas)
	}
	if st := s.UpdateStatus; st != nil {
		updateStatus(&p, st)
	}
	if len(sp.Placement.Constraints) > 0 {
		p.head(0, "Placement")
		p.kv(1, "Constraints", "["+strings.Join(sp.Placement.Constraints, ", ")+"]")
	}
	p.head(0, "UpdateConfig")
	policy(&p, sp.UpdateConfig, sp.HealthCheck)
	if rc := sp.RollbackConfig; rc != nil {
		p.head(0, "RollbackConfig")
		policy(&p, *rc, sp.HealthCheck)
	} else {
		p.kv(0, "RollbackConfig", "as UpdateConfig, on failure pause")
	}
	r := sp.RestartPolicy
	p.head(0, "RestartPolicy")
	p.kv(1, "Condition", r.EffectiveCondition())
	p.kv(1, "Delay", r.EffectiveDelay())
	if r.MaxAttempts > 0 {
		p.kv(1, "Max attempts", r.MaxAttempts)
	}
	p.kvIf(1, "Window", durationIf(r.Window))
	o := sp.Offline
	p.head(0, "Offline")
	p.kv(1, "Restart", sp.EffectiveOfflineRestart())
	p.kv(1, "Max offline", orDefault(durationIf(o.MaxOffline), "never"))
	p.kv(1, "On reconnect", o.EffectiveOnReconnect())
	p.head(0, "ContainerSpec")
	p.kv(1, "Image", sp.Image)
	p.kvIf(1, "Command", quoteWords(sp.Command))
	p.kvIf(1, "Args", quoteWords(sp.Args))
	if len(sp.Env) > 0 {
		p.head(1, "Env")
		for _, e := range sp.Env {
			p.item(2, e)
		}
	}
	p.kvIf(1, "Dir", sp.WorkingDir)
	if sp.ReadOnly {
		p.kv(1, "Read Only", "true")
	}
	p.kv(1, "Stop Grace Period", sp.EffectiveStopGrace())
	p.kv(1, "Stop Drain", sp.EffectiveStopDrain())
	security(&p, 1, sp)
	if lim, res := sp.Resources.Limits, sp.Resources.Reservations; lim != (api.ResourceAmounts{}) || res != (api.ResourceAmounts{}) {
		p.head(0, "Resources")
		amounts(&p, 1, "Limits", lim)
		amounts(&p, 1, "Reservations", res)
	}
	if len(sp.Mounts) > 0 {
		p.head(0, "Mounts")
		for _, m := range sp.Mounts {
			p.item(1, "Target = "+m.Target)
			p.item(2, "Type = "+m.Type)
			if m.Source != "" {
				p.item(2, "Source = "+m.Source)
			}
			p.item(2, fmt.Sprintf("ReadOnly = %t", m.ReadOnly))
			if m.Size != 0 {
				p.item(2, "Size = "+units.BytesSize(float64(m.Size)))
			}
			if m.Mode != "" {
				p.item(2, "Mode = "+m.Mode)
			}
		}
	}
	for _, f := range []struct {
		head string
		refs []api.FileRef
	}{{"Secrets", sp.Secrets}, {"Configs", sp.Configs}} {
		if len(f.refs) == 0 {
			continue
		}
		p.head(0, f.head)
		for _, r := range f.refs {
			p.item(1, "Target = "+r.Target)
			p.item(2, fmt.Sprintf("Source = %s (version %d)", r.Name, r.Version))
			p.item(2, fmt.Sprintf("UID = %d, GID = %d, Mode = %#o", r.UID, r.GID, uint32(r.Mode)))
		}
	}
	if len(sp.Ports) > 0 {
		p.head(0, "Ports")
		for _, pc := range sp.Ports {
			pub := pc.Published
			if pub == 0 {
				pub = pc.Target
			}
			p.item(1, fmt.Sprintf("PublishedPort = %d", pub))
			p.item(2, "Protocol = "+pc.Proto())
			p.item(2, fmt.Sprintf("TargetPort = %d", pc.Target))
			p.item(2, "PublishMode = "+pc.Normalized().Mode)
			if pc.HostAddr != "" {
				p.item(2, "HostAddr = "+pc.HostAddr)
			}
		}
	}
	ingressRoutes(&p, sp.Ingress)
	return p.write(w)
}

// updateStatus writes where the last rolling update stands: its state,
// whether a rollback was the update's own doing, its progress and why it
// stopped.
func updateStatus(p *pretty, st *api.UpdateStatus) {
	p.head(0, "UpdateStatus")
	state := st.State
	switch {
	case st.Automatic:
		state += " (automatic: the update failed)"
	case st.State == api.UpdateRollingBack || st.State == api.UpdateRolledBack:
		state += " (by an operator)"
	}
	p.kv(1, "State", state)
	p.kvIf(1, "Deployment", st.Deployment)
	p.kvIf(1, "Started", st.StartedAt)
	p.kv(1, "Updated", fmt.Sprintf("%d task%s", st.Updated, plural(st.Updated)))
	p.kv(1, "Failed", fmt.Sprintf("%d task%s", st.Failed, plural(st.Failed)))
	if st.Canaries > 0 {
		c := fmt.Sprintf("%d", st.Canaries)
		if st.Promoted {
			c += " (promoted)"
		}
		p.kv(1, "Canaries", c)
	}
	if st.Wave > 0 {
		p.kv(1, "Wave", st.Wave)
	}
	p.kvIf(1, "Last progress", st.ProgressAt)
	p.kvIf(1, "Completed", st.CompletedAt)
	p.kvIf(1, "Message", st.Message)
}

// policy writes a rolling-update policy (UpdateConfig or RollbackConfig)
// with its defaults, and the monitor a new task really gets with the
// service's health check (MonitorFor).
func policy(p *pretty, u api.UpdateConfig, hc *api.HealthCheck) {
	p.kv(1, "Parallelism", u.EffectiveParallelism())
	p.kvIf(1, "Delay", durationIf(u.Delay))
	p.kv(1, "On failure", orDefault(u.FailureAction, api.FailurePause))
	monitor := orDefaultD(u.Monitor, api.DefaultUpdateMonitor).String()
	if hc != nil {
		monitor += fmt.Sprintf(" (with the health check: %s healthy)", api.Duration(u.MonitorFor(hc)))
	}
	p.kv(1, "Monitoring Period", monitor)
	p.kv(1, "Max failure ratio", u.MaxFailureRatio)
	p.kv(1, "Update order", orDefault(u.Order, api.OrderStopFirst))
	if u.Order == api.OrderBlueGreen {
		p.kv(1, "Keep old set", api.Duration(u.EffectiveKeepOld()))
	}
	p.kv(1, "Progress deadline", api.Duration(u.EffectiveDeadline()))
	if u.Canary != "" {
		c := u.Canary
		if u.AutoPromote {
			c += ", promoted on their own"
		}
		if u.CanaryHealthyFor > 0 {
			c += ", healthy for " + u.CanaryHealthyFor.String()
		}
		p.kv(1, "Canaries", c)
	}
	if len(u.Waves) > 0 {
		w := strings.Join(u.Waves, ", ")
		if u.WaveLabel != "" {
			w += " (by node label " + u.WaveLabel + ")"
		}
		p.kv(1, "Waves", w)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// security writes what a task of sp runs with, defaults included, so that
// every opt-out shows: the user, capabilities, seccomp, no_new_privs, the
// cgroup namespace and the pids limit.
func security(p *pretty, indent int, sp *api.ServiceSpec) {
	p.head(indent, "Security")
	user := sp.User
	if user == "" {
		user = "the image's (root unless it sets one)"
	}
	p.kv(indent+1, "User", user)
	caps := "default (Docker's)"
	if len(sp.CapAdd) > 0 || len(sp.CapDrop) > 0 {
		caps = strings.Join(sp.EffectiveCapabilities(), ", ")
		if caps == "" {
			caps = "none"
		}
	}
	p.kv(indent+1, "Capabilities", caps)
	if len(sp.CapAdd) > 0 {
		p.kv(indent+2, "Added", strings.Join(sp.CapAdd, ", "))
	}
	if len(sp.CapDrop) > 0 {
		p.kv(indent+2, "Dropped", strings.Join(sp.CapDrop, ", "))
	}
	seccomp := "default profile (Docker's)"
	if sp.EffectiveSeccomp() == api.SeccompUnconfined {
		seccomp = "unconfined"
	}
	p.kv(indent+1, "Seccomp", seccomp)
	nnp := "yes"
	if sp.AllowNewPrivileges {
		nnp = "no (new privileges allowed)"
	}
	p.kv(indent+1, "No New Privileges", nnp)
	p.kv(indent+1, "Cgroup Namespace", "private")
	pids := fmt.Sprint(sp.EffectivePidsLimit())
	switch {
	case sp.PidsLimit == 0:
		pids += " (default)"
	case sp.PidsLimit == api.PidsUnlimited:
		pids = "unlimited"
	}
	p.kv(indent+1, "Pids Limit", pids)
}

func durationIf(d api.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDefaultD(d, def api.Duration) api.Duration {
	if d == 0 {
		return def
	}
	return d
}

// PrettyNode writes node inspect --pretty.
func PrettyNode(w io.Writer, n *api.Node, now time.Time) error {
	var p pretty
	p.kv(0, "ID", n.ID)
	p.kv(0, "Hostname", n.Description.Hostname)
	p.labels(0, n.Spec.Labels)
	p.kv(0, "Joined at", Ago(now, n.CreatedAt))
	p.kv(0, "Role", n.Spec.Role)
	p.head(0, "Status")
	p.kv(1, "State", Title(n.Status.State))
	p.kvIf(1, "Message", n.Status.Message)
	p.kv(1, "Availability", Title(n.Spec.Availability))
	p.kvIf(1, "Address", n.Description.Addr)
	p.kvIf(1, "Last seen", Ago(now, n.Status.Timestamp))
	if m := n.Manager; m != nil {
		p.head(0, "Manager Status")
		p.kvIf(1, "Address", m.Addr)
		p.kv(1, "Raft Status", Title(m.Reachability))
		leader := "No"
		if m.Leader {
			leader = "Yes"
		}
		p.kv(1, "Leader", leader)
		if m.DiskFull {
			p.kv(1, "Disk", "full: Raft stopped, writes refused until space is freed")
		}
	}
	p.head(0, "Platform")
	p.kv(1, "Operating System", n.Description.OS)
	p.kv(1, "Architecture", n.Description.Arch)
	p.head(0, "Resources")
	p.kv(1, "CPUs", api.FormatCPUs(n.Description.NanoCPUs))
	p.kv(1, "Memory", api.FormatBytes(n.Description.MemoryBytes))
	if d := n.Description.Disk; d != nil {
		disk := fmt.Sprintf("%s free of %s on %s", freeBytes(d.FreeBytes), api.FormatBytes(d.TotalBytes), d.Path)
		if d.Low() {
			disk += fmt.Sprintf(": low, no new tasks until %s is free", api.FormatBytes(api.DiskReserve(d.TotalBytes)))
		}
		p.kv(1, "Disk", disk)
	}
	p.kvIf(0, "Subnet", n.Subnet)
	p.kvIf(0, "Engine Version", n.Description.EngineVersion)
	if c := n.Description.Certificate; c != nil && n.Spec.Role == api.RoleWorker {
		when := "expires on "
		if CertExpired(n, now) {
			when = "expired on "
		}
		p.kv(0, "Certificate", when+c.NotAfter.UTC().Format(time.DateOnly))
	}
	if m := n.Description.Mesh; m != nil {
		p.head(0, "Mesh")
		p.kv(1, "Mode", Title(m.Mode)+" WireGuard")
		if ep := n.MeshEndpoint(); ep.IsValid() {
			p.kv(1, "Endpoint", ep.String())
		} else {
			p.kv(1, "Endpoint", "none (the node has no address other nodes reach it at)")
		}
		if m.MTU > 0 {
			p.kv(1, "MTU", fmt.Sprint(m.MTU))
		}
		p.kv(1, "Public Key", m.PublicKey)
	} else {
		p.kv(0, "Mesh", "not up yet (no agent has reported it)")
	}
	return p.write(w)
}
